"""Rate limits: login and register brute force, and a per-user request budget.

A moving window (no burst of 2x the limit across a window edge, as a fixed window
would allow). The counters live in ``MEDIAFLOW_RATE_LIMIT_STORAGE``: ``memory://``
(the default) is per process, so with ``--workers N`` each process counts on its own;
any other storage (``redis://``) goes through the maintained ``limits`` library.

In memory the window is :class:`LocalMovingWindow`: ``limits``' own memory storage
inserts each hit at the front of a list, so a hit cost time in proportion to the hits
already in the window (a generous budget of 10,000,000/minute under ``wrk`` spent 7 %
of the API's time there), and it expired entries in a worker thread.

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
from collections import deque
from collections.abc import Callable

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


class LocalMovingWindow:
    """The moving-window strategy of ``limits``, in this process: per limit and key, the
    times of the hits still inside the window (at most the limit's amount of them,
    oldest first). A hit drops what has left the window and appends: constant time,
    whatever the limit. Keys nobody hit for a whole window are swept now and then."""

    SWEEP_EVERY = 10_000
    """Hits between sweeps of idle keys: memory stays bounded by recent callers."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[tuple[str, ...], tuple[float, deque[float]]] = {}
        self._since_sweep = 0

    def __len__(self) -> int:
        """Windows kept (one per limit and key hit within its window, until a sweep)."""
        return len(self._windows)

    async def hit(self, item: RateLimitItem, *key: str) -> bool:
        now = self._clock()
        hits = self._window(item, key, now)
        if len(hits) >= item.amount:
            return False
        hits.append(now)
        self._since_sweep += 1
        if self._since_sweep >= self.SWEEP_EVERY:
            self._sweep(now)
        return True

    async def test(self, item: RateLimitItem, *key: str) -> bool:
        return len(self._window(item, key, self._clock())) < item.amount

    async def seconds_to_reset(self, item: RateLimitItem, *key: str) -> float:
        """Until the oldest hit in the window leaves it (and frees a place)."""
        now = self._clock()
        hits = self._window(item, key, now)
        return hits[0] + item.get_expiry() - now if hits else 0.0

    def _window(self, item: RateLimitItem, key: tuple[str, ...], now: float) -> deque[float]:
        full_key = (item.key_for(), *key)  # two limits never share a window
        known = self._windows.get(full_key)
        if known is None:
            known = self._windows[full_key] = (item.get_expiry(), deque())
        expiry, hits = known
        while hits and hits[0] <= now - expiry:
            hits.popleft()
        return hits

    def _sweep(self, now: float) -> None:
        self._since_sweep = 0
        self._windows = {key: (expiry, hits) for key, (expiry, hits) in self._windows.items()
                         if hits and hits[-1] > now - expiry}


class SharedMovingWindow:
    """The same strategy on a shared storage (``redis://``), through ``limits``."""

    def __init__(self, storage_url: str) -> None:
        storage = storage_from_string(f"async+{storage_url}")
        assert isinstance(storage, Storage)
        self._limiter = MovingWindowRateLimiter(storage)

    async def hit(self, item: RateLimitItem, *key: str) -> bool:
        return await self._limiter.hit(item, *key)

    async def test(self, item: RateLimitItem, *key: str) -> bool:
        return await self._limiter.test(item, *key)

    async def seconds_to_reset(self, item: RateLimitItem, *key: str) -> float:
        stats = await self._limiter.get_window_stats(item, *key)
        return stats.reset_time - time.time()


class RateLimiter:
    """The process's counters. Keys are namespaced so scopes never collide."""

    def __init__(self, settings: Settings) -> None:
        self.login = parse(settings.rate_limit_login)
        self.requests = parse(settings.rate_limit_requests)
        self._window: LocalMovingWindow | SharedMovingWindow = (
            LocalMovingWindow() if settings.rate_limit_storage.startswith("memory://")
            else SharedMovingWindow(settings.rate_limit_storage))

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
        return max(1, math.ceil(await self._window.seconds_to_reset(item, *key)))

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
