"""The load client against a small real HTTP server on loopback."""

from __future__ import annotations

import asyncio
import gc
import itertools
import math
import statistics
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from sentimon.traffic.http import Connection, HttpError
from sentimon.traffic.load import (
    DROPPED,
    FAILED,
    LoadResult,
    Request,
    Sample,
    closed_loop,
    open_loop,
    percentile,
    run,
    schedule,
)


@dataclass
class Backend:
    """Answers `POST /echo` with its body, `GET /chunked` chunked, `GET /close` then closes,
    `GET /idle-close` then closes without saying so, `GET /drop` not at all, `GET /slow` after
    50 ms, anything else 404; counts connections and requests."""

    port: int = 0
    connections: int = 0
    paths: list[str] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                method, path, _ = line.decode().split(" ", 2)
                length = 0
                while (header := await reader.readline()) != b"\r\n":
                    name, _, value = header.decode().partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                self.paths.append(path)
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
                try:
                    if path == "/slow":
                        await asyncio.sleep(0.05)
                    if path == "/garbage":
                        writer.write(b"SPDY/9 nonsense\r\n\r\n")
                    elif path == "/chunked":
                        writer.write(
                            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                            b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
                        )
                    elif path == "/drop":
                        return  # closes without an answer
                    elif path == "/idle-close":
                        # Answered as keep-alive, then closed: a keep-alive timeout racing the
                        # client's next request.
                        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                        await writer.drain()
                        return
                    elif path == "/close":
                        writer.write(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                        )
                        await writer.drain()
                        writer.close()
                        return
                    else:
                        status = (
                            b"200 OK" if method == "POST" or path == "/slow" else b"404 Not Found"
                        )
                        writer.write(
                            b"HTTP/1.1 "
                            + status
                            + b"\r\nContent-Length: "
                            + str(len(body)).encode()
                            + b"\r\n\r\n"
                            + body
                        )
                    await writer.drain()
                finally:
                    self.in_flight -= 1
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    state = Backend()
    server = await asyncio.start_server(state.handle, "127.0.0.1", 0)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        server.close()
        await server.wait_closed()


async def test_connection_keeps_alive_and_reads_bodies(backend: Backend) -> None:
    connection = Connection("127.0.0.1", backend.port)
    first = await connection.request("POST", "/echo", b'{"text": "hi"}')
    second = await connection.request("GET", "/chunked")
    third = await connection.request("GET", "/missing")
    await connection.close()
    assert (first.status, first.body) == (200, b'{"text": "hi"}')
    assert (second.status, second.body) == (200, b"hello world")
    assert third.status == 404
    assert backend.connections == 1


async def test_connection_reopens_after_the_server_closes(backend: Backend) -> None:
    connection = Connection("127.0.0.1", backend.port)
    assert (await connection.request("GET", "/close")).body == b"ok"
    assert (await connection.request("POST", "/echo", b"again")).body == b"again"
    await connection.close()
    assert backend.connections == 2


async def test_a_keep_alive_connection_closed_while_idle_is_retried_once(
    backend: Backend,
) -> None:
    connection = Connection("127.0.0.1", backend.port)
    assert (await connection.request("GET", "/idle-close")).body == b"ok"
    await asyncio.sleep(0.05)  # the server has closed it by now; the client does not know
    assert (await connection.request("POST", "/echo", b"again")).body == b"again"
    await connection.close()
    assert backend.paths == ["/idle-close", "/echo"]
    assert backend.connections == 2


async def test_no_answer_on_a_fresh_or_retried_connection_is_an_error(backend: Backend) -> None:
    connection = Connection("127.0.0.1", backend.port)
    with pytest.raises(HttpError, match="^GET /drop: IncompleteReadError"):
        await connection.request("GET", "/drop")
    assert (await connection.request("POST", "/echo", b"x")).body == b"x"
    with pytest.raises(HttpError, match="^GET /drop: IncompleteReadError"):
        await connection.request("GET", "/drop")  # reused, retried once, then given up
    await connection.close()
    assert backend.paths == ["/drop", "/echo", "/drop", "/drop"]


async def test_garbage_and_refused_connections_raise_http_error(backend: Backend) -> None:
    connection = Connection("127.0.0.1", backend.port)
    with pytest.raises(HttpError, match="not an HTTP/1.x status line"):
        await connection.request("GET", "/garbage")
    dead = Connection("127.0.0.1", 1)
    with pytest.raises(HttpError, match="ConnectionRefusedError"):
        await dead.request("GET", "/")


async def test_closed_loop_cycles_requests_with_n_clients(backend: Backend) -> None:
    requests = [Request("POST", "/echo", b"a"), Request("GET", "/nope")]
    result = await closed_loop(
        "127.0.0.1", backend.port, requests, concurrency=4, duration_s=5, max_requests=40
    )
    summary = result.summary()
    assert summary.requests == 40
    assert sorted(s.index for s in result.samples) == list(range(40))
    assert summary.statuses == {200: 20, 404: 20}
    assert (summary.ok, summary.errors) == (20, 20)
    assert backend.connections == 4
    assert backend.paths.count("/echo") == 20


async def test_closed_loop_stops_at_the_deadline(backend: Backend) -> None:
    result = await closed_loop(
        "127.0.0.1", backend.port, [Request("GET", "/slow")], concurrency=2, duration_s=0.3
    )
    # 2 clients, 50 ms per request, 0.3 s: about 12 requests, never unbounded.
    assert 6 <= len(result.samples) <= 14
    assert all(s.latency_s >= 0.05 for s in result.samples)


async def test_open_loop_keeps_its_schedule_whatever_the_server_does(backend: Backend) -> None:
    result = await open_loop(
        "127.0.0.1", backend.port, [Request("GET", "/slow")], rate=100, duration_s=0.5
    )
    starts = sorted(s.start_s for s in result.samples)
    assert len(starts) == 50
    assert starts[:3] == pytest.approx([0.0, 0.01, 0.02])
    # 50 ms per answer at 100/s: about 5 in flight at once, so several connections.
    assert backend.max_in_flight >= 3
    assert result.summary().ok == 50


def test_poisson_arrivals_have_the_rate_and_exponential_gaps() -> None:
    times = schedule(50, 200, poisson_seed=3)
    assert times == sorted(times) and 0 < times[0] and times[-1] < 200
    assert len(times) == pytest.approx(10_000, rel=0.03)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # Exponential: the mean is 1/rate and about e^-1 of the gaps exceed it.
    assert statistics.fmean(gaps) == pytest.approx(0.02, rel=0.03)
    assert sum(g > 0.02 for g in gaps) / len(gaps) == pytest.approx(math.exp(-1), abs=0.02)
    assert schedule(50, 200, poisson_seed=3) == times  # the same seed, the same arrivals
    assert schedule(50, 200, poisson_seed=4) != times


async def test_open_loop_sends_poisson_arrivals(backend: Backend) -> None:
    result = await open_loop(
        "127.0.0.1", backend.port, [Request("GET", "/slow")], rate=100, duration_s=0.5,
        poisson_seed=1,
    )  # fmt: skip
    expected = schedule(100, 0.5, poisson_seed=1)
    assert sorted(s.start_s for s in result.samples) == pytest.approx(expected, abs=1e-6)
    assert result.summary().ok == len(result.samples)


async def test_open_loop_drops_beyond_max_in_flight(backend: Backend) -> None:
    result = await open_loop(
        "127.0.0.1",
        backend.port,
        [Request("GET", "/slow")],
        rate=200,
        duration_s=0.2,
        max_in_flight=2,
    )
    statuses = result.summary().statuses
    assert statuses[DROPPED] > 0
    assert statuses[200] + statuses[DROPPED] == 40
    assert backend.max_in_flight <= 2


async def test_failed_connections_count_as_errors() -> None:
    result = await closed_loop(
        "127.0.0.1", 1, [Request("GET", "/")], concurrency=1, duration_s=5, max_requests=3
    )
    assert result.summary().statuses == {FAILED: 3}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: closed_loop("h", 1, [], concurrency=1, duration_s=1), "no requests to send"),
        (
            lambda: closed_loop("h", 1, [Request("GET", "/")], concurrency=0, duration_s=1),
            "concurrency must be >= 1, got 0",
        ),
        (
            lambda: open_loop("h", 1, [Request("GET", "/")], rate=0, duration_s=1),
            "rate must be > 0, got 0",
        ),
        (
            lambda: open_loop("h", 1, [Request("GET", "/")], rate=1, duration_s=0),
            "duration_s must be > 0, got 0",
        ),
    ],
)
async def test_bad_arguments_are_refused(call: object, message: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        await call()  # type: ignore[operator]
    assert str(excinfo.value) == message


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50
    assert percentile(values, 95) == 95
    assert percentile(values, 99) == 99
    assert percentile([7.0], 99) == 7.0
    assert math.isnan(percentile([], 50))


def test_summary_counts_and_throughput() -> None:
    result = LoadResult(
        duration_s=2.0,
        samples=[
            Sample(0.0, 0.010, 200, 0),
            Sample(0.1, 0.020, 200, 1),
            Sample(0.2, 0.030, 429, 2),
            Sample(0.3, 0.0, DROPPED, 3),
        ],
    )
    summary = result.summary()
    assert (summary.requests, summary.ok, summary.errors) == (4, 2, 2)
    assert summary.throughput == 1.0
    assert summary.p50_s == 0.020
    assert summary.max_s == 0.030
    assert summary.statuses == {DROPPED: 1, 200: 2, 429: 1}


def _walked(obj: object) -> bool:
    """Whether a collection of the oldest generation walks `obj`."""
    return any(o is obj for o in gc.get_objects())


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_run_keeps_what_came_before_out_of_collections_and_collects_its_own() -> None:
    gc.unfreeze()  # an app built in this process earlier froze its heap (sentimon.app)
    before = _Cycle()

    async def inside() -> tuple[int, bool, bool]:
        made = _Cycle()
        dead = weakref.ref(made)
        del made
        gc.collect()
        return gc.get_freeze_count(), _walked(before), dead() is None

    frozen, before_tracked, collected = run(inside())
    assert frozen > 0
    assert not before_tracked  # in the permanent generation: no collection walks it
    assert collected
    assert gc.get_freeze_count() == 0
    assert _walked(before)


def test_run_leaves_a_callers_freeze_in_place() -> None:
    async def nothing() -> None:
        return None

    gc.freeze()
    try:
        run(nothing())
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
