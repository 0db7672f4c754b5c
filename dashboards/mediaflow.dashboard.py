"""mediaflow overview: API traffic, latency and the Temporal workers' task queues."""

from grafanalib.core import Dashboard

from dashboards.panels import timeseries

dashboard = Dashboard(
    title="mediaflow",
    uid="mediaflow-overview",
    tags=["mediaflow"],
    timezone="browser",
    panels=[
        timeseries("API requests by status", {
            "{{status}}": 'sum by (status) (rate(mediaflow_http_requests_total[5m]))',
        }, unit="reqps", x=0, y=0),
        timeseries("API latency p95 by route", {
            "{{route}}": 'histogram_quantile(0.95, sum by (le, route) '
                         '(rate(mediaflow_http_request_duration_seconds_bucket[5m])))',
        }, unit="s", x=12, y=0),
        timeseries("Activity schedule-to-start latency p95 by queue", {
            "{{task_queue}}": 'histogram_quantile(0.95, sum by (le, task_queue) '
                              '(rate(temporal_activity_schedule_to_start_latency_bucket[5m])))',
        }, unit="s", x=0, y=8),
        timeseries("Activities run by type", {
            "{{activity_type}}": 'sum by (activity_type) '
                                 '(rate(temporal_activity_execution_latency_count[5m]))',
        }, unit="ops", x=12, y=8),
        timeseries("Activity failures by type", {
            "{{activity_type}}": 'sum by (activity_type) '
                                 '(rate(temporal_activity_execution_failed[5m]))',
        }, unit="ops", x=0, y=16),
        timeseries("Worker task slots available", {
            "{{worker_type}} {{task_queue}}": 'sum by (worker_type, task_queue) '
                                              '(temporal_worker_task_slots_available)',
        }, x=12, y=16),
    ],
).auto_panel_ids()
