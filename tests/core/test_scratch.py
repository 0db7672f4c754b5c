"""Private scratch claims: a live worker's directory is kept, a dead one's removed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from core.scratch import ScratchClaim, sweep
from tests.conftest import REPO

HOLDER = """
import sys, time
from pathlib import Path
from core.scratch import ScratchClaim
claim = ScratchClaim(Path(sys.argv[1]))
(claim.path / "job" / "00-a1").mkdir(parents=True)
(claim.path / "job" / "00-a1" / "out.mp4").write_bytes(b"x" * 1000)
print(claim.path, flush=True)
time.sleep(600)
"""


def hold_claim(root: Path) -> tuple[subprocess.Popen, Path]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(root)], cwd=REPO,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, Path(proc.stdout.readline().strip())


def test_a_claim_is_private_and_released(tmp_path: Path) -> None:
    with ScratchClaim(tmp_path) as first, ScratchClaim(tmp_path) as second:
        assert first.path != second.path
        assert first.path.parent == second.path.parent == tmp_path.resolve()
        (first.path / "file").write_text("in use")
        assert sweep(tmp_path) == [], "live claims are never swept"
        assert (first.path / "file").exists()
    assert list(tmp_path.iterdir()) == []


def test_a_killed_workers_scratch_goes_when_the_next_one_starts(tmp_path: Path) -> None:
    alive, alive_dir = hold_claim(tmp_path)
    dead, dead_dir = hold_claim(tmp_path)
    try:
        dead.send_signal(signal.SIGKILL)
        dead.wait()
        assert (dead_dir / "job" / "00-a1" / "out.mp4").exists()
        with ScratchClaim(tmp_path) as claim:
            assert claim.removed == [dead_dir]
            assert not dead_dir.exists()
            assert (alive_dir / "job" / "00-a1" / "out.mp4").exists(), "a live sibling's"
    finally:
        alive.kill()
        alive.wait()


def test_legacy_job_directories_go_after_a_day_and_nothing_else(tmp_path: Path) -> None:
    old, fresh = tmp_path / str(uuid.uuid4()), tmp_path / str(uuid.uuid4())
    uploads = tmp_path / "uploads"
    for directory in (old, fresh, uploads):
        (directory / "00-a1").mkdir(parents=True)
        (directory / "00-a1" / "f").write_text("x")
    day_ago = time.time() - 2 * 24 * 3600
    for path in (old, old / "00-a1", old / "00-a1" / "f", uploads, uploads / "00-a1",
                 uploads / "00-a1" / "f"):
        os.utime(path, (day_ago, day_ago))
    assert sweep(tmp_path) == [old]
    assert fresh.exists() and uploads.exists()
    (tmp_path / "stray-file").write_text("not a directory")
    (tmp_path / "link").symlink_to(old.parent)
    assert sweep(tmp_path) == []


def test_a_claim_without_its_lock_file_is_left_for_a_minute(tmp_path: Path) -> None:
    starting = tmp_path / "worker-1-abcdef12"
    starting.mkdir()
    assert sweep(tmp_path) == []
    minute_ago = time.time() - 120
    os.utime(starting, (minute_ago, minute_ago))
    assert sweep(tmp_path) == [starting]


def test_sweeping_a_missing_root_is_harmless(tmp_path: Path) -> None:
    assert sweep(tmp_path / "nowhere") == []


def test_a_sibling_between_its_lock_file_and_its_lock_is_left_alone(tmp_path: Path) -> None:
    """A worker that has created its ``.lock`` but not yet locked it (its pid runs, the
    claim is fresh) must not lose its directory to a sibling starting at that instant;
    the same unlocked claim a minute later belongs to a dead process whose pid was
    reused, and goes."""
    starting = tmp_path / f"worker-{os.getpid()}-abcdef12"
    starting.mkdir()
    (starting / ".lock").touch()
    assert sweep(tmp_path) == []
    minute_ago = time.time() - 120
    for path in (starting / ".lock", starting):
        os.utime(path, (minute_ago, minute_ago))
    assert sweep(tmp_path) == [starting]
