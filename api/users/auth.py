"""fastapi-users wiring: two credentials, one way of authenticating, one request budget.

Both backends feed the same ``Authenticator``, so fastapi-users' own routers (register,
``/users``) accept ``Authorization: Bearer <access token>`` and ``X-API-Key: <key>``
alike, and OpenAPI lists both schemes (the Swagger UI's Authorize button offers both).
Its generated dependency charges the per-user request budget right after a credential
resolves to a user (``BudgetedAuthenticator``): those routers' dependencies are not ours
to write.

mediaflow's own routes authenticate through :func:`authenticated_user`, which does what
that dependency does — the same transports' schemes (so OpenAPI is unchanged), the same
strategies, 401 and 403, the same budget charged once — in one dependency instead of a
tree of nine: FastAPI resolves each node of a tree on every request, and the tree cost
more than everything else an authenticated read does (profiled under ``wrk``:
``solve_dependencies`` was a fifth of ``GET /auth/me``'s time). Every authenticated
request passes exactly one of the two.
"""

from __future__ import annotations

import uuid
from functools import lru_cache
from inspect import Parameter, Signature
from typing import Annotated, Any, cast

from fastapi import HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from fastapi_users import FastAPIUsers
from fastapi_users.authentication import AuthenticationBackend, Authenticator, BearerTransport

from api.ratelimit import rate_limiter
from api.users.api_keys import ApiKeyStrategy, ApiKeyTransport
from api.users.db import PiccoloUserDatabase
from api.users.manager import UserManager, get_user_manager
from api.users.models import UserModel
from api.users.tokens import AccessTokenStrategy, RefreshTokenStore
from core.config import Settings
from core.logs import bind
from core.tables import User

LOGIN_URL = "/api/v1/auth/login"
"""Where the Swagger UI posts the OAuth2 form; ``api.routing.API_PREFIX`` + the auth
router's ``/auth/login`` (a test pins the two together)."""


def _settings(request: Request) -> Settings:
    # api.deps.SettingsDep would do, but api.deps imports this module.
    return request.app.state.settings


# Dependencies are ``async def``: FastAPI runs a plain ``def`` one in a worker thread,
# a hop that cost more than the work on every authenticated request.
async def get_access_strategy(request: Request) -> AccessTokenStrategy:
    settings = _settings(request)
    return _access_strategy(settings.jwt_secret_value(), settings.access_token_seconds)


@lru_cache(maxsize=8)
def _access_strategy(secret: str, lifetime_seconds: int) -> AccessTokenStrategy:
    """One strategy per secret and lifetime (it holds no request state)."""
    return AccessTokenStrategy(secret, lifetime_seconds)


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

BEARER_SCHEME = cast(OAuth2PasswordBearer, jwt_backend.transport.scheme)
API_KEY_SCHEME = cast(APIKeyHeader, ApiKeyTransport.scheme)
_USERS = UserManager(PiccoloUserDatabase(User))
"""The user manager lookups go through; like the strategies it holds no request state."""


async def authenticated_user(
    request: Request,
    token: Annotated[str | None, Security(BEARER_SCHEME)],
    key: Annotated[str | None, Security(API_KEY_SCHEME)],
) -> UserModel:
    """The active user behind ``Authorization: Bearer <access token>`` or ``X-API-Key``,
    charged one request of the budget; 401 otherwise. Later log lines of the request
    name the user."""
    return await _charged(request, await _active_user(request, token, key))


async def authenticated_superuser(
    request: Request,
    token: Annotated[str | None, Security(BEARER_SCHEME)],
    key: Annotated[str | None, Security(API_KEY_SCHEME)],
) -> UserModel:
    """As :func:`authenticated_user`, and 403 unless the user is a superuser (refused
    before being charged, as the authenticator does)."""
    user = await _active_user(request, token, key)
    if not user.is_superuser:
        raise HTTPException(status.HTTP_403_FORBIDDEN)
    return await _charged(request, user)


async def _active_user(request: Request, token: str | None, key: str | None) -> UserModel:
    """The bearer token is tried first, as the authenticator's backends are ordered."""
    user = None
    if token is not None:
        user = await (await get_access_strategy(request)).read_token(token, _USERS)
    if user is None and key is not None:
        user = await ApiKeyStrategy().read_token(key, _USERS)
    if user is None or not user.is_active:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED)
    return user


async def _charged(request: Request, user: UserModel) -> UserModel:
    await rate_limiter(request).spend_request(user.id)
    bind(user_id=str(user.id))
    return user
