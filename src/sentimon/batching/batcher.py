"""The micro-batcher: many callers' texts → few, well-packed model calls on worker threads.

Callers put texts into a bounded queue. Admission refuses at once (`Overloaded`) when the texts
admitted and not yet answered would keep a newcomer waiting longer than `max_queue_wait_s` at
the service rate measured on recent batches (so a request is never admitted only to wait past
the latency target), or would pass `max_queue_size`. While texts arrive slower than the workers
clear them, a burst may take the wait past the bound for up to `BURST_S`, to at most
`BURST_LIMIT` times it, both judged at the workers' typical pace as well (`TYPICAL_CALLS`),
which a stall of the process does not move. A model call costs a fixed part plus a part per
text (`CallCost`, measured at start by `calibrate`), so a queue is counted as the few full
calls it will run in; recent calls scale that shape to what the machine gives now, and each
batch also costs the event loop's hand-over to a worker, measured too. When an
inference worker is free, a collector task takes what is queued, waiting at most
`max_wait_s` (counted from the oldest text) for a batch to fill up to `max_batch_size` (fewer
where the wait bound is set and a full batch would take longer than half of it at the
measured cost), and hands it to that worker (worker threads run `nice` steps below the event
loop's priority). There the texts are tokenized and cut into model calls: a model that packs
texts into rows (`ModelInfo.packed`) takes them in packed calls of a few texts
(`PACKED_CALL_TEXTS`), in order; otherwise the texts are sorted by length and cut into calls
that respect the token budget and never pad more than `max_padding_ratio` times the real
tokens. Each call's results go to their callers as soon as it is done; a failed call fails
every caller in it; callers that gave up before their batch ran are skipped. While the
workers are busy the next batch accumulates, so batches grow with load. Never on the event
loop.

Workers that take their next batch from a `queue.SimpleQueue` themselves were tried (6f19038)
and reverted: at five times capacity they answered more on a Zen 5 and less on a Zen 4, where
two of four runs collapsed (429s at 1-3.8 s p99, client errors); README, "Past capacity".
"""

from __future__ import annotations

import asyncio
import logging
import math
import statistics
import threading
import time
from collections import deque
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
in under 100 ms. A lasting slowdown still raises the rate by up to 60% a call. The median of
the last nine calls, which ignores a stop of the process altogether, was tried: past capacity
it priced the queue too low, as descheduled calls are then the rule rather than the
exception, and admitted requests waited longer. With the burst allowance below, the bundled
model at five times capacity (Zen 4, two rounds each in turns with the bound alone) had its
429s at 361-439 ms p99 and admitted requests at 231-284 ms p95 with the median, against
18-130 and 159-210 ms; with this average, 18-125 and 161-196 ms against 22-249 and 176-225
ms. Bursts after a stop are what `BURST_S` is for."""

TYPICAL_CALLS = 9
"""The workers' typical pace, which judges a burst past the bound (`BURST_S`, `BURST_LIMIT`)
but never prices the bound itself, is the median of this many last calls. A stop of the
process catches a call or two of each worker: `_COST_SMOOTHING`'s average then rose 2.5-fold
and put the service rate at as little as a fifth of the real one, so the backlog of a 400 ms
stop at half capacity looked like a flood the workers could not clear, and admission refused
for a second after each stop. The median passes over such calls and follows a lasting change
within five; a burst is refused only if neither pace would clear it. At 190 req/s with the
process stopped for 200-500 ms every 6 s (bundled model, Zen 4, a minute each, three rounds
in turns with the recent pace alone) 42-109 requests were refused against 251-337. An average
weighing the newest call 0.03 did as well after stops (42-79 against 216-312), but would take
40 calls to follow a machine ten times slower, letting bursts queue that much longer."""

BURST_S = 1.0
"""How long admission lets the expected wait stay past `max_queue_wait_s` before it refuses,
while texts arrive slower than the workers clear them and the wait stays under `BURST_LIMIT`
times the bound: a standing queue, not a burst, is what it refuses (CoDel's idea). Once
refusing it goes on until the wait has been back within the bound for as long; a request
past `BURST_LIMIT` alone is refused without starting that. Also the time constant of the
arrival rate. A soak at half capacity (Zen 4, 7dde360) had 59 requests refused in one minute
while the slowest answer beside them took 211 ms: a moment's stall of the machine queues the
arrivals of a few hundred milliseconds, which the workers clear in tens. Past capacity the
arrival rate crosses the service rate within a few hundred milliseconds and the bound holds
from then on."""

BURST_LIMIT = 3.0
"""Past this multiple of `max_queue_wait_s` (at the faster of the two paces) a request is
refused at once. A request let in at the limit waits about 210 ms at the default bound, and
its own batch: past the seeds' 200 ms, but answered. At twice the bound, the bundled model at
153 req/s with the process stopped for 300 ms every 6 s still refused 40 requests in a minute
(186 with no burst allowed); at three times, with stops of 200-500 ms, 0-53 (263-301 with
none; Zen 4)."""


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


@dataclass(slots=True)
class _RecentPace:
    """How fast the workers went lately: measured worker seconds over `CallCost`'s estimate
    (`scale`, None before any call) and the event loop's hand-over from a worker's end of a
    batch, with texts waiting, to the next batch's start (`handover`, seconds), each an
    exponential average in which the newest sample weighs `_COST_SMOOTHING`. Written by the
    workers, read on the event loop (a float is replaced whole)."""

    scale: float | None = None
    handover: float = 0.0

    def observe_cost(self, sample: float) -> None:
        """Count a call that took `sample` times its estimate, at most `_COST_OUTLIER` times the
        average."""
        scale = self.scale
        if scale is None:
            self.scale = sample
            return
        self.scale = scale + _COST_SMOOTHING * (min(sample, _COST_OUTLIER * scale) - scale)

    def observe_handover(self, seconds: float, one_call: float) -> None:
        """Count a hand-over of `seconds`, at most `_COST_OUTLIER` times the average or than a
        call of one text (`one_call` in `CallCost` units), so a moment the process was
        descheduled does not count whole."""
        cap = _COST_OUTLIER * max(self.handover, (self.scale or 0.0) * one_call)
        self.handover += _COST_SMOOTHING * (min(seconds, cap) - self.handover)


@dataclass(slots=True)
class _TypicalPace:
    """`_RecentPace`'s measures as the median of their last `TYPICAL_CALLS` samples, taken on
    the worker that adds one (a float is replaced whole)."""

    costs: deque[float] = field(default_factory=lambda: deque(maxlen=TYPICAL_CALLS))
    handovers: deque[float] = field(default_factory=lambda: deque(maxlen=TYPICAL_CALLS))
    scale: float | None = None
    handover: float = 0.0

    def observe_cost(self, sample: float) -> None:
        self.costs.append(sample)
        self.scale = statistics.median(self.costs)

    def observe_handover(self, seconds: float) -> None:
        self.handovers.append(seconds)
        self.handover = statistics.median(self.handovers)


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
        self._pace = _RecentPace()
        """The recent pace, which prices the queue for the bound and sizes batches. Past
        capacity, with the loop busy refusing, the hand-over was 5-13 ms at the median and
        22-45 ms at p90 against calls of about 25 ms (bundled model at five times capacity,
        Zen 4): the workers stood idle a third of the time and admitted requests took 189-236
        ms at p95; counted, 150-179 ms (six interleaved pairs)."""
        self._typical = _TypicalPace()
        """The typical pace, which judges a burst past the bound."""
        self._over_since: float | None = None
        """Since when every admission check found the expected wait past the bound."""
        self._under_since = 0.0
        """Since when every admission check found it within the bound."""
        self._refusing = False
        """The wait stayed past the bound longer than a burst, or while texts arrived faster
        than the workers clear them: refuse past it."""
        self._arrivals = 0.0
        """Texts offered a second (an exponential average over `BURST_S`), as of
        `_arrivals_at`."""
        self._arrivals_at = 0.0
        self._clock: Callable[[], float] = time.perf_counter
        """Admission's clock for bursts and arrivals."""
        self._batch_ends: dict[asyncio.Task[None], float] = {}
        """When each running model call should end, at the service rate when it started."""
        self._freed_at: deque[float] = deque()
        """When workers finished a batch with texts waiting, oldest first; the next batch to
        start takes the oldest as the start of its hand-over."""
        self._info = model.info
        self._labels = model.info.labels
        self._plan = call_planner(model.info)
        self._call_texts = PACKED_CALL_TEXTS if model.info.packed else None
        """Most texts in one model call, where the planner caps it."""
        self._queue: deque[_Item] = deque()
        self._admitted = 0
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(
            max_workers=workers,
            thread_name_prefix="sentimon-infer",
            initializer=lower_priority,
            initargs=(nice,),
        )
        # A batch forms when a worker is free, from everything queued by then.
        self._free_workers = asyncio.Semaphore(workers)
        self._running: set[asyncio.Task[None]] = set()
        # Fast tokenizers refuse concurrent calls ("Already borrowed"); tokenizing is cheap.
        self._tokenize_lock = threading.Lock()
        self._task: asyncio.Task[None] | None = None
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

    def expected_wait_s(self, *, typical: bool = False) -> float | None:
        """How long a newcomer would wait before its texts are taken up, at the recent pace
        (or the `typical` one): until a worker is free (the model calls running now count only
        by what is left of them), then for the texts queued ahead, in full calls spread over
        the workers, each batch with its hand-over. None before any batch has run."""
        pace = self._typical if typical else self._pace
        scale = pace.scale
        if scale is None:
            return None
        free_in = 0.0
        if len(self._batch_ends) >= self._workers:
            free_in = max(0.0, min(self._batch_ends.values()) - time.perf_counter())
        queued, cap = len(self._queue), self.batch_cap()
        handovers = math.ceil(queued / cap) * pace.handover
        return free_in + (scale * self._cost(queued, cap) + handovers) / self._workers

    def _cost(self, texts: int, cap: int) -> float:
        """Estimated cost of `texts` taken in batches of at most `cap`, in the calls the
        batcher cuts them into (a packing model's of at most `PACKED_CALL_TEXTS`)."""
        per_call = min(cap, self._call_texts or cap)
        return self._shape.of(math.ceil(texts / per_call), texts)

    def batch_cap(self) -> int:
        """Most texts taken into one batch: `max_batch_size` and, with a wait bound, as many as
        run in half of it at the measured cost. An admitted request then waits at most the
        bound for its turn and half as long again for its own batch: 150 ms at the default
        bound, inside the seeds' 200 ms p95 with room for the event loop and the network.
        (With as long again, RoBERTa-base at five times capacity kept 225-253 ms at p95; with
        half, 180-198 ms and as many requests answered.) Below capacity the cap seldom
        binds: against a cap that kept batches full while their texts were fresh, in turns
        at 90% of capacity, p95 was 50-65 vs 45-93 ms on the bundled model and 65-83 vs
        87-114 ms on RoBERTa-base (Zen 5, three rounds). An earlier A/B against a cap of the
        whole bound had found 15-25% more CPU at 90% and a few more refusals at 75%."""
        size = self._limits.max_batch_size
        limit, scale, shape = self._max_queue_wait_s, self._pace.scale, self._shape
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
        try:  # on a worker thread: a batch submitted meanwhile waits its turn there
            shape = await asyncio.get_running_loop().run_in_executor(
                self._executor, self._measure_shape, text
            )
        except Exception:
            log.exception("calibrating the admission estimate failed; it counts per text")
            return self._shape
        self._shape = shape
        # Cost samples so far were in other units; hand-overs are in seconds and stay.
        self._pace.scale = self._typical.scale = 1.0
        self._typical.costs.clear()
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
        `max_queue_wait_s` for longer than a burst, `BURST_S`, or past `BURST_LIMIT` times
        it), or None if they would be admitted. Each call is an admission check: it moves
        the burst's clock."""
        if self._admitted + texts > self._max_queue_size:
            self._arrive(texts)
            return Overloaded(
                f"server busy: {self._admitted} texts queued, limit "
                f"{self._max_queue_size}; retry shortly"
            )
        limit = self._max_queue_wait_s
        expected = self.expected_wait_s()
        if limit is None or expected is None:
            return None
        why = self._past_bound(expected, limit)
        if why is None:
            return None
        self._arrive(texts)
        return Overloaded(
            f"server busy: about {expected * 1000:.0f} ms of work queued ahead, limit "
            f"{limit * 1000:.0f} ms ({why}); retry shortly",
            retry_after_s=max(1, math.ceil(expected - limit)),
        )

    def _past_bound(self, expected: float, limit: float) -> str | None:
        """Why a newcomer expected to wait `expected` seconds is refused under the bound
        `limit`, or None if it is not: past it for longer than a burst, past it while texts
        arrive faster than the workers clear them, past `BURST_LIMIT` times it, or past it
        while refusing. A burst is judged at the faster of the recent and the typical pace
        (`TYPICAL_CALLS`). The reason goes into the 429's message, so whoever reads a
        refusal at low load can tell a stall (a queue past the bound for a second) from a
        flood."""
        now = self._clock()
        if expected <= limit:
            if self._over_since is not None:
                self._over_since, self._under_since = None, now
            elif self._refusing and now - self._under_since >= BURST_S:
                self._refusing = False
            return None
        if self._over_since is None:
            self._over_since = now
        if now - self._over_since >= BURST_S:
            why = f"past the limit for {BURST_S:g} s"
        elif (arrivals := self._arrival_rate(now)) > (clears := self._burst_service_rate()):
            why = f"texts arrive at about {arrivals:.0f}/s, the workers clear {clears:.0f}/s"
        elif self._burst_wait(expected) > BURST_LIMIT * limit:
            # A spike, not yet a standing queue: refused alone, the bursts after it judged anew.
            return f"over {BURST_LIMIT:g} times the limit, also at the typical pace"
        elif self._refusing:
            why = f"refusing until the wait is within the limit for {BURST_S:g} s"
        else:
            return None
        self._refusing = True
        return why

    def _arrive(self, texts: int) -> None:
        """Count `texts` offered now (once a request: when refused, or when admitted)."""
        now = self._clock()
        self._arrivals = self._arrival_rate(now) + texts / BURST_S
        self._arrivals_at = now

    def _arrival_rate(self, now: float) -> float:
        return self._arrivals * math.exp(min(0.0, self._arrivals_at - now) / BURST_S)

    def _burst_wait(self, expected: float) -> float:
        """The expected wait at the faster of the two paces."""
        typical = self.expected_wait_s(typical=True)
        return expected if typical is None else min(expected, typical)

    def _burst_service_rate(self) -> float:
        """The workers' rate at the faster of the two paces."""
        return max(self.service_rate(), self.service_rate(typical=True))

    def service_rate(self, *, typical: bool = False) -> float:
        """Texts a second the workers clear in full calls at the recent pace (or the
        `typical` one; inf before any call is measured)."""
        pace, cap = (self._typical if typical else self._pace), self.batch_cap()
        if not pace.scale:
            return math.inf
        return self._workers * cap / (pace.scale * self._cost(cap, cap) + pace.handover)

    @property
    def healthy(self) -> bool:
        return self._task is not None and not self._task.done() and not self._closing

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._collect(), name="sentimon-batcher"
            )

    async def close(self) -> None:
        """Fail what is still queued, let the running call finish and answer, then stop."""
        self._closing = True
        self._fail_queued(ModelNotReady("the service is shutting down"))
        self._wakeup.set()
        if self._task is not None:
            try:
                await self._task
            except Exception:  # already logged by the collector
                pass
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
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
        self._arrive(n)
        self._admitted += n
        self._metrics.queue_depth.set(self._admitted)
        self._queue.extend(items)
        self._wakeup.set()
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

    async def _collect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                await self._free_workers.acquire()
                while not self._queue and not self._closing:
                    self._freed_at.clear()  # nothing waited for those workers
                    self._wakeup.clear()
                    await self._wakeup.wait()
                if self._closing:
                    self._free_workers.release()
                    return
                # The wait counts from the oldest text's arrival: texts that queued while the
                # worker was busy have waited long enough and go at once.
                deadline = self._queue[0].enqueued + self._limits.max_wait_s
                cap = self.batch_cap()
                while len(self._queue) < cap and not self._closing:
                    remaining = deadline - time.perf_counter()
                    if remaining <= 0:
                        break
                    self._wakeup.clear()
                    try:
                        async with asyncio.timeout(remaining):
                            await self._wakeup.wait()
                    except TimeoutError:
                        break
                size = min(len(self._queue), cap)
                batch = [self._queue.popleft() for _ in range(size)]
                live = [item for item in batch if not item.future.done()]
                self._release(len(batch) - len(live))
                if not live:
                    self._free_workers.release()
                    continue
                task = loop.create_task(self._dispatch(live, loop))
                self._running.add(task)
                task.add_done_callback(self._running.discard)
                cost = (self._pace.scale or 0.0) * self._cost(len(live), len(live))
                self._batch_ends[task] = time.perf_counter() + cost
                task.add_done_callback(self._batch_ends.pop)
        except Exception as exc:  # a bug in the loop itself: fail everyone, report unready
            self._failure = exc
            log.exception("the batcher stopped")
            self._fail_queued(ModelNotReady("inference worker stopped"))
            raise

    async def _dispatch(self, live: list[_Item], loop: asyncio.AbstractEventLoop) -> None:
        try:
            await loop.run_in_executor(self._executor, self._run, live, loop)
        except Exception as exc:  # tokenizing or planning failed: fail what is left
            log.exception("inference failed for a batch of %d texts", len(live))
            error = InferenceFailed(f"inference failed ({type(exc).__name__})")
            left = [item for item in live if not item.delivered]
            self._deliver(left, [error] * len(left))
        finally:
            self._free_workers.release()

    def _fail_queued(self, error: Exception) -> None:
        while self._queue:
            item = self._queue.popleft()
            self._release(1)
            if not item.future.done():
                item.future.set_exception(error)

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
        self._observe_handover(started)
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
        if self._queue:
            self._freed_at.append(time.perf_counter())

    def _observe_handover(self, started: float) -> None:
        """Count the hand-over that ends with a batch starting at `started`, if a worker was
        freed with texts waiting: the event loop's part, which no call's cost includes."""
        try:
            freed = self._freed_at.popleft()
        except IndexError:
            return
        seconds, one_call = max(0.0, started - freed), self._shape.of(1, 1)
        self._pace.observe_handover(seconds, one_call)
        self._typical.observe_handover(seconds)

    def _observe_cost(self, seconds: float, texts: int) -> None:
        sample = seconds / self._shape.of(1, texts)
        self._pace.observe_cost(sample)
        self._typical.observe_cost(sample)
