"""Memory (§7): admit tasks only while memory is available, suspend the newest task when memory
runs short, and kill a task whose process tree grows past memory_limit_per_agent.

Each tick measures every running task's tree (RSS and CPU), reading only the tree's processes.
PARALLEL_EXECUTOR_AVAILABLE_MEMORY_FILE, when set, names a file holding the "available" byte
count to use instead of the system's: a way for tests to set memory pressure.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

import psutil

from parallel_executor import procs
from parallel_executor.model import TaskSpec

MB = 2**20
TICK = 0.5


@dataclass
class Usage:
    peak_rss: int = 0
    cpu_seconds: float = 0.0


@dataclass
class Actions:
    kill: dict[str, str] = field(default_factory=dict)  # task id -> why
    suspend: list[str] = field(default_factory=list)
    resume: list[str] = field(default_factory=list)


def available() -> int:
    override = os.environ.get("PARALLEL_EXECUTOR_AVAILABLE_MEMORY_FILE")
    if override:
        try:
            return int(open(override).read().strip())
        except (OSError, ValueError):
            pass
    return int(psutil.virtual_memory().available)


def tree_usage(pid: int) -> tuple[int, float]:
    """Resident memory (bytes) and CPU seconds of pid's whole tree."""
    rss, cpu = 0, 0.0
    for member in procs.tree_pids(pid):
        try:
            process = psutil.Process(member)
            with process.oneshot():
                times = process.cpu_times()
                rss, cpu = rss + process.memory_info().rss, cpu + times.user + times.system
        except psutil.Error:
            continue
    return rss, cpu


class MemoryWatch:
    def __init__(self, per_agent: int, reserve: int, limit: int | None) -> None:
        self.needed, self.reserve, self.limit = per_agent + reserve, reserve, limit
        self.free, self.measured = available(), time.monotonic()
        self.unmeasured: set[str] = set()  # started since the last measurement and still running
        self.usage: dict[str, Usage] = defaultdict(Usage)
        self.suspended: list[str] = []  # oldest first

    # Admission check
    def blocked(self, task: TaskSpec) -> str | None:
        if time.monotonic() - self.measured > TICK:  # nothing may be running to tick
            self.free, self.measured = available(), time.monotonic()
            self.unmeasured.clear()
        # A task just started has not grown yet: count it as taking memory_per_agent until measured.
        free = self.free - len(self.unmeasured) * (self.needed - self.reserve)
        if free >= self.needed and not self.suspended:
            return None
        return f"waiting for memory ({free // MB} MB available, {self.needed // MB} MB needed)"

    def started(self, task: TaskSpec) -> None:
        self.unmeasured.add(task.id)

    def settled(self, task: TaskSpec) -> None:
        self.unmeasured.discard(task.id)
        if task.id in self.suspended:
            self.suspended.remove(task.id)

    def tick(self, running: Mapping[str, int]) -> Actions:
        """Measure the running trees (`running`: task id -> leader pid, oldest first); say what to do."""
        self.free, self.measured = available(), time.monotonic()
        self.unmeasured.clear()
        actions = Actions()
        for task_id, pid in running.items():
            rss, cpu = tree_usage(pid)
            usage = self.usage[task_id]
            usage.peak_rss, usage.cpu_seconds = max(usage.peak_rss, rss), max(usage.cpu_seconds, cpu)
            if self.limit is not None and rss > self.limit:
                actions.kill[task_id] = (f"memory limit {self.limit // MB} MB exceeded "
                                         f"(peak {usage.peak_rss // MB} MB)")
        active = [t for t in running if t not in self.suspended and t not in actions.kill]
        if self.free < self.reserve and active:
            actions.suspend.append(active[-1])
            self.suspended.append(active[-1])
        elif self.suspended and self.free >= self.needed:
            actions.resume.append(self.suspended.pop(0))
        return actions
