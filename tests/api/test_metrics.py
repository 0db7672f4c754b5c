"""The API's Prometheus metrics (docs/OPERATIONS.md, "Metrics"): the names of the contract,
values that count what happened, and one sum over ``mediaflow api --workers N``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from cli.devstack import free_ports
from core.config import Settings
from tests.conftest import REPO
from tests.utils.apps import same_volume
from tests.utils.jobs import upload
from tests.utils.media import make_video


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of a scrape: (name, labels) → value."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, frozenset(labels.items())), 0.0)


async def test_requests_are_counted_by_route_template_and_status(
    client: httpx.AsyncClient, headers: dict[str, str],
) -> None:
    before = (await client.get("/metrics")).text
    for _ in range(3):
        assert (await client.get("/api/v1/jobs/not-a-job", headers=headers)).status_code == 404
    after = (await client.get("/metrics")).text
    labels = {"method": "GET", "route": "/api/v1/jobs/{job_id}"}
    counted = value(after, "mediaflow_http_requests_total", **labels, status="404") - value(
        before, "mediaflow_http_requests_total", **labels, status="404")
    assert counted == 3
    timed = value(after, "mediaflow_http_request_duration_seconds_count", **labels) - value(
        before, "mediaflow_http_request_duration_seconds_count", **labels)
    assert timed == 3
    assert "not-a-job" not in after  # raw ids never become labels
    # the scrape itself is being served while the gauge is read
    assert value(after, "mediaflow_http_requests_in_flight") >= 1


async def test_paths_inside_a_route_never_become_labels(
    client: httpx.AsyncClient, headers: dict[str, str],
) -> None:
    """Anyone may request /s/<anything>/<any/path>: however many different paths, the
    label is the route's template, so the series stay few."""
    for n in range(5):
        assert (await client.get(f"/s/tok{n}/dir{n}/x{n}.ts")).status_code == 403
        await client.get(f"/api/v1/files/{n}/members/a{n}/b{n}", headers=headers)
    routes = {labels["route"] for family in text_string_to_metric_families(
        (await client.get("/metrics")).text) for s in family.samples
        if s.name == "mediaflow_http_requests_total" for labels in [s.labels]}
    assert "/s/{token}/{path}" in routes
    assert "/api/v1/files/{file_id}/members/{path}" in routes
    assert not any("tok0" in r or "dir0" in r or "a0" in r for r in routes), routes


async def test_submitted_jobs_are_counted_by_type(
    client: httpx.AsyncClient, headers: dict[str, str], tmp_path: Path,
) -> None:
    video = await upload(client, headers, make_video(tmp_path / "v.mp4", seconds=1))
    before = value((await client.get("/metrics")).text, "mediaflow_jobs_submitted_total",
                   type="text_overlay")
    refused = await client.post("/api/v1/jobs", headers=headers, json={
        "type": "text_overlay", "params": {"video": video}})
    assert refused.status_code == 422  # refused jobs are not submitted ones
    for _ in range(2):
        accepted = await client.post("/api/v1/jobs", headers=headers, json={
            "type": "text_overlay", "params": {"video": video, "text": "counted"}})
        assert accepted.status_code == 202, accepted.text
        await client.post(f"/api/v1/jobs/{accepted.json()['id']}/cancel", headers=headers)
    after = value((await client.get("/metrics")).text, "mediaflow_jobs_submitted_total",
                  type="text_overlay")
    assert after - before == 2


def test_several_api_processes_report_one_sum(settings: Settings, tmp_path: Path) -> None:
    """``--workers 2``: whichever process answers the scrape reports every process's
    requests (prometheus_client's multiprocess mode)."""
    port = free_ports(1)[0]
    same_volume(settings, tmp_path)
    env = {**os.environ, "MEDIAFLOW_ENV": "test", "MEDIAFLOW_DATA_DIR": str(tmp_path),
           "MEDIAFLOW_DATABASE_URL": str(settings.database_url),
           "MEDIAFLOW_TEMPORAL_ADDRESS": settings.temporal_address,
           "MEDIAFLOW_JWT_SECRET": settings.jwt_secret_value(), "MEDIAFLOW_LOG_LEVEL": "WARNING"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "api", "--port", str(port), "--workers", "2"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert time.monotonic() < deadline, "the API did not start"
            try:
                if httpx.get(f"{base}/docs", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        for _ in range(40):  # new connections: the kernel spreads them over both processes
            with httpx.Client() as fresh:
                assert fresh.get(f"{base}/api/v1/jobs").status_code == 401
        scrape = httpx.get(f"{base}/metrics").text
        labels = {"method": "GET", "route": "/api/v1/jobs", "status": "401"}
        assert value(scrape, "mediaflow_http_requests_total", **labels) == 40
        # both processes counted some of them (each writes its own counter file)
        assert len(list((tmp_path / "prometheus-multiproc").glob("counter_*.db"))) == 2
    finally:
        process.terminate()
        process.wait(timeout=15)
