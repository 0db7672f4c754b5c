"""A real Prometheus (Debian's package) scrapes a real stack while jobs run: a ``mediaflow
dev`` (API, CPU worker with --worker-metrics-port, Temporal), a GPU-pool worker beside it,
and node-exporter. Then every dashboard panel and every alert rule is evaluated through
Prometheus's HTTP API and must return series, and the metrics must count what happened.

Short on purpose: four jobs on a 1 s 320×240 clip, a 1 s scrape interval.
Set ``MEDIAFLOW_MONITORING_REPORT=<file>`` to keep one query result per metric family.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from cli.devstack import free_ports, gpu_available
from cli.server import default_slots
from tests.cli.test_dev import start_dev, wait_healthy
from tests.conftest import REPO
from tests.monitoring.promql import (
    Prometheus,
    alert_rules,
    operands,
    panel_queries,
    run_prometheus,
    tool,
)
from tests.utils.media import make_video

pytestmark = pytest.mark.slow

CPU_SLOTS = default_slots()  # `mediaflow worker`'s default --concurrency
PASSWORD = "Mon1toringPass"
# The container panels read cAdvisor, which runs in docker compose only: no containers run
# where the tests do (tests/deploy checks that compose runs cAdvisor and Prometheus scrapes it).
CADVISOR_ONLY = "container_"


@dataclass
class Observed:
    prometheus: Prometheus
    api: str
    jobs: dict[str, dict]
    not_found: int
    logs: Path
    user_id: str
    gpu_slots: int


def _wait_http(url: str, proc: subprocess.Popen, contains: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"{url}: the process exited"
        try:
            if contains in httpx.get(url, timeout=2).text:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} never showed {contains!r}")


def _submit(http: httpx.Client, spec: dict) -> dict:
    """POST /jobs; a GPU job is refused (422) until the GPU worker's poll has reached
    Temporal, so that one is retried briefly."""
    deadline = time.monotonic() + 20
    while True:
        response = http.post("/jobs", json=spec)
        if response.status_code == 202 or time.monotonic() > deadline:
            assert response.status_code == 202, response.text
            return response.json()
        time.sleep(0.5)


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Observed]:
    work = tmp_path_factory.mktemp("monitoring")
    data = work / "data"
    api_port, temporal, ui, cpu_metrics, gpu_metrics, node, prom = free_ports(7)
    dev = start_dev(data, api_port, temporal, ui, worker_metrics=cpu_metrics,
                    MEDIAFLOW_LOG_FORMAT="json")
    children: list[subprocess.Popen] = []
    try:
        api = f"http://127.0.0.1:{api_port}"
        wait_healthy(f"{api}/api/v1/health", dev)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIAFLOW_")}
        env.update(MEDIAFLOW_ENV="dev", MEDIAFLOW_DATA_DIR=str(data.resolve()),
                   MEDIAFLOW_TEMPORAL_ADDRESS=f"127.0.0.1:{temporal}")
        if gpu_available():  # `mediaflow dev` runs one itself, its metrics on the next port
            gpu_metrics, gpu_slots = cpu_metrics + 1, CPU_SLOTS
            gpu: subprocess.Popen = dev
        else:  # a GPU-pool worker beside it: NVDEC where CUDA works, else CPU decoding
            gpu_slots = 1
            gpu = subprocess.Popen(
                [sys.executable, "-m", "cli.main", "worker", "--pool", "gpu", "--concurrency",
                 str(gpu_slots), "--metrics-host", "127.0.0.1", "--metrics-port",
                 str(gpu_metrics)],
                cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            children.append(gpu)
        exporter = subprocess.Popen(  # noqa: S603 - Debian's node-exporter
            [tool("prometheus-node-exporter"), f"--web.listen-address=127.0.0.1:{node}",
             "--no-collector.systemd", "--log.level=error"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        children.append(exporter)
        targets = {"api": f"127.0.0.1:{api_port}", "worker-cpu": f"127.0.0.1:{cpu_metrics}",
                   "worker-gpu": f"127.0.0.1:{gpu_metrics}", "node": f"127.0.0.1:{node}",
                   "prometheus": f"127.0.0.1:{prom}"}
        with run_prometheus(work, prom, targets) as prometheus:
            _wait_http(f"http://127.0.0.1:{gpu_metrics}/metrics", gpu,
                       'task_queue="mediaflow-gpu"')
            yield _run_jobs(prometheus, api, work, gpu_slots)
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.wait(timeout=30)
        dev.send_signal(signal.SIGTERM)
        dev.communicate(timeout=60)


def _run_jobs(prometheus: Prometheus, api: str, work: Path, gpu_slots: int) -> Observed:
    http = httpx.Client(base_url=f"{api}/api/v1", timeout=30)
    registered = http.post("/auth/register", json={
        "email": "ops@example.com", "username": "ops_user", "password": PASSWORD})
    assert registered.status_code == 201, registered.text
    token = http.post("/auth/login", json={"email_or_username": "ops_user",
                                           "password": PASSWORD}).json()["access_token"]
    http.headers["Authorization"] = f"Bearer {token}"
    http.headers["X-Request-ID"] = "monitoring-test"
    clip = make_video(work / "clip.mp4", seconds=1)
    ids = []
    for name in ("clip.mp4", "broken.mp4"):
        with clip.open("rb") as body:
            uploaded = http.post("/files", files={"file": (name, body, "video/mp4")})
        assert uploaded.status_code == 201, uploaded.text
        ids.append(uploaded.json()["id"])
    good, broken = ids
    # the stored bytes of one input vanish: ffmpeg refuses it (InvalidMedia, not retried)
    [stored] = (work / "data" / "storage").glob(f"users/*/files/{broken}")
    stored.write_bytes(b"")

    def overlay(video: str, accelerator: str) -> dict:
        return {"type": "text_overlay", "params": {"video": video, "text": "metrics"},
                "output": {"preset": "ultrafast"}, "accelerator": accelerator}

    submitted = {
        "cpu-1": _submit(http, overlay(good, "cpu")),
        "cpu-2": _submit(http, overlay(good, "cpu")),
        "gpu": _submit(http, overlay(good, "gpu")),
        "broken": _submit(http, overlay(broken, "cpu")),
    }
    not_found = 2
    for _ in range(not_found):
        assert http.get("/jobs/00000000-0000-0000-0000-000000000000").status_code == 404
    jobs = {}
    deadline = time.monotonic() + 120
    for name, job in submitted.items():
        while (state := http.get(f"/jobs/{job['id']}").json())["status"] not in (
                "completed", "failed", "cancelled"):
            assert time.monotonic() < deadline, state
            time.sleep(0.3)
        jobs[name] = state
    assert [j["status"] for j in jobs.values()] == ["completed"] * 3 + ["failed"], jobs
    # scraped after the last ending, the backlog sampled, and every series scraped twice
    # (a rate needs two samples: a counter born at 1 a scrape ago has none yet)
    prometheus.wait_for("sum(mediaflow_jobs_finished_total)", 4)
    prometheus.wait_for('count(mediaflow_task_queue_backlog{job="worker-cpu"})', 3)
    prometheus.wait_until_scraped_twice("mediaflow_.+")
    return Observed(prometheus, api, jobs, not_found, work / "data" / "logs",
                    registered.json()["id"], gpu_slots)


def test_every_dashboard_panel_returns_series(observed: Observed) -> None:
    empty = []
    queries = panel_queries()
    assert len(queries) > 30
    for panel, expr in queries:
        if CADVISOR_ONLY in expr:
            continue
        if not observed.prometheus.query(expr):
            empty.append(f"{panel}: {expr}")
    assert not empty, "panels pointing at nothing:\n" + "\n".join(empty)


def test_every_alert_rule_is_loaded_healthy_and_measures_something(observed: Observed) -> None:
    groups = observed.prometheus.http.get("/rules").json()["data"]["groups"]
    loaded = {rule["name"]: rule for group in groups for rule in group["rules"]}
    assert set(loaded) == {rule["alert"] for rule in alert_rules()}
    unhealthy = {name: rule.get("lastError") for name, rule in loaded.items()
                 if rule["health"] != "ok"}
    assert not unhealthy
    empty = []
    for rule in alert_rules():
        for quantity in operands(rule["expr"]):
            if not observed.prometheus.query(quantity):
                empty.append(f"{rule['alert']}: {quantity}")
    assert not empty, "alert expressions pointing at nothing:\n" + "\n".join(empty)


def test_counters_count_what_happened(observed: Observed) -> None:
    p = observed.prometheus
    overlay = 'type="text_overlay"'
    assert p.value(f"sum(mediaflow_jobs_submitted_total{{{overlay}}})") == 4
    assert p.by(f"sum by (status) (mediaflow_jobs_finished_total{{{overlay}}})", "status") == {
        "completed": 3, "failed": 1, "cancelled": 0}
    assert p.value(f"sum(mediaflow_job_duration_seconds_count{{{overlay}}})") == 4
    assert p.value("sum(mediaflow_jobs_finished_total)") == 4  # nothing else ended
    assert observed.jobs["broken"]["error"]["code"] == "InvalidMedia"
    assert p.by("sum by (code, op, pool) (mediaflow_step_failures_total)", "code") == {
        "InvalidMedia": 1}
    assert p.query('mediaflow_step_failures_total{code="InvalidMedia"}')[0]["metric"][
        "op"] == "text_overlay"
    # three successful steps (two on the CPU pool, one on the GPU pool), four attempts queued
    assert p.by("sum by (pool) (mediaflow_step_duration_seconds_count)", "pool") == {
        "cpu": 2, "gpu": 1}
    assert p.by("sum by (pool) (mediaflow_ffmpeg_speed_count)", "pool") == {"cpu": 2, "gpu": 1}
    assert p.by("sum by (pool) (mediaflow_job_queue_wait_seconds_count)", "pool") == {
        "cpu": 3, "gpu": 1}
    assert p.by("sum by (pool) (mediaflow_worker_slots)", "pool") == {
        "cpu": CPU_SLOTS, "gpu": observed.gpu_slots}
    assert p.by("sum by (pool) (mediaflow_worker_slots_used)", "pool") == {"cpu": 0, "gpu": 0}
    assert p.by("sum by (pool) (mediaflow_ffmpeg_running)", "pool") == {"cpu": 0, "gpu": 0}
    assert set(p.by("max by (queue) (mediaflow_task_queue_backlog)", "queue")) == {
        "mediaflow-jobs", "mediaflow-cpu", "mediaflow-gpu"}
    assert p.value('sum(mediaflow_http_requests_total{route="/api/v1/jobs/{job_id}",'
                   'status="404"})') == observed.not_found
    submit = 'route="/api/v1/jobs",method="POST"'
    assert p.value(f'sum(mediaflow_http_requests_total{{{submit},status="202"}})') == 4
    assert p.value(f"sum(mediaflow_http_request_duration_seconds_count{{{submit}}})") == \
        p.value(f"sum(mediaflow_http_requests_total{{{submit}}})")
    assert p.value("sum(mediaflow_http_requests_in_flight)") >= 0
    assert p.value('count(temporal_request{job=~"worker-.*"})') > 0  # the SDK's, same port
    _keep_report(p)


def json_lines(path: Path) -> list[dict]:
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    assert lines, f"{path.name} is empty"
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"{path.name}: not a JSON line: {line!r}") from None
    return parsed


def test_logs_are_json_lines_naming_request_user_job_and_attempt(observed: Observed) -> None:
    """MEDIAFLOW_LOG_FORMAT=json (set for this stack): every line of the API and the
    worker is one JSON object, and the lines about a request or a job say which."""
    api = json_lines(observed.logs / "api.log")
    ours = [e for e in api if e.get("request_id") == "monitoring-test"
            and e.get("path") == "/api/v1/files"]
    assert ours and ours[0]["user_id"] == observed.user_id
    assert ours[0]["status"] == 201 and ours[0]["method"] == "POST"
    assert {"time", "level", "logger", "message"} <= set(ours[0])
    worker = json_lines(observed.logs / "worker-cpu.log")
    broken = observed.jobs["broken"]
    about_it = [e for e in worker if e.get("job_id") == broken["id"]]
    assert about_it, "no worker line names the failed job"
    assert all(e["workflow_id"] == broken["workflow_id"] for e in about_it)
    assert any(e.get("activity") == "run_ffmpeg_step" and e.get("attempt") == 1
               for e in about_it), about_it


FAMILIES = {
    "mediaflow_http_requests_total": "sum by (route, status) (mediaflow_http_requests_total"
                                     '{route=~"/api/v1/jobs.*"})',
    "mediaflow_http_request_duration_seconds": "sum by (method, route) "
        '(mediaflow_http_request_duration_seconds_count{route=~"/api/v1/jobs.*"})',
    "mediaflow_http_requests_in_flight": "sum(mediaflow_http_requests_in_flight)",
    "mediaflow_jobs_submitted_total": "sum by (type) (mediaflow_jobs_submitted_total)",
    "mediaflow_jobs_finished_total": "sum by (type, status) "
                                     '(mediaflow_jobs_finished_total{type="text_overlay"})',
    "mediaflow_job_duration_seconds": "sum by (type) (mediaflow_job_duration_seconds_count)"
                                      " > 0",
    "mediaflow_job_queue_wait_seconds": "sum by (pool) (mediaflow_job_queue_wait_seconds_count)",
    "mediaflow_step_duration_seconds": "sum by (op, pool, decoder) "
                                       "(mediaflow_step_duration_seconds_count)",
    "mediaflow_ffmpeg_speed": "sum by (op, pool) (mediaflow_ffmpeg_speed_sum) "
                              "/ sum by (op, pool) (mediaflow_ffmpeg_speed_count)",
    "mediaflow_step_failures_total": "sum by (op, pool, code) (mediaflow_step_failures_total)",
    "mediaflow_ffmpeg_running": "sum by (pool) (mediaflow_ffmpeg_running)",
    "mediaflow_worker_slots": "sum by (pool) (mediaflow_worker_slots)",
    "mediaflow_worker_slots_used": "sum by (pool) (mediaflow_worker_slots_used)",
    "mediaflow_task_queue_backlog": "max by (queue) (mediaflow_task_queue_backlog)",
    "temporal_*": "count by (job) ({__name__=~\"temporal_.+\"})",
}


def _keep_report(prometheus: Prometheus) -> None:
    target = os.environ.get("MEDIAFLOW_MONITORING_REPORT")
    if not target:
        return
    report = {family: {"query": expr, "result": [
        {"metric": r["metric"], "value": r["value"][1]} for r in prometheus.query(expr)]}
        for family, expr in FAMILIES.items()}
    Path(target).write_text(json.dumps(report, indent=2))
