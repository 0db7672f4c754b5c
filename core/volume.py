"""Refuse ``local`` storage that a process cannot share with the others.

With ``MEDIAFLOW_STORAGE=local`` every API process and worker must see one and the same
directory (``<data dir>/storage``): a worker on another host, or with another data dir,
would fail every step on a missing input. The first process to start writes a random id
into ``<storage>/.mediaflow-volume`` and records it in the database; every process that
starts later compares its own marker file with the recorded id and refuses to start,
with a message saying why, when they differ or its marker is missing. S3 storage is
shared by construction and is not checked.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from core.config import Settings
from core.tables import InstanceFact

MARKER = ".mediaflow-volume"
FACT = "local_storage_volume"


class StorageNotShared(RuntimeError):
    """This process's local storage is not the installation's."""


def _read(marker: Path) -> str | None:
    try:
        return marker.read_text(encoding="ascii").strip() or None
    except (FileNotFoundError, UnicodeDecodeError):
        return None


async def check_local_volume(settings: Settings) -> None:
    """Raise :class:`StorageNotShared` unless this process's local storage directory is the
    one the installation's files are in (a no-op for S3 storage)."""
    if settings.storage != "local":
        return
    root = settings.local_storage_root
    marker = root / MARKER
    recorded = await InstanceFact.select(InstanceFact.value).where(
        InstanceFact.key == FACT).first()
    if recorded is None:
        mine = _read(marker)
        if mine is None:
            mine = uuid.uuid4().hex
            root.mkdir(parents=True, exist_ok=True)
            marker.write_text(mine + "\n", encoding="ascii")
        # two processes starting at once: the first insert wins, the second reads it
        await InstanceFact.insert(InstanceFact(key=FACT, value=mine)).on_conflict(
            target=InstanceFact.key, action="DO NOTHING")
        recorded = await InstanceFact.select(InstanceFact.value).where(
            InstanceFact.key == FACT).first()
        assert recorded is not None
    expected, found = recorded["value"], _read(marker)
    if found != expected:
        seen = f"holds volume {found}" if found else "has no volume marker"
        raise StorageNotShared(
            f"MEDIAFLOW_STORAGE=local, but this process's storage directory {root} {seen}, "
            f"not the installation's volume {expected} (the files the API stored are "
            f"elsewhere). Processes on several hosts need MEDIAFLOW_STORAGE=s3; on one host, "
            f"give every process the same MEDIAFLOW_DATA_DIR. If this directory really is "
            f"the installation's storage (restored from a backup, say), write {expected} "
            f"into {marker}.")
