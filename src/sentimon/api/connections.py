"""HTTP connections held to the limits uvicorn does not set by itself.

uvicorn's httptools protocol keeps a connection that never sends a request, or sends its
headers or body a few bytes at a time, for as long as the client likes; it takes headers of any
size and any number of connections. `guarded_protocol` returns that protocol with:

- an idle limit before a new connection's first byte: `keepalive_timeout_s`, the same limit
  uvicorn already applies between requests;
- a request head (request line and headers) that must arrive whole within `header_timeout_s`
  of its first byte and within `max_header_bytes`, or the client gets 408 or 431 and the
  connection is closed;
- a body that must arrive whole within `body_timeout_s` of its head, or 408 and close;
- at most `max_connections` open connections: one more first evicts the longest-idle
  keep-alive connection (as nginx does), and is otherwise answered 503 and closed.
- once a graceful shutdown has begun (SIGTERM), a request still arriving on an open connection,
  or arriving on an idle keep-alive connection within a second, is answered 503 with
  `Connection: close` instead of being started (uvicorn would close that connection without a
  word, and the client could not tell whether its request was served): the requests in flight
  finish, nothing new begins;
- with a `LoadShedder` (`api.admission`), a request it refuses from its head alone is answered at
  once, in one write, and its body skipped as it arrives; the connection stays open. No ASGI
  task, middleware or route runs for it.

Every refusal is a JSON error body like the API's, and is counted in
`sentiment_http_connections_closed_total{reason}`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from sentimon.errors import ServiceError
from sentimon.logs.context import accept_request_id
from sentimon.metrics.definitions import Metrics

if TYPE_CHECKING:
    from sentimon.api.admission import LoadShedder

CloseReason = Literal[
    "idle_timeout", "header_timeout", "body_timeout", "headers_too_large", "too_many_connections",
    "evicted_idle", "shutting_down",
]  # fmt: skip
"""As CONNECTION_CLOSE_REASONS in metrics/definitions.py, each a `reason` label value."""
_Phase = Literal["idle", "head", "body", "busy"]
_PHRASES = {
    408: "Request Timeout",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}
_REQUEST_ID = b"x-request-id"


@dataclass(slots=True)
class _Shed:
    """A request refused from its head, its body still arriving."""

    path: str
    refusal: ServiceError
    started: float
    body_bytes: int = 0


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    keepalive_timeout_s: float = 75
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    max_header_bytes: int = 16_384
    max_connections: int = 1000


SHUTDOWN_LINGER_S = 1.0
"""How long an idle connection stays open once shutdown begins, answering 503 to a request that
was on its way."""


class _HeadTooLarge(Exception):
    pass


class _Draining(Exception):
    pass


@dataclass
class _Server:
    draining: bool = False


def error_bytes(
    status: int,
    error_type: str,
    message: str,
    retry_after_s: int | None = None,
    *,
    keep_alive: bool = False,
    headers: dict[str, str] | None = None,
) -> bytes:
    """A whole response with the API's JSON error body: `Connection: close` unless
    `keep_alive`, then `Retry-After` and `headers`."""
    body = json.dumps({"error": message, "error_type": error_type}).encode()
    head = [
        f"HTTP/1.1 {status} {_PHRASES[status]}",
        "content-type: application/json",
        f"content-length: {len(body)}",
    ]
    if not keep_alive:
        head.append("connection: close")
    if retry_after_s is not None:
        head.append(f"retry-after: {retry_after_s}")
    head += [f"{name.lower()}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def guarded_protocol(
    limits: ConnectionLimits, metrics: Metrics, shedder: LoadShedder | None = None
) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with `limits` (and `shedder`'s refusals); pass it as
    uvicorn's `http`."""
    server = _Server()

    class GuardedHttpProtocol(HttpToolsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._phase: _Phase = "idle"
            self._timer: asyncio.TimerHandle | None = None
            self._head_bytes = 0
            """Bytes received since the request's first byte, while its head is incomplete."""
            self._head_size = 0
            """Bytes of the request line and headers, as parsed."""
            self._idle_since = time.monotonic()
            self._shed: _Shed | None = None

        # Connection life

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            metrics.http_connections.set(len(self.connections))
            if len(self.connections) > limits.max_connections and not self._evict_idle():
                self._refuse(
                    503,
                    "too_many_connections",
                    f"too many open connections (limit {limits.max_connections}); retry shortly",
                    retry_after_s=1,
                )
                return
            self._arm(limits.keepalive_timeout_s, self._idle_timeout)

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)
            metrics.http_connections.set(len(self.connections))

        def _evict_idle(self) -> bool:
            idle = [
                c
                for c in self.connections
                if isinstance(c, GuardedHttpProtocol) and c is not self and c._phase == "idle"
            ]
            if not idle:
                return False
            oldest = min(idle, key=lambda c: c._idle_since)
            oldest._close("evicted_idle")
            return True

        # Bytes in

        def data_received(self, data: bytes) -> None:
            self._unset_keepalive_if_required()
            if self._phase == "idle":
                self._phase = "head"
                self._head_bytes = 0
                self._disarm()
            if self._phase == "head":
                self._head_bytes += len(data)
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserUpgrade:
                if self._should_upgrade():
                    self.handle_websocket_upgrade()
                else:
                    self._unsupported_upgrade_warning()
                return
            except httptools.HttpParserError as error:
                if isinstance(error.__context__, _HeadTooLarge):
                    self._too_large()
                elif isinstance(error.__context__, _Draining):
                    self._refuse(
                        503,
                        "shutting_down",
                        "the server is shutting down; retry (another replica will answer)",
                        retry_after_s=1,
                    )
                else:
                    self.logger.warning("Invalid HTTP request received.")
                    self.send_400_response("Invalid HTTP request received.")
                return
            # A request that came whole (the usual case) set no timer; one still arriving is
            # timed from here.
            if self._phase == "head":
                # No whole head yet: the bytes so far count against the limit (a head in many
                # pieces, or one huge header the parser is still collecting).
                if self._head_bytes > limits.max_header_bytes:
                    self._too_large()
                elif self._timer is None:
                    self._arm(limits.header_timeout_s, self._header_timeout)
            elif self._phase == "body" and self._timer is None:
                self._arm(limits.body_timeout_s, self._body_timeout)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._head_size = 0

        def on_url(self, url: bytes) -> None:
            self._head_size += len(url)
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._head_size += len(name) + len(value) + 4
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            if self._head_size > limits.max_header_bytes:
                raise _HeadTooLarge  # before the app sees the request
            if server.draining:
                raise _Draining
            self._disarm()
            self._phase = "body"
            if shedder is not None and self._may_answer_now():
                path = httptools.parse_url(self.url).path.decode("latin-1")
                refusal = shedder.refusal(self.parser.get_method(), path)
                if refusal is not None:
                    self._shed = _Shed(path, refusal, time.perf_counter())
                    return
            super().on_headers_complete()

        def _may_answer_now(self) -> bool:
            """Whether a response written now would be this request's: none is in flight
            before it on this connection, and the client is not waiting for 100-continue."""
            idle = self.cycle is None or self.cycle.response_complete
            return idle and not self.pipeline and not self.expect_100_continue

        def on_body(self, body: bytes) -> None:
            if self._shed is not None:
                self._shed.body_bytes += len(body)
                return
            super().on_body(body)

        def on_message_complete(self) -> None:
            if self._shed is not None:
                self._answer_shed(self._shed)
                return
            super().on_message_complete()
            self._phase = "busy"
            self._disarm()

        def _answer_shed(self, shed: _Shed) -> None:
            self._shed = None
            self._disarm()
            refusal = shed.refusal
            keep_alive = (
                self.parser.should_keep_alive()
                and self.parser.get_http_version() != "1.0"
                and not server.draining
            )
            request_id = accept_request_id(_header(self.headers, _REQUEST_ID))
            answer = error_bytes(
                refusal.status_code,
                refusal.error_type,
                refusal.message,
                keep_alive=keep_alive,
                headers={**refusal.headers, "X-Request-ID": request_id},
            )
            if not self.transport.is_closing():
                self.transport.write(answer)
            shedder.refused(  # type: ignore[union-attr]
                shed.path,
                refusal,
                time.perf_counter() - shed.started,
                shed.body_bytes,
                len(answer) - answer.index(b"\r\n\r\n") - 4,
            )
            if not keep_alive:
                self.transport.close()
                return
            self._phase = "busy"
            self.on_response_complete()

        def on_response_complete(self) -> None:
            pipelined = bool(self.pipeline)
            super().on_response_complete()
            if not pipelined and self._phase == "busy":
                self._phase = "idle"
                self._idle_since = time.monotonic()

        def shutdown(self) -> None:
            """uvicorn's graceful shutdown, called on every open connection: from now on no
            request is started on any of them.

            uvicorn would close a connection in the middle of sending its request with no
            answer; it is left to finish its head (its header timeout still runs) and answered
            503 instead. It would also close an idle keep-alive connection at once, cutting off
            a request the client sent at that moment and the server had not read yet; an idle
            connection is kept `SHUTDOWN_LINGER_S` more, so such a request gets the 503 and the
            client knows it was not served."""
            server.draining = True
            if self._phase == "idle":
                self._arm(SHUTDOWN_LINGER_S, self._linger_over)
            elif self._phase != "head" and self._shed is None:
                super().shutdown()

        def _linger_over(self) -> None:
            self._timer = None
            self.transport.close()

        # Limits

        def _idle_timeout(self) -> None:
            self._close("idle_timeout")

        def _header_timeout(self) -> None:
            self._refuse(
                408,
                "header_timeout",
                f"the request's headers did not arrive within {limits.header_timeout_s:g} s",
            )

        def _body_timeout(self) -> None:
            message = f"the request's body did not arrive within {limits.body_timeout_s:g} s"
            shed, self._shed = self._shed, None
            if shed is not None or (self.cycle is not None and not self.cycle.response_started):
                self._refuse(408, "body_timeout", message)
            else:
                self._close("body_timeout")

        def _too_large(self) -> None:
            self._refuse(
                431,
                "headers_too_large",
                f"the request's headers are larger than {limits.max_header_bytes} bytes",
            )

        def _refuse(
            self, status: int, reason: CloseReason, message: str, retry_after_s: int | None = None
        ) -> None:
            if not self.transport.is_closing():
                self.transport.write(error_bytes(status, reason, message, retry_after_s))
            self._close(reason)

        def _close(self, reason: CloseReason) -> None:
            self._disarm()
            if not self.transport.is_closing():
                metrics.http_connections_closed.labels(reason=reason).inc()
                self.transport.close()

        def _arm(self, delay_s: float, callback: Callable[[], None]) -> None:
            self._disarm()
            self._timer = self.loop.call_later(delay_s, callback)

        def _disarm(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    return GuardedHttpProtocol


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    """The first value of a header (names as uvicorn keeps them, lowercased)."""
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None
