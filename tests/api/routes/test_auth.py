"""``/auth`` end to end over HTTP on PostgreSQL: register, login, refresh, logout, me."""

from __future__ import annotations

import uuid

import httpx
import pytest

from api.users.auth import LOGIN_URL
from core.tables import RefreshToken
from tests.utils.users import create_user, login_tokens

USER_FIELDS = {
    "id",
    "email",
    "username",
    "is_active",
    "is_superuser",
    "is_verified",
    "settings",
    "created_at",
}


def _registration(**overrides: str) -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    return {
        "email": f"reg-{tag}@example.com",
        "username": f"reg_{tag}",
        "password": "Excalibur42",
        **overrides,
    }


async def test_register_returns_the_user(client: httpx.AsyncClient, api_prefix: str) -> None:
    body = _registration()
    response = await client.post(f"{api_prefix}/auth/register", json=body)

    assert response.status_code == 201, response.text
    user = response.json()
    assert set(user) == USER_FIELDS
    assert user["email"] == body["email"]
    assert user["username"] == body["username"]
    assert (user["is_active"], user["is_superuser"], user["is_verified"]) == (True, False, False)
    assert user["settings"] == {}


@pytest.mark.parametrize("field", ["email", "username"])
async def test_register_duplicate_is_400(
    client: httpx.AsyncClient, api_prefix: str, field: str
) -> None:
    first = _registration()
    assert (await client.post(f"{api_prefix}/auth/register", json=first)).status_code == 201

    # the same email or username in another case is the same account
    second = _registration(**{field: first[field].upper()})
    response = await client.post(f"{api_prefix}/auth/register", json=second)

    assert response.status_code == 400
    assert response.json() == {"detail": "REGISTER_USER_ALREADY_EXISTS"}


async def test_register_weak_password_is_400(client: httpx.AsyncClient, api_prefix: str) -> None:
    response = await client.post(
        f"{api_prefix}/auth/register", json=_registration(password="alllowercase1")
    )

    assert response.status_code == 400
    detail = response.json()["detail"]
    assert detail["code"] == "REGISTER_INVALID_PASSWORD"
    assert "upper-case" in detail["reason"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [({"username": "no spaces"}, "username"), ({"email": "not-an-email"}, "email")],
)
async def test_register_invalid_fields_are_422(
    client: httpx.AsyncClient, api_prefix: str, overrides: dict[str, str], field: str
) -> None:
    response = await client.post(f"{api_prefix}/auth/register", json=_registration(**overrides))

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", field]


async def test_login_with_json_by_email_and_by_username(
    client: httpx.AsyncClient, api_prefix: str
) -> None:
    user, password = await create_user()

    for identifier in (user.email, user.username.upper()):
        tokens = await login_tokens(client, identifier, password)
        assert set(tokens) == {"access_token", "refresh_token", "token_type", "expires_in"}
        assert tokens["token_type"] == "bearer"
        assert tokens["expires_in"] == 30 * 60
        me = await client.get(
            f"{api_prefix}/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
        assert me.status_code == 200
        assert me.json()["id"] == str(user.id)


async def test_login_with_the_oauth2_form(client: httpx.AsyncClient, api_prefix: str) -> None:
    """What the Swagger UI's Authorize button posts."""
    user, password = await create_user()
    form = {"grant_type": "password", "username": user.username, "password": password, "scope": ""}

    response = await client.post(f"{api_prefix}/auth/login", data=form)

    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "bearer"


async def test_swagger_token_url_is_the_login_route(app: object, api_prefix: str) -> None:
    schemes = app.openapi()["components"]["securitySchemes"]  # type: ignore[attr-defined]
    assert schemes["OAuth2PasswordBearer"]["flows"]["password"]["tokenUrl"] == LOGIN_URL
    assert LOGIN_URL == f"{api_prefix}/auth/login"
    assert schemes["APIKeyHeader"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}


@pytest.mark.parametrize("which", ["password", "identifier"])
async def test_login_bad_credentials_is_400(
    client: httpx.AsyncClient, api_prefix: str, which: str
) -> None:
    user, password = await create_user()
    body = {"email_or_username": user.email, "password": password}
    body["password" if which == "password" else "email_or_username"] = "Wr0ngWrong"

    response = await client.post(f"{api_prefix}/auth/login", json=body)

    assert response.status_code == 400
    assert response.json() == {"detail": "LOGIN_BAD_CREDENTIALS"}


async def test_inactive_user_cannot_log_in(client: httpx.AsyncClient, api_prefix: str) -> None:
    user, password = await create_user(active=False)

    response = await client.post(
        f"{api_prefix}/auth/login", json={"email_or_username": user.email, "password": password}
    )

    assert response.status_code == 400


async def test_refresh_rotates(client: httpx.AsyncClient, api_prefix: str) -> None:
    user, password = await create_user()
    first = await login_tokens(client, user.email, password)

    response = await client.post(
        f"{api_prefix}/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )

    assert response.status_code == 200, response.text
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    me = await client.get(
        f"{api_prefix}/auth/me", headers={"Authorization": f"Bearer {second['access_token']}"}
    )
    assert me.json()["id"] == str(user.id)
    # the chain continues with the successor
    third = await client.post(
        f"{api_prefix}/auth/refresh", json={"refresh_token": second["refresh_token"]}
    )
    assert third.status_code == 200
    rows = await RefreshToken.select(RefreshToken.family_id).where(RefreshToken.user == user.id)
    assert len(rows) == 3 and len({row["family_id"] for row in rows}) == 1


async def test_logout_revokes_refresh_tokens(client: httpx.AsyncClient, api_prefix: str) -> None:
    user, password = await create_user()
    one = await login_tokens(client, user.email, password)
    two = await login_tokens(client, user.username, password)

    response = await client.post(
        f"{api_prefix}/auth/logout", headers={"Authorization": f"Bearer {one['access_token']}"}
    )

    assert response.status_code == 204
    for tokens in (one, two):
        refreshed = await client.post(
            f"{api_prefix}/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert refreshed.status_code == 401


async def test_logout_needs_a_credential(client: httpx.AsyncClient, api_prefix: str) -> None:
    assert (await client.post(f"{api_prefix}/auth/logout")).status_code == 401


async def test_me_without_credentials_is_401(client: httpx.AsyncClient, api_prefix: str) -> None:
    response = await client.get(f"{api_prefix}/auth/me")

    assert response.status_code == 401
    assert response.json() == {"detail": "Unauthorized"}
