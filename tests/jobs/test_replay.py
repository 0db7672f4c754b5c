"""Determinism: recorded histories of every job type, every housekeeping workflow and the
account deletion replay against today's workflows."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from activities.worker import WORKFLOW_RUNNER
from workflows.accounts import DeleteUserWorkflow
from workflows.imports import ImportFileWorkflow
from workflows.media_job import MediaJobWorkflow
from workflows.purge import PurgeDeletedFilesWorkflow
from workflows.reconcile import ReconcileJobsWorkflow

HISTORIES = sorted((Path(__file__).resolve().parent.parent / "histories").glob("*.json"))
REQUIRED = {
    "join", "text_overlay", "audio_overlay", "combined_fused", "combined_stepwise",  # types
    "cancelled", "cancelled_after_step", "paused", "paused_after_last_step", "failed",
    "webhook",  # endings and controls
    "purge", "reconcile",  # housekeeping schedules
    "delete_user",  # account deletion
}
REQUIRED |= {f"{name}_v2" for name in REQUIRED - {"paused_after_last_step"}}
"""v2: bookkeeping as local activities (``LOCAL_BOOKKEEPING``); the unsuffixed ones were
recorded before it, and both generations must replay."""
REQUIRED |= {"import_file_v2",  # URL imports
             "waited_for_import_v2"}  # a job that waited for one (``WAIT_FOR_IMPORTS``)
REQUIRED |= {f"{name}_v3" for name in (
    "join", "text_overlay", "audio_overlay", "combined_fused", "combined_stepwise",
    "cancelled", "cancelled_after_step", "paused", "failed", "webhook")}
"""v3: a step writes its own success row in the operation log (``STEP_LOGS_ITS_SUCCESS``)."""
REQUIRED |= {f"{name}_v4" for name in (
    "join", "text_overlay", "audio_overlay", "combined_fused", "combined_stepwise",
    "cancelled", "cancelled_after_step", "paused", "failed", "webhook", "waited_for_import")}
"""v4: the last step publishes the outputs (``LAST_STEP_PUBLISHES``), and one patch asked at
the start stands for every earlier one (``EVERY_PATCH_ABOVE``)."""
WORKFLOWS = [MediaJobWorkflow, PurgeDeletedFilesWorkflow, ReconcileJobsWorkflow,
             DeleteUserWorkflow, ImportFileWorkflow]


def test_every_job_type_has_a_recorded_history() -> None:
    assert REQUIRED <= {path.stem for path in HISTORIES}


RUNNERS = {"full-sandbox": {}, "production": {"workflow_runner": WORKFLOW_RUNNER}}
"""Under the full sandbox (which re-imports the workflow modules per run and would catch
state leaking between runs) and under the runner the workers use."""


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays(path: Path, runner: str) -> None:
    history = WorkflowHistory.from_json(f"job-{path.stem}", path.read_text())
    replayer = Replayer(workflows=WORKFLOWS, **RUNNERS[runner])
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
