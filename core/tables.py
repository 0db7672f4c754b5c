"""Piccolo tables: the durable record of users, files, jobs and what ran.

Temporal holds the live state of a job; these rows hold what the API lists and
what outlives a workflow's retention. Each table names its enums (defined once in
``core.enums``, where code that must not import Piccolo finds them too).
"""

from __future__ import annotations

from piccolo.columns import (
    JSON,
    UUID,
    BigInt,
    Boolean,
    ForeignKey,
    Integer,
    Real,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.columns.defaults.uuid import UUID4
from piccolo.table import Table

from core.enums import FileKind, FileSource, FileStatus, JobStatus


class User(Table, tablename="mf_user"):
    id = UUID(primary_key=True, default=UUID4())
    email = Varchar(length=320, unique=True, index=True, help_text="Login email, unique")
    username = Varchar(length=32, unique=True, index=True, help_text="Login name, unique")
    hashed_password = Varchar(length=1024)
    is_active = Boolean(default=True)
    is_superuser = Boolean(default=False)
    is_verified = Boolean(default=False)
    settings = JSON(default={}, help_text="Per-user preferences and limits")
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
    deleted_at = Timestamptz(
        null=True, default=None,
        help_text="Set when deletion starts: the account is closed; DeleteUserWorkflow "
                  "then removes its jobs, bytes and rows")


class ApiKey(Table, tablename="mf_api_key"):
    id = UUID(primary_key=True, default=UUID4())
    user = ForeignKey(User, on_delete=OnDelete.cascade, index=True)
    name = Varchar(length=100)
    prefix = Varchar(length=16, index=True, help_text="Visible start of the key")
    key_hash = Varchar(length=128, unique=True, help_text="sha256 of the whole key")
    last_used_at = Timestamptz(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())


class RefreshToken(Table, tablename="mf_refresh_token"):
    id = UUID(primary_key=True, default=UUID4())
    user = ForeignKey(User, on_delete=OnDelete.cascade, index=True)
    token_hash = Varchar(length=128, unique=True)
    family_id = UUID(default=UUID4(), index=True, help_text="Rotation chain; reuse revokes it")
    expires_at = Timestamptz()
    revoked_at = Timestamptz(null=True, default=None)
    replaced_by = UUID(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())


class Job(Table, tablename="mf_job"):
    Status = JobStatus

    id = UUID(primary_key=True, default=UUID4())
    user = ForeignKey(User, on_delete=OnDelete.cascade, index=True)
    type = Varchar(length=32, index=True)
    status = Varchar(length=16, choices=Status, default=Status.pending, index=True)
    spec = JSON(default={})
    input_files = JSON(default=[], help_text="File ids the job reads")
    output_files = JSON(default=[], help_text="File ids the job produced")
    progress = JSON(default={})
    result = JSON(default={})
    error = JSON(null=True, default=None)
    retry_count = Integer(default=0)
    workflow_id = Varchar(length=64, index=True)
    idempotency_key = Varchar(length=255, null=True, default=None)
    priority = Integer(default=3, help_text="1 (first) to 5: the steps' task-queue priority")
    template_id = UUID(null=True, default=None,
                       help_text="The template the spec was expanded from, if any")
    created_at = Timestamptz(default=TimestamptzNow(), index=True)
    started_at = Timestamptz(null=True, default=None)
    completed_at = Timestamptz(null=True, default=None)
    updated_at = Timestamptz(default=TimestamptzNow())


class MediaFile(Table, tablename="mf_media_file"):
    Kind = FileKind
    Source = FileSource
    Status = FileStatus

    id = UUID(primary_key=True, default=UUID4())
    user = ForeignKey(User, on_delete=OnDelete.cascade, index=True)
    filename = Varchar(length=255, help_text="Sanitised display name")
    original_filename = Varchar(length=1024, help_text="As the client sent it; data only")
    size = BigInt(default=0)
    content_type = Varchar(length=127)
    kind = Varchar(length=16, choices=Kind, index=True)
    storage_key = Varchar(length=512, help_text="Server-generated object key")
    checksum_sha256 = Varchar(length=64)
    metadata = JSON(default={}, help_text="ffprobe summary (the public File.metadata)")
    probe = JSON(default={}, help_text="ffprobe's full JSON, for the job compiler")
    source = Varchar(length=16, choices=Source, default=Source.upload)
    job = ForeignKey(Job, on_delete=OnDelete.set_null, null=True, default=None, index=True)
    is_deleted = Boolean(default=False)
    deleted_at = Timestamptz(null=True, default=None)
    purged_at = Timestamptz(null=True, default=None)
    share_generation = Integer(
        default=0, help_text="Signed into share links; bumping it revokes every one of them")
    status = Varchar(length=16, choices=Status, default=Status.ready,
                     help_text="importing until a URL import is downloaded and probed")
    error = JSON(null=True, default=None, help_text="{code, message} of a failed import")
    source_url = Text(null=True, default=None, help_text="Where an import came from")
    created_at = Timestamptz(default=TimestamptzNow(), index=True)
    updated_at = Timestamptz(default=TimestamptzNow())


class Template(Table, tablename="mf_template"):
    """A job spec with ``{{variables}}`` (docs/API.md, "Templates"); ``public`` ones are
    house presets every user may run."""

    id = UUID(primary_key=True, default=UUID4())
    owner = ForeignKey(User, on_delete=OnDelete.cascade, index=True)
    name = Varchar(length=64, index=True, help_text="[a-z0-9-], unique per owner")
    description = Text(default="")
    spec = JSON(default={}, help_text="A JobSpec whose strings may hold {{variables}}")
    variables = JSON(default={}, help_text="name -> {type, default?, description?}")
    public = Boolean(default=False, index=True, help_text="Readable and runnable by everyone")
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class OperationLog(Table, tablename="mf_operation_log"):
    id = UUID(primary_key=True, default=UUID4())
    job = ForeignKey(Job, on_delete=OnDelete.cascade, index=True)
    step = Integer(default=0)
    step_id = Varchar(length=64, default="")
    operation_type = Varchar(length=32)
    pool = Varchar(length=8, default="cpu")
    attempt = Integer(default=1)
    started_at = Timestamptz(default=TimestamptzNow())
    duration = Real(null=True, default=None)
    success = Boolean(default=False)
    error_details = Text(null=True, default=None)
    speed = Real(null=True, default=None)
    argv = JSON(default=[])
    decoder = Varchar(length=16, default="cpu", help_text="cuda when NVDEC decoded the video")


class InstanceFact(Table, tablename="mf_instance_fact"):
    """A fact about the whole installation every process must agree on (``core.volume``:
    which local storage volume holds the files)."""

    key = Varchar(length=64, primary_key=True)
    value = Text(default="")
