"""Running the API under uvicorn with the connection-level defences uvicorn lacks
(docs/SECURITY.md #23).

uvicorn waits forever for a request's headers and accepts connections until the
process runs out of file descriptors, so a few thousand clients that send half a
request (or nothing) starve everyone else. :class:`GuardedHttpToolsProtocol` adds:

* a **header deadline**: a connection must deliver a request's complete headers within
  ``MEDIAFLOW_HTTP_HEADER_TIMEOUT`` seconds of opening (or of that request's first byte
  on a kept-alive connection), else it is answered 408 and closed;
* a **connection ceiling**: past ``MEDIAFLOW_HTTP_MAX_CONNECTIONS`` open connections,
  the oldest connection that is idle or still sending headers is closed to make room,
  so a new client (a load balancer's health probe) always gets in; a connection whose
  request is being served is never cut. If every connection is busy, the new one is
  refused instead.

Bodies that stall are the ASGI layer's job (``api.guard``). :func:`serve` also raises
the process's open-file limit to its hard limit, so the ceiling, not the kernel, is
what binds.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import shutil
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from core.config import Settings, get_settings
from core.logs import uvicorn_log_config

log = logging.getLogger("mediaflow.api.server")
REQUEST_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header deadline and a connection ceiling."""

    settings: Settings | None = None  # None: read from the environment on first use

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = type(self).settings or get_settings()
        self._header_timeout = settings.http_header_timeout
        self._max_connections = settings.http_max_connections
        self._header_deadline: asyncio.TimerHandle | None = None
        self._opened_at = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._opened_at = self.loop.time()
        self._arm_header_deadline()
        if len(self.connections) > self._max_connections:
            self._make_room()

    def data_received(self, data: bytes) -> None:
        if self._header_deadline is None and (self.cycle is None or self.cycle.response_complete):
            self._arm_header_deadline()  # the first bytes of the next request on this connection
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._disarm_header_deadline()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    # -- the header deadline ----------------------------------------------------------------
    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        self._header_deadline = self.loop.call_later(self._header_timeout, self._too_slow)

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _too_slow(self) -> None:
        self._header_deadline = None
        if not self.transport.is_closing():
            self.transport.write(REQUEST_TIMEOUT)
            self.transport.close()

    # -- the connection ceiling ------------------------------------------------------------
    @property
    def _evictable(self) -> bool:
        """Idle (between requests) or still sending a request's headers."""
        return not self.transport.is_closing() and (
            self.cycle is None or self.cycle.response_complete)

    def _make_room(self) -> None:
        candidates = [c for c in self.connections
                      if isinstance(c, GuardedHttpToolsProtocol) and c is not self and c._evictable]
        if not candidates:
            log.warning("%d connections, all busy: refusing a new one", len(self.connections))
            self.transport.close()
            return
        oldest = min(candidates, key=lambda c: c._opened_at)
        oldest.transport.close()


def raise_open_file_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def share_metrics_between_processes(settings: Settings) -> None:
    """prometheus_client's multiprocess mode for ``--workers N`` (docs/OPERATIONS.md,
    "Metrics"): every process writes its samples to files in one directory, emptied at
    start, and whichever process answers ``/metrics`` sums them. Set before uvicorn spawns
    the processes, which import prometheus_client afresh and inherit it."""
    directory = (settings.data_dir / "prometheus-multiproc").resolve()
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)


def serve(settings: Settings, *, host: str, port: int, workers: int) -> None:
    """``mediaflow api``: the app under uvicorn with the guarded protocol."""
    import uvicorn

    raise_open_file_limit()
    if workers > 1:
        share_metrics_between_processes(settings)
    logging_options: dict[str, Any] = {}
    if settings.log_format == "json":  # every line one JSON object (core/logs.py)
        logging_options = {"log_config": uvicorn_log_config(settings.log_level, "json")}
    uvicorn.run(
        "api.main:create_app", factory=True, host=host, port=port, workers=workers,
        log_level=settings.log_level.lower(), proxy_headers=True,
        http=GuardedHttpToolsProtocol, timeout_keep_alive=5,
        access_log=False,  # api.middleware logs each request once, with its request id
        **logging_options,
    )
