"""Slow and hostile connections against the real server process (``mediaflow api`` on
loopback, docs/SECURITY.md #21, #23): half-sent requests and idle connections are cut
off, they never stop ``/health`` answering, and a refused request leaves its keep-alive
connection usable."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.config import Settings
from tests.utils.server import api_process

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 1.0
MAX_CONNECTIONS = 60
HALF_OPEN = 200  # more than the ceiling: the oldest half-open ones make room for others


@pytest.fixture(scope="module")
def server(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``mediaflow api`` in its own process, with short timeouts and a low ceiling."""
    with api_process(settings, tmp_path_factory.mktemp("slow-clients"),
                     HTTP_HEADER_TIMEOUT=str(HEADER_TIMEOUT),
                     HTTP_BODY_TIMEOUT=str(BODY_TIMEOUT),
                     HTTP_MAX_CONNECTIONS=str(MAX_CONNECTIONS)) as base:
        yield base


def connect(base: str) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=5)
    return sock


def closed_by_server(sock: socket.socket, within: float) -> bool:
    """Whether the server closes ``sock`` (EOF, after any answer) within ``within`` s."""
    sock.settimeout(within)
    try:
        while chunk := sock.recv(4096):
            del chunk
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def health(base: str) -> int:
    """A fresh client's health probe, as a load balancer would make it."""
    return httpx.get(f"{base}/api/v1/health", timeout=5).status_code


@pytest.mark.parametrize(("count", "first_bytes"), [
    (HALF_OPEN, b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: "),  # never ends
    (20, b""),  # connects, says nothing
], ids=["half-sent headers", "idle"])
def test_slow_connections_are_cut_off_and_health_answers(
    server: str, count: int, first_bytes: bytes
) -> None:
    sockets = []
    try:
        for _ in range(count):
            sock = connect(server)
            sock.sendall(first_bytes)
            sockets.append(sock)
        assert health(server) == 200  # past the ceiling, room was made: the probe got in
        assert health(server) == 200
        # each is answered 408 (or just closed) once its header time is up
        assert all(closed_by_server(sock, HEADER_TIMEOUT + 3) for sock in sockets)
    finally:
        for sock in sockets:
            sock.close()


def test_a_stalled_body_is_refused_with_408(server: str) -> None:
    with connect(server) as sock:
        sock.sendall(b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{\"email")
        sock.settimeout(BODY_TIMEOUT + 5)
        answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert closed_by_server(sock, 3)


def test_a_refused_request_keeps_its_connection(server: str) -> None:
    """A 422 for JSON that parsers disagree on is an ordinary answer: the same keep-alive
    connection serves the next request."""
    body = b'{"email_or_username": NaN, "password": "x"}'
    request = (b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    with connect(server) as sock, sock.makefile("rb") as stream:
        sock.sendall(request)
        assert stream.readline().startswith(b"HTTP/1.1 422")
        length = 0
        while (line := stream.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        assert b"json_invalid" in stream.read(length)
        sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert stream.readline().startswith(b"HTTP/1.1 200")


def test_a_declared_body_over_the_cap_is_refused_before_it_is_sent(server: str) -> None:
    with connect(server) as sock:
        sock.sendall(b"POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                     b"\r\nContent-Length: 209715200\r\n\r\n")  # 200 MB announced, none sent
        sock.settimeout(5)
        assert sock.recv(65536).startswith(b"HTTP/1.1 413")


def test_the_server_raises_its_open_file_limit(server: str) -> None:
    """The connection ceiling, not the kernel's default 1024 descriptors, is what binds."""
    port = server.rsplit(":", 1)[1]
    pids = subprocess.run(["pgrep", "-f", f"cli.main api --port {port}"],  # noqa: S607
                          capture_output=True, text=True).stdout.split()
    limits = Path(f"/proc/{pids[0]}/limits").read_text()
    soft, hard = next(line.split()[3:5] for line in limits.splitlines()
                      if line.startswith("Max open files"))
    assert soft == hard
