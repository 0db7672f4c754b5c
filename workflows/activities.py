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

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

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

A = TypeVar("A")
R = TypeVar("R")
Activity = Callable[[A], Awaitable[R]]


def stub(name: str, argument: type, result: Any) -> Any:
    """An activity definition named ``name`` taking ``argument`` and giving ``result``,
    whose body never runs; the variable it is assigned to carries its static type."""
    async def never_runs(request: Any) -> Any:
        raise NotImplementedError(f"{name} is a stub: the worker runs activities/'s own")

    never_runs.__annotations__ = {"request": argument, "return": result}
    never_runs.__name__ = never_runs.__qualname__ = name
    return activity.defn(name=name)(never_runs)


# name: (argument) -> result                                   # implemented in activities/
prepare_job: Activity[JobInput, PreparedJob] = stub(              # prepare.py: compile the
    "prepare_job", JobInput, PreparedJob)                         # plan, mark processing
run_ffmpeg_step: Activity[StepInput, StepResult] = stub(          # ffmpeg.py: one FFmpeg run
    "run_ffmpeg_step", StepInput, StepResult)                     # on a CPU or GPU pool
update_job_status: Activity[StatusUpdate, list[str] | None] = stub(  # bookkeeping.py: the
    "update_job_status", StatusUpdate, list[str] | None)              # row's status, error
record_operation: Activity[OperationRecord, None] = stub(         # bookkeeping.py: one
    "record_operation", OperationRecord, None)                    # operation-log row
finalize_job: Activity[FinalizeInput, list[str]] = stub(          # bookkeeping.py: publish
    "finalize_job", FinalizeInput, list[str])                     # outputs, complete the job
discard_outputs: Activity[DiscardInput, None] = stub(             # bookkeeping.py: remove
    "discard_outputs", DiscardInput, None)                        # outputs that must not stay
deliver_webhook: Activity[WebhookInput, None] = stub(             # webhooks.py: the signed
    "deliver_webhook", WebhookInput, None)                        # terminal event
purge_deleted_files: Activity[PurgeInput, PurgeResult] = stub(    # purge.py: a batch of
    "purge_deleted_files", PurgeInput, PurgeResult)               # deleted files' bytes
reconcile_quiet_jobs: Activity[ReconcileInput, int] = stub(       # reconcile.py: end rows of
    "reconcile_quiet_jobs", ReconcileInput, int)                  # workflows closed outside
end_user_jobs: Activity[DeleteUserInput, int] = stub(             # accounts.py: cancel and
    "end_user_jobs", DeleteUserInput, int)                        # await a user's jobs
remove_user_data: Activity[DeleteUserInput, int] = stub(          # accounts.py: a deleted
    "remove_user_data", DeleteUserInput, int)                     # user's objects and rows
import_file: Activity[ImportInput, ImportResult] = stub(          # imports.py: download (the
    "import_file", ImportInput, ImportResult)                     # SSRF guard on every hop)
fail_import: Activity[ImportFailure, None] = stub(                # imports.py: mark an import
    "fail_import", ImportFailure, None)                           # failed, drop its bytes
await_imports: Activity[ImportWait, None] = stub(                 # imports.py: a job's wait
    "await_imports", ImportWait, None)                            # for its importing inputs


STUBS = [prepare_job, run_ffmpeg_step, update_job_status, record_operation, finalize_job,
         discard_outputs, deliver_webhook, purge_deleted_files, reconcile_quiet_jobs,
         end_user_jobs, remove_user_data, import_file, fail_import, await_imports]
