"""Backing services the tests start as real processes on loopback: Redis, moto's S3."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cli.devstack import free_ports


def wait_for_port(port: int, process: subprocess.Popen, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port} within {timeout} s")


@contextmanager
def serving(argv: list[str], port: int, what: str, output: Path | None = None) -> Iterator[str]:
    """Run ``argv`` until the block ends, once it listens on ``port``; yields the port's
    loopback ``host:port``."""
    with (output.open("wb") if output else open(os.devnull, "wb")) as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, process, what)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


@contextmanager
def redis_server(directory: Path) -> Iterator[str]:
    """Debian's ``redis-server`` on a free loopback port, keeping nothing on disk; yields
    its ``redis://`` URL."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is missing (make test installs Debian's redis-server)"
    port = free_ports(1)[0]
    with serving([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                  "--appendonly", "no", "--dir", str(directory)], port, "redis-server") as at:
        yield f"redis://{at}"


@contextmanager
def moto_s3_server(log: Path) -> Iterator[str]:
    """moto's S3 server as its own process on a free loopback port; yields the endpoint."""
    port = free_ports(1)[0]
    with serving([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                 port, "moto's S3 server", log) as at:
        yield f"http://{at}"
