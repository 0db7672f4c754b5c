"""The ``mediaflow`` client commands against a real ``mediaflow dev`` stack (one for the
module), as a user and as an operator; and the README's quick start, run as written."""

from __future__ import annotations

import datetime as dt
import functools
import http.server
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from cli.devstack import free_ports
from tests.cli.test_dev import start_dev, wait_healthy
from tests.conftest import REPO
from tests.utils.media import duration, ffprobe, make_video

pytestmark = pytest.mark.slow

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
PASSWORD = "Cl1entPassword"
ADMIN_PASSWORD = "Adm1nPassword9"


@dataclass
class Stack:
    url: str
    data: Path
    work: Path

    def env(self, who: str) -> dict[str, str]:
        """The client's environment for ``who`` (each keeps its own saved credentials)."""
        return {**{k: v for k, v in os.environ.items() if not k.startswith("MEDIAFLOW_")},
                "MEDIAFLOW_URL": self.url, "XDG_CONFIG_HOME": str(self.work / f"config-{who}"),
                "COLUMNS": "250"}

    def http(self, who: str, password: str) -> httpx.Client:
        http = httpx.Client(base_url=f"{self.url}/api/v1", timeout=30)
        token = http.post("/auth/login", json={"email_or_username": who, "password": password})
        assert token.status_code == 200, token.text
        http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        return http


def client(*args: str, env: dict[str, str], cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=cwd, env={
        **env, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120)


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("cli")
    api, temporal, ui = free_ports(3)
    proc = start_dev(work / "data", api, temporal, ui)
    try:
        wait_healthy(f"http://127.0.0.1:{api}/api/v1/health", proc)
        running = Stack(f"http://127.0.0.1:{api}", work / "data", work)
        registered = httpx.post(f"{running.url}/api/v1/auth/register", json={
            "email": "cli@example.com", "username": "cli_user", "password": PASSWORD})
        assert registered.status_code == 201, registered.text
        admin_env = {**running.env("admin"), "MEDIAFLOW_ENV": "dev",
                     "MEDIAFLOW_DATA_DIR": str(running.data.resolve())}
        ok(client("create-admin", "--email", "root@example.com", "--username", "root_ops",
                  "--password", ADMIN_PASSWORD, env=admin_env))
        ok(client("login", "--user", "cli_user", "--password", PASSWORD,
                  env=running.env("user")))
        ok(client("login", "--user", "root_ops", "--password", ADMIN_PASSWORD,
                  env=running.env("admin")))
        yield running
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)


def test_login_upload_submit_watch_download(stack: Stack, tmp_path: Path) -> None:
    env = {**stack.env("fresh")}
    denied = client("files", env=env)
    assert denied.returncode == 1 and "not logged in" in denied.stdout

    ok(client("login", "--user", "cli_user", "--password", PASSWORD, env=env))
    creds = stack.work / "config-fresh" / "mediaflow" / "credentials.json"
    assert creds.stat().st_mode & 0o077 == 0

    clip = make_video(tmp_path / "clip.mp4", seconds=1)
    file_id = ok(client("upload", str(clip), env=env)).strip()
    assert UUID.match(file_id), "piped, upload prints the id alone"
    listing = ok(client("files", env=env))
    assert file_id in listing and "file(s)" in listing

    spec = tmp_path / "job.json"
    spec.write_text(json.dumps({"type": "join", "params": {"inputs": [file_id, file_id]},
                                "output": {"filename": "twice.mp4"}}))
    submitted = ok(client("submit", str(spec), "--watch", env=env))
    assert "completed" in submitted
    output_id = submitted.rsplit("outputs:", 1)[1].split()[0]

    assert "completed" in ok(client("jobs", env=env))

    target = tmp_path / "out.mp4"
    ok(client("download", output_id, "-o", str(target), env=env))
    assert duration(ffprobe(target)) == pytest.approx(2.0, abs=0.1)

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"type": "join", "params": {"inputs": [file_id]}}))
    refused = client("submit", str(bad), env=env)
    assert refused.returncode == 1 and "HTTP 422" in refused.stdout
    assert "params.inputs" in refused.stdout


def test_validate_shows_the_runs_or_what_is_wrong(stack: Stack, tmp_path: Path) -> None:
    env = stack.env("user")
    file_id = ok(client("upload", str(make_video(tmp_path / "v.mp4", seconds=1)),
                        env=env)).strip()
    spec = tmp_path / "job.json"
    spec.write_text(json.dumps({"type": "text_overlay",
                                "params": {"video": file_id, "text": "plan"}}))
    shown = ok(client("validate", str(spec), env=env))
    assert "text_overlay" in shown and "{in0}" in shown and "valid: 1 ffmpeg run(s)" in shown
    spec.write_text(json.dumps({"type": "text_overlay", "params": {"video": file_id}}))
    refused = client("validate", str(spec), env=env)
    assert refused.returncode == 1 and "HTTP 422" in refused.stdout
    assert "params.text" in refused.stdout


def test_pause_reroute_resume_watch_and_logs(stack: Stack, tmp_path: Path) -> None:
    """A two-step job (the first long enough to still run when the pause arrives) stops
    at the step boundary; an operator reroutes it; it resumes and completes."""
    user, admin = stack.env("user"), stack.env("admin")
    http = stack.http("cli_user", PASSWORD)
    long_clip = make_video(tmp_path / "long.mp4", seconds=40)
    file_id = ok(client("upload", str(long_clip), env=user)).strip()
    job = http.post("/jobs", json={"type": "combined", "params": {
        "execution": "stepwise", "steps": [
            {"id": "one", "type": "text_overlay", "params": {"video": file_id, "text": "1"}},
            {"id": "two", "type": "trim",
             "params": {"input": "@one", "duration": 2, "accurate": False}}]},
        "output": {"preset": "medium"}}).json()
    assert "pause requested" in ok(client("pause", job["id"], env=user))
    deadline = time.monotonic() + 90
    while (state := http.get(f"/jobs/{job['id']}").json())["status"] != "paused":
        assert state["status"] in ("pending", "processing"), state
        assert time.monotonic() < deadline, state
        time.sleep(0.3)
    assert state["progress"]["steps_done"] == 1

    assert "remaining steps go to the cpu pool" in ok(
        client("admin", "reroute", job["id"], "cpu", env=admin))
    refused = client("admin", "reroute", job["id"], "cpu", env=user)
    assert refused.returncode == 1 and "HTTP 403" in refused.stdout

    ok(client("resume", job["id"], env=user))
    watched = ok(client("jobs", "--watch", env=user))  # returns once every job has ended
    assert job["id"] in watched and "completed" in watched
    assert http.get(f"/jobs/{job['id']}").json()["status"] == "completed"

    logged = ok(client("logs", job["id"], env=user))
    assert "2 operation(s)" in logged
    assert logged.count("text_overlay") == 1 and logged.count("trim") == 1
    assert " ok " in logged.replace("│", " ")


def test_operators_see_stats_every_job_and_users(stack: Stack, tmp_path: Path) -> None:
    admin, user = stack.env("admin"), stack.env("user")
    http = stack.http("cli_user", PASSWORD)
    mine = http.get("/jobs").json()["items"]
    assert mine, "earlier tests ran jobs"

    stats = ok(client("admin", "stats", env=admin))
    assert "jobs by status" in stats and "completed" in stats and "users 2" in stats
    # the means are taken in SQLite (julianday): they match those of the jobs' own times
    means: dict[str, list[float]] = {}
    for job in http.get("/jobs", params={"limit": 200}).json()["items"]:
        if job["status"] == "completed" and job["started_at"] and job["completed_at"]:
            means.setdefault(job["type"], []).append(
                (dt.datetime.fromisoformat(job["completed_at"])
                 - dt.datetime.fromisoformat(job["started_at"])).total_seconds())
    assert means, "earlier tests completed jobs"
    reported = stack.http("root_ops", ADMIN_PASSWORD).get("/admin/stats").json()
    assert reported["mean_duration_seconds_by_type"] == pytest.approx(
        {t: sum(v) / len(v) for t, v in means.items()}, abs=0.002)

    every = ok(client("admin", "jobs", "--status", "completed", env=admin))
    assert all(j["id"] in every for j in mine if j["status"] == "completed")

    listed = ok(client("admin", "users", "--q", "CLI_", env=admin))
    assert "cli@example.com" in listed and "root@example.com" not in listed
    assert "1 user(s)" in listed
    files = http.get("/files/usage").json()
    row = next(line for line in listed.splitlines() if "cli@example.com" in line)
    cells = [cell.strip() for cell in row.split("│")[1:-1]]
    assert cells[3:7] == ["yes", "", str(len(mine)), str(files["file_count"])], cells

    refused = client("admin", "users", env=user)
    assert refused.returncode == 1 and "HTTP 403" in refused.stdout


def test_share_prints_a_link_that_needs_no_credentials(stack: Stack, tmp_path: Path) -> None:
    env = stack.env("user")
    file_id = ok(client("upload", str(make_video(tmp_path / "s.mp4", seconds=1)),
                        env=env)).strip()
    url = ok(client("share", file_id, "--expires-in", "600", env=env)).strip()
    shared = httpx.get(url, follow_redirects=True)
    assert shared.status_code == 200 and shared.content == (tmp_path / "s.mp4").read_bytes()


def test_templates_and_submit_with_variables(stack: Stack, tmp_path: Path) -> None:
    """``mediaflow templates create/list/show/delete`` and ``submit --template NAME -v k=v``
    (a number variable goes as a number, a string and a file id as strings)."""
    env = stack.env("user")
    file_id = ok(client("upload", str(make_video(tmp_path / "t.mp4", seconds=2)),
                        env=env)).strip()
    body = tmp_path / "template.json"
    body.write_text(json.dumps({
        "name": "cli-cut", "description": "cut a clip and size it",
        "spec": {"type": "trim", "params": {"input": "{{video}}", "duration": "{{seconds}}"},
                 "output": {"width": "{{width}}", "filename": "{{label}}.mp4"}},
        "variables": {"video": {"type": "file"}, "seconds": {"type": "number", "default": 1},
                      "width": {"type": "number"}, "label": {"type": "string"}}}))
    created = ok(client("templates", "create", str(body), env=env))
    assert "cli-cut" in created
    listed = ok(client("templates", env=env))
    assert "cli-cut" in listed and "width:number" in listed and "1 template(s)" in listed
    assert '"seconds"' in ok(client("templates", "show", "cli-cut", env=env))

    submitted = ok(client("submit", "--template", "cli-cut", "-v", f"video={file_id}",
                          "-v", "width=160", "-v", "label=small", "-v", "seconds=1.5",
                          "--priority", "2", "--watch", env=env))
    assert "completed" in submitted
    output_id = submitted.rsplit("outputs:", 1)[1].split()[0]
    target = tmp_path / "small.mp4"
    ok(client("download", output_id, "-o", str(target), env=env))
    probe = ffprobe(target)
    assert duration(probe) == pytest.approx(1.5, abs=0.1)
    assert [s["width"] for s in probe["streams"] if s["codec_type"] == "video"] == [160]
    job = stack.http("cli_user", PASSWORD).get("/jobs", params={"limit": 1}).json()["items"][0]
    assert job["template_id"] and job["priority"] == 2 and job["spec"]["output"]["width"] == 160

    mistyped = client("submit", "-t", "cli-cut", "-v", f"video={file_id}", "-v", "width=wide",
                      "-v", "label=x", env=env)
    assert mistyped.returncode == 1 and "width is a number variable" in mistyped.stdout
    missing = client("submit", "-t", "cli-cut", "-v", f"video={file_id}", env=env)
    assert missing.returncode == 1 and "HTTP 422" in missing.stdout
    assert "variables.width" in missing.stdout and "variables.label" in missing.stdout
    ok(client("templates", "delete", "cli-cut", env=env))
    assert "0 template(s)" in ok(client("templates", env=env))


@contextmanager
def loopback_files(root: Path) -> Iterator[str]:
    """``root`` served over HTTP on 127.0.0.1 (a thread), for ``mediaflow import``."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_import_from_a_url_and_submit_a_batch(stack: Stack, tmp_path: Path) -> None:
    """``mediaflow import URL`` waits until the file is ready and prints its id;
    ``mediaflow batch`` shows one status per item and exits 1 when one was refused."""
    env = stack.env("user")
    make_video(tmp_path / "remote.mp4", seconds=1)
    (tmp_path / "notes.mp4").write_text("not a video\n" * 50)
    with loopback_files(tmp_path) as origin:
        file_id = ok(client("import", f"{origin}/remote.mp4", env=env)).strip()
        assert UUID.match(file_id)
        refused = client("import", f"{origin}/notes.mp4", env=env)
    assert refused.returncode == 1 and "UnsupportedMedia" in refused.stdout
    shown = stack.http("cli_user", PASSWORD).get(f"/files/{file_id}").json()
    assert shown["status"] == "ready" and shown["source"] == "import"
    assert shown["filename"] == "remote.mp4" and shown["kind"] == "video"

    jobs = tmp_path / "batch.json"
    jobs.write_text(json.dumps({"jobs": [
        {"type": "transcode", "params": {"input": file_id}, "output": {"container": "mkv"},
         "priority": 1},
        {"type": "text_overlay", "params": {"video": file_id}},
        {"type": "thumbnails", "params": {"input": file_id, "count": 1}}]}))
    result = client("batch", str(jobs), "--idempotency-key", "cli-batch", env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "2 job(s) accepted, 1 refused" in result.stdout
    assert "jobs.1.params.text" in result.stdout and "422" in result.stdout
    again = client("batch", str(jobs), "--idempotency-key", "cli-batch", env=env)
    assert "2 job(s) accepted" in again.stdout and again.stdout.count(" 200 ") == 2
    assert "completed" in ok(client("jobs", "--watch", env=env))


def readme_quick_start() -> str:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Quick start with curl", 1)[1]
    return section.split("```sh\n", 1)[1].split("```", 1)[0]


def test_readme_quick_start_runs_as_written(stack: Stack, tmp_path: Path) -> None:
    """The curl walk-through of README.md, word for word, against this stack (only its
    address differs), with a.mp4 and b.mp4 in the current directory."""
    script = readme_quick_start()
    assert "http://127.0.0.1:8000/api/v1" in script
    script = script.replace("http://127.0.0.1:8000", stack.url)
    make_video(tmp_path / "a.mp4", seconds=1)
    make_video(tmp_path / "b.mp4", seconds=1.5)
    run = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "event: completed" in run.stdout
    saved = tmp_path / "join.mp4"  # the name the README says
    assert duration(ffprobe(saved)) == pytest.approx(2.5, abs=0.15)
    assert run.stdout.count('"email":"ada@example.com"') == 3  # registered, me, me by key
