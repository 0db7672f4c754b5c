"""fastapi-users' ``UserManager`` for mediaflow: password policy, usernames, login by either.

The policy (docs/API.md, "Register"): at least 8 characters with an upper-case letter, a
lower-case letter and a digit, and not containing the account's email, the
email's local part or the username. fastapi-users calls ``validate_password`` on
register, on password change and on reset, so the policy holds everywhere.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from typing import Any

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordRequestForm
from fastapi_users import BaseUserManager, UUIDIDMixin, exceptions

from api.users.db import PiccoloUserDatabase
from api.users.models import UserModel
from api.users.schemas import PASSWORD_MAX_LENGTH
from core.tables import User

log = logging.getLogger("mediaflow.users")

PASSWORD_MIN_LENGTH = 8
IDENTITY_MIN_LENGTH = 3
"""Shorter fragments ("al", "x") would forbid too many honest passwords."""


def password_problem(
    password: str, *, email: str | None = None, username: str | None = None
) -> str | None:
    """Why ``password`` breaks the policy, or None when it is acceptable."""
    if len(password) < PASSWORD_MIN_LENGTH:
        return f"Password must be at least {PASSWORD_MIN_LENGTH} characters"
    if len(password) > PASSWORD_MAX_LENGTH:
        return f"Password must be at most {PASSWORD_MAX_LENGTH} characters"
    if not any(c.isupper() for c in password):
        return "Password must contain an upper-case letter"
    if not any(c.islower() for c in password):
        return "Password must contain a lower-case letter"
    if not any(c.isdigit() for c in password):
        return "Password must contain a digit"
    identities = [email, email.split("@", 1)[0] if email else None, username]
    lowered = password.lower()
    for identity in identities:
        if identity and len(identity) >= IDENTITY_MIN_LENGTH and identity.lower() in lowered:
            return "Password must not contain the email or username"
    return None


def generate_password(*, email: str | None = None, username: str | None = None) -> str:
    """A random password (~128 bits) that satisfies the policy, for ``create-admin``."""
    while True:
        candidate = secrets.token_urlsafe(16)
        if password_problem(candidate, email=email, username=username) is None:
            return candidate


class UserManager(UUIDIDMixin, BaseUserManager[UserModel, uuid.UUID]):
    """fastapi-users' manager plus usernames.

    The reset-password and verify-email routers are not mounted, so their token
    secrets stay unset: using them would fail loudly rather than sign with a
    default.
    """

    user_db: PiccoloUserDatabase[UserModel]

    async def validate_password(self, password: str, user: Any) -> None:
        problem = password_problem(
            password, email=user.email, username=getattr(user, "username", None)
        )
        if problem:
            raise exceptions.InvalidPasswordException(reason=problem)

    async def create(
        self, user_create: Any, safe: bool = False, request: Request | None = None
    ) -> UserModel:
        """fastapi-users checks the email only; a taken username (in any case) is
        the same "already exists" answer."""
        await self._ensure_username_free(user_create.username)
        return await super().create(user_create, safe=safe, request=request)

    async def update(
        self, user_update: Any, user: UserModel, safe: bool = False, request: Request | None = None
    ) -> UserModel:
        username = getattr(user_update, "username", None)
        if username is not None and username.lower() != user.username.lower():
            await self._ensure_username_free(username)
        return await super().update(user_update, user, safe=safe, request=request)

    async def get_by_login(self, identifier: str) -> UserModel | None:
        """The user an email or a username names. Usernames cannot contain ``@``
        and emails must, so the identifier says which it is."""
        if "@" in identifier:
            return await self.user_db.get_by_email(identifier)
        return await self.user_db.get_by_username(identifier)

    async def verify_login(self, user: UserModel | None, password: str) -> UserModel | None:
        """``user`` if ``password`` is theirs, else None; fastapi-users' check.

        As in ``BaseUserManager.authenticate``: hash anyway when there is no
        user, so the answer takes as long for unknown accounts as for known
        ones, and upgrade a hash made with outdated parameters.
        """
        if user is None:
            self.password_helper.hash(password)
            return None
        verified, upgraded_hash = self.password_helper.verify_and_update(
            password, user.hashed_password
        )
        if not verified:
            return None
        if upgraded_hash is not None:
            await self.user_db.update(user, {"hashed_password": upgraded_hash})
        return user

    async def authenticate(self, credentials: OAuth2PasswordRequestForm) -> UserModel | None:
        """Log in by email or username (fastapi-users' version takes emails only)."""
        user = await self.get_by_login(credentials.username)
        return await self.verify_login(user, credentials.password)

    async def on_after_register(self, user: UserModel, request: Request | None = None) -> None:
        log.info("user registered id=%s", user.id)

    async def _ensure_username_free(self, username: str) -> None:
        if await self.user_db.get_by_username(username) is not None:
            raise exceptions.UserAlreadyExists()


async def get_user_db() -> PiccoloUserDatabase[UserModel]:
    return PiccoloUserDatabase(User)


async def get_user_manager(
    user_db: PiccoloUserDatabase[UserModel] = Depends(get_user_db),
) -> UserManager:
    return UserManager(user_db)
