"""Backing services the tests start as real processes on loopback: Redis, moto's S3."""

from __future__ import annotations

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
def redis_server(directory: Path) -> Iterator[str]:
    """Debian's ``redis-server`` on a free loopback port, keeping nothing on disk; yields
    its ``redis://`` URL."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is missing (make test installs Debian's redis-server)"
    port = free_ports(1)[0]
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(directory)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, process, "redis-server")
        yield f"redis://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


@contextmanager
def moto_s3_server(log: Path) -> Iterator[str]:
    """moto's S3 server as its own process on a free loopback port; yields the endpoint."""
    port = free_ports(1)[0]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, process, "moto's S3 server")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)
