"""A user's stored files as jobs see them: the lookup the API and the workers share.

``POST /jobs`` (ownership, kinds, the plan) and the worker's ``prepare_job`` and step
activity read inputs through :func:`load_inputs`, so what the API approved is what runs.
"""

from __future__ import annotations

import uuid
from typing import Any

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
    rows = await MediaFile.select(
        MediaFile.id, MediaFile.kind, MediaFile.probe, MediaFile.metadata,
        MediaFile.storage_key, MediaFile.filename,
    ).where(
        MediaFile.id.is_in(wanted), MediaFile.user == uuid.UUID(str(user_id)),
        MediaFile.is_deleted.eq(False),
    ).output(load_json=True)
    return {str(row["id"]): row for row in rows}


def media_of(inputs: dict[str, dict[str, Any]]) -> dict[str, MediaInfo]:
    """What the plan compiler needs of each loaded input."""
    return {file_id: MediaInfo.from_stored(row["kind"], row.get("probe"), row.get("metadata"))
            for file_id, row in inputs.items()}
