"""``/users`` (fastapi-users' router on our adapter) end to end over HTTP."""

from __future__ import annotations

import uuid

import httpx

from tests.utils.users import create_user, login_headers, new_user_headers


async def test_me_and_patch_me(client: httpx.AsyncClient, api_prefix: str) -> None:
    user, password = await create_user()
    headers = await login_headers(client, user.email, password)
    new_name = f"renamed_{uuid.uuid4().hex[:8]}"

    me = await client.get(f"{api_prefix}/users/me", headers=headers)
    assert me.status_code == 200 and me.json()["email"] == user.email

    patched = await client.patch(
        f"{api_prefix}/users/me",
        headers=headers,
        json={"username": new_name, "password": "N3wPassword"},
    )

    assert patched.status_code == 200, patched.text
    assert patched.json()["username"] == new_name
    await login_headers(client, new_name, "N3wPassword")
    old = await client.post(
        f"{api_prefix}/auth/login", json={"email_or_username": user.email, "password": password}
    )
    assert old.status_code == 400


async def test_patch_me_cannot_raise_privileges_or_settings(
    client: httpx.AsyncClient, api_prefix: str
) -> None:
    headers = await new_user_headers(client)

    response = await client.patch(
        f"{api_prefix}/users/me",
        headers=headers,
        json={"is_superuser": True, "is_verified": True, "settings": {"max_jobs": 1000}},
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["is_superuser"], body["is_verified"], body["settings"]) == (False, False, {})


async def test_patch_me_refusals(client: httpx.AsyncClient, api_prefix: str) -> None:
    other, _ = await create_user()
    headers = await new_user_headers(client)

    weak = await client.patch(f"{api_prefix}/users/me", headers=headers, json={"password": "weak"})
    assert weak.status_code == 400
    assert weak.json()["detail"]["code"] == "UPDATE_USER_INVALID_PASSWORD"

    for field, value in (("email", other.email.upper()), ("username", other.username.upper())):
        taken = await client.patch(f"{api_prefix}/users/me", headers=headers, json={field: value})
        assert taken.status_code == 400, field
        assert taken.json() == {"detail": "UPDATE_USER_EMAIL_ALREADY_EXISTS"}

    nulls = await client.patch(
        f"{api_prefix}/users/me", headers=headers, json={"email": None, "password": None}
    )
    assert nulls.status_code == 200


async def test_superuser_manages_users(client: httpx.AsyncClient, api_prefix: str) -> None:
    admin_headers = await new_user_headers(client, superuser=True)
    user, password = await create_user()
    url = f"{api_prefix}/users/{user.id}"

    fetched = await client.get(url, headers=admin_headers)
    assert fetched.status_code == 200 and fetched.json()["username"] == user.username

    patched = await client.patch(
        url, headers=admin_headers, json={"settings": {"max_jobs": 2}, "is_verified": True}
    )
    assert patched.status_code == 200
    assert patched.json()["settings"] == {"max_jobs": 2}
    assert patched.json()["is_verified"] is True

    user_headers = await login_headers(client, user.email, password)
    deactivated = await client.patch(url, headers=admin_headers, json={"is_active": False})
    assert deactivated.json()["is_active"] is False
    assert (await client.get(f"{api_prefix}/users/me", headers=user_headers)).status_code == 401

    deleted = await client.delete(url, headers=admin_headers)
    assert deleted.status_code == 202 and deleted.json()["status"] == "deleting"
    assert (await client.get(url, headers=admin_headers)).status_code == 404


async def test_unknown_or_malformed_user_id_is_404(
    client: httpx.AsyncClient, api_prefix: str
) -> None:
    admin_headers = await new_user_headers(client, superuser=True)

    for user_id in (uuid.uuid4(), "not-a-uuid"):
        response = await client.get(f"{api_prefix}/users/{user_id}", headers=admin_headers)
        assert response.status_code == 404
