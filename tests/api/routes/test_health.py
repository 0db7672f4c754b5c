"""GET /health reports each dependency; 503 names the failing one. GET /metrics."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from api.routes import health
from api.users.api_keys import generate_api_key
from cli.devstack import free_ports
from core.config import Settings
from tests.utils.apps import other_app


async def health_of(settings: Settings) -> httpx.Response:
    async with other_app(settings) as (client, _):
        return await client.get("/api/v1/health")


async def test_health_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/health")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "checks": {
        "database": "ok", "temporal": "ok", "storage": "ok", "ffmpeg": "ok"}}


async def test_database_down_is_503(settings: Settings) -> None:
    down = settings.model_copy(update={
        "database_url": f"postgresql://postgres@127.0.0.1:{free_ports(1)[0]}/nothing"})
    response = await health_of(down)
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"].startswith("error") and checks["temporal"] == "ok"


async def test_routes_answer_503_while_the_database_is_down(settings: Settings) -> None:
    """A dependency that is down is the service's fault, said as such: 503 with
    Retry-After on every route that needs the database, never a 500."""
    down = settings.model_copy(update={
        "database_url": f"postgresql://postgres@127.0.0.1:{free_ports(1)[0]}/nothing"})
    async with other_app(down) as (client, _):
        login = await client.post("/api/v1/auth/login", json={
            "email_or_username": "someone", "password": "Secret123"})
        jobs = await client.get("/api/v1/jobs", headers={"X-API-Key": generate_api_key()[0]})
    for response in (login, jobs):
        assert response.status_code == 503, response.text
        assert response.json() == {"detail": "the database is unavailable"}
        assert response.headers["Retry-After"] == "5"


async def test_temporal_down_is_503(settings: Settings) -> None:
    down = settings.model_copy(update={"temporal_address": f"127.0.0.1:{free_ports(1)[0]}"})
    response = await health_of(down)
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["temporal"].startswith("error") and checks["database"] == "ok"


async def test_metrics_exposes_prometheus_text(client: httpx.AsyncClient) -> None:
    await client.get("/api/v1/health")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'mediaflow_http_requests_total{method="GET",route="/api/v1/health"' in response.text
    assert "process_cpu_seconds_total" in response.text


class SlowState:
    """What the deep checks read from ``app.state``, with a database whose answer the test
    releases (``ping`` runs ``engine.run_ddl``) and that can be made to fail."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.release.set()
        self.failing = False
        self.engine = self
        self.temporal = self.storage = self

    async def run_ddl(self, sql: str) -> None:
        await self.release.wait()
        if self.failing:
            raise ConnectionError("the database went away")

    async def check(self) -> None:
        return None


async def test_probes_during_a_refresh_get_the_last_result_at_once() -> None:
    now = [100.0]
    checks, state = health.HealthChecks(clock=lambda: now[0]), SlowState()
    assert (await checks.current(state))["status"] == "ok"  # the first probe waits for it

    state.failing = True
    state.release.clear()  # the next run hangs in the database check
    now[0] += health.CHECK_EVERY + 0.1
    for _ in range(3):  # the refresh is under way: the last result, without waiting
        assert (await asyncio.wait_for(checks.current(state), 0.5))["status"] == "ok"
    state.release.set()  # the refresh ends (ffmpeg -version takes its time), then is served

    async def refreshed() -> dict:
        while (result := await checks.current(state))["status"] == "ok":
            await asyncio.sleep(0.02)
        return result

    result = await asyncio.wait_for(refreshed(), 10)
    assert result["checks"]["database"].startswith("error")


async def test_a_result_older_than_a_refresh_can_take_is_not_served() -> None:
    now = [100.0]
    checks, state = health.HealthChecks(clock=lambda: now[0]), SlowState()
    assert (await checks.current(state))["status"] == "ok"
    state.failing = True
    now[0] += health.CHECK_EVERY + health.CHECK_TIMEOUT + 0.1  # nobody probed for a while
    result = await checks.current(state)  # waits for the fresh one
    assert result["status"] == "error"


async def test_ffmpeg_is_checked_every_half_minute_while_it_works(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``ffmpeg -version`` (60 ms of CPU) runs once per FFMPEG_CHECK_EVERY while it works,
    and on every refresh while it does not. Counted through a stand-in: the real one is
    run by the tests above."""
    runs: list[float] = []
    broken = [False]

    async def version() -> str:
        runs.append(now[0])
        if broken[0]:
            raise FileNotFoundError("ffmpeg")
        return "ffmpeg version 5.1"

    monkeypatch.setattr(health, "ffmpeg_version", version)
    now = [0.0]
    checks, state = health.HealthChecks(clock=lambda: now[0]), SlowState()
    for second in range(int(health.FFMPEG_CHECK_EVERY) + 2):
        now[0] = float(second)
        assert (await checks._check(state))["checks"]["ffmpeg"] == "ok"
    assert runs == [0.0, health.FFMPEG_CHECK_EVERY]
    broken[0] = True
    now[0] += health.FFMPEG_CHECK_EVERY
    for _ in range(2):
        now[0] += 1
        assert (await checks._check(state))["checks"]["ffmpeg"].startswith("error")
    assert len(runs) == 4  # a failing ffmpeg is looked at again on every refresh
