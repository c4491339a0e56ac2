"""How inference is spread over the CPUs this process may use: how many workers run batches
side by side, and how many threads each one's model calls use.

With `SENTIMON_INFERENCE_WORKERS=0` (the default) the count chooses itself: two workers when
the process may use two CPUs or more, else one. On two cores two workers of one thread each
served more than one worker of two threads, at the service level and flat out, for the bundled
MiniLM model and for a RoBERTa-base-sized one alike (`make bench`, bench/results/): a batch of
tweets is too small a matrix product to keep two threads busy, and a second batch in flight
hides the Python work between model calls. Nothing larger than two cores has been measured,
so on more CPUs the two workers share them (`num_threads // 2` each).

Inference threads run below the event loop's priority (`SENTIMON_INFERENCE_NICE`): past
capacity, model calls would otherwise take the cores as often as the loop does, and every
request, refusal and probe would wait its turn behind them. On two cores at five times the
bundled model's capacity (3,000 req/s, Zen 5, in turns, three rounds) nice 10 cut the 429s'
p99 from 0.24-2.8 s to 0.11-0.35 s and answered 5-30% more requests; flat out (16 closed-loop
clients) it served the same.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from sentimon.config import Settings
from sentimon.model.cpu_quota import available_cpus

AUTO_WORKERS = 2
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class InferencePlan:
    threads: int
    """Inference threads in all."""
    source: str
    """Where `threads` came from, for the log: SENTIMON_NUM_THREADS, `affinity`, a quota."""
    workers: int
    threads_per_worker: int
    chosen: bool
    """Whether the worker count chose itself (SENTIMON_INFERENCE_WORKERS=0)."""


def plan_inference(settings: Settings) -> InferencePlan:
    if settings.num_threads:
        threads, source = settings.num_threads, "SENTIMON_NUM_THREADS"
    else:
        budget = available_cpus()
        threads, source = budget.count, budget.source
    chosen = settings.inference_workers == 0
    workers = (
        (AUTO_WORKERS if threads >= AUTO_WORKERS else 1) if chosen else settings.inference_workers
    )
    return InferencePlan(threads, source, workers, max(1, threads // workers), chosen)


def lower_priority(nice: int) -> None:
    """Run the calling thread `nice` steps below its priority now (threads it starts inherit
    that). Linux only, where each thread has its own nice value; elsewhere nothing."""
    if nice and sys.platform == "linux":
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + nice)


def run_lowered(nice: int, fn: Callable[[], T]) -> T:
    """`fn()` on a new thread `nice` steps below this process's priority: what it starts (an
    inference runtime's thread pool) runs there too."""
    with ThreadPoolExecutor(
        max_workers=1, thread_name_prefix="sentimon-load", initializer=lower_priority,
        initargs=(nice,),
    ) as pool:  # fmt: skip
        return pool.submit(fn).result()
