"""User factories for tests: rows straight in the database, tokens over HTTP.

``create_user`` writes through the real ``UserManager`` (so the password policy
and hashing are the production ones) and needs the tables bound to the test
database: depend on the ``app`` or ``db_engine`` fixture. The header helpers log
in through ``POST /auth/login``, which never counts successful logins against
the rate limit, so they can be called any number of times.
"""

from __future__ import annotations

import uuid

import httpx

from api.users.db import PiccoloUserDatabase
from api.users.manager import UserManager
from api.users.schemas import TrustedUserCreate
from core.tables import User

API_PREFIX = "/api/v1"


def random_password() -> str:
    """Passes the policy (upper, lower, digit, ≥ 8) and never contains a username."""
    return f"Pw{uuid.uuid4().hex[:12]}9"


async def create_user(
    email: str | None = None,
    username: str | None = None,
    password: str | None = None,
    superuser: bool = False,
    *,
    active: bool = True,
) -> tuple[User, str]:
    """Create a user (random email/username/password unless given); return the
    row and its plain password."""
    tag = uuid.uuid4().hex[:10]
    password = password or random_password()
    user = await UserManager(PiccoloUserDatabase(User)).create(
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
    """Create a random user and return bearer headers for it."""
    user, password = await create_user(superuser=superuser)
    return await login_headers(client, user.email, password)
