"""``free_ports`` for tests and benchmarks: with a port block set (one per parallel test
process), ports come from that block only, in turn, skipping ports in use."""

from __future__ import annotations

import socket

import pytest

from cli.devstack import PORT_BLOCK_ENV, PortBusy, free_ports


def test_ports_come_from_the_block_in_turn_and_skip_a_busy_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(PORT_BLOCK_ENV, "29100-29109")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 29101))
        holder.listen()
        first = free_ports(3)
        second = free_ports(3)
        third = free_ports(4)
    assert (first, second) == ([29100, 29102, 29103], [29104, 29105, 29106])
    assert third == [29107, 29108, 29109, 29100]  # the end of the block wraps to its start


def test_a_full_block_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PORT_BLOCK_ENV, "29120-29121")
    with socket.socket() as one, socket.socket() as two:
        for sock, port in ((one, 29120), (two, 29121)):
            sock.bind(("127.0.0.1", port))
            sock.listen()
        with pytest.raises(PortBusy, match="fewer than 1 free ports"):
            free_ports(1)


def test_without_a_block_the_kernel_picks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PORT_BLOCK_ENV, raising=False)
    ports = free_ports(2)
    assert len(set(ports)) == 2 and all(port > 0 for port in ports)
