"""Temporal client construction shared by the API, workers and CLI."""

from __future__ import annotations

import asyncio

from temporalio.client import Client

from core.config import Settings


async def connect(settings: Settings, *, timeout: float = 5.0) -> Client:
    return await asyncio.wait_for(
        Client.connect(settings.temporal_address, namespace=settings.temporal_namespace),
        timeout=timeout,
    )


class TemporalConnection:
    """A client connected on first use, so the API starts while Temporal is down.

    ``get()`` raises while Temporal is unreachable; the health check and the
    routes turn that into a 503.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: Client | None = None
        self._lock = asyncio.Lock()

    async def get(self, timeout: float = 5.0) -> Client:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                self._client = await connect(self._settings, timeout=timeout)
        return self._client

    async def check(self, timeout: float = 3.0) -> None:
        client = await self.get(timeout=timeout)
        await asyncio.wait_for(client.service_client.check_health(), timeout=timeout)
