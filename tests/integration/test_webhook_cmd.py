"""`sentimon webhook` prints each alert of a notification as a JSON line."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx

from bench.servers import free_port


def test_each_alert_is_one_json_line_on_stdout() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sentimon", "webhook", "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert json.loads(process.stdout.readline())["event"] == "webhook_listening"
        payload = {
            "receiver": "pager",
            "alerts": [
                {
                    "status": "firing",
                    "labels": {"alertname": "SentimentModelNotLoaded", "severity": "critical"},
                    "annotations": {"summary": "The model is not loaded."},
                    "startsAt": "2026-12-01T16:00:00Z",
                }
            ],
        }
        deadline = time.monotonic() + 5
        while True:
            try:
                answer = httpx.post(f"http://127.0.0.1:{port}/alerts", json=payload)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert answer.json() == {"status": "ok"}
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").json() == {"status": "ok"}
        assert json.loads(process.stdout.readline()) == {
            "event": "alert_notification",
            "receiver": "pager",
            "status": "firing",
            "alertname": "SentimentModelNotLoaded",
            "severity": "critical",
            "summary": "The model is not loaded.",
            "starts_at": "2026-12-01T16:00:00Z",
        }
        # SIGTERM stops it at once with status 0 (as a container's PID 1 it must handle it).
        process.terminate()
        assert process.wait(timeout=5) == 0
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
