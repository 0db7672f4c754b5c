"""The small dataclasses that cross the workflow/activity boundary.

One dataclass argument per activity and workflow; new fields get defaults so
recorded histories keep decoding. No media bytes here: storage keys only.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class JobInput:
    job_id: str
    user_id: str
    job_type: str
    accelerator: str = "auto"
    summary: str = ""
    has_webhook: bool = False


@dataclass
class StepSource:
    """Where one ffmpeg input comes from (a user's file or an earlier run's output) and the
    name it must have in the step's scratch directory."""

    placeholder: str
    filename: str
    file_id: str | None = None
    step_id: str | None = None


@dataclass
class StepSpec:
    """One FFmpeg run of the compiled plan, argv with placeholders (no server paths)."""

    index: int
    step_id: str
    op: str
    argv: list[str]
    sources: list[StepSource]
    output_ext: str
    output_kind: str = "video"
    scratch_files: dict[str, str] = field(default_factory=dict)
    gpu_capable: bool = False
    expected_seconds: float = 0.0
    weight: float = 1.0
    keep_output: bool = True
    output_filename: str = ""
    output_name: str = ""
    covers: list[str] = field(default_factory=list)
    video_inputs: list[str] = field(default_factory=list)


@dataclass
class PreparedJob:
    """The compiled plan; prepare_job also marks the job ``processing``."""

    steps: list[StepSpec]
    gpu_available: bool = False


@dataclass
class StepInput:
    job_id: str
    user_id: str
    step: StepSpec
    pool: str
    # storage keys of earlier steps' outputs, by step id
    earlier_outputs: dict[str, str] = field(default_factory=dict)


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


@dataclass
class StepProgress:
    """Sent by a running step to its workflow by signal, at most about once a second."""

    index: int
    percent: float
    speed: float | None = None
    attempt: int = 1


@dataclass
class StatusUpdate:
    job_id: str
    status: str
    progress: dict = field(default_factory=dict)
    error_code: str | None = None
    error_message: str | None = None
    retry_count: int = 0
    set_started: bool = False
    set_completed: bool = False


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
    intermediate_keys: list[str] = field(default_factory=list)
    retry_count: int = 0
    progress: dict = field(default_factory=dict)


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
