"""The small dataclasses that cross the workflow/activity boundary.

One dataclass argument per activity and workflow; new fields get defaults so
recorded histories keep decoding (unknown keys in old payloads are ignored). No media
bytes here: storage keys only. A step is the compiler's own :class:`PlanStep`, carried
as it is from ``prepare_job`` to ``run_ffmpeg_step``.

The annotations here (and in ``core.plan.model``) are types, not strings: no
``from __future__ import annotations``. Temporal's data converter calls
``typing.get_type_hints`` on every payload it decodes into one of these classes, and a
string annotation is evaluated again each time: 164 µs for a ``PlanStep`` instead of 35.
So a class is defined after the classes its fields name.
"""


from dataclasses import dataclass, field

from core.plan.model import PlanStep


@dataclass
class JobInput:
    job_id: str
    user_id: str
    job_type: str
    accelerator: str = "auto"
    summary: str = ""
    has_webhook: bool = False
    priority: int = 3  # 1 (first) to 5; its steps carry it to their task queue
    # inputs still being imported at submit time: the job waits for them first
    importing_files: list[str] = field(default_factory=list)


@dataclass
class PreparedJob:
    """The compiled plan; prepare_job also marks the job ``processing``."""

    steps: list[PlanStep]
    gpu_available: bool = False


@dataclass
class StepResult:
    index: int
    step_id: str
    storage_key: str
    size: int
    sha256: str
    metadata: dict
    attempt: int = 1
    wall_seconds: float = 0.0
    speed: float | None = None
    pool: str = "cpu"
    argv: list[str] = field(default_factory=list)
    kind: str = "video"
    content_type: str = "application/octet-stream"
    probe: dict = field(default_factory=dict)
    decoder: str = "cpu"  # "cuda" when NVDEC decoded the video
    logged: bool = False
    """The step wrote its own success row in the operation log (the workflow then leaves it
    out: ``STEP_LOGS_ITS_SUCCESS``); False from steps that could not, or predate it."""
    published: list[str] | None = None
    """The job's output File ids, when this last step published them and completed the job
    (``StepInput.finalize``); None when it was not asked to, or could not (the workflow's
    ``finalize_job`` then does)."""


@dataclass
class StepProgress:
    """Sent by a running step to its workflow by signal, at most about once a second."""

    index: int
    percent: float
    speed: float | None = None


@dataclass
class StatusUpdate:
    job_id: str
    status: str
    progress: dict = field(default_factory=dict)
    error_code: str | None = None
    error_message: str | None = None
    retry_count: int = 0
    set_completed: bool = False
    set_started: bool = False
    """Sent only by workflows started before ``prepare_job`` recorded the start; a
    task they scheduled may still be delivered after an upgrade."""


@dataclass
class OperationRecord:
    job_id: str
    step: int
    step_id: str
    operation_type: str
    pool: str
    success: bool
    attempt: int = 1
    duration: float | None = None
    speed: float | None = None
    error_details: str | None = None
    argv: list[str] = field(default_factory=list)
    started_at: str | None = None
    decoder: str = "cpu"


@dataclass
class FinalizeInput:
    job_id: str
    user_id: str
    kept: list[StepResult]
    intermediate_keys: list[str] = field(default_factory=list)  # removed once kept is published
    retry_count: int = 0
    progress: dict = field(default_factory=dict)


@dataclass
class StepInput:
    job_id: str
    user_id: str
    step: PlanStep
    pool: str
    # storage keys of earlier steps' outputs, by step id
    earlier_outputs: dict[str, str] = field(default_factory=dict)
    priority: int = 3  # the job's: the task-queue priority key this step was scheduled with
    finalize: FinalizeInput | None = None
    """Set for a job's last step (patch ``last-step-publishes``): what ``finalize_job`` would
    be given, but for this step's own result. The step then publishes the job's outputs and
    completes it itself (``StepResult.published``)."""


@dataclass
class DiscardInput:
    """Storage keys of step outputs that must not outlive the job (intermediates, or every
    output of a job that failed or was cancelled)."""

    job_id: str
    keys: list[str] = field(default_factory=list)
    intermediate_keys: list[str] = field(default_factory=list)
    """The earlier ``FinalizeInput``'s name for the keys: a discard task scheduled before
    an upgrade decodes into this, and its keys are deleted all the same."""


@dataclass
class WebhookInput:
    job_id: str
    event: str


@dataclass
class RerouteInput:
    pool: str


@dataclass
class PurgeInput:
    retention_seconds: float = 86400.0
    batch_size: int = 200


@dataclass
class PurgeResult:
    files: int = 0
    bytes: int = 0


@dataclass
class ReconcileInput:
    quiet_seconds: float = 60.0
    limit: int = 200


@dataclass
class DeleteUserInput:
    user_id: str
    grace_seconds: float = 300.0  # cancelled jobs get this long to end before termination


@dataclass
class DeleteUserResult:
    jobs_ended: int = 0
    objects_removed: int = 0


@dataclass
class ImportInput:
    """One URL import (docs/API.md, "Import from a URL"). The limits are the API's when it
    accepted the request; a worker holds them to its own settings too (the stricter wins)."""

    file_id: str
    user_id: str
    url: str
    filename: str = ""
    max_bytes: int = 0
    timeout_seconds: float = 3600.0
    allow_private: bool = False


@dataclass
class ImportResult:
    file_id: str
    size: int = 0
    kind: str = ""
    sha256: str = ""
    redirects: int = 0


@dataclass
class ImportFailure:
    """Why an import gave up: recorded on the file (``status: failed``, ``error``)."""

    file_id: str
    code: str
    message: str


@dataclass
class ImportWait:
    """A job's inputs that were importing when it was submitted."""

    job_id: str
    user_id: str
    file_ids: list[str] = field(default_factory=list)
