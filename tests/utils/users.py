"""User factories for tests: rows straight in the database, tokens over HTTP.

``create_user`` writes through the real ``UserManager`` (so the password policy
and hashing are the production ones) and needs the tables bound to the test
database: depend on the ``app`` or ``db_engine`` fixture. ``login_headers`` logs
in through ``POST /auth/login``, which never counts successful logins against
the rate limit, so it can be called any number of times.

``new_user_headers`` (the ``headers`` fixture, hundreds of times a run) skips the two
Argon2 computations a user costs (about 0.2 s of CPU each): its users share one
password, hashed once per process, and their access token is issued as a login issues
it, by the app's own token strategy. The login itself is tested where it is the subject.
"""

from __future__ import annotations

import uuid

import httpx
from fastapi_users.password import PasswordHelper

from api.users.db import PiccoloUserDatabase
from api.users.manager import UserManager
from api.users.schemas import TrustedUserCreate
from api.users.tokens import AccessTokenStrategy
from core.config import Settings
from core.tables import User

API_PREFIX = "/api/v1"


def random_password() -> str:
    """Passes the policy (upper, lower, digit, ≥ 8) and never contains a username."""
    return f"Pw{uuid.uuid4().hex[:12]}9"


class HashOnce(PasswordHelper):
    """The production hasher, computing each password's hash once per process."""

    def __init__(self) -> None:
        super().__init__()
        self.hashes: dict[str, str] = {}

    def hash(self, password: str) -> str:
        if password not in self.hashes:
            self.hashes[password] = super().hash(password)
        return self.hashes[password]


SHARED_PASSWORD = random_password()
"""The password of ``new_user_headers``' users, which no test sees."""
HASH_ONCE = HashOnce()


async def create_user(
    email: str | None = None,
    username: str | None = None,
    password: str | None = None,
    superuser: bool = False,
    *,
    active: bool = True,
    helper: PasswordHelper | None = None,
) -> tuple[User, str]:
    """Create a user (random email/username/password unless given); return the
    row and its plain password."""
    tag = uuid.uuid4().hex[:10]
    password = password or random_password()
    user = await UserManager(PiccoloUserDatabase(User), helper).create(
        TrustedUserCreate(
            email=email or f"user-{tag}@example.com",
            username=username or f"user_{tag}",
            password=password,
            is_superuser=superuser,
            is_active=active,
        ),
        safe=False,
    )
    return user, password


async def login_tokens(
    client: httpx.AsyncClient, email_or_username: str, password: str
) -> dict[str, object]:
    """The token pair from a JSON login (asserts it succeeds)."""
    response = await client.post(
        f"{API_PREFIX}/auth/login",
        json={"email_or_username": email_or_username, "password": password},
    )
    assert response.status_code == 200, response.text
    return response.json()


async def login_headers(
    client: httpx.AsyncClient, email_or_username: str, password: str
) -> dict[str, str]:
    """``Authorization: Bearer …`` headers for an existing user."""
    tokens = await login_tokens(client, email_or_username, password)
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def new_user_headers(client: httpx.AsyncClient, superuser: bool = False) -> dict[str, str]:
    """Create a random user and return bearer headers for it: a token from the app's own
    strategy when ``client`` runs the app in this process, else from a login."""
    user, password = await create_user(password=SHARED_PASSWORD, superuser=superuser,
                                       helper=HASH_ONCE)
    settings = app_settings(client)
    if settings is None:
        return await login_headers(client, user.email, password)
    strategy = AccessTokenStrategy(settings.jwt_secret_value(), settings.access_token_seconds)
    return {"Authorization": f"Bearer {await strategy.write_token(user)}"}


def app_settings(client: httpx.AsyncClient) -> Settings | None:
    """The settings of the app ``client`` calls in this process (None for a server)."""
    transport = client._transport  # noqa: SLF001 - httpx keeps the transport it was given
    app = getattr(transport, "app", None) if isinstance(transport, httpx.ASGITransport) else None
    return app.state.settings if app is not None else None  # type: ignore[union-attr]
