"""``/auth``: register, login, refresh, logout, me (docs/API.md, "Authentication").

Register is fastapi-users' own router. Login is ours because it must accept two
bodies (the OAuth2 form, for the Swagger UI's Authorize button and OAuth2
clients, and JSON ``{email_or_username, password}``) and answer with a refresh
token as well, which fastapi-users has no notion of.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, HTTPException, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi_users.router.common import ErrorCode, ErrorModel
from pydantic import BaseModel, ValidationError

from api.deps import CurrentUser
from api.lean import lean_get
from api.ratelimit import client_ip, limit_register, rate_limiter
from api.routing import ApiRouter
from api.users.auth import fastapi_users, get_access_strategy, get_refresh_store
from api.users.manager import UserManager, get_user_manager
from api.users.models import UserModel
from api.users.schemas import (
    LoginForm,
    LoginJSON,
    RefreshRequest,
    TokenPair,
    UserCreate,
    UserRead,
)
from api.users.tokens import AccessTokenStrategy, InvalidRefreshToken, RefreshTokenStore

router = ApiRouter(prefix="/auth", tags=["auth"])
router.include_router(
    fastapi_users.get_register_router(UserRead, UserCreate),  # type: ignore[type-var]
    dependencies=[Depends(limit_register)],
    responses={status.HTTP_429_TOO_MANY_REQUESTS: {"description": "Too many registrations "
                                                                  "from this address"}},
)

FORM_CONTENT_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
LOGIN_REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {"schema": LoginForm.model_json_schema()},
            "application/json": {"schema": LoginJSON.model_json_schema()},
        },
    }
}
RATE_LIMITED: dict[int | str, dict[str, Any]] = {
    status.HTTP_429_TOO_MANY_REQUESTS: {"description": "Too many attempts; see Retry-After"}
}
UNSUPPORTED_BODY = {
    "type": "content_type",
    "loc": ("body",),
    "msg": "Send application/json or an application/x-www-form-urlencoded OAuth2 form",
    "input": None,
}


def _bad_refresh() -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail="Invalid refresh token")


async def _read_credentials(request: Request) -> tuple[str, str]:
    """Parse and validate either login body into ``(email_or_username, password)``.

    Errors are raised as FastAPI's own ``RequestValidationError`` so they come
    back as the usual 422 with field paths, as for any declared body.
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    model: type[BaseModel]
    try:
        if content_type in FORM_CONTENT_TYPES:
            model = LoginForm
            form = await request.form(max_files=0, max_fields=16)
            payload: Any = dict(form)
        elif content_type == "application/json" or content_type.endswith("+json"):
            model = LoginJSON
            payload = await request.json()
        else:
            # Like FastAPI's strict content type: a body is never guessed to be JSON.
            raise RequestValidationError([UNSUPPORTED_BODY])
        credentials = model.model_validate(payload)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_url=False)]
        ) from exc
    except ValueError as exc:  # json.JSONDecodeError, UnicodeDecodeError
        raise RequestValidationError(
            [{"type": "json_invalid", "loc": ("body",), "msg": "Invalid JSON body", "input": None}]
        ) from exc
    if isinstance(credentials, LoginForm):
        return credentials.username, credentials.password
    assert isinstance(credentials, LoginJSON)
    return credentials.email_or_username, credentials.password


async def _token_pair(
    user: UserModel, strategy: AccessTokenStrategy, refresh_token: str
) -> TokenPair:
    return TokenPair(
        access_token=await strategy.write_token(user),
        refresh_token=refresh_token,
        expires_in=strategy.lifetime_seconds or 0,
    )


@router.post(
    "/login",
    response_model=TokenPair,
    openapi_extra=LOGIN_REQUEST_BODY,
    responses={
        status.HTTP_400_BAD_REQUEST: {"model": ErrorModel, "description": "LOGIN_BAD_CREDENTIALS"},
        **RATE_LIMITED,
    },
)
async def login(
    request: Request,
    user_manager: UserManager = Depends(get_user_manager),
    strategy: AccessTokenStrategy = Depends(get_access_strategy),
    refresh_tokens: RefreshTokenStore = Depends(get_refresh_store),
) -> TokenPair:
    """Exchange an email or username and a password for an access and a refresh token.

    Failures are counted per client IP and per account; past the limit every
    attempt is 429 until the window moves on, right password or not.
    """
    identifier, password = await _read_credentials(request)
    account = await user_manager.get_by_login(identifier)
    # One counter per account whichever name is typed; per identifier when unknown.
    account_key = str(account.id) if account else identifier.lower()
    limiter, ip = rate_limiter(request), client_ip(request)
    await limiter.check_login(ip, account_key)
    user = await user_manager.verify_login(account, password)
    if user is None or not user.is_active:
        await limiter.record_login_failure(ip, account_key)
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=ErrorCode.LOGIN_BAD_CREDENTIALS)
    return await _token_pair(user, strategy, await refresh_tokens.issue(user.id))


@router.post(
    "/refresh",
    response_model=TokenPair,
    responses={status.HTTP_401_UNAUTHORIZED: {"description": "Unknown, expired, used or revoked"}},
)
async def refresh(
    body: RefreshRequest,
    user_manager: UserManager = Depends(get_user_manager),
    strategy: AccessTokenStrategy = Depends(get_access_strategy),
    refresh_tokens: RefreshTokenStore = Depends(get_refresh_store),
) -> TokenPair:
    """Trade a refresh token for a new pair. The old one is spent: presenting it
    again revokes every token of its login and answers 401."""
    try:
        user_id, successor = await refresh_tokens.rotate(body.refresh_token)
    except InvalidRefreshToken as exc:
        raise _bad_refresh() from exc
    user = await user_manager.user_db.get(user_id)
    if user is None or not user.is_active:
        await refresh_tokens.revoke_user(user_id)
        raise _bad_refresh()
    return await _token_pair(user, strategy, successor)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def logout(
    user: CurrentUser, refresh_tokens: RefreshTokenStore = Depends(get_refresh_store)
) -> None:
    """Revoke all of the caller's refresh tokens. Access tokens are stateless and
    lapse on their own within ``expires_in``; API keys are revoked one by one."""
    await refresh_tokens.revoke_user(user.id)


@lean_get(router, "/me", response_model=UserRead)
async def me(user: CurrentUser) -> UserRead:
    return UserRead.model_validate(user)
