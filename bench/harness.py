"""A real mediaflow stack for benchmarks: ``mediaflow dev`` on free ports in a temp dir,
a user, uploads, and jobs timed from the client's side (submit → terminal status)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from cli.devstack import free_ports
from core.mediainfo import MediaInfo
from core.plan import compile_plan
from core.spec import JobSpec

REPO = Path(__file__).resolve().parent.parent
FFMPEG = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> tuple[float, float]:
    """(the process's own CPU seconds, its reaped children's), user + system."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own, children = int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])
    return own / TICKS, children / TICKS


def machine_busy() -> float:
    """CPU seconds the whole machine's processes have used: user, nice, system, irq and
    softirq (not idle, iowait, or the time a hypervisor stole)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(values[n] for n in (0, 1, 2, 5, 6)) / TICKS


def ffmpeg_seconds(stack: Stack, job: dict) -> float:
    """The job's FFmpeg time: the sum of its operation log's successful step durations
    (each covers placing the inputs, ffmpeg, probing and storing the output)."""
    logs = stack.http.get(f"/jobs/{job['id']}/logs").json()
    return sum(row["duration"] or 0.0 for row in logs if row["step"] >= 0 and row["success"])


def bench_main(doc: str | None, run: Callable[[argparse.Namespace, Path], None],
               **options: float | int) -> None:
    """The common ``main`` of a benchmark: ``--name value`` for each option (its default
    given here), a temporary media directory removed afterwards, then ``run(args, media)``."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    for name, default in options.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(default), default=default)
    args = parser.parse_args()
    media = Path(tempfile.mkdtemp(prefix="bench-media-"))
    try:
        run(args, media)
    finally:
        shutil.rmtree(media, ignore_errors=True)


def make_clip(path: Path, seconds: float, size: str = "1280x720", rate: int = 25,
              frequency: int = 440) -> Path:
    if not path.exists():
        subprocess.run([*FFMPEG, "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}",
                        "-f", "lavfi", "-i", f"sine=frequency={frequency}:sample_rate=48000",
                        "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast",
                        "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "2", str(path)], check=True)
    return path


class Stack:
    def __init__(self, url: str, work: Path, pid: int = 0, temporal: str = "") -> None:
        self.url = url
        self.work = work
        self.pid = pid  # ``mediaflow dev``, whose children are the stack's processes
        self.temporal = temporal  # the Temporal frontend's address, where known
        self.http = httpx.Client(base_url=f"{url}/api/v1", timeout=300)
        email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
        password = f"Bench{uuid.uuid4().hex[:10]}1"
        created = self.http.post("/auth/register", json={
            "email": email, "username": email.split("@")[0], "password": password})
        created.raise_for_status()
        tokens = self.http.post("/auth/login", json={"email_or_username": email,
                                                     "password": password}).json()
        self.http.headers["Authorization"] = f"Bearer {tokens['access_token']}"

    def clone(self) -> Stack:
        """Another client of the same user (one per thread)."""
        twin = Stack.__new__(Stack)
        twin.url, twin.work, twin.pid, twin.temporal = (self.url, self.work, self.pid,
                                                        self.temporal)
        twin.http = httpx.Client(base_url=f"{self.url}/api/v1", timeout=300,
                                 headers=dict(self.http.headers))
        return twin

    def upload(self, path: Path) -> str:
        with path.open("rb") as f:
            response = self.http.post("/files", files={"file": (path.name, f)})
        response.raise_for_status()
        return response.json()["id"]

    def validate(self, spec: dict) -> list[dict]:
        response = self.http.post("/jobs/validate", json=spec)
        response.raise_for_status()
        return response.json()["plan"]

    def run_job(self, spec: dict) -> tuple[float, dict]:
        """The job's wall time (created_at → completed_at, both stamped by the server, so
        client polling does not blur it) and the finished job."""
        job = self.http.post("/jobs", json=spec)
        job.raise_for_status()
        while True:
            view = self.http.get(f"/jobs/{job.json()['id']}")
            view.raise_for_status()
            body = view.json()
            if body["status"] in ("completed", "failed", "cancelled"):
                if body["status"] != "completed":
                    raise RuntimeError(f"job {body['status']}: {body['error']}")
                created = dt.datetime.fromisoformat(body["created_at"])
                completed = dt.datetime.fromisoformat(body["completed_at"])
                return (completed - created).total_seconds(), body
            time.sleep(1.0)  # the job is timed by its own clock; polling only costs CPU


    def run_job_client(self, spec: dict) -> tuple[float, dict]:
        """The job's wall time as its client sees it: from sending ``POST /jobs`` to
        receiving the terminal event on ``GET /jobs/{id}/events`` (the finished job)."""
        started = time.perf_counter()
        job = self.http.post("/jobs", json=spec)
        job.raise_for_status()
        view = self.await_terminal_event(job.json()["id"])
        return time.perf_counter() - started, view

    def await_terminal_event(self, job_id: str) -> dict:
        event = None
        with self.http.stream("GET", f"/jobs/{job_id}/events") as stream:
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event in ("completed", "failed",
                                                             "cancelled"):
                    view = json.loads(line[6:])
                    if event != "completed":
                        raise RuntimeError(f"job {event}: {view['error']}")
                    return view
        raise RuntimeError(f"job {job_id}: the event stream ended without a terminal event")


def workflow_events(stack: Stack, workflow_id: str) -> list[tuple[str, float, str]]:
    """A workflow's history as (event type, the server's time in epoch seconds, the
    activity type of a scheduled activity, else "")."""
    from temporalio.api.enums.v1 import EventType
    from temporalio.client import Client

    async def fetch() -> list[tuple[str, float, str]]:
        client = await Client.connect(stack.temporal)
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        return [(EventType.Name(event.event_type).removeprefix("EVENT_TYPE_"),
                 event.event_time.ToDatetime(dt.UTC).timestamp(),
                 event.activity_task_scheduled_event_attributes.activity_type.name)
                for event in history.events]

    return asyncio.run(fetch())


def stack_cpu(stack: Stack) -> dict[str, float]:
    """CPU seconds so far of the stack's processes by role: ffmpeg + ffprobe (the
    worker's finished children), the worker, the Temporal dev server, the API, and this
    bench process (its client threads); ``machine`` is the whole machine's."""
    roles = {"ffmpeg+ffprobe": 0.0, "worker": 0.0, "temporal": 0.0, "api": 0.0}
    for child in Path(f"/proc/{stack.pid}/task/{stack.pid}/children").read_text().split():
        argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        own, children = process_cpu(int(child))
        if b"worker" in argv:
            roles["worker"] += own
            roles["ffmpeg+ffprobe"] += children
        elif b"api" in argv:
            roles["api"] += own
        elif b"start-dev" in argv:
            roles["temporal"] += own
    roles["bench"] = time.process_time()
    roles["machine"] = machine_busy()
    return roles


@contextmanager
def workers_paused(stack: Stack) -> Iterator[None]:
    """The stack's worker stopped (SIGSTOP), then the ffmpeg runs it had started, and all
    continued after: the API and Temporal measured without the jobs they accept running
    on the same cores (in production, workers have machines of their own). A worker
    stopped inside a SQLite write holds the lock: the POSTs measured meanwhile would
    fail, which their non-2xx count shows."""
    stopped: list[int] = []
    try:
        for child in children(stack.pid):
            with contextlib.suppress(OSError):
                if b"worker" in Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0"):
                    os.kill(child, signal.SIGSTOP)  # first: it starts no run after this
                    stopped.append(child)
        for worker in list(stopped):
            for pid in descendants(worker):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGSTOP)
                    stopped.append(pid)
        if not stopped:
            raise RuntimeError("the stack has no worker to pause")
        yield
    finally:
        for pid in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def children(pid: int) -> list[int]:
    """``pid``'s child processes (those of every thread); none once it is gone."""
    found = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                found += [int(child) for child in (task / "children").read_text().split()]
    return found


def descendants(pid: int) -> list[int]:
    return [grandchild for child in children(pid) for grandchild in (child, *descendants(child))]


def cpu_per_job(before: dict[str, float], after: dict[str, float], jobs: int) -> str:
    """One line: each role's CPU seconds per job between two ``stack_cpu`` readings."""
    return ", ".join(f"{role} {(after[role] - before[role]) / jobs:.3f}" for role in after)


@contextmanager
def running_stack(extra_env: dict[str, str] | None = None) -> Iterator[Stack]:
    """``mediaflow dev`` with its defaults (plus ``extra_env``) on free ports."""
    work = Path(tempfile.mkdtemp(prefix="mediaflow-bench-"))
    api, temporal, ui, metrics = free_ports(4)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIAFLOW_")}
    env.update(extra_env or {})
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "dev", "--data-dir", str(work / "data"),
         "--port", str(api), "--temporal-port", str(temporal), "--ui-port", str(ui),
         "--worker-metrics-port", str(metrics)],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{api}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                raise RuntimeError("mediaflow dev exited during start")
            time.sleep(0.5)
        else:
            raise RuntimeError("mediaflow dev did not become healthy")
        yield Stack(url, work, proc.pid, f"127.0.0.1:{temporal}")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        shutil.rmtree(work, ignore_errors=True)


def run_quietly(argv: list[str]) -> None:
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def probe(path: Path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-print_format", "json", "-show_format",
                          "-show_streams", str(path)], check=True, capture_output=True)
    return json.loads(out.stdout)


def compiled_argv(spec: dict, files: dict[str, Path], run_dir: Path) -> list[str]:
    """The argv of a one-run job, compiled by the same pure compiler the service uses,
    with its inputs and scratch files placed in ``run_dir``: what bare ffmpeg runs."""
    plan = compile_plan(JobSpec.model_validate(spec),
                        {fid: MediaInfo.from_ffprobe(probe(path)) for fid, path in files.items()})
    [step] = plan.steps
    run_dir.mkdir(parents=True)
    paths = step.paths_in(str(run_dir))
    for item in step.sources:
        Path(paths[item.placeholder]).symlink_to(files[item.ref])
    for name, content in step.scratch_files.items():
        Path(paths[f"scratch:{name}"]).write_text(content)
    return step.render(paths)


def bare_ffmpeg_seconds(spec: dict, files: dict[str, Path], work: Path) -> float:
    """The same plan the job runs (compiled by the same pure compiler), run by bare ffmpeg
    on local files, one run after another: the baseline."""
    plan = compile_plan(JobSpec.model_validate(spec),
                        {fid: MediaInfo.from_ffprobe(probe(path)) for fid, path in files.items()})
    outputs: dict[str, Path] = {}
    total = 0.0
    for step in plan.steps:
        run_dir = work / f"bare-{uuid.uuid4().hex[:6]}"
        run_dir.mkdir()
        paths = step.paths_in(str(run_dir))
        for item in step.sources:
            source = outputs[item.step_id] if item.step_id is not None else files[item.ref]
            Path(paths[item.placeholder]).symlink_to(source)
        for name, content in step.scratch_files.items():
            Path(paths[f"scratch:{name}"]).write_text(content)
        if step.is_directory_output:  # a package or thumbnails: a directory of files
            Path(paths["out"]).mkdir()
        argv = step.render(paths)
        started = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        total += time.perf_counter() - started
        for name, content in step.output_extras.items():
            (Path(paths["out"]) / name).write_text(content)
        outputs[step.step_id] = Path(paths["out"])
    return total
