"""A lean HTTP/1.1 keep-alive client on asyncio streams, for load generation.

A load generator that shares two cores with the server it measures must spend as little CPU
per request as it can; a general-purpose client (connection pools, cookie jars, header
models) costs several times more. This one speaks just enough HTTP/1.1: one request at a
time per connection, `Content-Length` or chunked bodies, and reconnects when the server
closes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass


class HttpError(Exception):
    """The connection failed or the server sent something that is not HTTP/1.1."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    headers: dict[str, str]


class Connection:
    """One keep-alive connection to `host:port`; opened lazily, reopened after a close."""

    def __init__(self, host: str, port: int, *, timeout_s: float = 30.0) -> None:
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        *,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> Response:
        try:
            return await asyncio.wait_for(
                self._exchange(method, path, body, content_type, headers or {}), self.timeout_s
            )
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
            await self.close()
            raise HttpError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc

    async def _exchange(
        self, method: str, path: str, body: bytes, content_type: str, headers: dict[str, str]
    ) -> Response:
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        if body or method in ("POST", "PUT", "PATCH"):
            head += [f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        payload = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        reused = self._writer is not None and not self._writer.is_closing()
        try:
            response = await self._send(payload)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            # A server closes a keep-alive connection after it has been idle a while
            # (uvicorn: 5 s); a request sent as it does so gets no answer at all. Nothing was
            # read from it, so it is sent once more on a new connection. Anything else, or
            # the same on a fresh connection, is an error.
            answered = isinstance(exc, asyncio.IncompleteReadError) and exc.partial
            if not reused or answered:
                raise
            await self.close()
            response = await self._send(payload)
        if response.headers.get("connection", "").lower() == "close":
            await self.close()
        return response

    async def _send(self, payload: bytes) -> Response:
        if self._writer is None or self._writer.is_closing():
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        self._writer.write(payload)
        return await _read_response(self._reader)

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass


async def _read_response(reader: asyncio.StreamReader) -> Response:
    status_line = await reader.readuntil(b"\r\n")
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise ValueError(f"not an HTTP/1.x status line: {status_line[:80]!r}")
    status = int(parts[1])
    headers: dict[str, str] = {}
    while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = await _read_chunked(reader)
    else:
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Response(status, body, headers)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks = []
    while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)
    while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
        pass
    return b"".join(chunks)
