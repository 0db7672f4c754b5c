"""The ``mediaflow`` client commands against a real ``mediaflow dev`` stack."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from cli.devstack import free_ports
from tests.cli.test_dev import start_dev, wait_healthy
from tests.conftest import REPO
from tests.utils.media import duration, ffprobe, make_video

pytestmark = pytest.mark.slow


def client(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def test_login_upload_submit_watch_download(tmp_path: Path) -> None:
    api, temporal, ui = free_ports(3)
    proc = start_dev(tmp_path / "data", api, temporal, ui)
    try:
        wait_healthy(f"http://127.0.0.1:{api}/api/v1/health", proc)
        url = f"http://127.0.0.1:{api}"
        password = "Cl1entPassword"
        registered = httpx.post(f"{url}/api/v1/auth/register", json={
            "email": "cli@example.com", "username": "cli_user", "password": password})
        assert registered.status_code == 201, registered.text
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("MEDIAFLOW_")},
               "MEDIAFLOW_URL": url, "XDG_CONFIG_HOME": str(tmp_path / "config"),
               "COLUMNS": "200"}

        denied = client("files", env=env)
        assert denied.returncode == 1 and "not logged in" in denied.stdout

        login = client("login", "--user", "cli_user", "--password", password, env=env)
        assert login.returncode == 0, login.stdout + login.stderr
        creds = tmp_path / "config" / "mediaflow" / "credentials.json"
        assert creds.stat().st_mode & 0o077 == 0

        clip = make_video(tmp_path / "clip.mp4", seconds=1)
        uploaded = client("upload", str(clip), env=env)
        assert uploaded.returncode == 0, uploaded.stdout + uploaded.stderr
        file_id = uploaded.stdout.split()[0]
        listing = client("files", env=env)
        assert file_id in listing.stdout and "1 file(s)" in listing.stdout

        spec = tmp_path / "job.json"
        spec.write_text(json.dumps({"type": "join", "params": {"inputs": [file_id, file_id]},
                                    "output": {"filename": "twice.mp4"}}))
        submitted = client("submit", str(spec), "--watch", env=env)
        assert submitted.returncode == 0, submitted.stdout + submitted.stderr
        assert "completed" in submitted.stdout
        output_id = submitted.stdout.rsplit("outputs:", 1)[1].split()[0]

        jobs = client("jobs", env=env)
        assert "completed" in jobs.stdout

        target = tmp_path / "out.mp4"
        downloaded = client("download", output_id, "-o", str(target), env=env)
        assert downloaded.returncode == 0, downloaded.stdout + downloaded.stderr
        assert duration(ffprobe(target)) == pytest.approx(2.0, abs=0.1)

        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({"type": "join", "params": {"inputs": [file_id]}}))
        refused = client("submit", str(bad), env=env)
        assert refused.returncode == 1 and "HTTP 422" in refused.stdout
        assert "params.inputs" in refused.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
