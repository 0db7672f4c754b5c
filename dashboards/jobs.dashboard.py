"""Jobs and workers: jobs by status, throughput, durations, queue wait, backlog, slots,
GPU vs CPU, failure codes, and the Temporal SDK's view (docs/OPERATIONS.md, "Dashboards")."""

from dashboards.panels import dashboard, quantiles, timeseries

FINISHED = "mediaflow_jobs_finished_total"
STEPS = "mediaflow_step_duration_seconds_count"

dashboard = dashboard(
    "mediaflow — jobs and workers", "mediaflow-jobs",
    "What the workers did with the jobs: endings, durations, waiting, capacity, failures.",
    [
        ("Jobs", [
            timeseries("Jobs ended in the last hour by status", {
                "{{status}}": f"sum by (status) (increase({FINISHED}[1h]))",
            }, description=(
                "Jobs that reached completed, failed or cancelled in the last hour (counted "
                "by the worker that recorded the ending).")),
            timeseries("Throughput: jobs ended per minute by type and status", {
                "{{type}} {{status}}": f"sum by (type, status) (rate({FINISHED}[5m])) * 60",
            }, description="Jobs ending per minute, over 5 minutes."),
            timeseries("Job duration p50 / p95 / p99 by type",
                       quantiles("mediaflow_job_duration_seconds", "type"), unit="s",
                       description=(
                "Submission to terminal status, over 5 minutes: queueing, every step, "
                "retries and bookkeeping included.")),
            timeseries("Job failure ratio", {
                "failed / ended": f'sum(rate({FINISHED}{{status="failed"}}[15m])) '
                                  f"/ sum(rate({FINISHED}[15m]))",
            }, unit="percentunit", description=(
                "Share of jobs ending failed over 15 minutes (empty while none ended). The "
                "MediaflowJobFailureRatioHigh alert fires above 25 %.")),
        ]),
        ("Queues", [
            timeseries("Task queue backlog", {
                "{{queue}}": "max by (queue) (mediaflow_task_queue_backlog)",
            }, description=(
                "Tasks waiting on each task queue (Temporal's approximate count, sampled by "
                "every worker every 10 s: the max of their samples). mediaflow-jobs holds "
                "workflow and bookkeeping tasks; mediaflow-cpu / mediaflow-gpu the FFmpeg "
                "steps.")),
            timeseries("Step queue wait p50 / p95 by pool",
                       quantiles("mediaflow_job_queue_wait_seconds", "pool",
                                 levels=(0.5, 0.95)), unit="s", description=(
                "How long an FFmpeg step attempt waited for a free slot on its pool "
                "(scheduled → started), over 5 minutes. Rising wait with full slots means "
                "the pool needs more workers.")),
            timeseries("Activity schedule-to-start p95 by task queue (Temporal SDK)", {
                "{{task_queue}}": "histogram_quantile(0.95, sum by (le, task_queue) "
                                  "(rate(temporal_activity_schedule_to_start_latency_bucket"
                                  "[5m])))",
            }, unit="s", description=(
                "The SDK's own measure of activity waiting, every activity type included "
                "(bookkeeping on mediaflow-jobs too).")),
            timeseries("Pollers by task queue (Temporal SDK)", {
                "{{task_queue}} {{poller_type}}":
                    "sum by (task_queue, poller_type) (temporal_num_pollers)",
            }, description="Open long polls of the workers on each queue."),
        ]),
        ("Workers", [
            timeseries("FFmpeg slots used / available by pool", {
                "used {{pool}}": "sum by (pool) (mediaflow_worker_slots_used)",
                "slots {{pool}}": "sum by (pool) (mediaflow_worker_slots)",
            }, description=(
                "Step slots busy and in total (the workers' --concurrency summed) per pool.")),
            timeseries("ffmpeg processes running by pool", {
                "{{pool}}": "sum by (pool) (mediaflow_ffmpeg_running)",
            }, description=(
                "ffmpeg processes alive now; fewer than slots used while steps download "
                "inputs or store outputs.")),
            timeseries("GPU vs CPU share of steps", {
                "{{pool}}": f"sum by (pool) (rate({STEPS}[5m])) "
                            f"/ ignoring (pool) group_left sum(rate({STEPS}[5m]))",
            }, unit="percentunit", description=(
                "Share of successful FFmpeg steps run by each pool over 5 minutes.")),
            timeseries("Steps per second by pool and decoder", {
                "{{pool}} {{decoder}}": f"sum by (pool, decoder) (rate({STEPS}[5m]))",
            }, unit="ops", description=(
                "Successful steps by pool and by decoder: `cuda` when NVDEC decoded, `cpu` "
                "otherwise (a GPU worker whose CUDA is unusable falls back to cpu).")),
        ]),
        ("Steps", [
            timeseries("Step duration p50 / p95 by operation",
                       quantiles("mediaflow_step_duration_seconds", "op",
                                 levels=(0.5, 0.95)), unit="s", description=(
                "Wall time of successful steps (inputs placed, ffmpeg, output stored) by "
                "operation (`fused:…` for merged runs), over 5 minutes.")),
            timeseries("ffmpeg speed (median) by operation and pool",
                       quantiles("mediaflow_ffmpeg_speed", "op, pool", levels=(0.5,)),
                       description=(
                "ffmpeg's speed, × realtime, at the end of successful steps: seconds of "
                "media produced per second.")),
            timeseries("Step failures per second by code", {
                "{{code}}": "sum by (code) (rate(mediaflow_step_failures_total[5m]))",
            }, unit="ops", description=(
                "Failed step attempts by error code (docs/OPERATIONS.md, 'Failure "
                "handling'): InvalidMedia and InvalidParams end the job; FFmpegFailed, "
                "FFmpegStalled and storage errors are retried up to 4 attempts.")),
            timeseries("Step failures per second by operation and pool", {
                "{{op}} {{pool}}": "sum by (op, pool) (rate(mediaflow_step_failures_total[5m]))",
            }, unit="ops", description="The same failures by operation and pool."),
        ]),
    ],
)
