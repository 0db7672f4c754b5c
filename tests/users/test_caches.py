"""The one-second caches on the authentication path (users by id, API key owners,
verified access tokens): what changes them is honoured at once in the process that made
the change, by other processes within the cache's lifetime, and a cache never mixes
apps with different secrets or keeps a row read before a write."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import httpx
import pytest

from api.users import api_keys, db
from api.users.db import PiccoloUserDatabase
from api.users.manager import UserManager
from api.users.tokens import AccessTokenStrategy
from core.tables import ApiKey, User
from core.ttlcache import TTLCache
from tests.utils.users import create_user, login_headers, new_user_headers

API = "/api/v1"


async def me(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    return (await client.get(f"{API}/auth/me", headers=headers)).status_code


async def bearer_and_key(client: httpx.AsyncClient) -> tuple[uuid.UUID, dict, dict, str]:
    user, password = await create_user()
    bearer = await login_headers(client, user.email, password)
    key = (await client.post(f"{API}/api-keys", headers=bearer, json={"name": "k"})).json()
    by_key = {"X-API-Key": key["key"]}
    for headers in (bearer, by_key, bearer, by_key):  # both are cached now
        assert await me(client, headers) == 200
    return user.id, bearer, by_key, key["id"]


async def test_deactivation_and_revocation_are_at_once_in_this_process(
    client: httpx.AsyncClient,
) -> None:
    user_id, bearer, by_key, _ = await bearer_and_key(client)
    admin = await new_user_headers(client, superuser=True)
    patched = await client.patch(f"{API}/users/{user_id}", headers=admin,
                                 json={"is_active": False})
    assert patched.status_code == 200, patched.text
    assert await me(client, bearer) == 401 and await me(client, by_key) == 401

    _, bearer, by_key, key_id = await bearer_and_key(client)
    assert (await client.delete(f"{API}/api-keys/{key_id}", headers=bearer)).status_code == 204
    assert await me(client, by_key) == 401
    assert await me(client, bearer) == 200


async def test_a_change_made_elsewhere_is_honoured_within_the_cache_lifetime(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another API process deactivates the user and revokes the key: this process has
    both cached, and refuses them once the entries expire, without being told."""
    monkeypatch.setattr(db.USERS, "seconds", 0.3)
    monkeypatch.setattr(api_keys.KEY_OWNERS, "seconds", 0.3)
    user_id, bearer, by_key, key_id = await bearer_and_key(client)
    await User.update({User.is_active: False}).where(User.id == user_id)  # not via this API
    await ApiKey.update({ApiKey.revoked_at: dt.datetime.now(dt.UTC)}).where(
        ApiKey.id == uuid.UUID(key_id))
    await asyncio.sleep(0.35)
    assert await me(client, bearer) == 401 and await me(client, by_key) == 401


async def test_a_token_verified_under_one_secret_is_refused_under_another(
    db_engine: object,
) -> None:
    user, _ = await create_user()
    manager = UserManager(PiccoloUserDatabase(User))
    ours = AccessTokenStrategy("a" * 64, 600)
    theirs = AccessTokenStrategy("b" * 64, 600)
    token = await ours.write_token(user)
    assert (await ours.read_token(token, manager)).id == user.id  # verified and cached
    assert await theirs.read_token(token, manager) is None


def test_a_value_read_before_a_forget_is_not_kept() -> None:
    """A request reads a user row while another request in this process deactivates the
    user (and forgets the entry): the row read before the write must not be cached."""
    cache: TTLCache[str, str] = TTLCache(60)
    read_at = cache.version
    cache.forget("user")  # the write lands while the read is in flight
    cache.put("user", "active (stale)", read_at=read_at)
    assert cache.get("user") is None
    cache.put("user", "inactive", read_at=cache.version)
    assert cache.get("user") == "inactive"
