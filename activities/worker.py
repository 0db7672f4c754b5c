"""Build and run the Temporal workers of one pool.

A worker process polls two queues: ``mediaflow-jobs`` (the workflow and the
bookkeeping activities, cheap) and its pool's queue (``mediaflow-cpu`` or
``mediaflow-gpu``) for the FFmpeg steps, with ``concurrency`` slots.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Callable
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities import metrics
from activities.accounts import AccountActivities, end_user_jobs
from activities.bookkeeping import BookkeepingActivities
from activities.ffmpeg import FFmpegActivities
from activities.imports import ImportActivities, await_imports
from activities.prepare import prepare_job
from activities.purge import PurgeActivities
from activities.reconcile import reconcile_quiet_jobs_activity
from activities.schedules import ensure_purge_schedule, ensure_reconcile_schedule
from activities.webhooks import WebhookActivities
from core.config import Settings
from core.db import bind_tables, close_pool, engine_from_settings, start_pool
from core.scratch import ScratchClaim
from core.storage import Storage, get_storage
from core.temporal import JOBS_QUEUE, POOL_QUEUES
from core.volume import check_local_volume
from workflows.accounts import DeleteUserWorkflow
from workflows.imports import ImportFileWorkflow
from workflows.media_job import MediaJobWorkflow
from workflows.purge import PurgeDeletedFilesWorkflow
from workflows.reconcile import ReconcileJobsWorkflow

log = logging.getLogger("mediaflow.worker")

WORKFLOW_RUNNER = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_all_modules())
"""The sandbox still refuses non-deterministic calls (the clock, randomness, I/O) inside a
workflow, but no longer re-imports the workflow modules for every run: that re-import was
a tenth of a worker's CPU in a burst of small jobs. Safe because our workflow modules
keep no module-level state (``tests/jobs/test_replay.py`` replays every history under
the full sandbox and under this runner)."""


def jobs_queue_activities(settings: Settings, storage: Storage) -> list[Callable[..., Any]]:
    """The activities a worker serves on ``mediaflow-jobs``: bookkeeping, webhooks and
    housekeeping (each the implementation of a stub in ``workflows.activities``)."""
    books = BookkeepingActivities(storage)
    imports = ImportActivities(settings, storage)
    return [
        prepare_job, books.update_job_status, books.record_operation, books.finalize_job,
        books.discard_outputs, WebhookActivities(settings).deliver_webhook,
        PurgeActivities(storage).purge_deleted_files, reconcile_quiet_jobs_activity,
        end_user_jobs, AccountActivities(storage).remove_user_data,
        imports.import_file, imports.fail_import, await_imports,  # URL imports
    ]


def build_workers(
    client: Client, settings: Settings, storage: Storage, *, pool: str, concurrency: int,
    poll_jobs_queue: bool = True,
) -> list[Worker]:
    """The pool's FFmpeg worker, preceded (unless ``poll_jobs_queue`` is False, for a
    second pool in the same process) by the workflow + bookkeeping worker."""
    steps = FFmpegActivities(settings, storage, pool)
    metrics.pool_series(pool, slots=concurrency)
    pool_worker = Worker(
        client,
        task_queue=POOL_QUEUES[pool],
        activities=[steps.run_ffmpeg_step],
        max_concurrent_activities=concurrency,
        graceful_shutdown_timeout=timedelta(seconds=5),
        # heartbeats carry cancellation: reach the server often enough to kill ffmpeg in < 5 s
        max_heartbeat_throttle_interval=timedelta(seconds=1),
        default_heartbeat_throttle_interval=timedelta(seconds=1),
    )
    if not poll_jobs_queue:  # constructing a Worker registers it: build only what runs
        return [pool_worker]
    jobs_worker = Worker(
        client,
        task_queue=JOBS_QUEUE,
        workflows=[MediaJobWorkflow, PurgeDeletedFilesWorkflow, ReconcileJobsWorkflow,
                   DeleteUserWorkflow, ImportFileWorkflow],
        activities=jobs_queue_activities(settings, storage),
        max_concurrent_activities=20,
        workflow_runner=WORKFLOW_RUNNER,
        # heartbeats carry cancellation to a URL import or a job waiting for one: let a
        # cancel reach them within seconds, not 80 % of their heartbeat timeout
        max_heartbeat_throttle_interval=timedelta(seconds=2),
        default_heartbeat_throttle_interval=timedelta(seconds=2),
    )
    return [jobs_worker, pool_worker]


async def run_worker(settings: Settings, *, pool: str, concurrency: int, metrics_port: int,
                     metrics_host: str = "0.0.0.0") -> None:
    engine = engine_from_settings(settings)
    bind_tables(engine)
    await start_pool(engine)
    try:
        await check_local_volume(settings)  # StorageNotShared: this host can't do the work
    except BaseException:
        await close_pool(engine)
        raise
    # ours and the SDK's metrics on one port (activities/metrics.py)
    exporter = metrics.MetricsServer(metrics_host, metrics_port) if metrics_port else None
    client = await Client.connect(
        settings.temporal_address, namespace=settings.temporal_namespace,
        runtime=exporter.runtime if exporter else None,
    )
    storage = get_storage(settings)
    # a private, locked part of the scratch root; a dead worker's part goes (core/scratch.py)
    scratch = ScratchClaim(settings.scratch_root)
    settings = settings.model_copy(update={"scratch_dir": scratch.path})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    workers = build_workers(client, settings, storage, pool=pool, concurrency=concurrency)
    gc.freeze()  # start-up's objects out of the collector's sight, as in the API (api/main.py)
    await ensure_purge_schedule(client, settings)
    await ensure_reconcile_schedule(client)
    log.info("worker pool=%s polling %s and %s (%d slots), scratch in %s",
             pool, JOBS_QUEUE, POOL_QUEUES[pool], concurrency, scratch.path)
    backlog = asyncio.create_task(metrics.keep_sampling_backlog(client)) if exporter else None
    try:
        async with AsyncExitStack() as stack:
            for w in workers:
                await stack.enter_async_context(w)
            await stop.wait()
            log.info("shutting down")
    finally:
        if backlog and exporter:
            backlog.cancel()
            exporter.close()
        await storage.close()
        await close_pool(engine)
        scratch.release()
