"""Pure ASGI middleware: request ids and access logs; the request body size limit."""

from __future__ import annotations

import json
import logging
import time

from prometheus_client import Gauge
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sentimon.errors import BodyTooLarge, ServiceError
from sentimon.logs.context import accept_request_id, reset_request_id, set_request_id
from sentimon.metrics.definitions import Metrics, endpoint_label

log = logging.getLogger("sentimon.access")

REQUEST_ID_HEADER = "X-Request-ID"
# Scrapes and probes are logged at debug level so they do not drown the access log.
_QUIET_PATHS = frozenset({"/metrics", "/healthz", "/readyz"})


class RequestContextMiddleware:
    """Request id (X-Request-ID in, out and on every log line), access log, in-progress gauge."""

    def __init__(self, app: ASGIApp, inprogress: Gauge, handlers: frozenset[str]) -> None:
        self.app = app
        self.inprogress = inprogress
        self.handlers = handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = accept_request_id(Headers(scope=scope).get(REQUEST_ID_HEADER))
        scope.setdefault("state", {})["request_id"] = request_id
        token = set_request_id(request_id)
        started = time.perf_counter()
        status = 500
        path = scope["path"]
        gauge = self.inprogress.labels(
            method=scope["method"], handler=path if path in self.handlers else "none"
        )
        gauge.inc()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            gauge.dec()
            level = logging.DEBUG if path in _QUIET_PATHS and status < 400 else logging.INFO
            client = scope.get("client")
            log.log(
                level,
                "%s %s %d",
                scope["method"],
                path,
                status,
                extra={
                    "event": "request",
                    "method": scope["method"],
                    "path": path,
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "client": client[0] if client else None,
                },
            )
            reset_request_id(token)


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
