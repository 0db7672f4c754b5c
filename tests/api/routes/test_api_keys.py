"""``/api-keys`` end to end: create (shown once), list, revoke, and use as ``X-API-Key``."""

from __future__ import annotations

import re

import httpx

from api.users.tokens import token_digest
from core.tables import ApiKey
from tests.utils.users import create_user, login_headers, new_user_headers


async def test_create_list_use_revoke(client: httpx.AsyncClient, api_prefix: str) -> None:
    user, password = await create_user()
    headers = await login_headers(client, user.email, password)

    created = await client.post(f"{api_prefix}/api-keys", headers=headers, json={"name": "ci"})

    assert created.status_code == 201, created.text
    body = created.json()
    assert set(body) == {"id", "name", "prefix", "key", "created_at"}
    assert re.fullmatch(r"mf_[0-9a-f]{8}_[A-Za-z0-9_-]{43}", body["key"])
    assert body["key"].startswith(body["prefix"] + "_")
    row = await ApiKey.select().where(ApiKey.id == body["id"]).first()
    assert row is not None
    assert row["key_hash"] == token_digest(body["key"]) and body["key"] not in str(row)

    key_headers = {"X-API-Key": body["key"]}
    for path in ("/auth/me", "/users/me"):
        me = await client.get(f"{api_prefix}{path}", headers=key_headers)
        assert me.status_code == 200, path
        assert me.json()["id"] == str(user.id)
    used = await ApiKey.select(ApiKey.last_used_at).where(ApiKey.id == body["id"]).first()
    assert used is not None and used["last_used_at"] is not None

    listed = (await client.get(f"{api_prefix}/api-keys", headers=key_headers)).json()
    assert listed["total"] == 1
    assert listed["items"][0]["id"] == body["id"]
    assert "key" not in listed["items"][0]
    assert listed["items"][0]["last_used_at"] is not None

    revoked = await client.delete(f"{api_prefix}/api-keys/{body['id']}", headers=headers)
    assert revoked.status_code == 204
    assert (await client.get(f"{api_prefix}/auth/me", headers=key_headers)).status_code == 401
    assert (await client.get(f"{api_prefix}/api-keys", headers=headers)).json()["total"] == 0
    again = await client.delete(f"{api_prefix}/api-keys/{body['id']}", headers=headers)
    assert again.status_code == 404


async def test_api_key_name_is_validated(client: httpx.AsyncClient, api_prefix: str) -> None:
    headers = await new_user_headers(client)

    for name in ("", "x" * 101, "nul\x00byte", "   "):
        response = await client.post(f"{api_prefix}/api-keys", headers=headers, json={"name": name})
        assert response.status_code == 422, name
        assert response.json()["detail"][0]["loc"] == ["body", "name"]


async def test_api_keys_need_a_credential(client: httpx.AsyncClient, api_prefix: str) -> None:
    assert (await client.get(f"{api_prefix}/api-keys")).status_code == 401
    assert (await client.post(f"{api_prefix}/api-keys", json={"name": "x"})).status_code == 401
