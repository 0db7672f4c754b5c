"""``mediaflow dev`` brings up the whole stack, and leaves nothing behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from cli.devstack import free_ports
from tests.conftest import REPO

pytestmark = pytest.mark.slow


def start_dev(data_dir: Path, api: int, temporal: int, ui: int,
              worker_metrics: int | None = None, **env_extra: str) -> subprocess.Popen:
    """``mediaflow dev`` on the given ports; the worker metrics on a free one unless named
    (never the default 9464, which another stack on this machine may hold)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIAFLOW_")}
    env.update(env_extra)
    metrics = worker_metrics if worker_metrics is not None else free_ports(1)[0]
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", "dev", "--data-dir", str(data_dir), "--port", str(api),
         "--temporal-port", str(temporal), "--ui-port", str(ui),
         "--worker-metrics-port", str(metrics)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"mediaflow dev exited: {proc.stdout.read()}"  # type: ignore[union-attr]
        try:
            response = httpx.get(url, timeout=3)
            if response.status_code == 200:
                return response.json()
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError("mediaflow dev never became healthy")


def test_dev_stack_starts_and_stops_cleanly(tmp_path: Path) -> None:
    api, temporal, ui, metrics = free_ports(4)
    proc = start_dev(tmp_path / "data", api, temporal, ui, worker_metrics=metrics)
    try:
        health = wait_healthy(f"http://127.0.0.1:{api}/api/v1/health", proc)
        assert health == {"status": "ok", "checks": {
            "database": "ok", "temporal": "ok", "storage": "ok", "ffmpeg": "ok"}}
        # the CPU worker's metrics and the Temporal SDK's, on one loopback port (the SDK's
        # slot gauges appear once the worker polls: a moment later on a busy machine)
        deadline = time.monotonic() + 30
        while True:
            scrape = httpx.get(f"http://127.0.0.1:{metrics}/metrics", timeout=5)
            assert scrape.status_code == 200
            if "temporal_worker_task_slots_available{" in scrape.text or \
                    time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert 'mediaflow_worker_slots{pool="cpu"}' in scrape.text
        assert "temporal_worker_task_slots_available{" in scrape.text
        assert httpx.get(f"http://127.0.0.1:{ui}/", timeout=5).status_code == 200
        assert httpx.get(f"http://127.0.0.1:{api}/docs", timeout=5).status_code == 200
        children = psutil.Process(proc.pid).children(recursive=True)
        names = " ".join(" ".join(c.cmdline()) for c in children)
        assert "start-dev" in names and "worker" in names and " api" in names
        assert (tmp_path / "data" / "mediaflow.sqlite").exists()
        assert (tmp_path / "data" / "temporal.sqlite").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "Web UI: http://127.0.0.1:" in out and f"127.0.0.1:{api}/api/v1" in out
    assert f"worker-cpu: http://127.0.0.1:{metrics}/metrics" in out
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, f"orphans left: {[p.cmdline() for p in alive]}"


def test_dev_kill_9_takes_children_down(tmp_path: Path) -> None:
    api, temporal, ui = free_ports(3)
    proc = start_dev(tmp_path / "data", api, temporal, ui)
    try:
        wait_healthy(f"http://127.0.0.1:{api}/api/v1/health", proc)
        children = psutil.Process(proc.pid).children(recursive=True)
        assert children
    finally:
        proc.kill()
        proc.communicate(timeout=30)
    gone, alive = psutil.wait_procs(children, timeout=30)
    for p in alive:
        p.kill()
    assert not alive, f"orphans left after kill -9: {[p.cmdline() for p in alive]}"


def test_port_taken_is_named_and_fails(tmp_path: Path) -> None:
    api, temporal, ui, metrics = free_ports(4)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", temporal))
        holder.listen()
        proc = start_dev(tmp_path / "data", api, temporal, ui)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert f"port {temporal} (Temporal) is already in use" in out
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", metrics))
        holder.listen()
        proc = start_dev(tmp_path / "data", api, temporal, ui, worker_metrics=metrics)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert f"port {metrics} (worker-cpu metrics) is already in use" in out
