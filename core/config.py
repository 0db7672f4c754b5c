"""Settings shared by the API, the workers and the CLI (README.md, "Configuration").

Every value comes from a ``MEDIAFLOW_*`` environment variable or ``.env``.
``MEDIAFLOW_ENV=dev`` (what ``mediaflow dev`` sets) relaxes two things: a JWT
secret is generated once and kept in the data dir, and webhooks and URL imports may
target private addresses. Any other environment refuses to start without a strong
``MEDIAFLOW_JWT_SECRET``.
"""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

GIB = 1024**3
MIN_SECRET_LENGTH = 32
MIN_SECRET_DISTINCT_CHARS = 12
WEAK_SECRETS = {"secret", "changeme", "change-me", "password", "mediaflow", "jwt-secret"}


class WeakSecretError(ValueError):
    """The configured JWT secret is missing or too weak for a non-dev process."""


def secret_problem(secret: str | None) -> str | None:
    """Why ``secret`` is unfit for signing tokens, or None when it is fine."""
    if not secret:
        return "MEDIAFLOW_JWT_SECRET is not set"
    lowered = secret.lower()
    if any(lowered.startswith(weak) for weak in WEAK_SECRETS):
        return "MEDIAFLOW_JWT_SECRET is a well-known placeholder"
    if len(secret) < MIN_SECRET_LENGTH:
        return f"MEDIAFLOW_JWT_SECRET must be at least {MIN_SECRET_LENGTH} characters"
    if len(set(secret)) < MIN_SECRET_DISTINCT_CHARS:
        return "MEDIAFLOW_JWT_SECRET has too little variety (use `openssl rand -hex 32`)"
    return None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MEDIAFLOW_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    env: Literal["dev", "production", "test"] = "production"
    data_dir: Path = Path("./.mediaflow")
    database_url: str | None = None

    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"

    storage: Literal["local", "s3"] = "local"
    # A process's private working space (ffmpeg's inputs and outputs, uploads being
    # received); unset: <data_dir>/scratch. Each worker takes its own locked subdirectory
    # (core/scratch.py), so several may share this directory and a dead one's leftovers
    # are removed by the next to start.
    scratch_dir: Path | None = None
    s3_endpoint_url: str | None = None
    s3_bucket: str = "mediaflow"
    s3_access_key: str | None = None
    s3_secret_key: SecretStr | None = None
    s3_region: str = "us-east-1"
    s3_presign: bool = False

    jwt_secret: SecretStr | None = None
    access_token_seconds: int = 30 * 60
    refresh_token_seconds: int = 7 * 24 * 3600

    max_upload_bytes: int = Field(default=2 * GIB, gt=0)
    user_quota_bytes: int = Field(default=10 * GIB, gt=0)
    max_media_seconds: float = Field(default=4 * 3600, gt=0)
    max_pixels: int = Field(default=8192 * 8192, gt=0)
    webhook_allow_private: bool | None = None
    # URL imports (POST /files/import): whether a URL or a redirect may lead to a private,
    # loopback or link-local address (None: only in dev), and how long one download may
    # take in all (its size is capped by max_upload_bytes and the quota)
    import_allow_private: bool | None = None
    import_timeout_seconds: float = Field(default=3600, gt=0, le=24 * 3600)
    max_active_jobs_per_user: int = Field(default=10, gt=0)
    purge_retention_seconds: float = Field(default=24 * 3600, ge=0)
    purge_interval_seconds: float = Field(default=3600, gt=0)

    # Rate limits, in the ``limits`` library's notation ("10/minute", "5 per 30 seconds"):
    # failed logins per client IP and per account (and registrations per IP), and
    # authenticated requests per user. Counted in ``rate_limit_storage``: ``memory://`` is
    # per process; a shared store makes them global across API processes.
    rate_limit_login: str = "10/minute"
    rate_limit_requests: str = "600/minute"
    rate_limit_storage: str = "memory://"

    # The externally visible base URL (scheme, host, optional path prefix) of the API, used
    # in share links; unset: the base URL of the request that creates the link.
    public_url: str | None = None

    # Browser apps on these origins (comma-separated, "https://app.example.com") may call
    # /api/v1 with credentials (api/cors.py); unset: none, or in dev any local origin
    # (http://localhost:<any port>, 127.0.0.1, [::1]). "*" is refused: browsers never send
    # credentials to a wildcard, and echoing every origin back would let any site in.
    cors_origins: str | None = None

    # The HTTP server's patience (api/server.py, api/guard.py): headers must be complete
    # within http_header_timeout seconds of the connection (or of the request's first
    # byte); a body may pause at most http_body_timeout between chunks, and a JSON body
    # must arrive whole within it; past http_max_connections open connections the
    # oldest idle or half-sent one is closed to let a new one in.
    http_header_timeout: float = Field(default=10.0, gt=0, le=300)
    http_body_timeout: float = Field(default=30.0, gt=0, le=3600)
    http_max_connections: int = Field(default=1000, ge=10, le=1_000_000)

    # Encoder threads per ffmpeg run; 0: the worker shares its cores among the runs in
    # flight (docs/OPERATIONS.md, "Worker slots").
    ffmpeg_threads: int = Field(default=0, ge=0, le=256)

    log_level: str = "INFO"
    # text: human lines; json: one object per line with request, user, job and workflow ids
    # (core/logs.py), for a log shipper
    log_format: Literal["text", "json"] = "text"

    @field_validator("scratch_dir", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value  # .env.example's "MEDIAFLOW_SCRATCH_DIR="

    @field_validator("rate_limit_login", "rate_limit_requests")
    @classmethod
    def _parseable_limit(cls, value: str) -> str:
        from limits import parse  # here: the library costs every CLI call ~50 ms to import

        parse(value)  # raises ValueError, so a typo stops the process at start
        return value

    @field_validator("rate_limit_storage")
    @classmethod
    def _known_limit_storage(cls, value: str) -> str:
        if value.split("://", 1)[0] not in ("memory", "redis", "rediss"):
            raise ValueError("must be memory:// or a redis:// URI")
        return value

    @field_validator("public_url")
    @classmethod
    def _absolute_http_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        parsed = urlsplit(value)
        if parsed.scheme not in ("http", "https") or not parsed.netloc or parsed.query \
                or parsed.fragment:
            raise ValueError("must be an absolute http(s) URL without query or fragment")
        return value.rstrip("/")

    @field_validator("cors_origins")
    @classmethod
    def _explicit_origins(cls, value: str | None) -> str | None:
        origins = [o.strip() for o in (value or "").split(",") if o.strip()]
        for origin in origins:
            if "*" in origin:
                raise ValueError("'*' cannot be allowed together with credentials: list the "
                                 "origins (https://app.example.com,https://admin.example.com)")
            parsed = urlsplit(origin)
            if parsed.scheme not in ("http", "https") or not parsed.netloc or \
                    parsed.path not in ("", "/") or parsed.query or parsed.fragment or \
                    "@" in parsed.netloc:
                raise ValueError(f"{origin!r} is not an origin (scheme://host[:port])")
        return ",".join(o.rstrip("/") for o in origins) or None

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip().rstrip("/") for o in (self.cors_origins or "").split(",") if o.strip()]

    @model_validator(mode="after")
    def _dev_defaults(self) -> Settings:
        if self.webhook_allow_private is None:
            self.webhook_allow_private = self.env == "dev"
        if self.import_allow_private is None:
            self.import_allow_private = self.env == "dev"
        return self

    @property
    def is_dev(self) -> bool:
        return self.env == "dev"

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'mediaflow.sqlite').resolve()}"

    @property
    def is_postgres(self) -> bool:
        return self.resolved_database_url.startswith(("postgres://", "postgresql://"))

    @property
    def local_storage_root(self) -> Path:
        return (self.data_dir / "storage").resolve()

    @property
    def scratch_root(self) -> Path:
        return (self.scratch_dir or self.data_dir / "scratch").resolve()

    def jwt_secret_value(self) -> str:
        """The signing secret; generated and persisted in dev, validated elsewhere."""
        configured = self.jwt_secret.get_secret_value() if self.jwt_secret else None
        if self.is_dev and not configured:
            return _dev_secret(self.data_dir)
        problem = secret_problem(configured)
        if problem:
            raise WeakSecretError(problem)
        assert configured is not None
        return configured

    def check_startup(self) -> None:
        """Raise when this process must not start with this configuration."""
        self.jwt_secret_value()


@lru_cache(maxsize=8)
def _dev_secret(data_dir: Path) -> str:
    """The dev secret kept in the data dir (read once per process)."""
    path = data_dir / "jwt_secret"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32)
    path.touch(mode=0o600)
    path.write_text(value)
    return value


@lru_cache
def get_settings() -> Settings:
    return Settings()
