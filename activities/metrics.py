"""Prometheus metrics of a worker process (docs/OPERATIONS.md, "Metrics").

The names are a contract: the dashboards (``dashboards/``) and the alert rules
(``docker/prometheus/alerts.yml``) use them, and ``tests/monitoring`` evaluates every one of
their expressions against a real Prometheus scraping a real worker.

**One port for ours and the SDK's.** ``mediaflow worker --metrics-port P`` serves, on P,
this module's metrics (prometheus_client's default registry: ours plus the process
collectors) followed by the Temporal SDK's ``temporal_*`` metrics. The SDK's Rust core
runs its own Prometheus exporter and cannot share a registry with Python, so it is bound
to a free loopback port that nothing outside the process uses, and each scrape of P
fetches it and appends its text (the two sets of names never overlap). The SDK reports
durations in seconds (``durations_as_seconds``), like ours.

**Labels stay bounded.** ``op`` is the plan step's operation (a step type, or
``fused:join+text…``, at most 32 characters), ``pool`` is ``cpu``/``gpu``, ``decoder`` is
``cpu``/``cuda``, ``code`` is an error type of our own (``InvalidMedia``, ``FFmpegFailed``…)
or an exception class name; never an id.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import socket
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import get_args

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client import generate_latest as _generate_latest
from temporalio import activity
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.exceptions import ApplicationError, is_cancelled_exception
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from core.enums import TERMINAL_STATUSES
from core.spec import JobType
from core.storage import StorageError
from core.temporal import JOBS_QUEUE, POOL_QUEUES

log = logging.getLogger("mediaflow.worker.metrics")
disable_created_metrics()  # no `_created` twin of every series

# Jobs of media seconds to hours: from a second to half a day.
LONG_BUCKETS = (0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400,
                43200)
WAIT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
SPEED_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256)

JOBS_FINISHED = Counter(
    "mediaflow_jobs_finished_total", "Jobs that reached a terminal status", ["type", "status"])
JOB_DURATION = Histogram(
    "mediaflow_job_duration_seconds", "Time from submission to the terminal status",
    ["type"], buckets=LONG_BUCKETS)
QUEUE_WAIT = Histogram(
    "mediaflow_job_queue_wait_seconds",
    "Time an FFmpeg step waited on its pool's task queue (attempt scheduled → started)",
    ["pool"], buckets=WAIT_BUCKETS)
STEP_DURATION = Histogram(
    "mediaflow_step_duration_seconds",
    "Wall time of a successful FFmpeg step: inputs placed, ffmpeg run, output probed and stored",
    ["op", "pool", "decoder"], buckets=LONG_BUCKETS)
FFMPEG_SPEED = Histogram(
    "mediaflow_ffmpeg_speed", "ffmpeg's final speed of a successful step, × realtime",
    ["op", "pool"], buckets=SPEED_BUCKETS)
STEP_FAILURES = Counter(
    "mediaflow_step_failures_total",
    "Failed FFmpeg step attempts (each retry that fails counts), by error code",
    ["op", "pool", "code"])
FFMPEG_RUNNING = Gauge("mediaflow_ffmpeg_running", "ffmpeg processes running", ["pool"])
WORKER_SLOTS = Gauge(
    "mediaflow_worker_slots", "FFmpeg step slots of this worker (--concurrency)", ["pool"])
WORKER_SLOTS_USED = Gauge(
    "mediaflow_worker_slots_used", "FFmpeg step slots busy with a step", ["pool"])
TASK_QUEUE_BACKLOG = Gauge(
    "mediaflow_task_queue_backlog",
    "Tasks waiting on a task queue, approximate (Temporal's DescribeTaskQueue statistics, "
    "sampled by every worker: aggregate with max)",
    ["queue"])

# Every job type and ending exists from the start at 0, so rates and ratios have a series
# to compute over before the first job of a kind ends.
for _type in get_args(JobType):
    JOB_DURATION.labels(_type)
    for _status in TERMINAL_STATUSES:
        JOBS_FINISHED.labels(_type, _status)


def job_finished(job_type: str, status: str, created_at: dt.datetime | None) -> None:
    """Count a job that has just ended (call once per job: at the row's transition)."""
    JOBS_FINISHED.labels(job_type, status).inc()
    if created_at is not None:
        seconds = (dt.datetime.now(dt.UTC) - created_at).total_seconds()
        JOB_DURATION.labels(job_type).observe(max(0.0, seconds))


def pool_series(pool: str, slots: int | None = None) -> None:
    """A pool's gauges exist (at 0) from the worker's start; ``slots`` sets its size."""
    WORKER_SLOTS_USED.labels(pool)
    FFMPEG_RUNNING.labels(pool)
    if slots is not None:
        WORKER_SLOTS.labels(pool).set(slots)


def failure_code(exc: BaseException) -> str:
    """Our error type; every storage failure (S3, a missing object) is ``StorageError``."""
    if isinstance(exc, ApplicationError):
        return exc.type or "ApplicationError"
    if isinstance(exc, StorageError):
        return "StorageError"
    return type(exc).__name__


class StepAttempt:
    """One ``run_ffmpeg_step`` attempt as the metrics see it: built when the attempt
    starts (its queue wait, a slot taken), then ``succeeded`` (duration, speed) or
    ``failed`` (the code; a cancel is no failure), and always ``ended`` (the slot freed)."""

    def __init__(self, op: str, pool: str) -> None:
        self.op, self.pool = op, pool
        info = activity.info()
        waited = (info.started_time - info.current_attempt_scheduled_time).total_seconds()
        QUEUE_WAIT.labels(pool).observe(max(0.0, waited))
        self._started = time.monotonic()
        self._slot = WORKER_SLOTS_USED.labels(pool)
        self._slot.inc()

    def succeeded(self, decoder: str, speed: float | None) -> None:
        STEP_DURATION.labels(self.op, self.pool, decoder).observe(
            time.monotonic() - self._started)
        if speed is not None:
            FFMPEG_SPEED.labels(self.op, self.pool).observe(speed)

    def failed(self, exc: BaseException) -> None:
        if not is_cancelled_exception(exc):
            STEP_FAILURES.labels(self.op, self.pool, failure_code(exc)).inc()

    def ended(self) -> None:
        self._slot.dec()


def ffmpeg_running(pool: str) -> contextlib.AbstractContextManager[object]:
    return FFMPEG_RUNNING.labels(pool).track_inprogress()


# -- the task queues' backlog -------------------------------------------------------------
BACKLOG_EVERY_SECONDS = 10.0
QUEUE_TASK_TYPES = {
    JOBS_QUEUE: (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY),
    **{queue: (TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,) for queue in POOL_QUEUES.values()},
}


async def sample_backlog(client: Client) -> None:
    """Set ``mediaflow_task_queue_backlog`` for every mediaflow queue from Temporal's
    approximate statistics (``report_stats``)."""
    for queue, kinds in QUEUE_TASK_TYPES.items():
        total = 0
        for kind in kinds:
            response = await client.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(namespace=client.namespace,
                                         task_queue=TaskQueue(name=queue),
                                         task_queue_type=kind, report_stats=True))
            total += response.stats.approximate_backlog_count
        TASK_QUEUE_BACKLOG.labels(queue).set(total)


async def keep_sampling_backlog(client: Client, every: float = BACKLOG_EVERY_SECONDS) -> None:
    """Every ``every`` seconds for the life of the worker; never per request. A failed
    sample keeps the last values (Temporal may be restarting)."""
    while True:
        try:
            await sample_backlog(client)
        except Exception as exc:  # noqa: BLE001 - a metric must never stop the worker
            log.debug("task queue backlog not sampled: %s", exc)
        await asyncio.sleep(every)


# -- serving ------------------------------------------------------------------------------
def _free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MetricsServer:
    """``/metrics`` on ``host:port``: this process's registry, then the SDK's exporter."""

    def __init__(self, host: str, port: int) -> None:
        self.sdk_address = f"127.0.0.1:{_free_loopback_port()}"
        self.runtime = Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(
            bind_address=self.sdk_address, durations_as_seconds=True)))
        sdk_url = f"http://{self.sdk_address}/metrics"

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if self.path.split("?", 1)[0] not in ("/metrics", "/"):
                    self.send_error(404)
                    return
                body = _generate_latest(REGISTRY) + _sdk_text(sdk_url)
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE_LATEST)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass  # scrapes every few seconds would drown the worker's log

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="metrics-server", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _sdk_text(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our loopback
            return bytes(response.read())
    except OSError as exc:
        log.warning("the Temporal SDK's metrics are unavailable: %s", exc)
        return b""
