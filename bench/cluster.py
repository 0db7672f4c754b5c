"""Scale-out and S3: the same small jobs on one worker, on two, and on S3 storage.

One Temporal dev server, one database (SQLite in the run's temp dir, or ``--database``:
an empty PostgreSQL database) and the API, with workers started as separate processes
(``mediaflow worker --pool cpu --concurrency 1``, ``MEDIAFLOW_FFMPEG_THREADS=1``, each its
own data dir: with local storage they share only the storage dir, linked into each; with
S3 nothing but S3, the database and Temporal). S3 is moto's ThreadedMotoServer on
127.0.0.1, served to a second API process (the API's storage is a setting of its
process; both share the database, Temporal and the JWT secret, so one user reaches both).

``--jobs`` small jobs (1-2 s 320x240 clips; text_overlay, transcode and accurate trim in
turn, preset ``slower`` so that each spends its time in ffmpeg) are submitted in one
``POST /jobs/batch``; a configuration's wall time runs from that submit to the last
``completed_at``. Each configuration is warmed up (two jobs per worker) before it is
timed; they run interleaved (1 worker local, 2 workers local, 1 worker S3) for
``--rounds`` rounds, and the ratios are those of the median wall times:

* two workers' throughput ÷ one worker's, local storage. Target: ≥ 1.7.
* S3 wall time ÷ local wall time, one worker. Target: ≤ 1.15.

Every job is checked: completed, one output, the output's bytes readable. Beside each
configuration, so that a shortfall shows where the time went: how busy the worker slots
were (the jobs' step durations ÷ slots × wall; an idle slot is a wait on the queue, the
database or the workflow, not on ffmpeg), the CPU seconds per job of ffmpeg (and ffprobe:
the workers' children), the worker processes, Temporal, the API, this process (with
moto), PostgreSQL's backends (with ``--database``), and the machine's busy cores with the
share of them outside this benchmark. After the rounds, the same commands run by bare
ffmpeg one then two at a time: how far the machine itself scales. Two single-threaded
ffmpeg runs on a 2-core machine share it with the whole stack: the printed CPU-bound
ceiling is one worker's wall time ÷ the two-worker runs' CPU spread over every core (their
best wall time on an idle machine), at most 2.

    .venv/bin/python -m bench.cluster [--jobs 40] [--rounds 3] [--quick] [--keep]
                                      [--database postgresql://…]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import os
import resource
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from moto.server import ThreadedMotoServer

from activities.ffmpeg import with_threads
from bench.harness import REPO, Stack, compiled_argv, machine_busy, make_clip, process_cpu
from cli.devstack import _die_with_parent, free_ports, port_in_use, temporal_binary
from core.storage.s3 import S3Storage
from core.temporal import dev_server_args

CONFIGS = (("local", 1), ("local", 2), ("s3", 1))
S3 = {"access_key": "testing", "secret_key": "testing", "region": "us-east-1",
      "bucket": "mediaflow-bench"}
TERMINAL = ("completed", "failed", "cancelled")
PRESET = "slower"  # ~0.4 s of one core per job on these clips: the worker is the bottleneck


@dataclass
class Child:
    name: str
    proc: subprocess.Popen
    log: Path
    storage: str = ""


@dataclass
class Cluster:
    root: Path
    database: str | None
    moto_url: str
    temporal_port: int = 0
    children: list[Child] = field(default_factory=list)
    apis: dict[str, str] = field(default_factory=dict)  # storage → API base URL
    workers: list[Child] = field(default_factory=list)
    jwt_secret: str = field(default_factory=lambda: secrets.token_hex(32))
    started: int = 0  # workers started so far, each with its own data dir

    def env(self, data_dir: Path, storage: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIAFLOW_")}
        env.update(
            MEDIAFLOW_ENV="dev", MEDIAFLOW_DATA_DIR=str(data_dir),
            MEDIAFLOW_JWT_SECRET=self.jwt_secret,
            MEDIAFLOW_DATABASE_URL=self.database or
            f"sqlite:///{self.root / 'mediaflow.sqlite'}",
            MEDIAFLOW_TEMPORAL_ADDRESS=f"127.0.0.1:{self.temporal_port}",
            MEDIAFLOW_RATE_LIMIT_REQUESTS="10000000/minute",
            MEDIAFLOW_MAX_ACTIVE_JOBS_PER_USER="100000",
            MEDIAFLOW_FFMPEG_THREADS="1", MEDIAFLOW_STORAGE=storage, PYTHONUNBUFFERED="1")
        if storage == "s3":
            env.update(MEDIAFLOW_S3_ENDPOINT_URL=self.moto_url, MEDIAFLOW_S3_BUCKET=S3["bucket"],
                       MEDIAFLOW_S3_ACCESS_KEY=S3["access_key"],
                       MEDIAFLOW_S3_SECRET_KEY=S3["secret_key"], MEDIAFLOW_S3_REGION=S3["region"])
        return env

    def spawn(self, name: str, argv: list[str], env: dict[str, str]) -> Child:
        log = self.root / "logs" / f"{name}.log"
        log.parent.mkdir(exist_ok=True)
        with log.open("ab") as out:
            proc = subprocess.Popen(argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True, preexec_fn=_die_with_parent)
        child = Child(name, proc, log)
        self.children.append(child)
        return child

    def start(self) -> None:
        self.temporal_port, ui_port = free_ports(2)
        self.spawn("temporal", [
            temporal_binary(), "server", "start-dev", "--ip", "127.0.0.1",
            "--port", str(self.temporal_port), "--ui-port", str(ui_port),
            "--db-filename", str(self.root / "temporal.sqlite"),
            "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal",
            "--log-level", "warn", *dev_server_args()], dict(os.environ))
        wait_for("Temporal", lambda: port_in_use("127.0.0.1", self.temporal_port),
                 self.children)
        shared = self.root / "api-local"  # its storage/ is every local worker's storage
        (shared / "storage").mkdir(parents=True)
        migrate = subprocess.run([sys.executable, "-m", "cli.main", "migrate"], cwd=REPO,
                                 env=self.env(shared, "local"), capture_output=True, text=True)
        if migrate.returncode != 0:
            raise RuntimeError(f"migrations failed:\n{migrate.stderr[-2000:]}")
        for storage in ("local", "s3"):
            port = free_ports(1)[0]
            self.spawn(f"api-{storage}", [sys.executable, "-m", "cli.main", "api", "--host",
                                          "127.0.0.1", "--port", str(port)],
                       self.env(self.root / f"api-{storage}", storage))
            self.apis[storage] = f"http://127.0.0.1:{port}"
        for url in self.apis.values():
            wait_for("the API", lambda url=url: healthy(url), self.children)

    def add_worker(self, storage: str) -> Child:
        self.started += 1
        data = self.root / f"worker-{self.started}-{storage}"
        data.mkdir()
        if storage == "local":
            (data / "storage").symlink_to(self.root / "api-local" / "storage")
        worker = self.spawn(data.name, [sys.executable, "-m", "cli.main", "worker", "--pool",
                                        "cpu", "--concurrency", "1"], self.env(data, storage))
        worker.storage = storage
        wait_for(data.name, lambda: "polling" in worker.log.read_text(errors="replace"),
                 self.children)
        self.workers.append(worker)
        return worker

    def stop_workers(self) -> None:
        for worker in self.workers:
            terminate(worker)
            self.children.remove(worker)
        self.workers.clear()

    def close(self) -> None:
        for child in reversed(self.children):
            terminate(child)
        self.children.clear()


def healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/v1/health", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def wait_for(what: str, ready, children: list[Child], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in children:
            if child.proc.poll() is not None:
                tail = child.log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{child.name} exited ({child.proc.returncode}):\n{tail}")
        if ready():
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not start within {timeout:.0f} s")


def terminate(child: Child) -> None:
    if child.proc.poll() is None:
        try:
            os.killpg(child.proc.pid, signal.SIGTERM)
            child.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(child.proc.pid, signal.SIGKILL)
            child.proc.wait()
        except ProcessLookupError:
            pass


@contextmanager
def moto_s3() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"

    async def create_bucket() -> None:
        storage = S3Storage(bucket=S3["bucket"], endpoint_url=url, access_key=S3["access_key"],
                            secret_key=S3["secret_key"], region=S3["region"])
        await storage.ensure_bucket()
        await storage.close()

    try:
        asyncio.run(create_bucket())
        yield url
    finally:
        server.stop()


def cpu_snapshot(cluster: Cluster) -> dict[str, float]:
    counts = {"ffmpeg+ffprobe": 0.0, "workers": 0.0, "temporal": 0.0, "api": 0.0}
    for child in cluster.children:
        own, children = process_cpu(child.proc.pid)
        if child in cluster.workers:
            counts["workers"] += own
            counts["ffmpeg+ffprobe"] += children
        elif child.name in counts:
            counts[child.name] += own
        elif child.name.startswith("api-"):
            counts["api"] += own
    counts["bench+moto"] = time.process_time()
    counts["machine"] = machine_busy()
    return counts


def postgres_backends(database: str | None) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend serving ``database`` (a URL), by pid: the
    pooled connections of the API and the workers (a backend that exits in between is
    not counted)."""
    name = urlsplit(database or "").path.strip("/")
    if not name:
        return {}
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            title = (entry / "cmdline").read_bytes().decode(errors="replace")
            if entry.name.isdigit() and title.startswith("postgres:") and \
                    f" {name} " in title:
                found[int(entry.name)] = process_cpu(int(entry.name))[0]
        except OSError:
            continue
    return found


def spec_for(n: int, clips: list[str]) -> dict:
    output = {"preset": PRESET}
    kind, clip = n % 3, clips[n % len(clips)]
    if kind == 0:
        return {"type": "text_overlay", "output": output,
                "params": {"video": clip, "text": f"cluster {n}", "box": True}}
    if kind == 1:
        return {"type": "transcode", "params": {"input": clip, "mode": "reencode"},
                "output": {**output, "width": 256, "height": 192}}
    return {"type": "trim", "output": output,
            "params": {"input": clip, "start": 0.2, "end": 1.4, "accurate": True}}


def terminal_jobs(client: httpx.Client) -> int:
    return sum(client.get("/jobs", params={"status": s, "limit": 1}).raise_for_status()
               .json()["total"] for s in TERMINAL)


@dataclass
class Timed:
    wall: float  # first submit → last completed_at
    cpu: dict[str, float]  # CPU seconds spent meanwhile, by process kind (cpu_snapshot)
    steps: float  # the jobs' step durations summed (each holds a worker slot throughout)


def run_jobs(client: httpx.Client, specs: list[dict], cluster: Cluster,
             timeout: float = 600) -> Timed:
    """Submit ``specs`` at once, wait until every one is terminal, then check each job
    (completed, one output whose bytes can be read) and read its operation log."""
    before, cpu = terminal_jobs(client), cpu_snapshot(cluster)
    backends = postgres_backends(cluster.database)
    started = time.time()
    ids: list[str] = []
    for at in range(0, len(specs), 100):
        batch = client.post("/jobs/batch", json={"jobs": specs[at:at + 100]})
        batch.raise_for_status()
        bad = [item for item in batch.json()["items"] if item["status"] != 202]
        if bad:
            raise RuntimeError(f"batch items refused: {bad[:3]}")
        ids += [item["job"]["id"] for item in batch.json()["items"]]
    deadline = time.monotonic() + timeout
    while terminal_jobs(client) < before + len(ids):
        if time.monotonic() > deadline:
            raise RuntimeError(f"jobs still running after {timeout:.0f} s")
        time.sleep(0.5)
    spent = {k: v - cpu[k] for k, v in cpu_snapshot(cluster).items()}
    if cluster.database:
        spent["postgres"] = sum(v - backends.get(pid, 0.0)
                                for pid, v in postgres_backends(cluster.database).items())
    last, outputs, steps = started, 0, 0.0
    for job_id in ids:
        job = client.get(f"/jobs/{job_id}").raise_for_status().json()
        if job["status"] != "completed":
            raise RuntimeError(f"job {job_id} {job['status']}: {job['error']}")
        last = max(last, dt.datetime.fromisoformat(job["completed_at"]).timestamp())
        for file_id in job["output_files"]:
            size = client.get(f"/files/{file_id}").raise_for_status().json()["size"]
            head = client.get(f"/files/{file_id}/download", headers={"Range": "bytes=0-7"})
            if size <= 0 or head.status_code != 206 or len(head.content) != 8:
                raise RuntimeError(f"job {job_id}: output {file_id} unreadable "
                                   f"({size} bytes, {head.status_code})")
            outputs += 1
        logs = client.get(f"/jobs/{job_id}/logs").raise_for_status().json()
        steps += sum(row["duration"] or 0.0 for row in logs
                     if row["step"] >= 0 and row["success"])
    if outputs != len(ids):
        raise RuntimeError(f"{len(ids)} jobs completed with {outputs} outputs")
    return Timed(last - started, spent, steps)


def label(storage: str, workers: int) -> str:
    return f"{workers} worker{'s' if workers > 1 else ''}, {storage}"


def bare_ffmpeg(specs: list[dict], files: dict[str, Path], work: Path,
                parallel: int) -> tuple[float, float]:
    """The jobs' ffmpeg commands (compiled by the service's compiler, one encoder thread
    each) run ``parallel`` at a time by bare ffmpeg: (wall seconds, CPU seconds per job)."""
    commands = [with_threads(compiled_argv(spec, files, work / f"bare-{uuid.uuid4().hex}"), 1)
                for spec in specs]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(lambda argv: subprocess.run(argv, check=True, stdout=subprocess.DEVNULL,
                                                  stderr=subprocess.DEVNULL), commands))
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, cpu / len(specs)


def outside(run: Timed) -> float:
    """Cores busy with anything but this benchmark's processes during ``run``."""
    ours = sum(v for k, v in run.cpu.items() if k != "machine")
    return max(0.0, (run.cpu["machine"] - ours) / run.wall)


def summary(config: tuple[str, int], runs: list[Timed], jobs: int) -> str:
    """The median wall time, and beside it (medians too) where the CPU went and how busy
    the worker slots were: a slot idle between steps is a wait on the queue, the
    database or the workflow, not on ffmpeg."""
    wall = statistics.median(r.wall for r in runs)
    per_job = {k: statistics.median(r.cpu[k] for r in runs) / jobs for k in runs[0].cpu}
    machine = per_job.pop("machine") * jobs / wall
    others = machine - sum(per_job.values()) * jobs / wall
    busy = statistics.median(r.steps / (r.wall * config[1]) for r in runs)
    step = statistics.median(r.steps for r in runs) / jobs
    return (f"{label(*config):17s} median {wall:5.1f} s, {jobs / wall:.2f} jobs/s; slots "
            f"busy {busy:.0%} (a step {step:.2f} s); CPU s per job: " +
            ", ".join(f"{k} {v:.3f}" for k, v in per_job.items()) +
            f"; machine busy {machine:.2f} of {os.cpu_count()} cores, "
            f"{max(0.0, others):.2f} of them outside this bench")


def measure(jobs: int = 40, rounds: int = 3, database: str | None = None,
            verbose: bool = True, keep: bool = False) -> dict[str, float]:
    runs: dict[tuple[str, int], list[Timed]] = {c: [] for c in CONFIGS}
    with ExitStack() as cleanup:
        root = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
        if keep:
            print(f"keeping {root} (logs/: Temporal, the APIs, every worker)", flush=True)
        else:
            cleanup.callback(shutil.rmtree, root, ignore_errors=True)
        clips = [make_clip(root / "a.mp4", 2, size="320x240"),
                 make_clip(root / "b.mp4", 1.5, size="320x240", frequency=660)]
        moto_url = cleanup.enter_context(moto_s3())
        cluster = Cluster(root, database, moto_url)
        cleanup.callback(cluster.close)
        cluster.start()
        local = Stack(cluster.apis["local"], root)
        s3 = local.clone()  # the same user (one database, one JWT secret) on the S3 API
        s3.http = httpx.Client(base_url=f"{cluster.apis['s3']}/api/v1", timeout=300,
                               headers=dict(local.http.headers))
        clients = {"local": local, "s3": s3}
        file_ids = {storage: [c.upload(clip) for clip in clips]
                    for storage, c in clients.items()}
        for round_ in range(1, rounds + 1):
            for storage, workers in CONFIGS:
                if cluster.workers and (len(cluster.workers) > workers or
                                        cluster.workers[0].storage != storage):
                    cluster.stop_workers()
                while len(cluster.workers) < workers:
                    cluster.add_worker(storage)
                http = clients[storage].http
                run_jobs(http, [spec_for(n, file_ids[storage]) for n in range(2 * workers)],
                         cluster)  # warm-up: imports, connections, caches
                timed = run_jobs(http, [spec_for(n, file_ids[storage]) for n in range(jobs)],
                                 cluster)
                runs[(storage, workers)].append(timed)
                if verbose:
                    print(f"round {round_}, {label(storage, workers)}: {jobs} jobs in "
                          f"{timed.wall:.1f} s ({jobs / timed.wall:.2f} jobs/s; slots busy "
                          f"{timed.steps / (timed.wall * workers):.0%}; "
                          f"{outside(timed):.2f} cores busy outside this bench)", flush=True)
            if verbose:
                one, two, on_s3 = (runs[c][-1].wall for c in CONFIGS)
                print(f"round {round_}: two workers / one {one / two:.2f}, "
                      f"S3 / local {on_s3 / one:.2f}", flush=True)
        cluster.stop_workers()
        cluster.close()  # the machine to bare ffmpeg alone
        specs = [spec_for(n, file_ids["local"]) for n in range(jobs)]
        files = dict(zip(file_ids["local"], clips, strict=True))
        (alone, cpu_alone), (paired, cpu_paired) = (
            bare_ffmpeg(specs, files, root, parallel) for parallel in (1, 2))
    for config in CONFIGS:
        print(summary(config, runs[config], jobs))
    print(f"bare ffmpeg, the same {jobs} commands: one at a time {alone:.1f} s "
          f"({cpu_alone:.3f} CPU s per job), two at a time {paired:.1f} s ({cpu_paired:.3f}); "
          f"ratio {alone / paired:.2f}")
    one, two, on_s3 = (statistics.median(r.wall for r in runs[c]) for c in CONFIGS)
    # the CPU the two-worker runs spent (ffmpeg and the stack), spread over every core:
    # the shortest wall time they could have had on an otherwise idle machine
    ours = statistics.median(sum(v for k, v in r.cpu.items() if k != "machine")
                             for r in runs[CONFIGS[1]])
    shortest = ours / (os.cpu_count() or 1)
    return {"scaling": one / two, "s3_ratio": on_s3 / one, "two_workers_seconds": two,
            "two_workers_cpu_bound": shortest, "scaling_ceiling": min(2.0, one / shortest)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 6 jobs, one round")
    parser.add_argument("--database", default=None,
                        help="an empty PostgreSQL database (default: SQLite in a temp dir)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the run's directory (the processes' logs) afterwards")
    args = parser.parse_args()
    jobs, rounds = (6, 1) if args.quick else (args.jobs, args.rounds)
    result = measure(jobs, rounds, args.database, keep=args.keep)
    scaling, s3_ratio = result["scaling"], result["s3_ratio"]
    print(f"two workers' throughput / one worker's (local): {scaling:.2f} (target >= 1.7: "
          f"{'met' if scaling >= 1.7 else 'NOT met'})")
    print(f"  the two-worker runs' own CPU needs {result['two_workers_cpu_bound']:.1f} s on "
          f"{os.cpu_count()} idle cores (their median: {result['two_workers_seconds']:.1f} s), "
          f"so this machine's ceiling for the ratio is {result['scaling_ceiling']:.2f}")
    print(f"S3 wall time / local wall time (one worker): {s3_ratio:.2f} (target <= 1.15: "
          f"{'met' if s3_ratio <= 1.15 else 'NOT met'})")


if __name__ == "__main__":
    main()
