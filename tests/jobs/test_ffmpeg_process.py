"""An ffmpeg run is tied to the worker that started it: SIGKILL the worker and the run dies
too, whether the parent-death signal comes from ``setpriv`` or from the prctl fallback."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from activities import ffmpeg
from tests.conftest import REPO

PARENT = textwrap.dedent('''
    import subprocess, sys, time
    from activities import ffmpeg
    if sys.argv[1] == "fallback":
        ffmpeg.setpriv_path = lambda: None
    argv, preexec = ffmpeg.tied_to_worker(ffmpeg.lowered(["sleep", "60"]))  # as a step
    child = subprocess.Popen(argv, preexec_fn=preexec, start_new_session=True)
    print(child.pid, " ".join(argv), flush=True)
    time.sleep(60)
''')


def test_setpriv_sets_the_parent_death_signal_without_a_preexec_fn() -> None:
    if ffmpeg.setpriv_path() is None:
        pytest.skip("this machine's setpriv cannot set a parent-death signal")
    argv, preexec = ffmpeg.tied_to_worker(["ffmpeg", "-version"])
    assert preexec is None  # so Python starts the child with vfork
    assert argv[1:] == ["--pdeathsig", "KILL", "--", "ffmpeg", "-version"]


def test_without_setpriv_the_prctl_runs_before_exec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ffmpeg, "setpriv_path", lambda: None)
    argv, preexec = ffmpeg.tied_to_worker(["ffmpeg", "-version"])
    assert argv == ["ffmpeg", "-version"] and preexec is ffmpeg._die_with_worker


@pytest.mark.parametrize("way", ["setpriv", "fallback"])
def test_a_run_dies_with_its_sigkilled_parent(way: str) -> None:
    if way == "setpriv" and ffmpeg.setpriv_path() is None:
        pytest.skip("this machine's setpriv cannot set a parent-death signal")
    parent = subprocess.Popen([sys.executable, "-c", PARENT, way], cwd=REPO,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        pid_text, argv = parent.stdout.readline().split(" ", 1)
        assert ("--pdeathsig" in argv) == (way == "setpriv") and argv.strip().endswith("sleep 60")
        child = psutil.Process(int(pid_text))
        deadline = time.monotonic() + 10  # until setpriv and nice have exec'd sleep
        while child.name() != "sleep" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert child.name() == "sleep"
    finally:
        parent.kill()
        parent.wait()
    gone, alive = psutil.wait_procs([child], timeout=10)
    for process in alive:
        process.kill()
    assert not alive, "the run outlived its SIGKILLed parent"


def test_a_run_is_nicer_than_its_worker() -> None:
    """ffmpeg yields the CPU to the control plane (activities/ffmpeg.py FFMPEG_NICENESS):
    ``nice`` execs it under the same pid, inside setpriv's, so the kill above still
    reaches it."""
    if ffmpeg.nice_path() is None:
        pytest.skip("this machine has no nice")
    argv, preexec = ffmpeg.tied_to_worker(ffmpeg.lowered(["sleep", "60"]))
    assert argv[-6:] == [ffmpeg.nice_path(), "-n", "10", "--", "sleep", "60"]
    child = subprocess.Popen(argv, preexec_fn=preexec, start_new_session=True)
    try:
        process = psutil.Process(child.pid)
        deadline = time.monotonic() + 10  # until setpriv and nice have exec'd sleep
        while process.name() != "sleep" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process.name() == "sleep"
        assert process.nice() == min(19, psutil.Process().nice() + ffmpeg.FFMPEG_NICENESS)
    finally:
        child.kill()
        child.wait()


def test_without_nice_a_run_keeps_the_workers_priority(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ffmpeg, "nice_path", lambda: None)
    assert ffmpeg.lowered(["ffmpeg", "-version"]) == ["ffmpeg", "-version"]
