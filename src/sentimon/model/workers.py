"""How inference is spread over the CPUs this process may use: how many workers run batches
side by side, and how many threads each one's model calls use.

With `SENTIMON_INFERENCE_WORKERS=0` (the default) the count chooses itself: two workers when
the process may use two CPUs or more, else one. On two cores two workers of one thread each
served more than one worker of two threads, at the service level and flat out, for the bundled
MiniLM model and for a RoBERTa-base-sized one alike (`make bench`, bench/results/): a batch of
tweets is too small a matrix product to keep two threads busy, and a second batch in flight
hides the Python work between model calls. Nothing larger than two cores has been measured,
so on more CPUs the two workers share them (`num_threads // 2` each).
"""

from __future__ import annotations

from dataclasses import dataclass

from sentimon.config import Settings
from sentimon.model.cpu_quota import available_cpus

AUTO_WORKERS = 2


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
