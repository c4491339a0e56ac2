"""Whether the database answers, as /readyz and `sentiment_store_up` report it; each outage
is logged once when it starts and once when it ends, not at every retry."""

from __future__ import annotations

import logging
import threading
import time

from sentimon.metrics.store import StoreMetrics

log = logging.getLogger("sentimon.store")


class StoreHealth:
    def __init__(self, metrics: StoreMetrics, database: str) -> None:
        self._metrics = metrics
        self._database = database
        self._lock = threading.Lock()
        self._problem: str | None = "not connected yet"
        self._down_since: float | None = None
        self._is_up = threading.Event()
        metrics.up.set(0)

    @property
    def up(self) -> bool:
        with self._lock:
            return self._problem is None

    @property
    def problem(self) -> str | None:
        """Why the store is degraded, for /readyz; None when it is up."""
        with self._lock:
            return self._problem

    def wait_up(self, timeout_s: float) -> bool:
        """Block until the store is up, for at most `timeout_s` (a worker thread's call)."""
        return self._is_up.wait(timeout_s)

    def mark_up(self) -> None:
        with self._lock:
            was_down, self._problem = self._problem is not None, None
            since, self._down_since = self._down_since, None
            self._is_up.set()
        self._metrics.up.set(1)
        if was_down and since is not None:
            log.info(
                "the database is reachable again after %.0f s",
                time.monotonic() - since,
                extra={"event": "store_up", "database": self._database},
            )

    def mark_down(self, exc: BaseException, doing: str) -> None:
        problem = f"cannot {doing} in {self._database}: {type(exc).__name__}: {_brief(exc)}"
        with self._lock:
            first = self._down_since is None
            self._problem = problem
            self._is_up.clear()
            if first:
                self._down_since = time.monotonic()
        self._metrics.up.set(0)
        if first:
            log.error(
                "%s; predictions are still answered, their rows queue until it is back",
                problem,
                extra={"event": "store_down", "database": self._database},
            )


def _brief(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc
    text = str(original).strip()
    return text.splitlines()[0][:300] if text else type(original).__name__
