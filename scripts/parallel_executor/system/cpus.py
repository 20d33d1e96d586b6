"""The CPUs this process may use (§6): its affinity mask, lowered by a cgroup CPU quota where one is
set (a container limited to 2 CPUs on a 64-core host must not run 64 CPU-bound commands)."""

from __future__ import annotations

import math
import os
from pathlib import Path


def usable_cpus() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    quota = _cgroup_quota()
    return max(1, min(cpus, math.ceil(quota))) if quota else max(1, cpus)


def _cgroup_quota() -> float | None:
    """CPUs allowed by cgroup v2 `cpu.max` or v1 `cpu.cfs_quota_us`, for this process's cgroup."""
    try:
        return _quota()
    except (ValueError, ZeroDivisionError):
        return None  # a file this code does not understand: no quota rather than a wrong one


def _quota() -> float | None:
    for v2 in _own_cgroup_files("cpu.max"):
        quota, _, period = _read(v2).partition(" ")
        if quota and quota != "max" and period:
            return int(quota) / int(period)
    for v1 in _own_cgroup_files("cpu.cfs_quota_us"):
        quota, period = _read(v1), _read(v1.with_name("cpu.cfs_period_us"))
        if quota and period and int(quota) > 0:
            return int(quota) / int(period)
    return None


def _own_cgroup_files(name: str) -> list[Path]:
    found = []
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        if line.count(":") < 2:
            continue
        _, controllers, path = line.split(":", 2)
        roots = ["/sys/fs/cgroup"] if not controllers else [f"/sys/fs/cgroup/{c}" for c in controllers.split(",")]
        found += [Path(root) / path.lstrip("/") / name for root in roots]
    return [p for p in found if p.is_file()]


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except (OSError, ValueError):
        return ""
