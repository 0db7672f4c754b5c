"""A worker's private scratch directory, and the removal of a dead worker's leftovers.

Every worker process takes its own subdirectory of the scratch root
(``MEDIAFLOW_SCRATCH_DIR``, by default ``<data dir>/scratch``) named ``worker-…`` and
holds an exclusive ``flock`` on a ``.lock`` file inside it for as long as it lives. The
kernel drops that lock when the process dies, however it dies (``kill -9`` included),
so a worker starting on the same scratch root can tell a live sibling's directory (the
lock is held) from a dead one's (it can take the lock) and removes the dead ones. Several
workers may therefore share one scratch root, as ``mediaflow dev``'s CPU and GPU workers
do, without ever touching each other's files.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import time
import uuid
from pathlib import Path

log = logging.getLogger("mediaflow.scratch")

PREFIX = "worker-"
LOCK = ".lock"
STARTING_SECONDS = 60
"""How long a claim may look unlocked while its process is still starting."""
LEGACY_GRACE_SECONDS = 24 * 3600
"""Job directories of the layout before claims (``<root>/<job id>``), left by an older
worker, are removed once untouched for this long: no step runs for a day in silence."""


class ScratchClaim:
    """One process's claimed directory; ``release()`` removes it."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.removed = sweep(self.root)
        self.path = self.root / f"{PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.path.mkdir()
        self._lock = os.open(self.path / LOCK, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def release(self) -> None:
        if self._lock < 0:
            return
        shutil.rmtree(self.path, ignore_errors=True)
        os.close(self._lock)
        self._lock = -1

    def __enter__(self) -> ScratchClaim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def sweep(root: Path) -> list[Path]:
    """Remove the claimed directories of processes that are gone (their lock is free) and
    legacy job directories untouched for a day; returns what was removed."""
    removed: list[Path] = []
    try:
        entries = list(root.iterdir())
    except FileNotFoundError:
        return removed
    for entry in entries:
        if entry.is_symlink() or not entry.is_dir():
            continue
        if entry.name.startswith(PREFIX):
            if _owner_is_gone(entry):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
        elif _is_legacy_job_dir(entry):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    if removed:
        log.info("removed %d scratch directories left by workers that died: %s",
                 len(removed), ", ".join(p.name for p in removed))
    return removed


def _owner_is_gone(directory: Path) -> bool:
    """Whether the process that claimed ``directory`` has died: its lock is free, and
    it is not a sibling caught between creating its lock file and locking it (its pid,
    named in the directory, still runs here and the claim is seconds old)."""
    try:
        fd = os.open(directory / LOCK, os.O_RDWR)
    except FileNotFoundError:
        # claimed but the lock not yet created (a sibling starting this very moment),
        # or a crash between the two: only the second lives longer than an instant
        return _untouched_for(directory, STARTING_SECONDS)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False  # a live process holds it
    finally:
        os.close(fd)  # closing drops the lock we may just have taken
    return not (_runs_here(directory) and not _untouched_for(directory, STARTING_SECONDS))


def _runs_here(directory: Path) -> bool:
    """Whether the pid in ``worker-<pid>-<rand>`` is a live process in this pid namespace
    (a worker in another container sharing the directory may not be visible)."""
    try:
        pid = int(directory.name.removeprefix(PREFIX).split("-", 1)[0])
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


def _is_legacy_job_dir(directory: Path) -> bool:
    try:
        uuid.UUID(directory.name)
    except ValueError:
        return False
    return _untouched_for(directory, LEGACY_GRACE_SECONDS)


def _untouched_for(path: Path, seconds: float) -> bool:
    try:
        newest = max((p.stat().st_mtime for p in [path, *path.rglob("*")]), default=0.0)
    except FileNotFoundError:
        return False
    return time.time() - newest > seconds
