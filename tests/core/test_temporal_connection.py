"""The API's Temporal connection while Temporal is unreachable: callers do not queue up
behind one connect timeout each, and a new attempt is made once the pause is over."""

from __future__ import annotations

import asyncio
import socket

import pytest

from core import temporal
from core.config import Settings
from core.temporal import TemporalConnection


def closed_port() -> int:
    with socket.socket() as s:  # bound and closed: nothing listens there
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_a_failed_connect_fails_the_callers_behind_it_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    attempts = 0
    real_connect = temporal.connect

    async def counted(*args, **kwargs):  # the real connect, to a port nothing listens on
        nonlocal attempts
        attempts += 1
        return await real_connect(*args, **kwargs)

    monkeypatch.setattr(temporal, "connect", counted)
    monkeypatch.setattr(TemporalConnection, "RETRY_SECONDS", 0.5)
    connection = TemporalConnection(Settings(temporal_address=f"127.0.0.1:{closed_port()}"))

    results = await asyncio.gather(*(connection.get(timeout=2.0) for _ in range(10)),
                                   return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results), results
    assert attempts == 1, "the nine behind the first were told at once"
    with pytest.raises(RuntimeError):  # the client's "failed client connect"
        await connection.get(timeout=2.0)
    assert attempts == 1

    await asyncio.sleep(0.6)  # the pause is over: the next caller tries again
    with pytest.raises(RuntimeError):  # the client's "failed client connect"
        await connection.get(timeout=2.0)
    assert attempts == 2
