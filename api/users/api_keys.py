"""API keys: ``mf_<prefix>_<secret>``, stored as sha256 with the prefix visible.

A key authenticates exactly like a bearer token (it is a fastapi-users
authentication backend, see ``api.users.auth``), so every route that takes
``CurrentUser`` accepts ``X-API-Key`` too. Revoking sets ``revoked_at``; the row
stays for the audit trail but no longer authenticates and is no longer listed.
"""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import Response
from fastapi.security import APIKeyHeader
from fastapi.security.base import SecurityBase
from fastapi_users import exceptions
from fastapi_users.authentication import Strategy
from fastapi_users.authentication.strategy import StrategyDestroyNotSupportedError
from fastapi_users.authentication.transport import TransportLogoutNotSupportedError
from fastapi_users.manager import BaseUserManager
from fastapi_users.openapi import OpenAPIResponseType

from api.users.models import UserModel
from api.users.tokens import token_digest
from core.tables import ApiKey
from core.ttlcache import TTLCache

API_KEY_HEADER = "X-API-Key"
KEY_SHAPE = re.compile(r"^mf_[0-9a-f]{8}_[A-Za-z0-9_-]{43}$")
LAST_USED_RESOLUTION = timedelta(minutes=1)
"""``last_used_at`` is written at most this often per key, not on every request."""

PUBLIC_COLUMNS = (ApiKey.id, ApiKey.name, ApiKey.prefix, ApiKey.created_at, ApiKey.last_used_at)


def generate_api_key() -> tuple[str, str]:
    """A new key and its visible prefix (``mf_`` + 8 hex), 256 random bits after it."""
    prefix = f"mf_{secrets.token_hex(4)}"
    return f"{prefix}_{secrets.token_urlsafe(32)}", prefix


async def create_api_key(user_id: uuid.UUID, name: str) -> tuple[dict[str, Any], str]:
    """Store a key for ``user_id``; return its public row and the whole key (once)."""
    key, prefix = generate_api_key()
    row = ApiKey(user=user_id, name=name, prefix=prefix, key_hash=token_digest(key))
    await row.save()
    return {"id": row.id, "name": name, "prefix": prefix, "created_at": row.created_at}, key


async def list_api_keys(user_id: uuid.UUID) -> list[dict[str, Any]]:
    return (
        await ApiKey.select(*PUBLIC_COLUMNS)
        .where((ApiKey.user == user_id) & ApiKey.revoked_at.is_null())
        .order_by(ApiKey.created_at)
    )


async def revoke_api_key(user_id: uuid.UUID, key_id: uuid.UUID) -> bool:
    """Revoke one of ``user_id``'s live keys; False when there is none (another
    user's key included, so the route answers 404 and reveals nothing)."""
    revoked = (
        await ApiKey.update({ApiKey.revoked_at: datetime.now(UTC)})
        .where((ApiKey.id == key_id) & (ApiKey.user == user_id) & ApiKey.revoked_at.is_null())
        .returning(ApiKey.id)
    )
    KEY_OWNERS.forget_where(lambda owner: owner[0] == key_id)
    return bool(revoked)


KEY_CACHE_SECONDS = 1.0
"""How long a key's owner is remembered; revoking forgets it at once in this process,
and other API processes refuse a revoked key within this."""
KEY_OWNERS: TTLCache[str, tuple[uuid.UUID, uuid.UUID]] = TTLCache(KEY_CACHE_SECONDS)


async def user_id_for_key(key: str) -> uuid.UUID | None:
    """The owner of a live key, or None; refreshes ``last_used_at`` when stale."""
    if not KEY_SHAPE.match(key):
        return None  # not even shaped like a key: no database round trip
    digest = token_digest(key)
    cached = KEY_OWNERS.get(digest)
    if cached is not None:
        return cached[1]
    read_at = KEY_OWNERS.version
    row = (
        await ApiKey.select(ApiKey.id, ApiKey.user, ApiKey.last_used_at)
        .where((ApiKey.key_hash == digest) & ApiKey.revoked_at.is_null())
        .first()
    )
    if row is None:
        return None
    KEY_OWNERS.put(digest, (row["id"], row["user"]), read_at=read_at)
    now = datetime.now(UTC)
    if row["last_used_at"] is None or now - row["last_used_at"] >= LAST_USED_RESOLUTION:
        await ApiKey.update({ApiKey.last_used_at: now}).where(ApiKey.id == row["id"])
    return row["user"]


class ApiKeyTransport:
    """Reads ``X-API-Key``; shows up in OpenAPI as an ``apiKey`` scheme.

    Keys are made with ``POST /api-keys``, never by a login, so the login and
    logout responses of fastapi-users' Transport protocol do not apply.
    """

    scheme: SecurityBase = APIKeyHeader(name=API_KEY_HEADER, auto_error=False)

    async def get_login_response(self, token: str) -> Response:
        raise NotImplementedError("API keys are created with POST /api-keys")

    async def get_logout_response(self) -> Response:
        raise TransportLogoutNotSupportedError()

    @staticmethod
    def get_openapi_login_responses_success() -> OpenAPIResponseType:
        return {}

    @staticmethod
    def get_openapi_logout_responses_success() -> OpenAPIResponseType:
        return {}


class ApiKeyStrategy(Strategy[UserModel, uuid.UUID]):
    async def read_token(
        self, token: str | None, user_manager: BaseUserManager[UserModel, uuid.UUID]
    ) -> UserModel | None:
        if token is None:
            return None
        user_id = await user_id_for_key(token)
        if user_id is None:
            return None
        try:
            return await user_manager.get(user_id)
        except exceptions.UserNotExists:
            return None

    async def write_token(self, user: UserModel) -> str:
        raise NotImplementedError("API keys are created with POST /api-keys")

    async def destroy_token(self, token: str, user: UserModel) -> None:
        raise StrategyDestroyNotSupportedError()
