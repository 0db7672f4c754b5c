"""API performance: traffic by route, latency quantiles, errors, requests in flight
(docs/OPERATIONS.md, "Dashboards")."""

from dashboards.panels import dashboard, quantiles, timeseries

# Streaming routes last as long as their transfer: uploads (POST /files, whose route the
# file list shares), downloads, package members, share links (/s/…) and job event streams.
NOT_STREAMING = '{route!~".*/events|.*/download|.*/members/.*|/api/v1/files|/s/.*"}'
REQUESTS = "mediaflow_http_requests_total"
DURATION = "mediaflow_http_request_duration_seconds"

dashboard = dashboard(
    "mediaflow — API performance", "mediaflow-api",
    "Requests, latency and errors of the mediaflow API (every API process, summed).",
    [
        ("Traffic", [
            timeseries("Requests per second by route", {
                "{{method}} {{route}}": f"sum by (method, route) (rate({REQUESTS}[1m]))",
            }, unit="reqps", description=(
                "Requests answered per second, by method and route template (ids never "
                "appear: /api/v1/jobs/{job_id}). `unmatched` is every path no route has.")),
            timeseries("Requests in flight", {
                "in flight": "sum(mediaflow_http_requests_in_flight)",
            }, description=(
                "Requests being served right now across API processes, open event streams "
                "and transfers included. A climb with flat traffic means requests are slow "
                "to finish: a dependency is slow or the processes are saturated.")),
            timeseries("Jobs submitted per second by type", {
                "{{type}}": "sum by (type) (rate(mediaflow_jobs_submitted_total[5m]))",
            }, unit="ops", description=(
                "Jobs accepted by POST /jobs (each started a workflow); refused ones (4xx) "
                "are not counted.")),
            timeseries("Requests per second by status", {
                "{{status}}": f"sum by (status) (rate({REQUESTS}[1m]))",
            }, unit="reqps", description="Every answer by HTTP status code."),
        ]),
        ("Latency", [
            timeseries("Latency p50 / p95 / p99 (non-streaming routes)",
                       quantiles(DURATION, "method", selector=NOT_STREAMING), unit="s",
                       description=(
                "Request duration quantiles over 5 minutes, first byte in to last byte out, "
                "excluding streaming routes (uploads and the file list that shares their "
                "route, downloads, package members, share links, event streams), whose "
                "duration is the transfer's. The MediaflowApiLatencyHigh alert watches p99.")),
            timeseries("Latency p95 by route",
                       quantiles(DURATION, "method, route", levels=(0.95,)), unit="s",
                       description=(
                "95th percentile per route over 5 minutes, streaming routes included: "
                "find the slow route here.")),
        ]),
        ("Errors", [
            timeseries("4xx and 5xx per second by route", {
                "{{status}} {{method}} {{route}}":
                    f'sum by (status, method, route) (rate({REQUESTS}{{status=~"[45].."}}[5m]))',
            }, unit="reqps", description=(
                "Client errors (4xx: invalid input, 401/403, 404, 429 rate limits) and server "
                "errors (5xx: 503 when a dependency is down) by route.")),
            timeseries("5xx ratio", {
                "5xx / all": f'(sum(rate({REQUESTS}{{status=~"5.."}}[5m])) or vector(0)) '
                             f"/ sum(rate({REQUESTS}[5m]))",
            }, unit="percentunit", description=(
                "Share of answers that were server errors over 5 minutes. The "
                "MediaflowApi5xxRatioHigh alert fires above 5 % for 5 minutes.")),
        ]),
    ],
)
