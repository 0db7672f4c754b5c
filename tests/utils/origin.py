"""A real HTTP server on 127.0.0.1 for URL-import tests: media, redirect chains, huge
declared lengths, trickling bodies, failures, and responses held until the test
releases them. It runs on the test's event loop (asyncio streams), so the in-process
workers reach it over a real socket, and it records what each client asked and got."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

Handler = Callable[["Exchange"], Awaitable[None]]


@dataclass
class Exchange:
    path: str
    headers: dict[str, str]
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def head(self, status: int, headers: dict[str, str]) -> None:
        lines = [f"HTTP/1.1 {status} X", *(f"{k}: {v}" for k, v in headers.items()),
                 "Connection: close", "", ""]
        self.writer.write("\r\n".join(lines).encode("latin-1"))
        await self.writer.drain()

    async def send(self, status: int, body: bytes, content_type: str = "video/mp4",
                   **headers: str) -> None:
        await self.head(status, {"Content-Type": content_type,
                                 "Content-Length": str(len(body)), **headers})
        self.writer.write(body)
        await self.writer.drain()

    async def redirect(self, location: str, status: int = 302) -> None:
        await self.send(status, b"", content_type="text/plain", Location=location)

    async def client_went_away(self, within: float) -> bool:
        """Whether the client closed the connection within ``within`` seconds."""
        try:
            return await asyncio.wait_for(self.reader.read(1), within) == b""
        except (TimeoutError, ConnectionError):
            return False


@dataclass
class Origin:
    base: str = ""
    routes: dict[str, Handler] = field(default_factory=dict)
    hits: Counter[str] = field(default_factory=Counter)
    host_headers: list[str] = field(default_factory=list)
    notes: dict[str, object] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def route(self, path: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.routes[path] = handler
            return handler
        return register

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await reader.readuntil(b"\r\n\r\n")
            line, *header_lines = request.decode("latin-1").split("\r\n")
            path = line.split(" ")[1]
            headers = {k.strip().lower(): v.strip() for k, _, v in
                       (h.partition(":") for h in header_lines if h)}
            self.hits[path] += 1
            self.host_headers.append(headers.get("host", ""))
            handler = self.routes.get(path)
            exchange = Exchange(path, headers, reader, writer)
            if handler is None:
                await exchange.send(404, b"not here", content_type="text/plain")
            else:
                await handler(exchange)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(ConnectionError):
                writer.close()


@asynccontextmanager
async def origin() -> AsyncIterator[Origin]:
    served = Origin()
    server = await asyncio.start_server(served._serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    served.base = f"http://127.0.0.1:{port}"
    try:
        yield served
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 5)
