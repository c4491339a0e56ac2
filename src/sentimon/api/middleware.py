"""Pure ASGI middleware: request ids, access logs and HTTP metrics; the request body size limit."""

from __future__ import annotations

import json
import logging
import time

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sentimon.errors import BodyTooLarge, ServiceError
from sentimon.logs.context import accept_request_id, reset_request_id, set_request_id
from sentimon.metrics.definitions import Metrics, endpoint_label
from sentimon.metrics.http import UNMATCHED, HttpMetrics

log = logging.getLogger("sentimon.access")

REQUEST_ID_HEADER = "X-Request-ID"
# Scrapes and probes are logged at debug level so they do not drown the access log.
_QUIET_PATHS = frozenset({"/metrics", "/healthz", "/readyz"})


class RequestContextMiddleware:
    """Request id (X-Request-ID in, out and on every log line), access log, HTTP metrics.

    `paths`: the routes' paths without parameters, which name a request's `handler` from its
    path alone: refusals answered before routing (413) count under their route. Other
    requests are named by the route the router chose, or "none".
    """

    def __init__(self, app: ASGIApp, http: HttpMetrics, paths: frozenset[str]) -> None:
        self.app = app
        self.http = http
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        request_id = accept_request_id(headers.get(REQUEST_ID_HEADER))
        scope.setdefault("state", {})["request_id"] = request_id
        token = set_request_id(request_id)
        started = time.perf_counter()
        status = 500
        response_bytes = 0
        path, method = scope["path"], scope["method"]
        known = path in self.paths
        gauge = self.http.inprogress.labels(method=method, handler=path if known else UNMATCHED)
        gauge.inc()

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_bytes
            if message["type"] == "http.response.start":
                status = message["status"]
                response_headers = MutableHeaders(scope=message)
                response_headers[REQUEST_ID_HEADER] = request_id
                response_bytes = _length(response_headers.get("content-length"))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            gauge.dec()
            route = scope.get("route")
            handler = path if known else getattr(route, "path", None) or UNMATCHED
            self.http.observe(
                method,
                handler,
                status,
                elapsed,
                _length(headers.get("content-length")),
                response_bytes,
            )
            level = logging.DEBUG if path in _QUIET_PATHS and status < 400 else logging.INFO
            client = scope.get("client")
            log.log(
                level,
                "%s %s %d",
                method,
                path,
                status,
                extra={
                    "event": "request",
                    "method": method,
                    "path": path,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                    "client": client[0] if client else None,
                },
            )
            reset_request_id(token)


def _length(header: str | None) -> int:
    """A Content-Length header's value; 0 for none (or one that is not a number)."""
    return int(header) if header is not None and header.isdigit() else 0


class BodyLimitMiddleware:
    """Refuse bodies over `max_bytes` with 413, by Content-Length or while reading.

    A declared length over the limit is answered before the app runs. A body that grows past
    the limit while streaming makes `receive` raise `BodyTooLarge`, which the error handlers
    render as 413. No body is ever held beyond the limit.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.message)
            return message

        await self.app(scope, limited_receive, send)

    @property
    def message(self) -> str:
        return f"Request body is larger than the limit of {self.max_bytes} bytes"

    async def _refuse(self, scope: Scope, send: Send) -> None:
        refusal = BodyTooLarge(self.message, headers={"Connection": "close"})
        await send_error(send, scope["app"].state.metrics, scope["path"], refusal)


async def send_error(send: Send, metrics: Metrics, path: str, error: ServiceError) -> None:
    """`error` answered from ASGI middleware, before any route runs, as the error handlers
    would: its status and headers, the `{"error", "error_type"}` body, counted in
    `sentiment_errors_total`."""
    metrics.errors.labels(error_type=error.error_type, endpoint=endpoint_label(path)).inc()
    body = json.dumps({"error": error.message, "error_type": error.error_type}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})
