"""fastapi-users wiring: two credentials, one authenticator, one request budget.

Both backends feed the same ``Authenticator``, so anything built on it —
``current_active_user`` here, and fastapi-users' own ``/users`` router — accepts
``Authorization: Bearer <access token>`` and ``X-API-Key: <key>`` alike, and
OpenAPI lists both schemes (the Swagger UI's Authorize button offers both).

The per-user request budget is charged inside the authenticator, right after a
credential resolves to a user, because that is the one point every
authenticated request passes exactly once — including fastapi-users' routers,
whose dependencies we do not write.
"""

from __future__ import annotations

import uuid
from inspect import Parameter, Signature
from typing import Any

from fastapi import Request
from fastapi_users import FastAPIUsers
from fastapi_users.authentication import AuthenticationBackend, Authenticator, BearerTransport

from api.ratelimit import rate_limiter
from api.users.api_keys import ApiKeyStrategy, ApiKeyTransport
from api.users.manager import get_user_manager
from api.users.models import UserModel
from api.users.tokens import AccessTokenStrategy, RefreshTokenStore
from core.config import Settings

LOGIN_URL = "/api/v1/auth/login"
"""Where the Swagger UI posts the OAuth2 form; ``api.main.API_PREFIX`` + the auth
router's ``/auth/login`` (a test pins the two together)."""


def _settings(request: Request) -> Settings:
    # api.deps.SettingsDep would do, but api.deps imports this module.
    return request.app.state.settings


# Dependencies are ``async def``: FastAPI runs a plain ``def`` one in a worker thread,
# a hop that cost more than the work on every authenticated request.
async def get_access_strategy(request: Request) -> AccessTokenStrategy:
    settings = _settings(request)
    return AccessTokenStrategy(settings.jwt_secret_value(), settings.access_token_seconds)


async def get_refresh_store(request: Request) -> RefreshTokenStore:
    return RefreshTokenStore(_settings(request).refresh_token_seconds)


async def get_api_key_strategy() -> ApiKeyStrategy:
    return ApiKeyStrategy()


jwt_backend: AuthenticationBackend[UserModel, uuid.UUID] = AuthenticationBackend(
    name="jwt",
    transport=BearerTransport(LOGIN_URL),
    get_strategy=get_access_strategy,
)
api_key_backend: AuthenticationBackend[UserModel, uuid.UUID] = AuthenticationBackend(
    name="api_key",
    transport=ApiKeyTransport(),
    get_strategy=get_api_key_strategy,
)


class BudgetedAuthenticator(Authenticator[UserModel, uuid.UUID]):
    """Charges the user's request budget once a credential is accepted (429 when spent).

    The generated dependency also asks for the ``Request``, whose app holds the limiter."""

    def _get_dependency_signature(self, *args: Any, **kwargs: Any) -> Signature:
        signature = super()._get_dependency_signature(*args, **kwargs)
        request = Parameter("request", Parameter.KEYWORD_ONLY, annotation=Request)
        return signature.replace(parameters=[*signature.parameters.values(), request])

    async def _authenticate(self, *args: Any, **kwargs: Any) -> tuple[UserModel | None, str | None]:
        request: Request = kwargs.pop("request")
        user, token = await super()._authenticate(*args, **kwargs)
        if user is not None:
            await rate_limiter(request).spend_request(user.id)
        return user, token


class MediaflowUsers(FastAPIUsers[UserModel, uuid.UUID]):
    def __init__(self) -> None:
        super().__init__(get_user_manager, [jwt_backend, api_key_backend])
        self.authenticator = BudgetedAuthenticator(self.authenticator.backends, get_user_manager)
        self.current_user = self.authenticator.current_user


fastapi_users = MediaflowUsers()

current_active_user = fastapi_users.current_user(active=True)
current_superuser = fastapi_users.current_user(active=True, superuser=True)
