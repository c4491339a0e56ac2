"""How many CPUs this process may use: its container's CPU limit, not the host's core count.

`os.cpu_count()` in a container (or a Kubernetes pod) is the node's cores; a pod limited to
2 CPUs on a 64-core node that starts 64 inference threads is throttled by the kernel's CFS
quota every period, which shows as latency spikes. So the count is the smallest of:
- the CPUs the scheduler lets this process run on (`sched_getaffinity`: cpusets, taskset);
- the CFS quota of its cgroup and every parent cgroup (v2 `cpu.max`, v1 `cpu.cfs_quota_us`
  over `cpu.cfs_period_us`), rounded down (1.5 CPUs run 1 thread unthrottled rather than 2
  throttled), and at least 1.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class CpuBudget:
    count: int
    source: str
    """Where the count came from, for the logs: `cgroup quota 2.5`, `affinity`."""


def available_cpus(root: Path = Path("/")) -> CpuBudget:
    """The CPUs this process may use (see the module docstring); `root` is for tests."""
    affinity = _affinity()
    quota = cgroup_quota(root)
    if quota is not None and math.floor(quota) < affinity:
        return CpuBudget(max(1, math.floor(quota)), f"cgroup quota {quota:g}")
    return CpuBudget(affinity, "affinity")


def _affinity() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def cgroup_quota(root: Path = Path("/")) -> float | None:
    """The tightest CFS quota over this process's cgroup and its parents, in CPUs; None when
    none is set (or no cgroup file can be read)."""
    try:
        lines = (root / "proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    quotas = []
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":
            quotas += _v2_quotas(root / "sys/fs/cgroup", path)
        elif "cpu" in controllers.split(","):
            quotas += _v1_quotas(root / "sys/fs/cgroup", controllers, path)
    return min(quotas) if quotas else None


def _ancestors(base: Path, path: str) -> list[Path]:
    """`base/path` and each parent up to `base` (a container sees its own cgroup as `/`)."""
    parts = [p for p in path.split("/") if p and p != ".."]
    return [base.joinpath(*parts[:i]) for i in range(len(parts), -1, -1)]


def _v2_quotas(base: Path, path: str) -> list[float]:
    out = []
    for folder in _ancestors(base, path):
        try:
            quota, period = (folder / "cpu.max").read_text().split()[:2]
        except (OSError, ValueError):
            continue
        if quota != "max" and int(period) > 0:
            out.append(int(quota) / int(period))
    return out


def _v1_quotas(base: Path, controllers: str, path: str) -> list[float]:
    for mount in (controllers, "cpu,cpuacct", "cpu"):
        if (base / mount).is_dir():
            break
    else:
        return []
    out = []
    for folder in _ancestors(base / mount, path):
        try:
            quota = int((folder / "cpu.cfs_quota_us").read_text())
            period = int((folder / "cpu.cfs_period_us").read_text())
        except (OSError, ValueError):
            continue
        if quota > 0 and period > 0:
            out.append(quota / period)
    return out
