"""One inference worker thread behind a bounded admission count.

The event loop never runs the model: each call is handed to a single worker thread.
At most `max_queue_size` texts may be admitted (waiting or running); beyond that a call is
refused at once with `Overloaded`. A caller that waits longer than `timeout_s` gets
`InferenceTimeout`; if its job has not started by then, the worker skips it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sentimon.errors import InferenceFailed, InferenceTimeout, Overloaded
from sentimon.metrics.definitions import Metrics
from sentimon.model.base import Prediction, SentimentModel

log = logging.getLogger(__name__)


@dataclass
class _Job:
    texts: Sequence[str]
    enqueued: float = field(default_factory=time.perf_counter)
    abandoned: bool = False


class InferenceRunner:
    def __init__(
        self, model: SentimentModel, metrics: Metrics, *, max_queue_size: int, timeout_s: float
    ) -> None:
        if max_queue_size < 1:
            raise ValueError(f"max_queue_size must be >= 1, got {max_queue_size}")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self._model = model
        self._metrics = metrics
        self._max_queue_size = max_queue_size
        self._timeout_s = timeout_s
        self._admitted = 0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sentimon-infer")

    @property
    def admitted(self) -> int:
        """Texts admitted and not yet answered."""
        return self._admitted

    async def predict(self, texts: Sequence[str]) -> list[Prediction]:
        n = len(texts)
        if self._admitted + n > self._max_queue_size:
            raise Overloaded(
                f"server busy: {self._admitted} texts queued, limit "
                f"{self._max_queue_size}; retry shortly"
            )
        self._admitted += n
        self._metrics.queue_depth.set(self._admitted)
        job = _Job(texts)
        future = asyncio.get_running_loop().run_in_executor(self._executor, self._run, job)
        future.add_done_callback(functools.partial(self._release, n))
        try:
            return await asyncio.wait_for(asyncio.shield(future), self._timeout_s)
        except TimeoutError:
            job.abandoned = True
            raise InferenceTimeout(
                f"no result within {self._timeout_s:g} s; the server is overloaded"
            ) from None
        except asyncio.CancelledError:
            job.abandoned = True
            raise

    def _release(self, n: int, future: asyncio.Future[list[Prediction]]) -> None:
        self._admitted -= n
        self._metrics.queue_depth.set(self._admitted)
        if not future.cancelled():
            future.exception()  # retrieved here, so an abandoned job's error is not re-logged

    def _run(self, job: _Job) -> list[Prediction]:
        started = time.perf_counter()
        if job.abandoned:
            return []
        self._metrics.queue_wait.observe(started - job.enqueued)
        try:
            predictions = self._model.predict(job.texts)
        except Exception as exc:
            log.exception("inference failed for a batch of %d texts", len(job.texts))
            raise InferenceFailed(f"inference failed ({type(exc).__name__})") from exc
        self._metrics.inference.observe(time.perf_counter() - started)
        self._metrics.batch_size.observe(len(job.texts))
        for p in predictions:
            self._metrics.input_tokens.observe(p.tokens)
        return predictions

    def close(self) -> None:
        """Stop the worker after the running call; queued calls are dropped."""
        self._executor.shutdown(wait=True, cancel_futures=True)
