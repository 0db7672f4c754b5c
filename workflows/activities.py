"""The activities the workflows call: one table of typed stubs, under their stable names.

Workflows call these references (``workflow.execute_activity(finalize_job, ...)``), so the
argument and result types are checked where the call is written, and workflows import
nothing from ``activities/`` (the sandbox stays light and the layers point one way: the
implementations depend on the workflows' types, never the reverse).

The worker registers the implementations in ``activities/`` under the same names;
``tests/workflows/test_activity_stubs.py`` proves that every stub has exactly one
implementation with the same name, argument type and result type, and that nothing is
registered without a stub. A stub body never runs.
"""

from __future__ import annotations

from temporalio import activity

from workflows.types import (
    DeleteUserInput,
    DiscardInput,
    FinalizeInput,
    ImportFailure,
    ImportInput,
    ImportResult,
    ImportWait,
    JobInput,
    OperationRecord,
    PreparedJob,
    PurgeInput,
    PurgeResult,
    ReconcileInput,
    StatusUpdate,
    StepInput,
    StepResult,
    WebhookInput,
)


def _stub(name: str) -> NotImplementedError:
    return NotImplementedError(f"{name} is a stub: the worker runs activities/'s implementation")


@activity.defn(name="prepare_job")
async def prepare_job(job: JobInput) -> PreparedJob:
    """Compile the job's plan and mark it processing (activities/prepare.py)."""
    raise _stub("prepare_job")


@activity.defn(name="run_ffmpeg_step")
async def run_ffmpeg_step(request: StepInput) -> StepResult:
    """One FFmpeg run on a CPU or GPU pool (activities/ffmpeg.py)."""
    raise _stub("run_ffmpeg_step")


@activity.defn(name="update_job_status")
async def update_job_status(update: StatusUpdate) -> None:
    """The job row's status, progress and error (activities/bookkeeping.py)."""
    raise _stub("update_job_status")


@activity.defn(name="record_operation")
async def record_operation(record: OperationRecord) -> None:
    """One operation-log row (activities/bookkeeping.py)."""
    raise _stub("record_operation")


@activity.defn(name="finalize_job")
async def finalize_job(request: FinalizeInput) -> list[str]:
    """Publish the kept outputs as files and complete the job (activities/bookkeeping.py)."""
    raise _stub("finalize_job")


@activity.defn(name="discard_outputs")
async def discard_outputs(request: DiscardInput) -> None:
    """Remove step outputs that must not outlive the job (activities/bookkeeping.py)."""
    raise _stub("discard_outputs")


@activity.defn(name="deliver_webhook")
async def deliver_webhook(request: WebhookInput) -> None:
    """POST the signed terminal event (activities/webhooks.py)."""
    raise _stub("deliver_webhook")


@activity.defn(name="purge_deleted_files")
async def purge_deleted_files(request: PurgeInput) -> PurgeResult:
    """One batch of soft-deleted files' bytes (activities/purge.py)."""
    raise _stub("purge_deleted_files")


@activity.defn(name="reconcile_quiet_jobs")
async def reconcile_quiet_jobs(request: ReconcileInput) -> int:
    """End the rows of jobs whose workflow closed outside mediaflow (activities/reconcile.py)."""
    raise _stub("reconcile_quiet_jobs")


@activity.defn(name="end_user_jobs")
async def end_user_jobs(request: DeleteUserInput) -> int:
    """Cancel a deleted user's active jobs and wait until they end (activities/accounts.py)."""
    raise _stub("end_user_jobs")


@activity.defn(name="remove_user_data")
async def remove_user_data(request: DeleteUserInput) -> int:
    """Remove a deleted user's stored objects, then their rows (activities/accounts.py)."""
    raise _stub("remove_user_data")


@activity.defn(name="import_file")
async def import_file(request: ImportInput) -> ImportResult:
    """Download a URL (the SSRF guard on every hop), probe it, store it (activities/imports.py)."""
    raise _stub("import_file")


@activity.defn(name="fail_import")
async def fail_import(request: ImportFailure) -> None:
    """Mark an import failed and drop anything it stored (activities/imports.py)."""
    raise _stub("fail_import")


@activity.defn(name="await_imports")
async def await_imports(request: ImportWait) -> None:
    """Return once a job's importing inputs are ready; fail if one failed
    (activities/imports.py)."""
    raise _stub("await_imports")


STUBS = [prepare_job, run_ffmpeg_step, update_job_status, record_operation, finalize_job,
         discard_outputs, deliver_webhook, purge_deleted_files, reconcile_quiet_jobs,
         end_user_jobs, remove_user_data, import_file, fail_import, await_imports]
