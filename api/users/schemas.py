"""Request and response bodies of the auth, users and API-key routes
(docs/API.md, "Authentication").

Every request model forbids unknown fields (docs/SECURITY.md #20: unknown fields → 422)
and refuses control characters in free text, which PostgreSQL would otherwise
reject with a driver error (a 500) instead of a clean 422.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi_users import schemas
from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints

USERNAME_PATTERN = r"^[A-Za-z0-9_.-]{3,32}$"
PASSWORD_MAX_LENGTH = 256
"""Hashing is deliberately slow; an unbounded password is a cheap CPU attack."""

Username = Annotated[str, StringConstraints(pattern=USERNAME_PATTERN)]
Password = Annotated[str, Field(min_length=1, max_length=PASSWORD_MAX_LENGTH)]
PlainText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, pattern=r"^[^\x00-\x1f\x7f]+$")
]

STRICT = ConfigDict(extra="forbid")
class UserRead(schemas.BaseUser[uuid.UUID]):
    """The public ``User``: ``{id, email, username, is_active, is_superuser,
    is_verified, settings, created_at}``; never the password hash."""

    # validated when it was written; re-checking it on every read cost more than the rest
    email: Annotated[str, Field(json_schema_extra={"format": "email"})]
    username: str
    settings: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime


class UserCreate(schemas.CreateUpdateDictModel):
    """``POST /auth/register``: exactly ``{email, username, password}``.

    Not a ``BaseUserCreate``: that one also accepts ``is_superuser`` and friends
    (ignored by the register route, but advertised in OpenAPI and so an invitation
    to try). fastapi-users only needs ``email``, ``password`` and the
    ``create_update_dict*`` methods, which this class has.
    """

    model_config = STRICT

    email: EmailStr
    username: Username
    password: Password


class TrustedUserCreate(UserCreate):
    """A user created by an operator (``mediaflow create-admin``) or a test
    factory, never from a request body: it may set the privilege flags."""

    is_active: bool = True
    is_superuser: bool = False
    is_verified: bool = False


class UserUpdate(schemas.BaseUserUpdate):
    """``PATCH /users/me`` and ``PATCH /users/{id}``.

    ``settings`` holds per-user limits, so only a superuser may change it: the
    "safe" dict that fastapi-users uses for ``/users/me`` leaves it out along with
    the privilege flags. Explicit ``null``s are dropped rather than written:
    fastapi-users would otherwise store ``email = NULL`` or pass a
    ``password: None`` key down to the database.
    """

    model_config = STRICT

    username: Username | None = None
    password: Password | None = None
    settings: dict[str, Any] | None = None

    def create_update_dict(self) -> dict[str, Any]:
        return self.model_dump(
            exclude_unset=True,
            exclude_none=True,
            exclude={
                "id",
                "is_superuser",
                "is_active",
                "is_verified",
                "oauth_accounts",
                "settings",
            },
        )

    def create_update_dict_superuser(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True, exclude_none=True, exclude={"id"})


class LoginJSON(BaseModel):
    """The JSON login body; the OAuth2 form (``username``, ``password``) works too."""

    model_config = STRICT

    email_or_username: Annotated[PlainText, StringConstraints(max_length=320)]
    password: Password


class LoginForm(BaseModel):
    """The OAuth2 password form the Swagger UI's Authorize button posts.

    ``grant_type``, ``scope`` and client credentials are part of that form and
    are ignored, so extra fields are allowed here.
    """

    username: Annotated[PlainText, StringConstraints(max_length=320)]
    password: Password


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires")


class RefreshRequest(BaseModel):
    model_config = STRICT

    refresh_token: Annotated[str, Field(min_length=1, max_length=256)]


class ApiKeyCreate(BaseModel):
    model_config = STRICT

    name: Annotated[PlainText, StringConstraints(max_length=100)]


class ApiKeyBase(BaseModel):
    id: uuid.UUID
    name: str
    prefix: str = Field(description="The visible start of the key, to tell keys apart")
    created_at: datetime


class ApiKeyCreated(ApiKeyBase):
    key: str = Field(description="The whole key. Shown once; only its hash is stored.")


class ApiKeyPublic(ApiKeyBase):
    """An API key as listed: the prefix identifies it, the secret is gone."""

    last_used_at: datetime | None = None


class ApiKeysPublic(BaseModel):
    items: list[ApiKeyPublic]
    total: int
