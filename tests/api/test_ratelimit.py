"""The per-user request budget and the limits' configuration."""

from __future__ import annotations

import uuid

import httpx
import pytest
from limits import parse
from pydantic import ValidationError

from api.ratelimit import LocalMovingWindow, RateLimited, RateLimiter
from core.config import Settings
from tests.utils.apps import reset_rate_limits
from tests.utils.users import create_user, login_headers


async def test_request_budget_is_per_user_and_credential_agnostic(
    client: httpx.AsyncClient, api_prefix: str, app: object
) -> None:
    user, password = await create_user()
    bearer = await login_headers(client, user.email, password)
    key = (await client.post(f"{api_prefix}/api-keys", headers=bearer, json={"name": "k"})).json()
    other, other_password = await create_user()
    other_bearer = await login_headers(client, other.email, other_password)
    reset_rate_limits(app, rate_limit_requests="3/minute")

    statuses = [
        (await client.get(f"{api_prefix}{path}", headers=headers)).status_code
        for path, headers in [
            ("/auth/me", bearer),
            ("/users/me", {"X-API-Key": key["key"]}),  # fastapi-users' own route, too
            ("/api-keys", bearer),
        ]
    ]
    spent = await client.get(f"{api_prefix}/users/me", headers={"X-API-Key": key["key"]})
    unaffected = await client.get(f"{api_prefix}/auth/me", headers=other_bearer)

    assert statuses == [200, 200, 200]
    assert spent.status_code == 429
    assert 1 <= int(spent.headers["Retry-After"]) <= 60
    assert unaffected.status_code == 200


async def test_unauthenticated_requests_do_not_spend_a_budget(
    client: httpx.AsyncClient, api_prefix: str, app: object
) -> None:
    reset_rate_limits(app, rate_limit_requests="1/minute")

    for _ in range(3):
        assert (await client.get(f"{api_prefix}/auth/me")).status_code == 401


def test_defaults_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (defaults.rate_limit_login, defaults.rate_limit_requests,
            defaults.rate_limit_storage) == ("10/minute", "600/minute", "memory://")

    monkeypatch.setenv("MEDIAFLOW_RATE_LIMIT_LOGIN", "5 per 30 seconds")
    assert Settings(_env_file=None).rate_limit_login == "5 per 30 seconds"  # type: ignore[call-arg]

    monkeypatch.setenv("MEDIAFLOW_RATE_LIMIT_REQUESTS", "lots")
    with pytest.raises(ValidationError):
        Settings(_env_file=None)  # type: ignore[call-arg]
    monkeypatch.delenv("MEDIAFLOW_RATE_LIMIT_REQUESTS")

    monkeypatch.setenv("MEDIAFLOW_RATE_LIMIT_STORAGE", "memcached://127.0.0.1:11211")
    with pytest.raises(ValidationError):
        Settings(_env_file=None)  # type: ignore[call-arg]


async def test_a_redis_store_makes_one_count_for_every_process(redis_url: str) -> None:
    """Two limiters (two API processes) on one Redis: the limit holds across both; each
    on its own ``memory://`` store, each would allow the whole limit."""
    shared = Settings(_env_file=None, rate_limit_login="3/minute",  # type: ignore[call-arg]
                      rate_limit_storage=redis_url)
    first, second = RateLimiter(shared), RateLimiter(shared)
    account = f"someone-{uuid.uuid4().hex}"
    for limiter in (first, second, first):
        await limiter.check_login("127.0.0.9", account)
        await limiter.record_login_failure("127.0.0.9", account)
    for limiter in (first, second):
        with pytest.raises(RateLimited):
            await limiter.check_login("127.0.0.9", account)

    alone = shared.model_copy(update={"rate_limit_storage": "memory://"})
    apart = [RateLimiter(alone), RateLimiter(alone)]
    for limiter in (*apart, *apart, apart[0]):
        await limiter.check_login("127.0.0.9", account)
        await limiter.record_login_failure("127.0.0.9", account)  # 3 + 2: no refusal yet
    await apart[1].check_login("127.0.0.9", account)


async def test_the_in_process_window_moves_with_time() -> None:
    """A moving window, not a fixed one: a place frees when the oldest hit leaves it."""
    now = [1000.0]
    window = LocalMovingWindow(clock=lambda: now[0])
    three = parse("3 per 2 seconds")
    for moment in (0.0, 1.5, 1.9):
        now[0] = 1000.0 + moment
        assert await window.hit(three, "user", "a")
    assert not await window.hit(three, "user", "a")
    assert not await window.test(three, "user", "a")
    assert await window.seconds_to_reset(three, "user", "a") == pytest.approx(0.1)
    now[0] = 1002.05  # the first hit has left; the two others have not
    assert await window.test(three, "user", "a")
    assert await window.hit(three, "user", "a")
    assert not await window.hit(three, "user", "a")
    assert await window.seconds_to_reset(three, "user", "a") == pytest.approx(1.45)
    # other keys and other limits count apart
    assert await window.hit(three, "user", "b")
    assert await window.hit(parse("1/second"), "user", "a")
    assert await window.seconds_to_reset(parse("5/minute"), "user", "c") == 0.0


async def test_the_in_process_window_forgets_idle_keys() -> None:
    now = [0.0]
    window = LocalMovingWindow(clock=lambda: now[0])
    window.SWEEP_EVERY = 10
    minute = parse("100/minute")
    for n in range(9):
        assert await window.hit(minute, "user", str(n))
    assert len(window) == 9
    now[0] = 61.0  # a minute on: every one of those windows is empty
    assert await window.hit(minute, "user", "late")  # the tenth hit sweeps
    assert len(window) == 1
    assert await window.hit(minute, "user", "late")


async def test_a_generous_limit_is_still_counted_exactly() -> None:
    """However many hits a window holds, the limit is the limit (a hit costs the same)."""
    window = LocalMovingWindow(clock=lambda: 5.0)
    many = parse("20000/minute")
    for _ in range(20000):
        assert await window.hit(many, "user", "a")
    assert not await window.hit(many, "user", "a")
    assert await window.seconds_to_reset(many, "user", "a") == pytest.approx(60.0)
