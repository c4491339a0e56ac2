"""How many inference workers, and threads each: chosen by the CPUs, or as set."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

from sentimon.config import Settings
from sentimon.model import workers
from sentimon.model.cpu_quota import CpuBudget
from sentimon.model.workers import InferencePlan, plan_inference, run_lowered


def settings(tmp_path: Path, **values: int) -> Settings:
    return Settings(data_dir=tmp_path, **values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cpus", "expected"),
    [
        (1, InferencePlan(1, "cgroup quota 1.5", 1, 1, True)),
        (2, InferencePlan(2, "cgroup quota 1.5", 2, 1, True)),
        (8, InferencePlan(8, "cgroup quota 1.5", 2, 4, True)),
    ],
)
def test_by_default_two_workers_share_the_cpus_when_there_are_two(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cpus: int, expected: InferencePlan
) -> None:
    monkeypatch.setattr(workers, "available_cpus", lambda: CpuBudget(cpus, "cgroup quota 1.5"))
    assert plan_inference(settings(tmp_path)) == expected


def test_threads_and_workers_as_set(tmp_path: Path) -> None:
    plan = plan_inference(settings(tmp_path, num_threads=4, inference_workers=1))
    assert plan == InferencePlan(4, "SENTIMON_NUM_THREADS", 1, 4, False)
    plan = plan_inference(settings(tmp_path, num_threads=3, inference_workers=0))
    assert (plan.workers, plan.threads_per_worker, plan.chosen) == (2, 1, True)
    # More workers than threads: each still gets one.
    plan = plan_inference(settings(tmp_path, num_threads=2, inference_workers=4))
    assert (plan.workers, plan.threads_per_worker) == (4, 1)


@pytest.mark.skipif(sys.platform != "linux", reason="threads have their own nice value on Linux")
def test_run_lowered_runs_below_this_priority_and_what_it_starts_does_too() -> None:
    here = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def nice_of_a_started_thread() -> tuple[int, int]:
        seen: list[int] = []
        started = threading.Thread(
            target=lambda: seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        )
        started.start()
        started.join()
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id()), seen[0]

    assert run_lowered(2, nice_of_a_started_thread) == (min(19, here + 2),) * 2
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == here
    assert run_lowered(0, nice_of_a_started_thread) == (here, here)
