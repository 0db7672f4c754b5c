"""The vocabularies shared by every room: job statuses, file kinds and sources, pools.

One definition each. The Piccolo tables use them as ``choices``, the API as query and
response types, the workflow and activities as values; a status written anywhere else
as a bare string is a bug. Plain ``StrEnum``: members compare and serialise as their
string values, so rows, JSON bodies and Temporal payloads keep the same words.
"""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    pending = "pending"
    processing = "processing"
    paused = "paused"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"


#: A job in one of these has ended; nothing changes it any more.
TERMINAL_STATUSES = frozenset({JobStatus.completed, JobStatus.failed, JobStatus.cancelled})
#: A job in one of these counts against the user's concurrent-job limit.
ACTIVE_STATUSES = frozenset({JobStatus.pending, JobStatus.processing, JobStatus.paused})


class FileKind(StrEnum):
    video = "video"
    audio = "audio"
    image = "image"
    subtitle = "subtitle"
    package = "package"  # a job's set of files: an HLS/DASH package, thumbnails, sprites


class FileSource(StrEnum):
    upload = "upload"
    job_output = "job_output"
    imported = "import"  # POST /files/import: downloaded from a URL


class FileStatus(StrEnum):
    """Whether a file's bytes are there: an import is ``importing`` until it is downloaded
    and probed (then ``ready``) or gives up (``failed``, with an error)."""

    ready = "ready"
    importing = "importing"
    failed = "failed"


class Pool(StrEnum):
    """Worker pools; each polls its own FFmpeg task queue."""

    cpu = "cpu"
    gpu = "gpu"


#: Job priorities (docs/API.md, "Priorities"): 1 starts first, 5 last, 3 unless asked.
#: Temporal's task-queue priority keys use the same range and default.
PRIORITY_HIGHEST, PRIORITY_DEFAULT, PRIORITY_LOWEST = 1, 3, 5
