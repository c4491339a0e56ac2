"""The background writer of the prediction log: serving never waits on the database.

The event loop hands items to `submit`, which only appends them to a bounded queue (items
beyond it are dropped and counted, and the answer goes out regardless); turning an item into
a row (hashing the text, formatting the time) happens on the writer's thread, not the event
loop's. One thread takes up to `batch_size` items at a time, inserts them in one statement
and commits, waiting for a full batch or the flush interval: rows that trickle in are not
committed one by one. While the database
is unreachable the thread keeps the batch and retries with backoff, so a short outage loses
nothing until the queue fills. The same thread brings the schema up to date first (the
database may be down at start), and applies retention now and then.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from sentimon.metrics.store import StoreMetrics
from sentimon.store.health import StoreHealth
from sentimon.store.sql import insert_or_skip
from sentimon.store.tables import predictions

log = logging.getLogger(__name__)

Row = dict[str, Any]
Item = TypeVar("Item")


@dataclass(frozen=True, slots=True)
class WriterLimits:
    queue_size: int = 10_000
    batch_size: int = 256
    flush_interval_s: float = 0.2
    max_backoff_s: float = 10.0


class PredictionWriter(Generic[Item]):
    def __init__(
        self,
        engine: Engine,
        metrics: StoreMetrics,
        health: StoreHealth,
        limits: WriterLimits = WriterLimits(),
        *,
        key: Callable[[Item], str],
        to_row: Callable[[Item], Row],
        prepare: Callable[[], None] = lambda: None,
        housekeeping: Callable[[], None] = lambda: None,
        housekeeping_interval_s: float = 300.0,
    ) -> None:
        """`key` names an item (its prediction id), `to_row` makes its row (on the writer's
        thread); `prepare` runs (and is retried) before the first write: the migrations;
        `housekeeping` every `housekeeping_interval_s`: retention."""
        self._key = key
        self._to_row = to_row
        self._engine = engine
        self._metrics = metrics
        self._health = health
        self._limits = limits
        self._prepare = prepare
        self._housekeeping = housekeeping
        self._housekeeping_interval_s = housekeeping_interval_s
        self._queue: deque[Item] = deque()
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._written = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._oldest_at = 0.0
        """When the oldest row in the queue was queued (monotonic seconds)."""
        self._waiters = 0
        """Callers waiting for a queued row: while any wait, write without waiting."""

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sentimon-store", daemon=True)
        self._thread.start()

    def submit(self, items: Sequence[Item]) -> None:
        """Queue items for writing; never blocks. Called on the event loop."""
        key = self._key
        with self._lock:
            room = self._limits.queue_size - len(self._queue)
            accepted = items[:room] if room < len(items) else items
            if not self._queue:
                self._oldest_at = time.monotonic()
            self._queue.extend(accepted)
            self._pending.update(key(item) for item in accepted)
            depth = len(self._queue)
        dropped = len(items) - len(accepted)
        if dropped:
            self._metrics.rows_dropped.labels(reason="queue_full").inc(dropped)
        self._metrics.queue_depth.set(depth)
        if depth >= self._limits.batch_size:
            self._wake.set()

    def is_pending(self, prediction_id: str) -> bool:
        with self._lock:
            return prediction_id in self._pending

    def wait_written(self, prediction_id: str, timeout_s: float) -> bool:
        """Block until `prediction_id` has left the queue (written or dropped), up to
        `timeout_s`; True if it left. Called from a worker thread, never the event loop."""
        with self._written:
            if prediction_id not in self._pending:
                return True
            self._waiters += 1
            self._wake.set()
            try:
                return self._written.wait_for(
                    lambda: prediction_id not in self._pending, timeout=timeout_s
                )
            finally:
                self._waiters -= 1

    def close(self, timeout_s: float = 5.0) -> None:
        """Write what is queued (for up to `timeout_s`), then stop; the rest is dropped."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        with self._lock:
            left = len(self._queue)
            self._queue.clear()
            self._pending.clear()
            self._written.notify_all()
        if left:
            self._metrics.rows_dropped.labels(reason="shutdown").inc(left)
            log.warning(
                "%d prediction rows were not written before shutdown",
                left,
                extra={"event": "store_shutdown_drop", "rows": left},
            )
        self._metrics.queue_depth.set(0)

    def _run(self) -> None:
        backoff = self._limits.flush_interval_s
        while not self._call_until_done(self._prepare, "prepare the database"):
            if self._stopping.wait(backoff):
                return
            backoff = min(backoff * 2, self._limits.max_backoff_s)
        next_housekeeping = time.monotonic()
        backoff = self._limits.flush_interval_s
        while True:
            if time.monotonic() >= next_housekeeping:
                self._call_until_done(self._housekeeping, "apply retention")
                next_housekeeping = time.monotonic() + self._housekeeping_interval_s
            wait = self._until_due()
            if wait > 0:
                if self._stopping.is_set():
                    return  # nothing left to write
                self._wake.wait(wait)
                self._wake.clear()
                continue
            batch = self._take()
            if self._write(batch):
                backoff = self._limits.flush_interval_s
                continue
            # Down: keep the batch, try again later (or give up at shutdown).
            if self._stopping.wait(backoff):
                self._drop(batch, "db_error")
                return
            backoff = min(backoff * 2, self._limits.max_backoff_s)
            self._requeue(batch)

    def _until_due(self) -> float:
        """Seconds until the next batch should be written; 0 when now. A batch goes when it is
        full, when its oldest row has waited the flush interval, when a caller waits for a
        row, or at shutdown; rows that trickle in are never written one at a time (each
        write is a commit, synced to disk)."""
        interval = self._limits.flush_interval_s
        with self._lock:
            if not self._queue:
                return interval
            if (
                len(self._queue) >= self._limits.batch_size
                or self._waiters
                or self._stopping.is_set()
            ):
                return 0.0
            return max(0.0, self._oldest_at + interval - time.monotonic())

    def _take(self) -> list[Item]:
        with self._lock:
            n = min(len(self._queue), self._limits.batch_size)
            batch = [self._queue.popleft() for _ in range(n)]
            # The rows left (if any) came in while this batch filled: their clock starts now.
            self._oldest_at = time.monotonic()
            return batch

    def _requeue(self, batch: list[Item]) -> None:
        with self._lock:
            self._queue.extendleft(reversed(batch))
            overflow = len(self._queue) - self._limits.queue_size
            lost = [self._queue.pop() for _ in range(max(0, overflow))]
            self._pending.difference_update(self._key(item) for item in lost)
            if lost:
                self._written.notify_all()
        if lost:
            self._metrics.rows_dropped.labels(reason="queue_full").inc(len(lost))

    def _write(self, batch: list[Item]) -> bool:
        """Insert `batch` (ids already there are skipped); False when the database is down."""
        started = time.perf_counter()
        rows = [self._to_row(item) for item in batch]
        try:
            with self._engine.begin() as connection:
                statement = insert_or_skip(predictions, predictions.c.id, connection.dialect.name)
                result = connection.execute(statement, rows)
                inserted = len(result.all())
        except DBAPIError as exc:
            if _is_data_error(exc):
                log.error(
                    "dropped %d prediction rows the database refused: %s",
                    len(batch),
                    _first_line(exc),
                    extra={"event": "store_rows_refused", "rows": len(batch)},
                )
                self._drop(batch, "db_error")
                self._health.mark_up()
                return True
            self._health.mark_down(exc, "write the prediction log")
            return False
        except SQLAlchemyError as exc:
            self._health.mark_down(exc, "write the prediction log")
            return False
        self._metrics.write_seconds.observe(time.perf_counter() - started)
        self._metrics.rows_written.inc(inserted)
        if inserted < len(batch):
            self._metrics.rows_dropped.labels(reason="duplicate_id").inc(len(batch) - inserted)
        self._health.mark_up()
        self._done(batch)
        return True

    def _drop(self, batch: list[Item], reason: str) -> None:
        self._metrics.rows_dropped.labels(reason=reason).inc(len(batch))
        self._done(batch)

    def _done(self, batch: list[Item]) -> None:
        with self._lock:
            self._pending.difference_update(self._key(item) for item in batch)
            depth = len(self._queue)
            self._written.notify_all()
        self._metrics.queue_depth.set(depth)

    def _call_until_done(self, step: Callable[[], None], what: str) -> bool:
        try:
            step()
        except SQLAlchemyError as exc:
            self._health.mark_down(exc, what)
            return False
        self._health.mark_up()
        return True


def _is_data_error(exc: DBAPIError) -> bool:
    """Errors about the rows themselves (retrying cannot help), not about the connection."""
    from sqlalchemy.exc import DataError, IntegrityError

    return isinstance(exc, DataError | IntegrityError) and not exc.connection_invalidated


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
