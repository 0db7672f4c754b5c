"""Logging of every mediaflow process: plain text, or one JSON object per line with
``MEDIAFLOW_LOG_FORMAT=json`` (docs/OPERATIONS.md, "Logs").

A JSON line carries the record (``time``, ``level``, ``logger``, ``message``, ``exception``)
and whatever identifies the work it belongs to:

* in the API, ``request_id`` (also the ``X-Request-ID`` answered) and, once the
  caller is authenticated, ``user_id`` — bound per request with :func:`push_context` and
  :func:`bind`;
* in a worker's activity, ``workflow_id``, ``job_id`` (of a ``job-<id>`` workflow),
  ``activity`` and ``attempt``; in workflow code, ``workflow_id`` and ``job_id``
  (Temporal's ``workflow.logger`` passes them along);
* the ``extra={...}`` of the call (the API's access line adds ``method``, ``path``,
  ``status``, ``duration_ms``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
from collections.abc import Iterator
from contextvars import ContextVar, Token
from typing import Any, Literal

from temporalio import activity

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

_context: ContextVar[dict[str, Any] | None] = ContextVar("mediaflow_log_context", default=None)
# LogRecord's own attributes: anything else on a record came from `extra`
_RECORD_FIELDS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "taskName",
    "color_message",  # uvicorn's copy of the message with terminal colour codes
}


def push_context(**fields: Any) -> Token[dict[str, Any] | None]:
    """Fields every later log line of this context carries (added to the current ones),
    until :func:`pop_context`. The dict is shared with everything that runs meanwhile, so
    :func:`bind` from deep inside (a dependency, a copied context) reaches the lines
    logged after it."""
    return _context.set({**(_context.get() or {}), **fields})


def pop_context(token: Token[dict[str, Any] | None]) -> None:
    _context.reset(token)


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """:func:`push_context` for a block."""
    token = push_context(**fields)
    try:
        yield
    finally:
        pop_context(token)


def bind(**fields: Any) -> None:
    """Add fields to the current :func:`log_context` (nothing outside one)."""
    current = _context.get()
    if current is not None:
        current.update(fields)


def _job_id(workflow_id: str | None) -> str | None:
    return workflow_id[4:] if workflow_id and workflow_id.startswith("job-") else None


def context_of(record: logging.LogRecord) -> dict[str, Any]:
    """The identifying fields of ``record``: bound context, Temporal's, its extras."""
    fields: dict[str, Any] = dict(_context.get() or {})
    if activity.in_activity():
        info = activity.info()
        fields.update(workflow_id=info.workflow_id, activity=info.activity_type,
                      attempt=info.attempt)
    for key, value in vars(record).items():
        if key == "temporal_workflow" and isinstance(value, dict):
            fields.setdefault("workflow_id", value.get("workflow_id"))
            fields.setdefault("workflow_type", value.get("workflow_type"))
        elif key == "temporal_activity" and isinstance(value, dict):
            fields.setdefault("workflow_id", value.get("workflow_id"))
            fields.setdefault("activity", value.get("activity_type"))
            fields.setdefault("attempt", value.get("attempt"))
        elif key not in _RECORD_FIELDS and not key.startswith("_"):
            fields[key] = value
    job_id = _job_id(fields.get("workflow_id"))
    if job_id and "job_id" not in fields:
        fields["job_id"] = job_id
    return {key: value for key, value in fields.items() if value is not None}


class JsonFormatter(logging.Formatter):
    """One JSON object per line; never raises on an odd value (``str()`` of it)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(context_of(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def formatter(fmt: LogFormat) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT)


def configure(level: str, fmt: LogFormat) -> None:
    """The root logger of a worker or CLI process: one stderr handler in ``fmt``."""
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(fmt))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


def uvicorn_log_config(level: str, fmt: LogFormat) -> dict[str, Any]:
    """uvicorn's ``log_config``: its loggers and the root (mediaflow's) through one
    handler in ``fmt``, in every API process."""
    factory = "core.logs.JsonFormatter" if fmt == "json" else "logging.Formatter"
    style: dict[str, Any] = {"()": factory}
    if fmt != "json":
        style["fmt"] = TEXT_FORMAT
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": style},
        "handlers": {"default": {"class": "logging.StreamHandler", "formatter": "default",
                                 "stream": "ext://sys.stderr"}},
        "root": {"handlers": ["default"], "level": level.upper()},
        "loggers": {name: {"handlers": [], "level": level.upper(), "propagate": True}
                    for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
    }
