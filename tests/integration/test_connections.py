"""Connections held to their limits by a real `sentimon serve` (api/connections.py): slow heads
and bodies cut with 408 without starving other clients, oversized headers refused with 431,
idle connections closed on the keep-alive timeout (and not before), and the connection limit
met by evicting an idle connection, else 503. Raw sockets, since HTTP clients will not send
half a request. The server runs without its model: connections are all this is about."""

from __future__ import annotations

import json
import re
import signal
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from tests.servers import start_server

pytestmark = pytest.mark.slow

LIMITS = {
    "--header-timeout-s": "1",
    "--body-timeout-s": "1",
    "--keepalive-timeout-s": "2",
    "--max-connections": "6",
    "--max-header-bytes": "2048",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    args = [part for item in LIMITS.items() for part in item]
    running = start_server(
        tmp_path_factory.mktemp("connections"),
        *("--model", "/no/such/model", "--no-fail-on-model-error", "--no-store", "--no-drift"),
        *args,
        ready="/healthz",
    )
    try:
        yield "127.0.0.1", int(running.url.rsplit(":", 1)[1])
        # Whatever was done to it, it still serves.
        assert httpx.get(f"{running.url}/healthz").status_code == 200
    finally:
        assert running.stop() in (0, -signal.SIGTERM)
    assert "Traceback" not in running.log.read_text()


def _connect(address: tuple[str, int]) -> socket.socket:
    sock = socket.create_connection(address, timeout=5)
    return sock


def _read_until_closed(sock: socket.socket, timeout_s: float = 5) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and how long that took."""
    started = time.monotonic()
    sock.settimeout(timeout_s)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data, time.monotonic() - started


def _read_response(sock: socket.socket) -> bytes:
    """One whole response (by its Content-Length) from a connection that stays open."""
    sock.settimeout(5)
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    match = re.search(rb"content-length: (\d+)", head, re.I)
    assert match, head
    length = int(match.group(1))
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def _response(raw: bytes) -> tuple[int, dict[str, str], object]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return status, headers, json.loads(body)


def _closed_count(address: tuple[str, int], reason: str) -> float:
    text = httpx.get(f"http://{address[0]}:{address[1]}/metrics").text
    match = re.search(
        rf'^sentiment_http_connections_closed_total{{reason="{reason}"}} (\S+)$', text, re.M
    )
    assert match, reason
    return float(match.group(1))


def test_a_slow_head_gets_408_without_holding_up_anyone_else(server: tuple[str, int]) -> None:
    before = _closed_count(server, "header_timeout")
    with _connect(server) as slow:
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        started = time.monotonic()
        assert httpx.get(f"http://{server[0]}:{server[1]}/healthz").status_code == 200
        assert time.monotonic() - started < 0.5
        raw, waited = _read_until_closed(slow)
    assert 0.5 < waited < 3
    assert _response(raw) == (
        408,
        {"content-type": "application/json", "content-length": "92", "connection": "close"},
        {
            "error": "the request's headers did not arrive within 1 s",
            "error_type": "header_timeout",
        },
    )
    assert _closed_count(server, "header_timeout") == before + 1


def test_a_slow_body_gets_408(server: tuple[str, int]) -> None:
    before = _closed_count(server, "body_timeout")
    with _connect(server) as slow:
        slow.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"text": "half'
        )
        raw, waited = _read_until_closed(slow)
    assert waited < 3
    status, headers, body = _response(raw)
    assert (status, headers["connection"]) == (408, "close")
    assert body == {
        "error": "the request's body did not arrive within 1 s",
        "error_type": "body_timeout",
    }
    assert _closed_count(server, "body_timeout") == before + 1


@pytest.mark.parametrize("whole", [True, False], ids=["in-one-piece", "never-ending"])
def test_oversized_headers_get_431(server: tuple[str, int], whole: bool) -> None:
    before = _closed_count(server, "headers_too_large")
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 3000
    with _connect(server) as client:
        client.sendall(request + (b"\r\n\r\n" if whole else b""))
        raw, _ = _read_until_closed(client)
    assert _response(raw)[0::2] == (
        431,
        {
            "error": "the request's headers are larger than 2048 bytes",
            "error_type": "headers_too_large",
        },
    )
    assert _closed_count(server, "headers_too_large") == before + 1


def test_an_idle_connection_lives_until_the_keepalive_timeout_and_no_longer(
    server: tuple[str, int],
) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    with _connect(server) as client:
        client.sendall(request)
        assert _read_response(client).startswith(b"HTTP/1.1 200 OK")
        time.sleep(1.2)  # idle, under the 2 s timeout: still open
        client.sendall(request)
        assert _read_response(client).startswith(b"HTTP/1.1 200 OK")
        raw, waited = _read_until_closed(client)
    assert raw == b""
    assert 1.5 < waited < 4
    # A connection that never sends a byte is held no longer either.
    before = _closed_count(server, "idle_timeout")
    with _connect(server) as silent:
        raw, waited = _read_until_closed(silent)
    assert (raw, 1.5 < waited < 4) == (b"", True)
    assert _closed_count(server, "idle_timeout") == before + 1


def test_past_the_connection_limit_an_idle_one_makes_room_else_503(
    server: tuple[str, int],
) -> None:
    url = f"http://{server[0]}:{server[1]}/healthz"
    before = _closed_count(server, "evicted_idle")
    with ExitStack() as stack:
        idle = [stack.enter_context(_connect(server)) for _ in range(6)]
        time.sleep(0.2)
        # A 7th connection evicts the longest-idle one, and is served.
        assert httpx.get(url).status_code == 200
        assert _closed_count(server, "evicted_idle") - before >= 1
        evicted = 0
        for sock in idle:
            sock.settimeout(0.2)
            try:
                evicted += sock.recv(1) == b""
            except TimeoutError:
                pass
        assert evicted >= 1
    time.sleep(0.2)
    with ExitStack() as stack:
        busy = [stack.enter_context(_connect(server)) for _ in range(6)]
        for sock in busy:
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")  # each mid-head, none idle
        time.sleep(0.2)
        with _connect(server) as one_more:
            raw, _ = _read_until_closed(one_more)
    status, headers, body = _response(raw)
    assert (status, headers["retry-after"], headers["connection"]) == (503, "1", "close")
    assert body == {
        "error": "too many open connections (limit 6); retry shortly",
        "error_type": "too_many_connections",
    }


def test_the_open_connections_gauge_counts_them(server: tuple[str, int]) -> None:
    def gauge() -> float:
        text = httpx.get(f"http://{server[0]}:{server[1]}/metrics").text
        match = re.search(r"^sentiment_http_connections (\S+)$", text, re.M)
        assert match
        return float(match.group(1))

    time.sleep(1.5)  # the previous test's connections are gone
    base = gauge()
    with _connect(server), _connect(server):
        time.sleep(0.2)
        assert gauge() == base + 2


def test_after_sigterm_a_request_on_an_open_connection_gets_503_and_nothing_new_starts(
    tmp_path: Path,
) -> None:
    running = start_server(
        tmp_path, "--model", "/no/such/model", "--no-fail-on-model-error", "--no-store",
        "--no-drift", ready="/healthz",
    )  # fmt: skip
    address = ("127.0.0.1", int(running.url.rsplit(":", 1)[1]))
    refusal = {
        "error": "the server is shutting down; retry (another replica will answer)",
        "error_type": "shutting_down",
    }
    with (
        _connect(address) as mid_head,
        _connect(address) as idle,
        _connect(address) as racing,
    ):
        mid_head.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        time.sleep(0.2)
        running.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        time.sleep(0.3)
        # No new connection is taken.
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(address, timeout=2)
        # A request sent on an idle connection just after the drain began (one the client
        # could not know was closing) is answered, not cut off.
        racing.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body = _response(_read_until_closed(racing)[0])
        assert (status, headers["connection"], body) == (503, "close", refusal)
        # An idle connection that stays silent is closed a second after the drain began.
        assert _read_until_closed(idle)[0] == b""
        assert 0.9 < time.monotonic() - signalled < 3
        # The server waits for the half-sent request, and refuses to start it.
        assert running.process.poll() is None
        mid_head.sendall(b"\r\n")
        raw, _ = _read_until_closed(mid_head)
    status, headers, body = _response(raw)
    assert (status, headers["connection"], headers["retry-after"]) == (503, "close", "1")
    assert body == refusal
    assert running.process.wait(timeout=10) in (0, -signal.SIGTERM)
    assert "Traceback" not in running.log.read_text()
