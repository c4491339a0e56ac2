"""A small Alertmanager webhook receiver: keeps what it is sent and tells a callback.

`sentimon up` runs it so the default receivers of deploy/alertmanager reach something on a
laptop; the end-to-end tests read what it received. POST /alerts takes Alertmanager's
webhook payload (version 4); GET /alerts returns everything received so far.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_BODY = 1_000_000
Notification = dict[str, Any]


class WebhookReceiver:
    def __init__(
        self,
        port: int,
        host: str = "127.0.0.1",
        on_notification: Callable[[Notification], None] | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._received: list[Notification] = []
        self._on_notification = on_notification
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if self.path != "/alerts" or not 0 < length <= MAX_BODY:
                    self._reply(404 if self.path != "/alerts" else 400, {"error": "bad request"})
                    return
                try:
                    payload = json.loads(self.rfile.read(length))
                except ValueError:
                    self._reply(400, {"error": "body is not JSON"})
                    return
                receiver._record(payload)
                self._reply(200, {"status": "ok"})

            def do_GET(self) -> None:
                if self.path == "/healthz":
                    self._reply(200, {"status": "ok"})
                    return
                if self.path != "/alerts":
                    self._reply(404, {"error": "not found"})
                    return
                self._reply(200, receiver.received())

            def _reply(self, status: int, body: object) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="webhook", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def received(self) -> list[Notification]:
        with self._lock:
            return list(self._received)

    def _record(self, payload: Notification) -> None:
        with self._lock:
            self._received.append(payload)
        if self._on_notification is not None:
            self._on_notification(payload)
