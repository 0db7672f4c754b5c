"""Rate limits: login and register brute force, and a per-user request budget.

Built on the maintained ``limits`` library with the moving-window strategy (no
burst of 2x the limit across a window edge, as a fixed window would allow). The
counters live in ``MEDIAFLOW_RATE_LIMIT_STORAGE``: ``memory://`` (the default)
is per process, so with ``--workers N`` each process counts on its own.

Limits are strings in ``limits``' notation (``core.config.Settings``):

* ``MEDIAFLOW_RATE_LIMIT_LOGIN`` (default ``10/minute``): failed logins per
  client IP and, separately, per account; registrations per client IP.
* ``MEDIAFLOW_RATE_LIMIT_REQUESTS`` (default ``600/minute``): authenticated
  requests per user, whatever the credential (token or API key).

One limiter per app, on ``app.state.rate_limiter``. Answers over a limit are 429
with ``Retry-After`` in seconds.
"""

from __future__ import annotations

import math
import time

from fastapi import HTTPException, Request, status
from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from core.config import Settings


class RateLimited(HTTPException):
    def __init__(self, retry_after: int) -> None:
        super().__init__(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail="Too many requests, retry later",
            headers={"Retry-After": str(retry_after)},
        )


class RateLimiter:
    """The process's counters. Keys are namespaced so scopes never collide."""

    def __init__(self, settings: Settings) -> None:
        self.login = parse(settings.rate_limit_login)
        self.requests = parse(settings.rate_limit_requests)
        storage = storage_from_string(f"async+{settings.rate_limit_storage}")
        assert isinstance(storage, Storage)
        self._window = MovingWindowRateLimiter(storage)

    async def check_login(self, ip: str, account: str) -> None:
        """Refuse a login attempt while the IP or the account is over its failures.

        Both keys matter: per IP stops one host trying many accounts, per
        account stops many hosts trying one. The cost is that someone can hold
        an account's *password* login back for one window; refresh tokens and
        API keys keep working meanwhile.
        """
        for key in self._login_keys(ip, account):
            await self._refuse_if_spent(self.login, *key)

    async def record_login_failure(self, ip: str, account: str) -> None:
        for key in self._login_keys(ip, account):
            await self._window.hit(self.login, *key)

    async def spend_register(self, ip: str) -> None:
        """Count every registration attempt per IP. The email in the body is the
        client's choice, so a per-account key would stop nothing."""
        await self._spend(self.login, "register", ip)

    async def spend_request(self, user_id: object) -> None:
        await self._spend(self.requests, "user", str(user_id))

    async def _spend(self, item: RateLimitItem, *key: str) -> None:
        if not await self._window.hit(item, *key):
            raise RateLimited(await self._retry_after(item, *key))

    async def _refuse_if_spent(self, item: RateLimitItem, *key: str) -> None:
        if not await self._window.test(item, *key):
            raise RateLimited(await self._retry_after(item, *key))

    async def _retry_after(self, item: RateLimitItem, *key: str) -> int:
        stats = await self._window.get_window_stats(item, *key)
        return max(1, math.ceil(stats.reset_time - time.time()))

    @staticmethod
    def _login_keys(ip: str, account: str) -> tuple[tuple[str, str], ...]:
        return (("login-ip", ip), ("login-account", account))


def rate_limiter(request: Request) -> RateLimiter:
    """The app's limiter (``app.state.rate_limiter``, built by ``api.main.create_app``)."""
    limiter: RateLimiter = request.app.state.rate_limiter
    return limiter


def client_ip(request: Request) -> str:
    """The peer address; behind a proxy, uvicorn's ``proxy_headers`` sets it from
    ``X-Forwarded-For`` only for trusted proxies (``--forwarded-allow-ips``)."""
    return request.client.host if request.client else "unknown"


async def limit_register(request: Request) -> None:
    """Route dependency for ``POST /auth/register``."""
    await rate_limiter(request).spend_register(client_ip(request))
