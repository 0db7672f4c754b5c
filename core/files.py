"""A user's stored files as jobs see them: the lookup the API and the workers share.

``POST /jobs`` (ownership, kinds, the plan) and the worker's ``prepare_job`` and step
activity read inputs through :func:`load_inputs`, so what the API approved is what runs.

:func:`files_locked` is how a job and a file deletion exclude each other
(docs/SECURITY.md #24): a submit inserts its job row, and a delete checks for active jobs
and marks the file deleted, each inside a transaction holding the file rows' locks —
``SELECT … FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` (one writer at a time) on
SQLite. Whichever comes second sees what the first committed, so a file is never
deleted under a job that was just accepted.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from piccolo.engine.sqlite import SQLiteEngine

from core.db import placeholders, select_where, write_transaction
from core.mediainfo import MediaInfo
from core.tables import MediaFile


async def load_inputs(user_id: uuid.UUID | str, file_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Live files of ``user_id`` among ``file_ids``: id → row (kind, probe, metadata, key).
    Ids that are not UUIDs, are someone else's or are deleted are simply absent."""
    wanted = []
    for file_id in file_ids:
        try:
            wanted.append(uuid.UUID(file_id))
        except ValueError:
            continue
    if not wanted:
        return {}
    rows = await select_where(
        MediaFile, f'"id" IN ({placeholders(len(wanted))}) AND "user" = {{}} AND '
                   '"is_deleted" = {}',
        *wanted, uuid.UUID(str(user_id)), False,
        columns=("id", "kind", "probe", "metadata", "storage_key", "filename", "status",
                 "error"))
    return {str(row["id"]): row for row in rows}


def media_of(inputs: dict[str, dict[str, Any]]) -> dict[str, MediaInfo]:
    """What the plan compiler needs of each loaded input."""
    return {file_id: MediaInfo.from_stored(row["kind"], row.get("probe"), row.get("metadata"))
            for file_id, row in inputs.items()}


@asynccontextmanager
async def files_locked(user_id: uuid.UUID | str, file_ids: list[str]) -> AsyncIterator[set[str]]:
    """A transaction holding the locks of ``user_id``'s live files among ``file_ids``;
    yields the ids that are live. Rows written inside it commit with it."""
    wanted = sorted({uuid.UUID(f) for f in file_ids})  # one lock order: no deadlocks
    engine = MediaFile._meta.db
    async with write_transaction(engine):
        query = MediaFile.select(MediaFile.id).where(
            MediaFile.id.is_in(wanted), MediaFile.user == uuid.UUID(str(user_id)),
            MediaFile.is_deleted.eq(False),
        ).order_by(MediaFile.id)
        if not isinstance(engine, SQLiteEngine):
            query = query.lock_rows("UPDATE")
        rows = await query if wanted else []
        yield {str(row["id"]) for row in rows}
