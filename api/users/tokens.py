"""Access tokens (JWT) and refresh tokens (opaque, rotating).

Access tokens are fastapi-users JWTs (HS256, audience ``fastapi-users:auth``)
with two additions: a ``typ: "access"`` claim and mandatory ``exp``/``sub``.
Nothing else mediaflow signs may pass for one, and a token without an expiry
is refused even if it carries a valid signature.

Refresh tokens are random strings, not JWTs, stored only as their sha256. Each
use rotates: the presented token is marked ``replaced_by`` its successor in the
same ``family_id``. Presenting a token that was already rotated or revoked means
two parties hold the chain (a leak), so the whole family is revoked and both
get 401 (OAuth 2.0 Security BCP, "refresh token rotation").
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from fastapi_users import exceptions
from fastapi_users.authentication import JWTStrategy
from fastapi_users.jwt import generate_jwt
from fastapi_users.manager import BaseUserManager

from api.users.models import UserModel
from core.db import write_transaction
from core.tables import RefreshToken
from core.ttlcache import TTLCache

ACCESS_TOKEN_TYPE = "access"
ACCESS_TOKEN_AUDIENCE = "fastapi-users:auth"
JWT_ALGORITHM = "HS256"


def token_digest(value: str) -> str:
    """sha256 hex of a bearer secret: what the database stores instead of it.

    A fast hash is right here (unlike passwords): the secrets are 256-bit
    random, so there is nothing to brute-force.
    """
    return hashlib.sha256(value.encode()).hexdigest()


VERIFIED_TOKENS: TTLCache[tuple[str, str], str] = TTLCache(seconds=1.0)
"""Access tokens whose signature was verified in the last second (keyed by the digest of
the secret that verified them, and the token), and their subject: a client's burst of
requests pays for one HMAC check. An expiry within that second is
honoured a second late; the user behind it is looked up (and refused if deactivated)
on every request as before."""


class AccessTokenStrategy(JWTStrategy[UserModel, uuid.UUID]):
    """fastapi-users' JWT strategy, stricter on what it accepts."""

    def __init__(self, secret: str, lifetime_seconds: int) -> None:
        super().__init__(
            secret,
            lifetime_seconds,
            token_audience=[ACCESS_TOKEN_AUDIENCE],
            algorithm=JWT_ALGORITHM,
        )
        self._secret_digest = token_digest(secret)  # two apps, two secrets: two caches

    async def write_token(self, user: UserModel) -> str:
        data = {"sub": str(user.id), "aud": self.token_audience, "typ": ACCESS_TOKEN_TYPE}
        return generate_jwt(data, self.encode_key, self.lifetime_seconds, algorithm=self.algorithm)

    async def read_token(
        self, token: str | None, user_manager: BaseUserManager[UserModel, uuid.UUID]
    ) -> UserModel | None:
        if token is None:
            return None
        key = (self._secret_digest, token)
        subject = VERIFIED_TOKENS.get(key)  # a token checked in the last second
        if subject is None:
            subject = self._verified_subject(token)
            if subject is None:
                return None
            VERIFIED_TOKENS.put(key, subject)
        try:
            return await user_manager.get(user_manager.parse_id(subject))
        except (exceptions.UserNotExists, exceptions.InvalidID):
            return None

    def _verified_subject(self, token: str) -> str | None:
        """The token's user id when its signature, audience, type and expiry hold."""
        try:
            # algorithms is a one-item allow-list: "none" and RS/HS confusion fail here.
            data = jwt.decode(
                token,
                self.decode_key,  # type: ignore[arg-type]
                audience=self.token_audience,
                algorithms=[self.algorithm],
                options={"require": ["exp", "sub", "aud"]},
            )
        except jwt.PyJWTError:
            return None
        if data.get("typ") != ACCESS_TOKEN_TYPE:
            return None
        return str(data["sub"])


class InvalidRefreshToken(Exception):
    """Unknown, expired, revoked or reused refresh token: the answer is 401."""


@dataclass(frozen=True)
class RefreshTokenStore:
    lifetime_seconds: int

    async def issue(
        self,
        user_id: uuid.UUID,
        family_id: uuid.UUID | None = None,
        token_id: uuid.UUID | None = None,
    ) -> str:
        """Store a new token (a new family at login) and return its only plain copy."""
        token = secrets.token_urlsafe(32)
        await RefreshToken.insert(
            RefreshToken(
                id=token_id or uuid.uuid4(),
                user=user_id,
                token_hash=token_digest(token),
                family_id=family_id or uuid.uuid4(),
                expires_at=_now() + timedelta(seconds=self.lifetime_seconds),
            )
        )
        return token

    async def rotate(self, token: str) -> tuple[uuid.UUID, str]:
        """Spend ``token``; return its user and the successor token.

        The spend is a conditional UPDATE, so of two concurrent uses exactly one
        wins and the other is treated as reuse.
        """
        row = (
            await RefreshToken.select(
                RefreshToken.id,
                RefreshToken.user,
                RefreshToken.family_id,
                RefreshToken.expires_at,
                RefreshToken.revoked_at,
                RefreshToken.replaced_by,
            )
            .where(RefreshToken.token_hash == token_digest(token))
            .first()
        )
        if row is None:
            raise InvalidRefreshToken("unknown refresh token")
        if row["revoked_at"] is not None or row["replaced_by"] is not None:
            await self.revoke_family(row["family_id"])
            raise InvalidRefreshToken("refresh token reused; its family is revoked")
        if row["expires_at"] <= _now():
            raise InvalidRefreshToken("refresh token expired")

        successor_id = uuid.uuid4()
        async with write_transaction(RefreshToken._meta.db):
            spent = (
                await RefreshToken.update({RefreshToken.replaced_by: successor_id})
                .where(
                    (RefreshToken.id == row["id"])
                    & RefreshToken.replaced_by.is_null()
                    & RefreshToken.revoked_at.is_null()
                )
                .returning(RefreshToken.id)
            )
            successor = (
                await self.issue(row["user"], row["family_id"], successor_id) if spent else None
            )
        if successor is None:
            await self.revoke_family(row["family_id"])
            raise InvalidRefreshToken("refresh token used concurrently; its family is revoked")
        return row["user"], successor

    async def revoke_family(self, family_id: uuid.UUID) -> None:
        await RefreshToken.update({RefreshToken.revoked_at: _now()}).where(
            (RefreshToken.family_id == family_id) & RefreshToken.revoked_at.is_null()
        )

    async def revoke_user(self, user_id: uuid.UUID) -> None:
        await RefreshToken.update({RefreshToken.revoked_at: _now()}).where(
            (RefreshToken.user == user_id) & RefreshToken.revoked_at.is_null()
        )


def _now() -> datetime:
    return datetime.now(UTC)
