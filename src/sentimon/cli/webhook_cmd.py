"""`sentimon webhook`: an Alertmanager webhook receiver that prints each notification as one
JSON line on stdout (the Compose stack runs it, so alerts reach the logs and Loki too)."""

from __future__ import annotations

import json
import signal
import sys
import threading
from typing import Annotated

import typer

from sentimon.stack.webhook import Notification, WebhookReceiver


def webhook(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 5001,
) -> None:
    """Receive Alertmanager's webhook notifications on POST /alerts and print them."""

    def show(notification: Notification) -> None:
        for alert in notification.get("alerts", []):
            line = {
                "event": "alert_notification",
                "receiver": notification.get("receiver"),
                "status": alert.get("status"),
                "alertname": alert.get("labels", {}).get("alertname"),
                "severity": alert.get("labels", {}).get("severity"),
                "summary": alert.get("annotations", {}).get("summary"),
                "starts_at": alert.get("startsAt"),
            }
            sys.stdout.write(json.dumps(line) + "\n")
            sys.stdout.flush()

    receiver = WebhookReceiver(port, host, show)
    receiver.start()
    sys.stdout.write(json.dumps({"event": "webhook_listening", "host": host, "port": port}) + "\n")
    sys.stdout.flush()
    # As a container's PID 1 the kernel ignores SIGTERM unless a handler is installed.
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        receiver.stop()
