"""MediaJobWorkflow's decisions, tested alone and fast: Temporal's time-skipping test
server, with every activity replaced by a fake registered under the real name.

Timeouts (the 60 s GPU pickup, retry backoff) pass in milliseconds of wall time. What
these tests cannot show — ffmpeg, the database, storage — the end-to-end tests in
``tests/jobs`` do; here the subject is only what the workflow decides and in what order.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from core.plan.model import PlanStep
from core.temporal import CPU_QUEUE, GPU_QUEUE, JOBS_QUEUE, SEARCH_ATTRIBUTES
from workflows import media_job
from workflows.media_job import MediaJobWorkflow
from workflows.types import (
    DiscardInput,
    FinalizeInput,
    JobInput,
    OperationRecord,
    PreparedJob,
    RerouteInput,
    StatusUpdate,
    StepInput,
    StepResult,
    WebhookInput,
)

STEP_IDS = ("one", "two")


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    server = Path(sys.executable).parent / "temporal-test-server"
    environment = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(server),
        # the SDK waits 5 s by default: a cold CI run on 2 busy cores once took longer
        test_server_startup_timeout=timedelta(seconds=60))
    await environment.client.operator_service.add_search_attributes(AddSearchAttributesRequest(
        namespace=environment.client.namespace,
        search_attributes={key.name: IndexedValueType.ValueType(key.indexed_value_type)
                           for key in SEARCH_ATTRIBUTES}))
    try:
        yield environment
    finally:
        await environment.shutdown()


def plan_step(index: int, step_id: str, *, last: bool) -> PlanStep:
    return PlanStep(index=index, step_id=step_id, op="text_overlay", argv=["ffmpeg", "{out}"],
                    sources=[], output_name="out.mp4", gpu_capable=True, expected_seconds=2.0,
                    keep_output=last)


@dataclass
class Fakes:
    """Activities under their real names; each records what the workflow asked of it.
    ``step`` decides what a step does (by default it succeeds at once)."""

    gpu_available: bool = False
    steps: tuple[str, ...] = STEP_IDS
    step: Callable[[StepInput, str], Any] | None = None
    logs_itself: frozenset[str] = frozenset()  # steps that write their own success row
    publishes: bool = False  # the last step publishes the outputs when asked to
    finalize_asks: list[tuple[str, FinalizeInput | None]] = field(default_factory=list)
    finalize_gate: asyncio.Event | None = None
    completed_before: list[str] | None = None  # the row was completed when an ending came
    statuses: list[StatusUpdate] = field(default_factory=list)
    operations: list[OperationRecord] = field(default_factory=list)
    step_calls: list[tuple[str, str, int]] = field(default_factory=list)  # (step, queue, try)
    finalized: list[FinalizeInput] = field(default_factory=list)
    discarded: list[DiscardInput] = field(default_factory=list)
    webhooks: list[str] = field(default_factory=list)

    def activities(self) -> list[Callable]:
        @activity.defn(name="prepare_job")
        async def prepare_job(job: JobInput) -> PreparedJob:
            last = len(self.steps) - 1
            return PreparedJob(steps=[plan_step(i, s, last=i == last)
                                      for i, s in enumerate(self.steps)],
                               gpu_available=self.gpu_available)

        @activity.defn(name="update_job_status")
        async def update_job_status(update: StatusUpdate) -> list[str] | None:
            self.statuses.append(update)
            if update.status in ("failed", "cancelled"):
                return self.completed_before  # the row's outputs, if it had completed
            return None

        @activity.defn(name="record_operation")
        async def record_operation(record: OperationRecord) -> None:
            self.operations.append(record)

        @activity.defn(name="finalize_job")
        async def finalize_job(request: FinalizeInput) -> list[str]:
            if self.finalize_gate is not None:
                self.finalize_gate.set()
                await asyncio.sleep(0.5)  # a cancel arrives while outputs are published
            self.finalized.append(request)
            return [f"file-{r.step_id}" for r in request.kept]

        @activity.defn(name="discard_outputs")
        async def discard_outputs(request: DiscardInput) -> None:
            self.discarded.append(request)

        @activity.defn(name="deliver_webhook")
        async def deliver_webhook(request: WebhookInput) -> None:
            self.webhooks.append(request.event)

        return [prepare_job, update_job_status, record_operation, finalize_job,
                discard_outputs, deliver_webhook]

    def step_activity(self, queue: str) -> Callable:
        @activity.defn(name="run_ffmpeg_step")
        async def run_ffmpeg_step(request: StepInput) -> StepResult:
            attempt = activity.info().attempt
            self.step_calls.append((request.step.step_id, queue, attempt))
            self.finalize_asks.append((request.step.step_id, request.finalize))
            if self.step is not None:
                outcome = self.step(request, queue)
                if asyncio.iscoroutine(outcome):
                    await outcome
            published = None
            if request.finalize is not None and self.publishes:
                published = [f"published-{r.step_id}" for r in request.finalize.kept]
                if request.step.keep_output:
                    published.append(f"published-{request.step.step_id}")
            return StepResult(index=request.step.index, step_id=request.step.step_id,
                              storage_key=f"jobs/x/{request.step.step_id}", size=1, sha256="0",
                              metadata={}, attempt=attempt, pool=request.pool,
                              logged=request.step.step_id in self.logs_itself,
                              published=published)

        return run_ffmpeg_step

    @property
    def status_trail(self) -> list[str]:
        return [update.status for update in self.statuses]


def held_first_step() -> tuple[Callable[[StepInput, str], Any], asyncio.Event, asyncio.Event]:
    """A step behaviour that holds step ``one`` until released: (behaviour, running,
    release)."""
    running, release = asyncio.Event(), asyncio.Event()

    async def step(request: StepInput, queue: str) -> None:
        if request.step.step_id == "one":
            running.set()
            await release.wait()

    return step, running, release


async def run_job(env: WorkflowEnvironment, fakes: Fakes, *, accelerator: str = "auto",
                  gpu_worker: bool = False, has_webhook: bool = False,
                  during: Callable[[WorkflowHandle], Any] | None = None,
                  sandboxed: bool = True) -> Any:
    """Start a job on its own workflow task queue with the fakes polling the real activity
    queues; ``during`` acts on the running workflow. Returns the workflow's result."""
    queue = f"logic-{uuid.uuid4()}"
    job = JobInput(job_id=str(uuid.uuid4()), user_id="u", job_type="combined",
                   accelerator=accelerator, has_webhook=has_webhook)
    async with AsyncExitStack() as stack:
        runner = {} if sandboxed else {"workflow_runner": UnsandboxedWorkflowRunner()}
        # bookkeeping runs as local activities: registered beside the workflow
        await stack.enter_async_context(Worker(
            env.client, task_queue=queue, workflows=[MediaJobWorkflow],
            activities=fakes.activities(), **runner))
        await stack.enter_async_context(Worker(
            env.client, task_queue=JOBS_QUEUE, activities=fakes.activities()))
        await stack.enter_async_context(Worker(
            env.client, task_queue=CPU_QUEUE, activities=[fakes.step_activity("cpu")]))
        if gpu_worker:
            await stack.enter_async_context(Worker(
                env.client, task_queue=GPU_QUEUE, activities=[fakes.step_activity("gpu")]))
        handle = await env.client.start_workflow(
            MediaJobWorkflow.run, job, id=f"job-{job.job_id}", task_queue=queue)
        if during is not None:
            await during(handle)
        return await handle.result()


async def test_a_job_runs_its_steps_in_order_and_publishes_the_kept_output(
    env: WorkflowEnvironment,
) -> None:
    fakes = Fakes()
    result = await run_job(env, fakes, has_webhook=True)
    assert result == {"status": "completed", "output_files": ["file-two"]}
    assert [(s, q) for s, q, _ in fakes.step_calls] == [("one", "cpu"), ("two", "cpu")]
    [finalize] = fakes.finalized
    assert [r.step_id for r in finalize.kept] == ["two"]
    assert finalize.intermediate_keys == ["jobs/x/one"]
    assert finalize.progress["percent"] == 100.0 and finalize.progress["steps_done"] == 2
    assert [(o.step_id, o.success, o.pool) for o in fakes.operations] == [
        ("one", True, "cpu"), ("two", True, "cpu")]
    assert fakes.webhooks == ["job.completed"] and fakes.discarded == []


async def test_a_step_that_logged_its_own_success_is_not_logged_again(
    env: WorkflowEnvironment,
) -> None:
    """A step that wrote its success row itself (``StepResult.logged``) spares the workflow
    the write; one that could not is logged by the workflow as before."""
    fakes = Fakes(logs_itself=frozenset({"two"}))
    result = await run_job(env, fakes)
    assert result == {"status": "completed", "output_files": ["file-two"]}
    assert [(o.step_id, o.success) for o in fakes.operations] == [("one", True)]


async def test_the_last_step_publishes_the_outputs_and_the_job_completes_at_once(
    env: WorkflowEnvironment,
) -> None:
    """Only the last step is asked to publish, with what ``finalize_job`` would be given
    but its own result; once it has, no ``finalize_job`` runs."""
    fakes = Fakes(publishes=True, logs_itself=frozenset(STEP_IDS))
    result = await run_job(env, fakes, has_webhook=True)
    assert result == {"status": "completed", "output_files": ["published-two"]}
    [(first, none), (last, asked)] = fakes.finalize_asks
    assert (first, none, last) == ("one", None, "two") and asked is not None
    assert asked.kept == [] and asked.intermediate_keys == ["jobs/x/one"]
    assert asked.progress["status"] == "completed" and asked.progress["percent"] == 100.0
    assert asked.progress["steps_done"] == asked.progress["steps_total"] == 2
    assert fakes.finalized == [] and fakes.operations == [] and fakes.discarded == []
    assert fakes.webhooks == ["job.completed"]


async def test_a_last_step_that_could_not_publish_leaves_it_to_finalize(
    env: WorkflowEnvironment,
) -> None:
    fakes = Fakes(publishes=False)
    result = await run_job(env, fakes)
    assert result == {"status": "completed", "output_files": ["file-two"]}
    assert fakes.finalize_asks[-1][1] is not None  # asked, and did not
    [finalize] = fakes.finalized
    assert [r.step_id for r in finalize.kept] == ["two"]


@pytest.fixture
def short_gpu_pickup(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test server does not skip time while an activity task waits in a queue, so the
    pickup timeout is shortened; such tests run the workflow outside the sandbox, which
    would otherwise import its own unpatched copy of the module."""
    monkeypatch.setattr(media_job, "GPU_PICKUP_TIMEOUT", timedelta(seconds=1))


@pytest.mark.usefixtures("short_gpu_pickup")
async def test_an_idle_gpu_pool_sends_the_step_to_the_cpu_pool(env: WorkflowEnvironment) -> None:
    """``auto`` with a GPU pool that polled once: nobody picks the step up in time, so it
    moves to the CPU pool."""
    fakes = Fakes(gpu_available=True, steps=("one",))
    result = await run_job(env, fakes, accelerator="auto", gpu_worker=False, sandboxed=False)
    assert result["status"] == "completed"
    assert fakes.step_calls == [("one", "cpu", 1)]
    assert [o.pool for o in fakes.operations] == ["cpu"]


async def test_gpu_steps_run_on_the_gpu_pool_when_it_polls(env: WorkflowEnvironment) -> None:
    fakes = Fakes(gpu_available=True)
    await run_job(env, fakes, accelerator="auto", gpu_worker=True)
    assert [q for _, q, _ in fakes.step_calls] == ["gpu", "gpu"]


@pytest.mark.usefixtures("short_gpu_pickup")
async def test_accelerator_gpu_without_a_picked_up_step_fails_clearly(
    env: WorkflowEnvironment,
) -> None:
    fakes = Fakes(gpu_available=True, steps=("one",))
    with pytest.raises(WorkflowFailureError) as failure:
        await run_job(env, fakes, accelerator="gpu", gpu_worker=False, sandboxed=False)
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "NoGpuWorker"
    assert "within 1 s" in cause.message
    assert fakes.step_calls == []
    assert fakes.status_trail[-1] == "failed" and fakes.statuses[-1].error_code == "NoGpuWorker"


async def test_accelerator_gpu_with_no_gpu_pool_fails_before_any_step(
    env: WorkflowEnvironment,
) -> None:
    fakes = Fakes(gpu_available=False)
    with pytest.raises(WorkflowFailureError) as failure:
        await run_job(env, fakes, accelerator="gpu")
    assert isinstance(failure.value.cause, ApplicationError)
    assert failure.value.cause.type == "NoGpuWorker"
    assert fakes.step_calls == [] and fakes.operations == []


async def test_pause_holds_at_the_next_boundary_and_resume_goes_on(
    env: WorkflowEnvironment,
) -> None:
    step, first_running, release_first = held_first_step()
    fakes = Fakes(step=step)

    async def pause_then_resume(handle: WorkflowHandle) -> None:
        await first_running.wait()
        await handle.signal(MediaJobWorkflow.pause)
        release_first.set()
        for _ in range(200):  # the boundary after step one records "paused"
            if "paused" in fakes.status_trail:
                break
            await asyncio.sleep(0.01)
        progress = await handle.query(MediaJobWorkflow.progress)
        assert (progress["status"], progress["steps_done"]) == ("paused", 1)
        assert [s for s, _, _ in fakes.step_calls] == ["one"]  # step two waits
        await handle.signal(MediaJobWorkflow.resume)

    result = await run_job(env, fakes, during=pause_then_resume)
    assert result["status"] == "completed"
    assert fakes.status_trail == ["paused", "processing"]
    assert [s for s, _, _ in fakes.step_calls] == ["one", "two"]


async def test_a_pause_during_the_last_step_does_not_withhold_the_result(
    env: WorkflowEnvironment,
) -> None:
    running = asyncio.Event()
    release = asyncio.Event()

    async def step(request: StepInput, queue: str) -> None:
        running.set()
        await release.wait()

    fakes = Fakes(steps=("one",), step=step)

    async def pause_during_the_step(handle: WorkflowHandle) -> None:
        await running.wait()
        await handle.signal(MediaJobWorkflow.pause)
        release.set()

    result = await run_job(env, fakes, during=pause_during_the_step)
    assert result == {"status": "completed", "output_files": ["file-one"]}
    assert "paused" not in fakes.status_trail and len(fakes.finalized) == 1


async def test_retries_exhausted_fail_the_job_with_the_step_error(
    env: WorkflowEnvironment,
) -> None:
    def step(request: StepInput, queue: str) -> None:
        raise ApplicationError("ffmpeg crashed", type="FFmpegFailed")

    fakes = Fakes(steps=("one",), step=step)
    with pytest.raises(WorkflowFailureError) as failure:
        await run_job(env, fakes)
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "FFmpegFailed"
    assert [attempt for _, _, attempt in fakes.step_calls] == [1, 2, 3, 4]  # backoff skipped
    [record] = fakes.operations
    assert (record.success, record.attempt) == (False, 4)
    assert record.error_details == "FFmpegFailed: ffmpeg crashed"
    assert fakes.status_trail == ["failed"]
    assert (fakes.statuses[-1].error_code, fakes.statuses[-1].set_completed) == (
        "FFmpegFailed", True)
    assert fakes.finalized == []


async def test_an_ending_of_a_job_that_had_completed_completes_the_workflow(
    env: WorkflowEnvironment,
) -> None:
    """When the row says the job had completed by the time its ending is recorded (a
    cancel that came together with the result of the step that published), the ending
    loses in Temporal too: the workflow completes with the row's outputs, its search
    attribute and its webhook say completed."""
    def step(request: StepInput, queue: str) -> None:
        if request.step.step_id == "two":
            raise ApplicationError("bad input", type="InvalidMedia", non_retryable=True)

    fakes = Fakes(step=step, completed_before=["file-published"])
    handle_id: list[str] = []

    async def remember(handle: WorkflowHandle) -> None:
        handle_id.append(handle.id)

    result = await run_job(env, fakes, has_webhook=True, during=remember)
    assert result == {"status": "completed", "output_files": ["file-published"]}
    assert fakes.webhooks == ["job.completed"]
    described = await env.client.get_workflow_handle(handle_id[0]).describe()
    assert described.search_attributes["MediaflowJobStatus"] == ["completed"]


async def test_invalid_media_fails_at_once_and_discards_earlier_outputs(
    env: WorkflowEnvironment,
) -> None:
    def step(request: StepInput, queue: str) -> None:
        if request.step.step_id == "two":
            raise ApplicationError("bad input", type="InvalidMedia", non_retryable=True)

    fakes = Fakes(step=step)
    with pytest.raises(WorkflowFailureError):
        await run_job(env, fakes, has_webhook=True)
    assert [(s, a) for s, _, a in fakes.step_calls] == [("one", 1), ("two", 1)]
    assert fakes.discarded == [DiscardInput(fakes.discarded[0].job_id, ["jobs/x/one"])]
    assert fakes.webhooks == ["job.failed"]


async def test_a_cancel_during_finalize_waits_for_it_and_the_job_completes(
    env: WorkflowEnvironment,
) -> None:
    """Publishing outputs is the point of no return: a cancel that lands meanwhile loses,
    so no job ends ``cancelled`` with outputs published (or their bytes discarded)."""
    gate = asyncio.Event()
    fakes = Fakes(finalize_gate=gate)

    async def cancel_during_finalize(handle: WorkflowHandle) -> None:
        await gate.wait()
        await handle.cancel()

    try:
        result = await run_job(env, fakes, during=cancel_during_finalize)
    except WorkflowFailureError as failure:
        assert isinstance(failure.cause, CancelledError)
        ended = "cancelled"
    else:
        ended = result["status"]
    assert len(fakes.finalized) == 1  # the outputs were published...
    assert fakes.discarded == []  # ...and nothing published was discarded
    assert ended == "completed" and "cancelled" not in fakes.status_trail


async def test_reroute_sends_the_remaining_steps_to_the_cpu_pool(
    env: WorkflowEnvironment,
) -> None:
    step, first_running, release_first = held_first_step()
    fakes = Fakes(gpu_available=True, step=step)

    async def reroute(handle: WorkflowHandle) -> None:
        await first_running.wait()
        await handle.signal(MediaJobWorkflow.reroute, RerouteInput(pool="cpu"))
        await handle.signal(MediaJobWorkflow.reroute, RerouteInput(pool="tpu"))  # ignored
        release_first.set()

    result = await run_job(env, fakes, accelerator="gpu", gpu_worker=True, during=reroute)
    assert result["status"] == "completed"
    assert [(s, q) for s, q, _ in fakes.step_calls] == [("one", "gpu"), ("two", "cpu")]
