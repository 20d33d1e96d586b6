"""The measuring tick of the running attempts (§7), every `memory.interval` seconds while tasks run:
each tree's memory and CPU are measured; on memory pressure the newest task is suspended (and
resumed when memory recovers) and a tree past memory_limit_per_agent is stopped; an agent over its
cpu_per_agent share on a saturated machine is held to it; and each agent's latest message is read
from its output, which also tells when an attempt will never end by itself (Codex waiting for a
network that is not there): it is stopped as a transient failure.

Like the scheduler that calls it, it decides and acts through the backend and the observer only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from parallel_executor.engine.backends import Backend
from parallel_executor.engine.ports import Attempts, Observer, Watch
from parallel_executor.engine.records import TaskRun
from parallel_executor.plan.model import Status

if TYPE_CHECKING:
    from parallel_executor.engine.cpushare import CpuShare


class Supervision:
    def __init__(self, memory: Watch, backend: Backend, attempts: Attempts, observer: Observer,
                 cpu: CpuShare | None = None, paused: Callable[[], bool] = lambda: False) -> None:
        self.memory, self.backend, self.attempts, self.observer, self.cpu = memory, backend, attempts, observer, cpu
        self.paused = paused  # whether the run is paused: a task's status says both
        self.interval = memory.interval

    def tick(self, running: Mapping[str, TaskRun]) -> None:
        measured = self.backend.measure()
        actions = self.memory.tick(measured)
        for tid in measured:
            usage, task = self.memory.usage[tid], running[tid]
            task.peak_rss, task.cpu_seconds = usage.peak_rss, usage.cpu_seconds
            if task.spec.runner is not None:
                self._watch_agent(task)
        for tid, why in actions.kill.items():
            self.backend.stop(tid, Status.FAILED, why)
        for tid, suspend in [*((t, True) for t in actions.suspend), *((t, False) for t in actions.resume)]:
            if tid in running:
                task = running[tid]
                (self.backend.suspend if suspend else self.backend.resume)(tid, "memory")
                free = f"low memory ({self.memory.free >> 20} MB available)"
                task.memory_hold = f"suspended: {free}" if suspend else ""
                task.show_hold(self.paused())
                self.observer.changed("suspended" if suspend else "resumed", task,
                                      **({} if suspend else {"why": free.replace("low", "enough")}))
        if self.cpu is not None:
            self._share_cpu(running, measured)

    def _share_cpu(self, running: Mapping[str, TaskRun], measured: Mapping[str, tuple[int, float]]) -> None:
        assert self.cpu is not None
        suspended = {tid for tid, t in running.items() if t.status is Status.PAUSED}
        agents = {tid: cpu for tid, (_, cpu) in measured.items() if running[tid].spec.runner is not None}
        self.cpu.tick(agents, self.interval, exempt=suspended)
        held = self.cpu.held
        for tid, task in running.items():
            if task.throttled != (tid in held):
                task.throttled = tid in held
                self.observer.changed("throttled" if task.throttled else "unthrottled", task)

    def _watch_agent(self, task: TaskRun) -> None:
        text, fatal = self.attempts.live(task)
        if text and text != task.live:
            task.live = text
            self.observer.touched(task)
        if fatal and task.error_class is None:
            task.error_class = "transient"
            self.backend.stop(task.spec.id, Status.FAILED, fatal)

    def ended(self, task_id: str) -> None:
        if self.cpu is not None:
            self.cpu.forget(task_id)

    def close(self) -> None:
        if self.cpu is not None:
            self.cpu.release_all()
