"""Request ids (``X-Request-ID`` in and out, in the log line)."""

from __future__ import annotations

import logging
import re

import httpx
import pytest


async def test_request_id_is_made_when_absent(client: httpx.AsyncClient, api_prefix: str) -> None:
    response = await client.get(f"{api_prefix}/auth/me")

    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])


async def test_request_id_is_echoed_and_logged(
    client: httpx.AsyncClient, api_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="mediaflow.api.access"):
        response = await client.get(f"{api_prefix}/auth/me", headers={"X-Request-ID": "trace-42.a"})

    assert response.status_code == 401
    assert response.headers["X-Request-ID"] == "trace-42.a"
    line = next(r.getMessage() for r in caplog.records if "trace-42.a" in r.getMessage())
    assert f"GET {api_prefix}/auth/me 401" in line


@pytest.mark.parametrize(
    "hostile", [b"a b", b"x" * 200, "evil\u2028line".encode(), b"", b"id\tinjected=1"]
)
async def test_hostile_request_id_is_replaced(
    client: httpx.AsyncClient, api_prefix: str, hostile: bytes
) -> None:
    response = await client.get(f"{api_prefix}/auth/me", headers={b"X-Request-ID": hostile})

    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])


async def test_answers_made_outside_routes_carry_a_request_id(
    client: httpx.AsyncClient, api_prefix: str
) -> None:
    """The 413 comes from FastAPI's body limit before any route runs."""
    response = await client.post(
        f"{api_prefix}/auth/login",
        content=b"{" + b" " * 100_000 + b"}",
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 413
    assert "X-Request-ID" in response.headers
