"""Temporal: the names of mediaflow's contract with it, and the client helpers shared by
the API, the workers and the CLI.

The names are stable (docs/ARCHITECTURE.md, "Temporal contract"): renaming a workflow
type, task queue or search attribute strands the jobs that are running under the old one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeIndexedValueType, SearchAttributeKey

from core.config import Settings
from core.enums import Pool

WORKFLOW_TYPE = "MediaJobWorkflow"
IMPORT_WORKFLOW_TYPE = "ImportFileWorkflow"
JOBS_QUEUE = "mediaflow-jobs"
CPU_QUEUE = "mediaflow-cpu"
GPU_QUEUE = "mediaflow-gpu"
POOL_QUEUES: dict[str, str] = {Pool.cpu: CPU_QUEUE, Pool.gpu: GPU_QUEUE}

SA_USER_ID = SearchAttributeKey.for_keyword("MediaflowUserId")
SA_JOB_TYPE = SearchAttributeKey.for_keyword("MediaflowJobType")
SA_JOB_STATUS = SearchAttributeKey.for_keyword("MediaflowJobStatus")
SA_PRIORITY = SearchAttributeKey.for_int("MediaflowPriority")
SEARCH_ATTRIBUTES: tuple[SearchAttributeKey, ...] = (
    SA_USER_ID, SA_JOB_TYPE, SA_JOB_STATUS, SA_PRIORITY)

PRIORITY_DYNAMIC_CONFIG = {"matching.numTaskqueueWritePartitions": "1"}
"""Temporal orders a backlog by priority key within one task-queue partition (the server
1.32 matcher does so by default); with the default four partitions a low-priority task on
a lighter partition can start before a high-priority one on another. One write partition
puts every task in the same ordered backlog while the old read partitions drain
(docs/OPERATIONS.md, "Priorities")."""


SA_TYPE_NAMES = {SearchAttributeIndexedValueType.KEYWORD: "Keyword",
                 SearchAttributeIndexedValueType.INT: "Int"}


def search_attribute_type(key: SearchAttributeKey) -> str:
    """The type name ``temporal`` commands take: ``Keyword``, ``Int``."""
    return SA_TYPE_NAMES[key.indexed_value_type]


def search_attribute_args() -> list[str]:
    """``temporal server start-dev`` arguments that register mediaflow's search attributes."""
    return [arg for key in SEARCH_ATTRIBUTES
            for arg in ("--search-attribute", f"{key.name}={search_attribute_type(key)}")]


def dev_server_args() -> list[str]:
    """Every ``temporal server start-dev`` argument mediaflow needs: its search attributes
    and the priority-ordered task queues (:data:`PRIORITY_DYNAMIC_CONFIG`)."""
    dynamic = [arg for name, value in PRIORITY_DYNAMIC_CONFIG.items()
               for arg in ("--dynamic-config-value", f"{name}={value}")]
    return [*search_attribute_args(), *dynamic]


def workflow_id_for(job_id: str) -> str:
    return f"job-{job_id}"


def import_workflow_id_for(file_id: str) -> str:
    return f"import-{file_id}"


async def connect(settings: Settings, *, timeout: float = 5.0) -> Client:
    return await asyncio.wait_for(
        Client.connect(settings.temporal_address, namespace=settings.temporal_namespace),
        timeout=timeout,
    )


class TemporalConnection:
    """A client connected on first use, so the API starts while Temporal is down.

    ``get()`` raises while Temporal is unreachable; the health check and the
    routes turn that into a 503. A failed connect is remembered for
    :data:`RETRY_SECONDS`: meanwhile callers fail at once instead of queueing
    behind one another for a connect timeout each.
    """

    RETRY_SECONDS = 3.0

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: Client | None = None
        self._lock = asyncio.Lock()
        self._failed: tuple[float, Exception] | None = None

    def _recent_failure(self) -> Exception | None:
        if self._failed is None:
            return None
        at, error = self._failed
        return error if time.monotonic() - at < self.RETRY_SECONDS else None

    async def get(self, timeout: float = 5.0) -> Client:
        if self._client is not None:
            return self._client
        if (error := self._recent_failure()) is not None:
            raise error
        async with self._lock:
            if self._client is None:
                if (error := self._recent_failure()) is not None:  # failed while we waited
                    raise error
                try:
                    self._client = await connect(self._settings, timeout=timeout)
                except Exception as exc:
                    self._failed = (time.monotonic(), exc)
                    raise
                self._failed = None
        return self._client

    async def check(self, timeout: float = 3.0) -> None:
        client = await self.get(timeout=timeout)
        await asyncio.wait_for(client.service_client.check_health(), timeout=timeout)


# An idle poller re-polls about every 60 s, so a live GPU worker was seen within 90 s.
POLLER_FRESH_SECONDS = 90


async def gpu_workers_polling(client: Client) -> bool:
    """Whether a worker polled ``mediaflow-gpu`` recently (Temporal remembers pollers for
    minutes after they stop, so stale entries are ignored)."""
    response = await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
        namespace=client.namespace, task_queue=TaskQueue(name=GPU_QUEUE),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
    ))
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=POLLER_FRESH_SECONDS)
    return any(p.last_access_time.ToDatetime(dt.UTC) >= cutoff for p in response.pollers)
