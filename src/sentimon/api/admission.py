"""Load shedding before the request is read: a prediction the batcher would refuse anyway is
answered 429 as soon as its head arrives, by the connection itself (`api.connections`).

Past capacity most requests are refused, and each refusal costs the event loop what admitted
requests and probes need. Through the app a refusal was routed through every middleware, its
body read, parsed and validated, an exception raised and rendered, an access log line written:
about 180 µs of the event loop a refusal, so that at five times capacity on the bundled model
the loop spent most of its time refusing and the requests it admitted waited behind the
refusals. Here a refusal is one admission check, one prebuilt answer written in one piece,
and the HTTP and error metrics counted; the body is skipped as it arrives.

The answer is the one the batcher's `Overloaded` gets through the app: the same status,
`Retry-After`, JSON body and `X-Request-ID` (the caller's, or a new one). Refusals are not
logged one line each (at a few thousand a second that would be the log's whole volume and a
good part of the loop's time): the first of a burst is logged at once, the rest as one line a
second with their count. A request that is refused here is not validated, so a malformed one
gets its 4xx on the retry. Requests the connection cannot answer out of turn (one pipelined
behind a request still in flight, one that asked for `100-continue`) go through the app, where
the batcher refuses them the same way.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

from sentimon.errors import Overloaded, ServiceError
from sentimon.metrics.definitions import Metrics, endpoint_label
from sentimon.service import SentimentService

log = logging.getLogger("sentimon.access")

PREDICTION_PATHS = frozenset({"/predict", "/predict/batch", "/analyze-sentiment/"})
SUMMARY_INTERVAL_S = 1.0
"""Refusals after the first of a burst are logged as one line this often."""


class LoadShedder:
    """Whether a request head is refused before its body is read, and the record of each
    refusal: metrics at once, the log a line a second."""

    def __init__(
        self,
        service: SentimentService,
        metrics: Metrics,
        paths: frozenset[str] = PREDICTION_PATHS,
        summary_interval_s: float = SUMMARY_INTERVAL_S,
    ) -> None:
        self.service = service
        self.metrics = metrics
        self.paths = paths
        self.summary_interval_s = summary_interval_s
        overloaded = Overloaded.error_type
        self._errors = {
            path: metrics.errors.labels(error_type=overloaded, endpoint=endpoint_label(path))
            for path in paths
        }
        self._pending: Counter[str] = Counter()
        """Refusals not logged yet, by path."""
        self._last: ServiceError | None = None
        self._flush: asyncio.TimerHandle | None = None

    def refusal(self, method: bytes, path: str) -> Overloaded | None:
        """The answer to a request with this method and path, if it is refused now."""
        if method != b"POST" or path not in self.paths:
            return None
        batcher = self.service.batcher
        if batcher is None or not self.service.ready:
            return None  # the app answers 503 with the reason
        return batcher.refusal(1)

    def refused(
        self,
        path: str,
        refusal: ServiceError,
        seconds: float,
        request_bytes: int,
        response_bytes: int,
    ) -> None:
        """Count a refusal answered on the connection (as the app's middleware counts its
        answers) and log it."""
        self._errors[path].inc()
        self.metrics.http.observe(
            "POST", path, refusal.status_code, seconds, request_bytes, response_bytes
        )
        if self._flush is None:
            log.info(
                "POST %s %d: %s",
                path,
                refusal.status_code,
                refusal.message,
                extra={"event": "shed", "path": path, "status": refusal.status_code, "count": 1},
            )
            self._flush = asyncio.get_running_loop().call_later(
                self.summary_interval_s, self._log_pending
            )
            return
        self._pending[path] += 1
        self._last = refusal

    def _log_pending(self) -> None:
        pending, last = self._pending, self._last
        if not pending or last is None:
            self._flush = None  # quiet again: the next refusal is logged at once
            return
        self._pending, self._last = Counter(), None
        count = sum(pending.values())
        log.info(
            "%d more predictions refused with %d in the last %.0f s (%s), the last: %s",
            count,
            last.status_code,
            self.summary_interval_s,
            ", ".join(f"{path} {n}" for path, n in sorted(pending.items())),
            last.message,
            extra={
                "event": "shed",
                "status": last.status_code,
                "count": count,
                "paths": dict(sorted(pending.items())),
            },
        )
        self._flush = asyncio.get_running_loop().call_later(
            self.summary_interval_s, self._log_pending
        )
