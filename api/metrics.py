"""Prometheus metrics of the API process, served at ``/metrics`` (docs/OPERATIONS.md,
"Metrics": the names are a contract that the dashboards and alert rules rely on)."""

from __future__ import annotations

import os
import re

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

disable_created_metrics()  # no `_created` twin of every series

HTTP_REQUESTS = Counter(
    "mediaflow_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "mediaflow_http_request_duration_seconds",
    "HTTP request duration, from the first byte in to the last byte out",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
HTTP_IN_FLIGHT = Gauge(
    "mediaflow_http_requests_in_flight", "HTTP requests being served right now",
    multiprocess_mode="livesum",
)
JOBS_SUBMITTED = Counter(
    "mediaflow_jobs_submitted_total", "Jobs accepted by POST /jobs (each starts a workflow)",
    ["type"],
)


_CONVERTOR = re.compile(r"\{(\w+):\w+\}")
JOB_VIEWS = Counter(
    "mediaflow_job_views_total",
    "Live job views fetched for event streams and GET /jobs/{id} (a row read and, while the "
    "job runs, one progress query to Temporal), coalesced per job per API process",
)


def route_template(scope: Scope) -> str:
    """``/api/v1/jobs/{job_id}`` for ``/api/v1/jobs/3f…``: the matched route's own path
    behind the prefix it was included under, never the raw path (ids, and a share link's
    member path, would explode the labels).

    FastAPI resolves included routers lazily: ``scope["route"]`` is the route as its
    router declared it, without the prefix. The prefix is what stands before the part
    of the path that route matches."""
    route = scope.get("route")
    declared = getattr(route, "path", None)
    pattern = getattr(route, "path_regex", None)
    if declared is None or pattern is None:
        return "unmatched"
    path = scope["path"]
    prefix = next((path[:i] for i in range(len(path))
                   if path[i] == "/" and pattern.match(path[i:])), "")
    return prefix + _CONVERTOR.sub(r"{\1}", declared)


def observe_request(scope: Scope, status: int, seconds: float) -> None:
    """Count one answered request by route template (never the raw path: ids would
    explode the labels); called by ``api.middleware`` once per request."""
    template = route_template(scope)
    method = scope.get("method", "GET")
    HTTP_REQUESTS.labels(method, template, str(status)).inc()
    HTTP_LATENCY.labels(method, template).observe(seconds)


MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def scrape_registry() -> CollectorRegistry:
    """This process's metrics; with ``mediaflow api --workers N`` (which sets
    ``PROMETHEUS_MULTIPROC_DIR`` for its processes: ``api.server.serve``) the sum over all
    of them, whichever process answers the scrape."""
    if not os.environ.get(MULTIPROCESS_ENV):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


async def metrics_endpoint(request: Request) -> Response:
    return Response(generate_latest(scrape_registry()), media_type=CONTENT_TYPE_LATEST)
