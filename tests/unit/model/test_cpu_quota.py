"""A container's CPU limit, read from cgroup files laid out as the kernel does."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sentimon.model.cpu_quota import available_cpus, cgroup_quota


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.mark.parametrize(
    ("files", "quota"),
    [
        # cgroup v2 inside a container: its own cgroup is the root.
        ({"proc/self/cgroup": "0::/\n", "sys/fs/cgroup/cpu.max": "200000 100000\n"}, 2.0),
        ({"proc/self/cgroup": "0::/\n", "sys/fs/cgroup/cpu.max": "max 100000\n"}, None),
        # v2 on a host: the tightest of the process's cgroup and its parents.
        (
            {
                "proc/self/cgroup": "0::/kubepods/pod1/c1\n",
                "sys/fs/cgroup/kubepods/cpu.max": "800000 100000\n",
                "sys/fs/cgroup/kubepods/pod1/cpu.max": "150000 100000\n",
                "sys/fs/cgroup/kubepods/pod1/c1/cpu.max": "max 100000\n",
            },
            1.5,
        ),
        # cgroup v1, the cpu controller mounted with cpuacct.
        (
            {
                "proc/self/cgroup": "12:memory:/\n4:cpu,cpuacct:/\n",
                "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "50000\n",
                "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n",
            },
            0.5,
        ),
        (
            {
                "proc/self/cgroup": "4:cpu,cpuacct:/\n",
                "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "-1\n",
                "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n",
            },
            None,
        ),
        ({}, None),  # nothing readable: no limit known
        ({"proc/self/cgroup": "0::/\n", "sys/fs/cgroup/cpu.max": "garbage\n"}, None),
    ],
)
def test_the_quota_is_the_tightest_limit_in_cpus(
    tmp_path: Path, files: dict[str, str], quota: float | None
) -> None:
    assert cgroup_quota(_write(tmp_path, files)) == quota


def test_threads_follow_the_quota_rounded_down_never_below_one(tmp_path: Path) -> None:
    cores = len(os.sched_getaffinity(0))
    one_and_half = _write(
        tmp_path / "a", {"proc/self/cgroup": "0::/\n", "sys/fs/cgroup/cpu.max": "150000 100000"}
    )
    budget = available_cpus(one_and_half)
    expected = (1, "cgroup quota 1.5") if cores > 1 else (1, "affinity")
    assert (budget.count, budget.source) == expected
    tenth = _write(
        tmp_path / "b", {"proc/self/cgroup": "0::/\n", "sys/fs/cgroup/cpu.max": "10000 100000"}
    )
    assert available_cpus(tenth).count == 1
    unlimited = _write(
        tmp_path / "c", {"proc/self/cgroup": "0::/\n", "sys/fs/cgroup/cpu.max": "max 100000"}
    )
    assert (available_cpus(unlimited).count, available_cpus(unlimited).source) == (
        cores,
        "affinity",
    )
    generous = _write(
        tmp_path / "d", {"proc/self/cgroup": "0::/\n", "sys/fs/cgroup/cpu.max": "6400000 100000"}
    )
    assert available_cpus(generous).count == cores  # a quota above the cores changes nothing
