"""Public views of stored rows: the ``Job`` of docs/API.md, shared by the API's answers
and the webhooks' bodies, so both always show the same shape."""

from __future__ import annotations

import datetime as dt
from typing import Any

from core.enums import PRIORITY_DEFAULT, JobStatus

PROGRESS_KEYS = ("percent", "step", "steps_done", "steps_total", "eta_seconds", "speed")


def public_progress(progress: dict | None, status: str) -> dict[str, Any]:
    progress = progress or {}
    view = {key: progress.get(key) for key in PROGRESS_KEYS}
    view["percent"] = 100.0 if status == JobStatus.completed else float(view["percent"] or 0.0)
    view["steps_done"] = int(view["steps_done"] or 0)
    view["steps_total"] = int(view["steps_total"] or 0)
    return view


def _error(error: dict | None) -> dict[str, str] | None:
    """``{code, message}``, both strings, whatever an older row or a reconcile stored."""
    if not error:
        return None
    return {"code": str(error.get("code") or "JobFailed"),
            "message": str(error.get("message") or "")}


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def job_public(row: dict[str, Any], live_progress: dict | None = None) -> dict[str, Any]:
    """``row`` is a Job row loaded with JSON decoded; ``live_progress`` the workflow's
    ``progress`` query while it runs (its status wins over the row's)."""
    status = row["status"]
    progress = row.get("progress") or {}
    if live_progress:
        status = live_progress.get("status") or status
        progress = live_progress
    return {
        "id": str(row["id"]),
        "type": row["type"],
        "status": status,
        "progress": public_progress(progress, status),
        "spec": row.get("spec") or {},
        "input_files": [str(f) for f in row.get("input_files") or []],
        "output_files": [str(f) for f in row.get("output_files") or []],
        "error": _error(row.get("error")),
        "retry_count": row.get("retry_count") or 0,
        "workflow_id": row["workflow_id"],
        "template_id": str(row["template_id"]) if row.get("template_id") else None,
        "priority": row.get("priority") or PRIORITY_DEFAULT,
        "created_at": _iso(row.get("created_at")),
        "started_at": _iso(row.get("started_at")),
        "completed_at": _iso(row.get("completed_at")),
    }
