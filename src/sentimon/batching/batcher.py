"""The micro-batcher: many callers' texts → few, well-packed model calls on worker threads.

Callers put texts into a bounded queue. Admission refuses at once (`Overloaded`) when the
texts admitted and not yet answered would keep a newcomer waiting longer than
`max_queue_wait_s` at the service rate measured on recent batches (so a request is never
admitted only to wait past the latency target), or would pass `max_queue_size`. A model call
costs a fixed part plus a part per text (`CallCost`, measured at start by `calibrate`), so a
queue is counted as the few full calls it will run in; recent calls scale that shape to what
the machine gives now. Each inference worker (a thread `nice` steps below the event loop's
priority) takes its next batch from the queue itself as soon as it is free, waiting at most
`max_wait_s` (counted from the oldest text) for the batch to fill up to `max_batch_size`
(fewer where the wait bound is set and a full batch would take longer than half of it at the
measured cost). A model that packs texts into rows (`ModelInfo.packed`) takes one packed call
of a few texts (`PACKED_CALL_TEXTS`) at a time, in order; otherwise the batch is sorted by
length and cut into calls that respect the token budget and never pad more than
`max_padding_ratio` times the real tokens. Each call's results go to their callers as soon as
it is done; a failed call fails every caller in it; callers that gave up before their batch
ran are skipped. While the workers are busy the queue grows, so batches grow with load.
Never on the event loop, which only puts texts in the queue and hands results back.

The workers used to be handed each batch by a task on the event loop. Past capacity that loop
is busy refusing the excess, and every batch waited for it: on the bundled model at five times
capacity (Zen 5, 2 cores, in turns, three rounds) taking the batch on the worker answered
4,253-4,489 requests in 10 s against 3,552-5,121, with admitted p50 127-129 ms against
152-168 ms; at 90% of capacity and flat out it served the same. A worker that waited on a
lock the event loop also takes made it worse (the loop then waited for a thread below its
priority, and 429s took up to 2 s), so the queue is a `queue.SimpleQueue`, whose put never
blocks.
"""

from __future__ import annotations

import asyncio
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from sentimon.errors import InferenceFailed, InferenceTimeout, ModelNotReady, Overloaded
from sentimon.metrics.definitions import Metrics
from sentimon.model.base import ModelInfo, Prediction, SentimentModel, to_prediction
from sentimon.model.packing import packed_tokens
from sentimon.model.workers import lower_priority

log = logging.getLogger(__name__)


_COST_SMOOTHING = 0.3
"""Weight of the newest call in the service rate's average: follows a change in load within
a few calls."""

_COST_OUTLIER = 3.0
"""A call counts in the service rate for at most this multiple of the rate before it. On two
shared cores a worker descheduled for tens of milliseconds makes a 3 ms call look 10-40x as
costly; taken whole, that one sample priced every queued text at several times its cost and
refused a burst of requests at half capacity (14 at once in a soak) that the server answered
in under 100 ms. A lasting slowdown still raises the rate by up to 60% a call."""


_OWN_BATCH_SHARE = 0.5
"""A batch holds at most the texts that run in this share of the wait bound (`batch_cap`)."""

PACKED_CALL_TEXTS = 4
"""Most texts in one packed model call. A batch packed into one call answers all its callers
at its end; cut into calls of 4 the first callers are answered halfway and their next
requests are queued by the time the worker is free. Under 16 closed-loop clients (Zen 5,
servers measured in turns) one call a batch left the workers idle a third of the time and
served 527 req/s on the bundled model and 159 on RoBERTa-base, padded calls 595 and 166,
packed calls of 4 texts 625 and 193 (of 2: 166 on RoBERTa-base). A packed call of 4 texts
still runs at about 0.9x the model's tokens/s of one of 8-16 (`make bench-packing`)."""


@dataclass(frozen=True, slots=True)
class CallCost:
    """The shape of a model call's cost: `fixed` per call plus `per_text` per text. Before
    calibration it is one unit per text (the measured scale is then seconds per text)."""

    fixed: float = 0.0
    per_text: float = 1.0

    def of(self, calls: int, texts: int) -> float:
        return calls * self.fixed + texts * self.per_text


@dataclass(frozen=True)
class BatchLimits:
    max_batch_size: int = 32
    max_batch_tokens: int = 4096
    """Most tokens in one model call, padding included (a packed call's: its texts')."""
    max_wait_s: float = 0.002
    max_padding_ratio: float = 1.25
    """A model call's padded tokens may be at most this multiple of its real tokens."""

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {self.max_batch_size}")
        if self.max_batch_tokens < 1:
            raise ValueError(f"max_batch_tokens must be >= 1, got {self.max_batch_tokens}")
        if self.max_wait_s < 0:
            raise ValueError(f"max_wait_s must be >= 0, got {self.max_wait_s}")
        if self.max_padding_ratio < 1:
            raise ValueError(f"max_padding_ratio must be >= 1, got {self.max_padding_ratio}")


@dataclass(eq=False)
class _Item:
    text: str
    future: asyncio.Future[Prediction]
    enqueued: float = field(default_factory=time.perf_counter)
    delivered: bool = False
    """Its result (or error) was handed back; set on the event loop only."""


def plan_calls(lengths: Sequence[int], limits: BatchLimits) -> list[list[int]]:
    """Cut indices, sorted by length, into model calls within the size, token and padding limits.

    Padding cost is judged on the sorted order: a call ends where adding the next (longer)
    text would push its padded size past the token budget or the padding ratio.
    """

    def full(size: int, real: int, n: int) -> bool:
        padded = n * (size + 1)  # sorted: the newcomer is the widest row
        return (
            size >= limits.max_batch_size
            or padded > limits.max_batch_tokens
            or padded > limits.max_padding_ratio * (real + n)
        )

    return _cut(sorted(range(len(lengths)), key=lambda i: lengths[i]), lengths, full)


def plan_packed_calls(lengths: Sequence[int], limits: BatchLimits) -> list[list[int]]:
    """Cut indices, in order, into packed model calls of at most `PACKED_CALL_TEXTS` texts,
    within the size and token limits."""
    most = min(limits.max_batch_size, PACKED_CALL_TEXTS)

    def full(size: int, real: int, n: int) -> bool:
        return size >= most or real + n > limits.max_batch_tokens

    return _cut(range(len(lengths)), lengths, full)


def _cut(
    order: Iterable[int], lengths: Sequence[int], full: Callable[[int, int, int], bool]
) -> list[list[int]]:
    """Indices in `order` into calls, a new one wherever `full(texts in the call, its real
    tokens, the next text's tokens)` says the next text does not fit."""
    calls: list[list[int]] = []
    current: list[int] = []
    real = 0
    for i in order:
        n = lengths[i]
        if current and full(len(current), real, n):
            calls.append(current)
            current, real = [], 0
        current.append(i)
        real += n
    if current:
        calls.append(current)
    return calls


def call_planner(
    info: ModelInfo,
) -> Callable[[Sequence[int], BatchLimits], list[list[int]]]:
    """How a batch of texts of these lengths is cut into this model's calls."""
    return plan_packed_calls if info.packed else plan_calls


def call_tokens(info: ModelInfo, lengths: Sequence[int]) -> int:
    """Tokens a call of texts this long computes, padding included."""
    return packed_tokens(lengths) if info.packed else max(lengths) * len(lengths)


class MicroBatcher:
    def __init__(
        self,
        model: SentimentModel,
        metrics: Metrics,
        *,
        limits: BatchLimits,
        max_queue_size: int,
        timeout_s: float,
        workers: int = 1,
        max_queue_wait_s: float | None = None,
        nice: int = 0,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if max_queue_size < 1:
            raise ValueError(f"max_queue_size must be >= 1, got {max_queue_size}")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self._model = model
        self._metrics = metrics
        self._limits = limits
        self._max_queue_size = max_queue_size
        self._timeout_s = timeout_s
        self._workers = workers
        self._max_queue_wait_s = max_queue_wait_s
        self._shape = CallCost()
        self._scale: float | None = None
        """Measured worker seconds over `_shape`'s estimate, for recent calls (an exponential
        average); written by the workers, read on the event loop (a float is replaced
        whole)."""
        self._ends: list[float | None] = [None] * workers
        """When each worker's batch should end, at the service rate when it was taken (None:
        the worker is free); written by the workers, read on the event loop."""
        self._info = model.info
        self._labels = model.info.labels
        self._plan = call_planner(model.info)
        self._call_texts = PACKED_CALL_TEXTS if model.info.packed else None
        """Most texts in one model call, where the planner caps it."""
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        """Texts admitted and not taken yet: put on the event loop, taken by the workers (None
        tells a worker to stop). Putting never blocks, so the event loop never waits for a
        worker (below its priority) to let a lock go."""
        self._admitted = 0
        self._nice = nice
        self._executor = ThreadPoolExecutor(
            max_workers=workers,
            thread_name_prefix="sentimon-infer",
            initializer=lower_priority,
            initargs=(nice,),
        )
        self._loops: list[asyncio.Future[None]] = []
        """Each worker's loop, running on its thread until the batcher closes."""
        # Fast tokenizers refuse concurrent calls ("Already borrowed"); tokenizing is cheap.
        self._tokenize_lock = threading.Lock()
        self._failure: BaseException | None = None
        self._closing = False
        self.embedding_sink: Callable[[npt.NDArray[np.float32]], None] | None = None
        """Called on the worker with each model call's sentence embeddings (text drift);
        set after warm-up, so the warm-up text is not counted."""
        self._sink_failed = False

    @property
    def admitted(self) -> int:
        """Texts admitted and not yet answered (queued or in a model call)."""
        return self._admitted

    def expected_wait_s(self) -> float | None:
        """How long a newcomer would wait before its texts are taken up, at the measured
        service rate: until a worker is free (the model calls running now count only by what
        is left of them), then for the texts queued ahead, in full calls spread over the
        workers. None before any batch has run."""
        scale = self._scale
        if scale is None:
            return None
        free_in = 0.0
        ends = self._ends.copy()
        if None not in ends:
            free_in = max(0.0, min(e for e in ends if e is not None) - time.perf_counter())
        queued = self._queue.qsize()
        return free_in + scale * self._cost(queued, self.batch_cap()) / self._workers

    def _cost(self, texts: int, cap: int) -> float:
        """Estimated cost of `texts` taken in batches of at most `cap`, in the calls the
        batcher cuts them into (a packing model's of at most `PACKED_CALL_TEXTS`)."""
        per_call = min(cap, self._call_texts or cap)
        return self._shape.of(math.ceil(texts / per_call), texts)

    def batch_cap(self) -> int:
        """Most texts taken into one batch: `max_batch_size` and, with a wait bound, as many as
        run in half of it at the measured cost (a packing model's worker takes at most one
        packed call of them at a time). An admitted request then waits at most the bound for
        its turn and half as long again for its own batch, inside the seeds' 200 ms p95 with
        room for the event loop and the network. (With as long again, RoBERTa-base at five
        times capacity kept 225-253 ms at p95; with half, 180-198 ms and as many requests
        answered; both measured when batches were handed out by the event loop, at a 100 ms
        bound.) Below capacity the cap seldom
        binds: against a cap that kept batches full while their texts were fresh, in turns
        at 90% of capacity, p95 was 50-65 vs 45-93 ms on the bundled model and 65-83 vs
        87-114 ms on RoBERTa-base (Zen 5, three rounds). An earlier A/B against a cap of the
        whole bound had found 15-25% more CPU at 90% and a few more refusals at 75%."""
        size = self._limits.max_batch_size
        limit, scale, shape = self._max_queue_wait_s, self._scale, self._shape
        if not limit or not scale or shape.per_text <= 0:
            return size
        # One call a batch, or ceil(n / k) packed calls: at most (n / k + 1) * fixed.
        k = self._call_texts
        per_text = shape.per_text + (shape.fixed / k if k else 0.0)
        budget = _OWN_BATCH_SHARE * limit / scale - shape.fixed
        return max(1, min(size, int(budget / per_text)))

    @property
    def call_cost(self) -> CallCost:
        """The cost shape admission uses (seconds once calibrated)."""
        return self._shape

    async def calibrate(self, text: str) -> CallCost:
        """Time a model call of one `text` and of a full call of it (a batch, or a packed call
        of `PACKED_CALL_TEXTS`; tokenizing included, best of two each) on a worker, and take
        the fixed and per-text cost from them. Run before traffic is admitted; a failure
        leaves admission counting per text."""
        # On a thread of its own at the workers' priority (theirs each run a worker's loop).
        calibration = ThreadPoolExecutor(
            max_workers=1,
            thread_name_prefix="sentimon-infer-calibrate",
            initializer=lower_priority,
            initargs=(self._nice,),
        )
        try:
            shape = await asyncio.get_running_loop().run_in_executor(
                calibration, self._measure_shape, text
            )
        except Exception:
            log.exception("calibrating the admission estimate failed; it counts per text")
            return self._shape
        finally:
            calibration.shutdown(wait=False)
        self._shape, self._scale = shape, 1.0
        log.info(
            "a model call costs about %.1f ms + %.2f ms a text",
            shape.fixed * 1000,
            shape.per_text * 1000,
        )
        return shape

    def _measure_shape(self, text: str) -> CallCost:
        def timed(n: int) -> float:
            fastest = math.inf
            for _ in range(2):
                started = time.perf_counter()
                with self._tokenize_lock:
                    ids = self._model.tokenize([text] * n)
                self._model.infer(ids)
                fastest = min(fastest, time.perf_counter() - started)
            return fastest

        size = min(self._limits.max_batch_size, self._call_texts or self._limits.max_batch_size)
        one = timed(1)
        if size == 1:
            return CallCost(fixed=0.0, per_text=one)
        per_text = max(0.0, (timed(size) - one) / (size - 1))
        return CallCost(fixed=max(0.0, one - per_text), per_text=per_text)

    def refusal(self, texts: int) -> Overloaded | None:
        """Why `texts` more would be refused now (too many texts in flight, or a wait past
        `max_queue_wait_s`), or None if they would be admitted."""
        if self._admitted + texts > self._max_queue_size:
            return Overloaded(
                f"server busy: {self._admitted} texts queued, limit "
                f"{self._max_queue_size}; retry shortly"
            )
        limit = self._max_queue_wait_s
        expected = self.expected_wait_s()
        if limit is not None and expected is not None and expected > limit:
            return Overloaded(
                f"server busy: about {expected * 1000:.0f} ms of work queued ahead, limit "
                f"{limit * 1000:.0f} ms; retry shortly",
                retry_after_s=max(1, math.ceil(expected - limit)),
            )
        return None

    @property
    def healthy(self) -> bool:
        return (
            bool(self._loops)
            and self._failure is None
            and not self._closing
            and not any(f.done() for f in self._loops)
        )

    def start(self) -> None:
        if self._loops:
            return
        loop = asyncio.get_running_loop()
        self._loops = [
            asyncio.wrap_future(self._executor.submit(self._work, worker, loop))
            for worker in range(self._workers)
        ]

    async def close(self) -> None:
        """Fail what is still queued, let the running calls finish and answer, then stop."""
        self._closing = True
        self._fail(self._drain(), ModelNotReady("the service is shutting down"))
        for _ in self._loops:
            self._queue.put(None)
        if self._loops:  # a worker's failure is logged where it happened
            await asyncio.gather(*self._loops, return_exceptions=True)
        await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown)

    async def predict(self, texts: Sequence[str]) -> list[Prediction]:
        if not self.healthy:
            reason = "shutting down" if self._closing else f"worker stopped: {self._failure!r}"
            raise ModelNotReady(f"inference unavailable: {reason}")
        n = len(texts)
        refusal = self.refusal(n)
        if refusal is not None:
            raise refusal
        loop = asyncio.get_running_loop()
        items = [_Item(text, loop.create_future()) for text in texts]
        self._admitted += n
        self._metrics.queue_depth.set(self._admitted)
        for item in items:
            self._queue.put(item)
        try:
            async with asyncio.timeout(self._timeout_s):
                if n == 1:  # most requests; gather would add a future and its callbacks
                    return [await items[0].future]
                return list(await asyncio.gather(*(item.future for item in items)))
        except TimeoutError:
            raise InferenceTimeout(
                f"no result within {self._timeout_s:g} s; the server is overloaded"
            ) from None
        finally:
            for item in items:  # anything unanswered is skipped by the worker
                if not item.future.done():
                    item.future.cancel()

    def _release(self, n: int) -> None:
        self._admitted -= n
        self._metrics.queue_depth.set(self._admitted)

    def _work(self, worker: int, loop: asyncio.AbstractEventLoop) -> None:
        """A worker's loop, on its own thread: take a batch, run it, answer it, until the
        batcher closes. A bug here fails what is queued and reports the batcher unready."""
        try:
            while (batch := self._take(worker, loop)) is not None:
                try:
                    self._run(batch, loop)
                except Exception as exc:  # tokenizing or planning failed: fail what is left
                    log.exception("inference failed for a batch of %d texts", len(batch))
                    error = InferenceFailed(f"inference failed ({type(exc).__name__})")
                    loop.call_soon_threadsafe(self._fail_left, batch, error)
                finally:
                    self._ends[worker] = None
        except BaseException as exc:
            self._failure = exc
            log.exception("inference worker %d stopped", worker)
            stopped = ModelNotReady("inference worker stopped")
            loop.call_soon_threadsafe(self._fail, self._drain(), stopped)
            raise

    def _take(self, worker: int, loop: asyncio.AbstractEventLoop) -> list[_Item] | None:
        """On a worker: the next batch, once texts are queued (None once closing). The wait
        for a batch to fill counts from the oldest text's arrival: texts that queued while
        every worker was busy have waited long enough and go at once. A packing model's
        batch is one packed call: the texts after it are left to the next free worker, so
        each waits for its own call and not for the calls of a batch ahead of it in line."""
        while not self._closing:
            first = self._queue.get()
            if first is None:
                return None
            batch = [first]
            cap = self.batch_cap()
            if self._call_texts:
                cap = min(cap, self._call_texts)
            deadline = first.enqueued + self._limits.max_wait_s
            stop = False
            while len(batch) < cap:
                try:  # what is queued already goes at once; then wait out the deadline
                    item = self._queue.get(timeout=max(0.0, deadline - time.perf_counter()))
                except queue.Empty:
                    break
                if item is None:  # closing: run what was taken, then stop
                    stop = True
                    break
                batch.append(item)
            live = [item for item in batch if not item.future.done()]
            if len(live) < len(batch):  # their callers gave up
                loop.call_soon_threadsafe(self._release, len(batch) - len(live))
            if stop:
                self._queue.put(None)  # after this batch, for this worker's next look
            if live:
                cost = (self._scale or 0.0) * self._cost(len(live), len(live))
                self._ends[worker] = time.perf_counter() + cost
                return live
        return None

    def _drain(self) -> list[_Item]:
        """Take every text still queued (the stop signals stay)."""
        items: list[_Item] = []
        stops = 0
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                stops += 1
            else:
                items.append(item)
        for _ in range(stops):
            self._queue.put(None)
        return items

    def _fail(self, items: Sequence[_Item], error: Exception) -> None:
        """On the event loop: fail texts that were never taken."""
        self._release(len(items))
        for item in items:
            if not item.future.done():
                item.future.set_exception(error)

    def _fail_left(self, items: Sequence[_Item], error: Exception) -> None:
        """On the event loop: fail what a failed batch has not answered yet."""
        left = [item for item in items if not item.delivered]
        self._deliver(left, [error] * len(left))

    def _deliver(
        self, items: Sequence[_Item], results: Sequence[Prediction | BaseException]
    ) -> None:
        """On the event loop: hand each caller its result; callers who left are skipped."""
        for item, result in zip(items, results, strict=True):
            if item.delivered:
                continue
            item.delivered = True
            self._release(1)
            if item.future.done():
                continue
            if isinstance(result, BaseException):
                item.future.set_exception(result)
            else:
                item.future.set_result(result)

    def _sink(
        self, sink: Callable[[npt.NDArray[np.float32]], None], embeddings: npt.NDArray[np.float32]
    ) -> None:
        """Hand the embeddings on; a failure there never fails the predictions (logged once)."""
        try:
            sink(embeddings)
        except Exception:
            if not self._sink_failed:
                self._sink_failed = True
                log.exception("the text-drift sums failed; predictions are unaffected")

    def _run(self, items: Sequence[_Item], loop: asyncio.AbstractEventLoop) -> None:
        """On the worker thread: tokenize, plan calls, run them, and answer each call's
        callers as soon as it is done, so they can send their next request while the
        rest of the batch runs. A failed call fails every caller in it."""
        started = time.perf_counter()
        m = self._metrics
        for item in items:
            m.queue_wait.observe(started - item.enqueued)
        with self._tokenize_lock:
            ids = self._model.tokenize([item.text for item in items])
        m.tokenization.observe(time.perf_counter() - started)
        mark = started
        for call in self._plan([len(row) for row in ids], self._limits):
            rows = [ids[i] for i in call]
            results: list[Prediction | BaseException]
            try:
                call_started = time.perf_counter()
                sink = self.embedding_sink
                if sink is None:
                    probabilities = self._model.infer(rows)
                else:
                    probabilities, embeddings = self._model.infer_with_embeddings(rows)
                m.inference.observe(time.perf_counter() - call_started)
                if sink is not None:
                    self._sink(sink, embeddings)
                results = [
                    to_prediction(self._labels, probs, len(row))
                    for probs, row in zip(probabilities, rows, strict=True)
                ]
            except Exception as exc:
                log.exception("inference failed for a call of %d texts", len(rows))
                results = [InferenceFailed(f"inference failed ({type(exc).__name__})")] * len(rows)
            else:
                lengths = [len(row) for row in rows]
                computed = call_tokens(self._info, lengths)
                m.batch_size.observe(len(rows))
                m.batch_tokens.observe(computed)
                m.padding_ratio.observe(computed / sum(lengths))
                for n in lengths:
                    m.input_tokens.observe(n)
            # Worker time per text, tokenizing included, known before the callers are answered.
            now = time.perf_counter()
            self._observe_cost(now - mark, len(rows))
            mark = now
            loop.call_soon_threadsafe(self._deliver, [items[i] for i in call], results)

    def _observe_cost(self, seconds: float, texts: int) -> None:
        sample = seconds / self._shape.of(1, texts)
        scale = self._scale
        if scale is None:
            self._scale = sample
            return
        sample = min(sample, _COST_OUTLIER * scale)
        self._scale = scale + _COST_SMOOTHING * (sample - scale)
