"""Memory (§7): admit tasks only while memory is available, suspend the newest task when memory
runs short, and kill a task whose process tree grows past memory_limit_per_agent.

Each tick gets every running task's tree measured (RSS and CPU) by the backend.
PARALLEL_EXECUTOR_AVAILABLE_MEMORY_FILE, when set, names a file holding the "available" byte
count to use instead of the system's: a way for tests to set memory pressure.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Mapping

import psutil

from parallel_executor.engine.records import Actions, Usage
from parallel_executor.plan.model import TaskSpec

MB = 2**20
TICK = 0.5


def available() -> int:
    override = os.environ.get("PARALLEL_EXECUTOR_AVAILABLE_MEMORY_FILE")
    if override:
        try:
            return int(open(override).read().strip())
        except (OSError, ValueError):
            pass
    return int(psutil.virtual_memory().available)


class MemoryWatch:
    interval = TICK  # how often the scheduler measures the running trees and calls tick()

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

    def tick(self, running: Mapping[str, tuple[int, float]]) -> Actions:
        """Given each running tree's RSS and CPU seconds (task id -> figures, oldest first): what to do."""
        self.free, self.measured = available(), time.monotonic()
        self.unmeasured.clear()
        actions = Actions()
        for task_id, (rss, cpu) in running.items():
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
