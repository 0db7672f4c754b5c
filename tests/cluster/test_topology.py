"""mediaflow as a cluster of separate processes on loopback, through faults.

PostgreSQL (a fresh database), the Temporal dev server, moto's S3 server and Redis run as
their own processes; so do the API (``--workers 2``: two processes behind one port), two
CPU workers and one GPU-pool worker. There is no GPU here, so the GPU worker's NVDEC
attempt fails and it decodes on the CPU, as it would on a host without NVDEC. Every
worker has its own data and scratch directory; storage is S3, so nothing is shared but
S3, PostgreSQL and Temporal.

30 jobs of every type, fused and stepwise pipelines among them, come from 4 clients at
once; meanwhile a worker is killed with SIGKILL in the middle of a step, the Temporal
server is restarted and one API process is killed (uvicorn's supervisor starts another).
Then: every job completed, each output exists exactly once and is what ffprobe and its
checksum say; the bucket and the rows agree; every scratch directory is empty; a login
rate limit holds across both API processes; and ``/metrics`` counts both processes.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import io
import json
import os
import signal
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import boto3
import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cli.devstack import free_ports
from tests.conftest import (
    PG_SERVER,
    REPO,
    SEARCH_ATTRIBUTE_ARGS,
    create_database,
    drop_database,
    run_cli,
    strong_secret,
    temporal_binary,
)
from tests.utils.media import SRT, ffprobe, make_audio, make_png, make_video
from tests.utils.services import moto_s3_server, wait_for_port

pytestmark = pytest.mark.slow

API = "/api/v1"
BUCKET = "topology"
LOGIN_LIMIT = 8
FAST = {"preset": "ultrafast"}


@dataclass
class Service:
    """One process of the cluster, its log kept in a file."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen | None = None
    starts: int = 0

    def start(self) -> None:
        self.starts += 1
        with self.log.open("ab") as out:
            out.write(f"\n--- start {self.starts} ---\n".encode())
            out.flush()
            self.process = subprocess.Popen(self.argv, cwd=REPO, env=self.env, stdout=out,
                                            stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self, timeout: float = 30) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"==== {self.name} ====\n" + "\n".join(text.splitlines()[-lines:])


@dataclass
class Cluster:
    root: Path
    pg_url: str
    s3_endpoint: str
    redis_url: str
    temporal: Service
    api: Service
    api_port: int
    workers: dict[str, Service] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def scratch_of(self, worker: str) -> Path:
        return self.root / worker / "scratch"

    def api_children(self) -> list[psutil.Process]:
        """uvicorn's worker processes (not multiprocessing's resource tracker)."""
        found = []
        for child in psutil.Process(self.api.pid).children():
            try:
                if "spawn_main" in " ".join(child.cmdline()):
                    found.append(child)
            except psutil.NoSuchProcess:
                continue
        return found

    def logs(self) -> str:
        return "\n".join(s.tail() for s in [self.temporal, self.api, *self.workers.values()])


def mediaflow(*args: str) -> list[str]:
    return [sys.executable, "-m", "cli.main", *args]


def wait_until(check, what: str, timeout: float = 60) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def api_ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}{API}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("cluster")
    pg_url = asyncio.run(create_database(PG_SERVER))
    temporal_port, api_port = free_ports(2)
    common = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MEDIAFLOW_")},
        "MEDIAFLOW_ENV": "test", "MEDIAFLOW_DATABASE_URL": pg_url,
        "MEDIAFLOW_TEMPORAL_ADDRESS": f"127.0.0.1:{temporal_port}",
        "MEDIAFLOW_JWT_SECRET": strong_secret(),
        "MEDIAFLOW_STORAGE": "s3", "MEDIAFLOW_S3_BUCKET": BUCKET,
        "MEDIAFLOW_S3_ACCESS_KEY": "testing", "MEDIAFLOW_S3_SECRET_KEY": "testing",
        "MEDIAFLOW_RATE_LIMIT_STORAGE": redis_url,
        "MEDIAFLOW_RATE_LIMIT_LOGIN": f"{LOGIN_LIMIT}/minute",
        "MEDIAFLOW_FFMPEG_THREADS": "1", "MEDIAFLOW_LOG_LEVEL": "INFO",
    }
    common.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with moto_s3_server(root / "moto.log") as s3_endpoint:
        common["MEDIAFLOW_S3_ENDPOINT_URL"] = s3_endpoint
        boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                     aws_access_key_id="testing", aws_secret_access_key="testing",
                     ).create_bucket(Bucket=BUCKET)
        migrated = run_cli("migrate", env={"MEDIAFLOW_DATABASE_URL": pg_url,
                                           "MEDIAFLOW_ENV": "test"})
        assert migrated.returncode == 0, migrated.stderr

        temporal = Service("temporal", [
            temporal_binary(), "server", "start-dev", "--ip", "127.0.0.1",
            "--port", str(temporal_port), "--headless",
            "--http-port", str(free_ports(1)[0]), "--metrics-port", str(free_ports(1)[0]),
            "--db-filename", str(root / "temporal.sqlite"), "--log-level", "error",
            *SEARCH_ATTRIBUTE_ARGS], common, root / "temporal.log")
        api = Service("api", mediaflow("api", "--port", str(api_port), "--workers", "2"),
                      {**common, "MEDIAFLOW_DATA_DIR": str(root / "api")}, root / "api.log")
        cluster = Cluster(root, pg_url, s3_endpoint, redis_url, temporal, api, api_port)
        for name, pool in (("cpu-1", "cpu"), ("cpu-2", "cpu"), ("gpu-1", "gpu")):
            env = {**common, "MEDIAFLOW_DATA_DIR": str(root / name),
                   "MEDIAFLOW_SCRATCH_DIR": str(cluster.scratch_of(name))}
            cluster.workers[name] = Service(
                name, mediaflow("worker", "--pool", pool, "--concurrency", "2"), env,
                root / f"{name}.log")
        try:
            temporal.start()
            wait_for_port(temporal_port, temporal.process, "temporal")  # type: ignore[arg-type]
            api.start()
            for worker in cluster.workers.values():
                worker.start()
            wait_until(lambda: api_ready(cluster.base), "the API")
            wait_until(lambda: len(cluster.api_children()) == 2, "two API processes")
            yield cluster
        except BaseException:
            print(cluster.logs())
            raise
        finally:
            for service in [*cluster.workers.values(), api, temporal]:
                service.stop()
            asyncio.run(drop_database(pg_url))


# -- the clients ----------------------------------------------------------------------------


@dataclass
class Client:
    http: httpx.AsyncClient
    headers: dict[str, str]
    inputs: dict[str, str]


async def register(http: httpx.AsyncClient) -> dict[str, str]:
    tag = uuid.uuid4().hex[:10]
    password = f"Pw{uuid.uuid4().hex[:12]}9"
    made = await http.post(f"{API}/auth/register", json={
        "email": f"c-{tag}@example.com", "username": f"c_{tag}", "password": password})
    assert made.status_code == 201, made.text
    tokens = await http.post(f"{API}/auth/login", json={
        "email_or_username": f"c_{tag}", "password": password})
    assert tokens.status_code == 200, tokens.text
    return {"Authorization": f"Bearer {tokens.json()['access_token']}"}


async def patient(call, *args, **kwargs) -> httpx.Response:  # noqa: ANN001
    """Retry through the faults: a killed API process drops its connections, and while
    Temporal restarts the API answers 503 for what needs it."""
    for _ in range(200):
        try:
            response = await call(*args, **kwargs)
        except httpx.TransportError:
            await asyncio.sleep(0.25)
            continue
        if response.status_code not in (502, 503):
            return response
        await asyncio.sleep(0.25)
    raise AssertionError(f"no answer through the faults: {args}")


async def open_client(base: str, media: dict[str, Path]) -> Client:
    http = httpx.AsyncClient(base_url=base, timeout=30)
    headers = await register(http)
    inputs = {}
    for name, path in media.items():
        with path.open("rb") as f:
            response = await http.post(f"{API}/files", headers=headers,
                                       files={"file": (path.name, f, "application/octet-stream")})
        assert response.status_code == 201, response.text
        inputs[name] = response.json()["id"]
    return Client(http, headers, inputs)


def mixed_specs(i: dict[str, str]) -> list[tuple[dict, int]]:
    """Every job type, fused and stepwise pipelines, two on the GPU pool; with the
    number of outputs each must have."""
    steps = [
        {"id": "joined", "type": "join", "params": {"inputs": [i["a"], i["b"]]}},
        {"id": "titled", "type": "text_overlay",
         "params": {"video": "@joined", "text": "Cluster", "font_size": 20}},
        {"id": "scored", "type": "audio_overlay",
         "params": {"video": "@titled", "audio": i["tone"], "audio_volume": 0.5}},
        {"id": "final", "type": "subtitles", "params": {"video": "@scored",
                                                         "subtitles": i["srt"]}},
    ]
    return [
        ({"type": "join", "params": {"inputs": [i["a"], i["b"]], "mode": "reencode"},
          "output": FAST}, 1),
        ({"type": "audio_overlay", "params": {"video": i["a"], "audio": i["tone"]},
          "output": FAST}, 1),
        ({"type": "text_overlay", "params": {"video": i["long"], "text": "Slow enough"},
          "output": {"preset": "medium"}}, 1),
        ({"type": "subtitles", "params": {"video": i["a"], "subtitles": i["srt"]},
          "output": FAST}, 1),
        ({"type": "video_overlay", "params": {"video": i["a"], "overlay": i["logo"]},
          "output": FAST}, 1),
        ({"type": "transcode", "params": {"input": i["b"], "mode": "reencode"},
          "output": {**FAST, "container": "mkv"}, "accelerator": "gpu"}, 1),
        ({"type": "trim", "params": {"input": i["a"], "start": 0.5, "end": 1.5},
          "output": FAST}, 1),
        ({"type": "thumbnails", "params": {"input": i["a"], "count": 2}}, 1),
        ({"type": "package", "params": {"input": i["long"], "segment_seconds": 2},
          "accelerator": "gpu"}, 1),
        ({"type": "combined", "params": {"steps": steps, "outputs": ["titled", "final"],
                                          "execution": "stepwise"}, "output": FAST}, 2),
        ({"type": "combined", "params": {"steps": steps}, "output": FAST}, 1),
    ]


async def run_jobs(client: Client, specs: list[tuple[dict, int]]) -> list[tuple[dict, int]]:
    submitted = []
    for spec, outputs in specs:
        response = await patient(client.http.post, f"{API}/jobs", headers=client.headers,
                                 json=spec)
        assert response.status_code == 202, response.text
        submitted.append((response.json(), outputs))
    done = []
    deadline = time.monotonic() + 420
    for job, outputs in submitted:
        while True:
            view = await patient(client.http.get, f"{API}/jobs/{job['id']}",
                                 headers=client.headers)
            if view.json()["status"] in ("completed", "failed", "cancelled"):
                done.append((view.json(), outputs))
                break
            assert time.monotonic() < deadline, f"job still {view.json()['status']}"
            await asyncio.sleep(0.5)
    return done


# -- the faults -------------------------------------------------------------------------------


def steps_running(cluster: Cluster, worker: Service) -> bool:
    """Whether ``worker`` runs a step's ffmpeg right now (one whose files are in its
    scratch; ``ffmpeg -encoders`` at a job's start is not a step)."""
    scratch = str(cluster.scratch_of(worker.name))
    try:
        children = psutil.Process(worker.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return False
    for child in children:
        try:
            if child.name() == "ffmpeg" and scratch in " ".join(child.cmdline()):
                return True
        except psutil.NoSuchProcess:
            continue
    return False


async def inject_faults(cluster: Cluster, events: list[str]) -> None:
    # 1. SIGKILL a CPU worker in the middle of a step, and later start it again
    victim = None
    for _ in range(600):
        victim = next((w for name, w in cluster.workers.items()
                       if name.startswith("cpu") and steps_running(cluster, w)), None)
        if victim:
            break
        await asyncio.sleep(0.05)
    assert victim, "no CPU worker was ever running ffmpeg"
    [claimed] = cluster.scratch_of(victim.name).glob(f"worker-{victim.pid}-*")
    victim.process.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
    victim.process.wait()  # type: ignore[union-attr]
    events.append(f"killed {victim.name} (pid {victim.pid}) mid-step")
    assert any(p.is_file() and p.name != ".lock" for p in claimed.rglob("*")), (
        "its scratch holds the step's files")

    # 2. restart the Temporal server (its state persists in its SQLite file)
    await asyncio.sleep(1)
    cluster.temporal.stop()
    events.append("stopped temporal")
    await asyncio.sleep(2)
    cluster.temporal.start()
    await asyncio.to_thread(wait_for_port, int(cluster.temporal.argv[
        cluster.temporal.argv.index("--port") + 1]), cluster.temporal.process, "temporal")
    events.append("restarted temporal")

    # 3. kill one of the two API processes: uvicorn's supervisor starts another
    before = {p.pid for p in cluster.api_children()}
    os.kill(min(before), signal.SIGKILL)
    await asyncio.to_thread(wait_until, lambda: len(
        {p.pid for p in cluster.api_children()} - before) == 1, "a new API process", 60)
    events.append("restarted one API process")

    # the killed worker comes back on its own scratch directory and sweeps it
    victim.start()
    await asyncio.to_thread(wait_until, lambda: not claimed.exists(),
                            "the dead worker's scratch to be removed", 60)
    events.append(f"restarted {victim.name}; its dead claim is gone")


# -- the checks -------------------------------------------------------------------------------


async def check_output(client: Client, file_id: str, scratch: Path) -> None:
    meta = (await patient(client.http.get, f"{API}/files/{file_id}",
                          headers=client.headers)).json()
    body = (await patient(client.http.get, f"{API}/files/{file_id}/download",
                          headers=client.headers))
    assert body.status_code == 200, body.text
    target = scratch / f"{file_id}-{meta['filename']}"
    if meta["kind"] == "package":
        with zipfile.ZipFile(io.BytesIO(body.content)) as archive:
            names = archive.namelist()
            assert sorted(names) == sorted(m["path"] for m in meta["metadata"]["members"])
            archive.extractall(target)
        probe = ffprobe(target / meta["metadata"]["entry"])
        assert probe["streams"], f"{meta['metadata']['entry']} of {file_id} has no stream"
        return
    assert hashlib.sha256(body.content).hexdigest() == meta["checksum_sha256"]
    target.write_bytes(body.content)
    probe = ffprobe(target)
    kinds = {s["codec_type"] for s in probe["streams"]}
    assert "video" in kinds, f"{file_id}: {kinds}"
    assert float(probe["format"]["duration"]) > 0.5


def bucket_keys(cluster: Cluster) -> set[str]:
    s3 = boto3.client("s3", endpoint_url=cluster.s3_endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    keys: set[str] = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        keys.update(item["Key"] for item in page.get("Contents", []))
    return keys


async def file_rows(pg_url: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(pg_url)
    try:
        return await conn.fetch(
            "SELECT id, storage_key, kind, job, is_deleted FROM mf_media_file")
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cluster-media")
    (root / "subs.srt").write_text(SRT)
    return {"a": make_video(root / "a.mp4", seconds=2),
            "b": make_video(root / "b.mp4", seconds=1.5, frequency=660),
            "long": make_video(root / "long.mp4", seconds=6),
            "tone": make_audio(root / "tone.wav", seconds=2),
            "logo": make_png(root / "logo.png"),
            "srt": root / "subs.srt"}


@pytest.fixture(scope="module")
async def clients(cluster: Cluster, media: dict[str, Path]) -> AsyncIterator[list[Client]]:
    made = [await open_client(cluster.base, media) for _ in range(4)]
    yield made
    for client in made:
        await client.http.aclose()


async def test_thirty_mixed_jobs_complete_through_faults(
    cluster: Cluster, clients: list[Client], tmp_path: Path
) -> None:
    plans = [[] for _ in clients]
    for n in range(30):  # round-robin over the catalogue and the clients
        owner = n % len(clients)
        specs = mixed_specs(clients[owner].inputs)
        plans[owner].append(specs[n % len(specs)])
    events: list[str] = []
    faults = asyncio.create_task(inject_faults(cluster, events))
    try:
        results = await asyncio.gather(*(run_jobs(c, p) for c, p in zip(clients, plans,
                                                                          strict=True)))
        await faults
    except BaseException:
        faults.cancel()
        print(events, cluster.logs(), sep="\n")
        raise
    assert len(events) == 5, events

    jobs = [(client, job, outputs) for client, done in zip(clients, results, strict=True)
            for job, outputs in done]
    assert len(jobs) == 30
    failed = [job for _, job, _ in jobs if job["status"] != "completed"]
    assert not failed, (failed, cluster.logs())
    # each output exactly once, and each what it claims to be
    for client, job, outputs in jobs:
        assert len(job["output_files"]) == outputs == len(set(job["output_files"])), job
        for file_id in job["output_files"]:
            await check_output(client, file_id, tmp_path)
    rows = await file_rows(cluster.pg_url)
    by_job: dict[str, int] = {}
    for row in rows:
        if row["job"] is not None and not row["is_deleted"]:
            by_job[str(row["job"])] = by_job.get(str(row["job"]), 0) + 1
    assert by_job == {job["id"]: outputs for _, job, outputs in jobs}

    # the kill shows as a retry, in the job's log and in the worker logs
    retried = [job for _, job, _ in jobs if job["retry_count"] >= 1]
    assert retried, "the SIGKILLed step must have been retried"
    client = next(c for c, job, _ in jobs if job["id"] == retried[0]["id"])
    log = (await patient(client.http.get, f"{API}/jobs/{retried[0]['id']}/logs",
                         headers=client.headers)).json()
    assert max(entry["attempt"] for entry in log) >= 2, log

    # bucket and rows agree: no object without a row, no row without its object(s)
    keys = bucket_keys(cluster)
    live = [row for row in rows if not row["is_deleted"]]
    owned = set()
    for row in live:
        if row["kind"] == "package":
            members = {k for k in keys if k.startswith(row["storage_key"] + "/")}
            assert f"{row['storage_key']}/_index.json" in members, row
            owned |= members
        else:
            assert row["storage_key"] in keys, row
            owned.add(row["storage_key"])
    assert keys == owned, sorted(keys - owned)

    # every scratch directory holds nothing but the live workers' empty claims
    for name in cluster.workers:
        leftovers = [p for p in cluster.scratch_of(name).rglob("*")
                     if p.is_file() and p.name != ".lock"]
        assert not leftovers, leftovers
        claims = list(cluster.scratch_of(name).iterdir())
        assert len(claims) == 1, claims


def served_by(cluster: Cluster, connection: http.client.HTTPConnection) -> int:
    """The API process holding the server side of ``connection``."""
    assert connection.sock is not None
    port = connection.sock.getsockname()[1]
    for child in cluster.api_children():
        for conn in child.net_connections(kind="tcp"):
            if conn.raddr and conn.raddr.port == port:
                return child.pid
    raise AssertionError(f"no API process holds the connection from port {port}")


def failed_login(cluster: Cluster, account: str) -> tuple[int, int]:
    """One wrong password on a connection of its own: (status, API process)."""
    connection = http.client.HTTPConnection("127.0.0.1", cluster.api_port, timeout=10)
    try:
        connection.request("POST", f"{API}/auth/login", headers={
            "Content-Type": "application/json"}, body=json.dumps(
            {"email_or_username": account, "password": "Wrong-password-1"}))
        response = connection.getresponse()
        response.read()
        return response.status, served_by(cluster, connection)
    finally:
        connection.close()


def login_requests(cluster: Cluster) -> float:
    text = httpx.get(f"{cluster.base}/metrics", timeout=10).text
    return sum(sample.value for family in text_string_to_metric_families(text)
               for sample in family.samples
               if sample.name == "mediaflow_http_requests_total"
               and sample.labels.get("route") == f"{API}/auth/login")


def test_a_login_limit_holds_across_both_api_processes_and_metrics_sum_them(
    cluster: Cluster, clients: list[Client]
) -> None:
    before = login_requests(cluster)
    account = f"nobody-{uuid.uuid4().hex[:8]}"
    answers = [failed_login(cluster, account) for _ in range(3 * LOGIN_LIMIT)]
    statuses = [status for status, _ in answers]
    assert statuses == [400] * LOGIN_LIMIT + [429] * (2 * LOGIN_LIMIT), statuses
    # both processes answered: one count, not one per process
    processes = {pid for _, pid in answers}
    assert len(processes) == 2, "every attempt went to one process: nothing was shown"
    assert login_requests(cluster) - before == len(answers)


def test_workers_stop_with_their_scratch_empty(cluster: Cluster) -> None:
    for worker in cluster.workers.values():
        worker.stop()
        assert worker.process is not None and worker.process.returncode == 0, worker.tail()
        assert list(cluster.scratch_of(worker.name).rglob("*")) == [], worker.name
