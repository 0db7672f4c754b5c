"""docs/SECURITY.md #13–#17 and #20 against the real API on PostgreSQL.

13 other users' things → 404 · 14 forged, expired or misused tokens → 401 ·
15 brute force → 429 with Retry-After · 16 used or revoked refresh tokens and
API keys → 401 · 17 non-superuser on admin routes → 403 · 20 malformed,
unknown or huge bodies → 422/413, never 500.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import jwt
import pytest

from core.config import Settings
from tests.utils.apps import reset_rate_limits
from tests.utils.users import create_user, login_headers, login_tokens, new_user_headers

ClientFrom = Callable[[str], AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture(autouse=True)
def strict_login_limit(app: object) -> None:
    """Fresh counters, and a login limit low enough to reach quickly."""
    reset_rate_limits(app, rate_limit_login="3/minute")


@pytest.fixture
def client_from(app: object) -> ClientFrom:
    """An HTTP client whose requests come from the given IP address."""

    def make(ip: str) -> AbstractAsyncContextManager[httpx.AsyncClient]:
        transport = httpx.ASGITransport(app=app, client=(ip, 40000))  # type: ignore[arg-type]
        return httpx.AsyncClient(transport=transport, base_url="http://testserver")

    return make


@pytest.fixture
async def victim(client: httpx.AsyncClient) -> AsyncIterator[dict[str, Any]]:
    user, password = await create_user()
    yield {
        "user": user,
        "password": password,
        "tokens": await login_tokens(client, user.email, password),
    }


def _jwt(settings: Settings, **claims: Any) -> str:
    payload = {
        "aud": "fastapi-users:auth",
        "typ": "access",
        "exp": int(time.time()) + 600,
        **claims,
    }
    return jwt.encode(payload, settings.jwt_secret_value(), algorithm="HS256")


def _unsigned(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


async def _me(client: httpx.AsyncClient, api_prefix: str, headers: dict[str, str]) -> int:
    return (await client.get(f"{api_prefix}/auth/me", headers=headers)).status_code


# 13 ------------------------------------------------------------------------


async def test_13_other_users_api_keys_are_404(client: httpx.AsyncClient, api_prefix: str) -> None:
    alice, bob = await new_user_headers(client), await new_user_headers(client)
    created = await client.post(f"{api_prefix}/api-keys", headers=alice, json={"name": "a"})
    key_id = created.json()["id"]

    assert (await client.delete(f"{api_prefix}/api-keys/{key_id}", headers=bob)).status_code == 404
    assert (await client.get(f"{api_prefix}/api-keys", headers=bob)).json()["total"] == 0
    still = await client.get(f"{api_prefix}/auth/me", headers={"X-API-Key": created.json()["key"]})
    assert still.status_code == 200


# 14 ------------------------------------------------------------------------


async def test_14_valid_forged_token_baseline(
    client: httpx.AsyncClient, api_prefix: str, settings: Settings, victim: dict[str, Any]
) -> None:
    """The forging helper itself makes acceptable tokens, so the refusals below mean something."""
    token = _jwt(settings, sub=str(victim["user"].id))
    assert await _me(client, api_prefix, {"Authorization": f"Bearer {token}"}) == 200


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(
            lambda s, sub: _unsigned(
                {"sub": sub, "aud": "fastapi-users:auth", "typ": "access", "exp": time.time() + 600}
            ),
            id="alg-none",
        ),
        pytest.param(
            lambda s, sub: jwt.encode(
                {
                    "sub": sub,
                    "aud": "fastapi-users:auth",
                    "typ": "access",
                    "exp": time.time() + 600,
                },
                "another-secret-that-is-long-enough-0123456789",
                algorithm="HS256",
            ),
            id="foreign-secret",
        ),
        pytest.param(lambda s, sub: _jwt(s, sub=sub, exp=int(time.time()) - 5), id="expired"),
        pytest.param(
            lambda s, sub: jwt.encode(
                {"sub": sub, "aud": "fastapi-users:auth", "typ": "access"},
                s.jwt_secret_value(),
                algorithm="HS256",
            ),
            id="no-expiry",
        ),
        pytest.param(lambda s, sub: _jwt(s, sub=sub, typ="refresh"), id="wrong-typ"),
        pytest.param(
            lambda s, sub: _jwt(s, sub=sub, aud="fastapi-users:reset"), id="reset-audience"
        ),
        pytest.param(lambda s, sub: _jwt(s, sub=str(uuid.uuid4())), id="unknown-user"),
        pytest.param(lambda s, sub: _jwt(s, sub="not-a-uuid"), id="malformed-sub"),
        pytest.param(lambda s, sub: _jwt(s, sub=sub)[:-3] + "AAA", id="tampered-signature"),
        pytest.param(lambda s, sub: "garbage", id="garbage"),
    ],
)
async def test_14_bad_access_tokens_are_401(
    client: httpx.AsyncClient,
    api_prefix: str,
    settings: Settings,
    victim: dict[str, Any],
    forge: Callable[[Settings, str], str],
) -> None:
    token = forge(settings, str(victim["user"].id))
    assert await _me(client, api_prefix, {"Authorization": f"Bearer {token}"}) == 401


async def test_14_refresh_token_is_not_an_access_token(
    client: httpx.AsyncClient, api_prefix: str, victim: dict[str, Any]
) -> None:
    headers = {"Authorization": f"Bearer {victim['tokens']['refresh_token']}"}
    assert await _me(client, api_prefix, headers) == 401
    # nor an API key, nor the other way round
    assert await _me(client, api_prefix, {"X-API-Key": victim["tokens"]["refresh_token"]}) == 401
    access_as_refresh = await client.post(
        f"{api_prefix}/auth/refresh", json={"refresh_token": victim["tokens"]["access_token"]}
    )
    assert access_as_refresh.status_code == 401


# 15 ------------------------------------------------------------------------


async def test_15_login_brute_force_per_ip_is_429(client_from: ClientFrom, api_prefix: str) -> None:
    targets = [await create_user() for _ in range(2)]
    async with client_from("203.0.113.15") as attacker:
        statuses = []
        for i in range(3):  # the limit: 3 failures a minute (see the autouse fixture)
            user = targets[i % 2][0]
            response = await attacker.post(
                f"{api_prefix}/auth/login",
                json={"email_or_username": user.email, "password": "Wr0ngGuess"},
            )
            statuses.append(response.status_code)
        user, password = targets[0]
        blocked = await attacker.post(
            f"{api_prefix}/auth/login", json={"email_or_username": user.email, "password": password}
        )

    assert statuses == [400, 400, 400]
    assert blocked.status_code == 429  # even with the right password
    assert 1 <= int(blocked.headers["Retry-After"]) <= 60


async def test_15_login_brute_force_per_account_is_429(
    client_from: ClientFrom, api_prefix: str
) -> None:
    """Many addresses, one account: the account's own counter stops them."""
    user, password = await create_user()
    for n in range(3):
        async with client_from(f"198.51.100.{n + 1}") as attacker:
            response = await attacker.post(
                f"{api_prefix}/auth/login",
                json={"email_or_username": user.username, "password": "Wr0ngGuess"},
            )
            assert response.status_code == 400

    async with client_from("198.51.100.200") as attacker:
        blocked = await attacker.post(
            f"{api_prefix}/auth/login",
            data={"username": user.email.upper(), "password": "Wr0ngGuess"},
        )
    async with client_from("192.0.2.1") as bystander:
        other, other_password = await create_user()
        fine = await bystander.post(
            f"{api_prefix}/auth/login",
            json={"email_or_username": other.email, "password": other_password},
        )

    assert blocked.status_code == 429 and "Retry-After" in blocked.headers
    assert fine.status_code == 200  # nobody else is affected


async def test_15_register_flood_is_429(client_from: ClientFrom, api_prefix: str) -> None:
    async with client_from("203.0.113.99") as attacker:
        statuses = []
        for _ in range(4):
            tag = uuid.uuid4().hex[:8]
            response = await attacker.post(
                f"{api_prefix}/auth/register",
                json={
                    "email": f"f{tag}@example.com",
                    "username": f"f{tag}",
                    "password": "Flood3rXY",
                },
            )
            statuses.append(response.status_code)

    assert statuses[:3] == [201, 201, 201]
    assert statuses[3] == 429


# 16 ------------------------------------------------------------------------


async def test_16_reused_refresh_token_revokes_the_family(
    client: httpx.AsyncClient, api_prefix: str, victim: dict[str, Any]
) -> None:
    stolen = victim["tokens"]["refresh_token"]
    rotated = await client.post(f"{api_prefix}/auth/refresh", json={"refresh_token": stolen})
    assert rotated.status_code == 200
    successor = rotated.json()["refresh_token"]

    replay = await client.post(f"{api_prefix}/auth/refresh", json={"refresh_token": stolen})
    assert replay.status_code == 401
    # the legitimate holder's successor died with the family: the thief's copy is worthless
    after = await client.post(f"{api_prefix}/auth/refresh", json={"refresh_token": successor})
    assert after.status_code == 401
    # a fresh login still works
    fresh = await login_tokens(client, victim["user"].email, victim["password"])
    assert fresh["refresh_token"] not in (stolen, successor)


async def test_16_concurrent_use_of_one_refresh_token_wins_once(
    client: httpx.AsyncClient, api_prefix: str, victim: dict[str, Any]
) -> None:
    token = victim["tokens"]["refresh_token"]
    responses = await asyncio.gather(
        *(
            client.post(f"{api_prefix}/auth/refresh", json={"refresh_token": token})
            for _ in range(4)
        )
    )

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 401, 401, 401]
    winner = next(r for r in responses if r.status_code == 200).json()["refresh_token"]
    # a race on one token is reuse too: the winner's successor is revoked with the family
    after = await client.post(f"{api_prefix}/auth/refresh", json={"refresh_token": winner})
    assert after.status_code == 401


async def test_16_revoked_and_unknown_refresh_tokens_are_401(
    client: httpx.AsyncClient, api_prefix: str, victim: dict[str, Any]
) -> None:
    access = {"Authorization": f"Bearer {victim['tokens']['access_token']}"}
    assert (await client.post(f"{api_prefix}/auth/logout", headers=access)).status_code == 204

    for token in (victim["tokens"]["refresh_token"], "x" * 43, "y"):
        response = await client.post(f"{api_prefix}/auth/refresh", json={"refresh_token": token})
        assert response.status_code == 401


async def test_16_revoked_and_forged_api_keys_are_401(
    client: httpx.AsyncClient, api_prefix: str
) -> None:
    headers = await new_user_headers(client)
    created = (
        await client.post(f"{api_prefix}/api-keys", headers=headers, json={"name": "k"})
    ).json()
    key = created["key"]
    await client.delete(f"{api_prefix}/api-keys/{created['id']}", headers=headers)

    near_miss = key[:-1] + ("A" if key[-1] != "A" else "B")
    for candidate in (key, near_miss, "mf_00000000_" + "a" * 43, "not-a-key"):
        assert await _me(client, api_prefix, {"X-API-Key": candidate}) == 401, candidate


async def test_16_deactivated_user_loses_every_credential(
    client: httpx.AsyncClient, api_prefix: str, victim: dict[str, Any]
) -> None:
    access = {"Authorization": f"Bearer {victim['tokens']['access_token']}"}
    key = (await client.post(f"{api_prefix}/api-keys", headers=access, json={"name": "k"})).json()
    admin = await new_user_headers(client, superuser=True)
    await client.patch(
        f"{api_prefix}/users/{victim['user'].id}", headers=admin, json={"is_active": False}
    )

    assert await _me(client, api_prefix, access) == 401
    assert await _me(client, api_prefix, {"X-API-Key": key["key"]}) == 401
    refresh = await client.post(
        f"{api_prefix}/auth/refresh", json={"refresh_token": victim["tokens"]["refresh_token"]}
    )
    assert refresh.status_code == 401


# 17 ------------------------------------------------------------------------


async def test_17_non_superuser_on_user_admin_routes_is_403(
    client: httpx.AsyncClient, api_prefix: str
) -> None:
    target, _ = await create_user()
    headers = await new_user_headers(client)
    url = f"{api_prefix}/users/{target.id}"

    assert (await client.get(url, headers=headers)).status_code == 403
    assert (
        await client.patch(url, headers=headers, json={"is_superuser": True})
    ).status_code == 403
    assert (await client.delete(url, headers=headers)).status_code == 403
    assert (await client.get(url)).status_code == 401


async def test_17_register_cannot_grant_privileges(
    client: httpx.AsyncClient, api_prefix: str
) -> None:
    tag = uuid.uuid4().hex[:8]
    response = await client.post(
        f"{api_prefix}/auth/register",
        json={
            "email": f"p{tag}@example.com",
            "username": f"p{tag}",
            "password": "Excalibur42",
            "is_superuser": True,
        },
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "is_superuser"]


# 20 ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "content", "content_type"),
    [
        ("/auth/register", b"{not json", "application/json"),
        ("/auth/register", b'{"email": 5, "username": [], "password": null}', "application/json"),
        ("/auth/register", b"[]", "application/json"),
        ("/auth/login", b"{not json", "application/json"),
        (
            "/auth/login",
            b'{"email_or_username": "a", "password": "b", "extra": 1}',
            "application/json",
        ),
        ("/auth/login", b'{"email_or_username": "a\\u0000b", "password": "b"}', "application/json"),
        ("/auth/login", b'{"email_or_username": 7, "password": "b"}', "application/json"),
        ("/auth/login", b"\xff\xfe\x00", "application/json"),
        ("/auth/login", b'{"email_or_username": "a", "password": "b"}', "text/plain"),
        ("/auth/login", b"username=a", "application/x-www-form-urlencoded"),
        ("/auth/refresh", b'{"refresh_token": ""}', "application/json"),
        ("/auth/refresh", b'{"token": "x"}', "application/json"),
    ],
)
async def test_20_malformed_bodies_are_422(
    client: httpx.AsyncClient, api_prefix: str, path: str, content: bytes, content_type: str
) -> None:
    response = await client.post(
        f"{api_prefix}{path}", content=content, headers={"Content-Type": content_type}
    )

    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][0] == "body"


async def test_20_huge_bodies_are_413(client: httpx.AsyncClient, api_prefix: str) -> None:
    huge = json.dumps({"email_or_username": "a" * 2_000_000, "password": "b"})
    for path in ("/auth/login", "/auth/register"):
        response = await client.post(
            f"{api_prefix}{path}", content=huge, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 413, path

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while streaming
        for _ in range(40):
            yield b" " * 65536

    streamed = await client.post(
        f"{api_prefix}/auth/login", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert streamed.status_code == 413


async def test_20_wrong_types_on_authenticated_routes_are_422(
    client: httpx.AsyncClient, api_prefix: str
) -> None:
    headers = await new_user_headers(client)

    bad_patch = await client.patch(f"{api_prefix}/users/me", headers=headers, json={"email": 1})
    unknown = await client.patch(f"{api_prefix}/users/me", headers=headers, json={"role": "admin"})
    bad_id = await client.delete(f"{api_prefix}/api-keys/not-a-uuid", headers=headers)

    assert [r.status_code for r in (bad_patch, unknown, bad_id)] == [422, 422, 422]


async def test_20_long_password_is_refused_before_hashing(
    client: httpx.AsyncClient, api_prefix: str
) -> None:
    response = await client.post(
        f"{api_prefix}/auth/login", json={"email_or_username": "someone", "password": "x" * 10_000}
    )
    assert response.status_code == 422


async def test_login_headers_helper_never_hits_the_limit(
    client: httpx.AsyncClient, api_prefix: str
) -> None:
    """Successful logins are not counted: the test factories can log in freely."""
    user, password = await create_user()
    for _ in range(5):
        await login_headers(client, user.email, password)
