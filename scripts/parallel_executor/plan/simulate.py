"""What may run together (§6), for the analyzer's simulation: path locks, phases, compatibility.

The engine's admission checks (engine/locks.py PathLocks, engine/admission.py PhaseGate and
Compatibility) decide this at run time; plan/ may not import the engine, so the pure part of each
rule is restated here. Keep the two in step.
"""

from __future__ import annotations

import heapq
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from parallel_executor.plan.config import Config
from parallel_executor.plan.model import TaskSpec

_GLOB = set("*?[")


@dataclass(frozen=True)
class LockSet:
    """A task's `paths` (exclusive) and `reads` (shared), absolute and cut at the first glob."""

    writes: tuple[str, ...]
    reads: tuple[str, ...]

    def conflicts(self, other: LockSet) -> bool:
        """A written path of one equals, contains or lies inside a written or read path of the other."""
        return any(overlap(w, p) for w in self.writes for p in (*other.writes, *other.reads)) or any(
            overlap(w, r) for w in other.writes for r in self.reads)


def overlap(a: str, b: str) -> bool:
    if a == b or a == "/" or b == "/":
        return True
    return b.startswith(a + "/") or a.startswith(b + "/")


def normalize(path: str, cwd: str) -> str:
    parts = []
    for part in os.path.normpath(os.path.join(cwd, path)).split("/"):
        if _GLOB & set(part):
            break
        parts.append(part)
    return "/".join(parts) or "/"


def lock_set(task: TaskSpec) -> LockSet:
    cwd = str(task.cwd)
    return LockSet(tuple(normalize(p, cwd) for p in task.paths), tuple(normalize(p, cwd) for p in task.reads))


def conflicts(a: TaskSpec, b: TaskSpec) -> bool:
    """Whether path locks keep `a` and `b` from running at the same time."""
    return lock_set(a).conflicts(lock_set(b))


class Rules:
    """The admission rules of a run, followed through a simulated schedule: `waits(task)` says
    whether `task` may start now, `started`/`finished` keep the state. Critical tasks' boost slots
    are not modelled (the plan is for N slots)."""

    def __init__(self, tasks: Sequence[TaskSpec], config: Config | None = None) -> None:
        self.locks = {t.id: lock_set(t) for t in tasks if t.paths or t.reads}
        self.held: dict[str, LockSet] = {}
        phases = config.phases if config is not None and any(t.phase for t in tasks) else ()
        self.order = {p.name: i for i, p in enumerate(phases)}
        self.serial = {p.name for p in phases if not p.parallel}
        self.left = Counter(t.phase for t in tasks if t.phase in self.order)
        self.in_phase: Counter[str] = Counter()
        self.exclusive = set(config.exclusive_subagents) if config is not None else set()
        self.pairs = list(config.never_together) if config is not None else []
        self.kinds: Counter[str | None] = Counter()
        self.active = bool(self.locks or self.left or self.exclusive or self.pairs)

    def phase_waits(self, task: TaskSpec) -> bool:
        """An earlier phase still has unfinished tasks (true until it finishes, whatever else ends)."""
        mine = self.order.get(task.phase or "")
        return mine is not None and any(n and self.order[p] < mine for p, n in self.left.items())

    def waits(self, task: TaskSpec) -> bool:
        if not self.active:
            return False
        if self.phase_waits(task) or (task.phase in self.serial and self.in_phase[task.phase or ""]):
            return True
        if self._incompatible(task.subagent):
            return True
        mine = self.locks.get(task.id)
        return mine is not None and any(held.conflicts(mine) for held in self.held.values())

    def _incompatible(self, kind: str | None) -> bool:
        if kind in self.exclusive and self.kinds[kind]:
            return True
        anything_running = sum(self.kinds.values()) > 0
        for a, b in self.pairs:
            if "*" in (a, b):
                loner = b if a == "*" else a
                if (kind == loner and anything_running) or self.kinds[loner]:
                    return True
            elif (kind == a and self.kinds[b]) or (kind == b and self.kinds[a]):
                return True
        return False

    def started(self, task: TaskSpec) -> None:
        if not self.active:
            return
        if task.id in self.locks:
            self.held[task.id] = self.locks[task.id]
        if task.phase in self.order:
            self.in_phase[task.phase or ""] += 1
        self.kinds[task.subagent] += 1

    def finished(self, task: TaskSpec) -> bool:
        """Follow the end of `task`; True when it was the last of its phase (later phases may start)."""
        if not self.active:
            return False
        self.held.pop(task.id, None)
        self.kinds[task.subagent] -= 1
        if task.phase not in self.order:
            return False
        phase = task.phase or ""
        self.in_phase[phase] -= 1
        self.left[phase] -= 1
        return not self.left[phase]


def makespan(tasks: Mapping[str, TaskSpec], dependents: Mapping[str, Sequence[str]],
             keys: Mapping[str, tuple[int, float, int]], slots: int, estimate: Mapping[str, float],
             rules: Rules) -> float:
    """The engine's list scheduler, by event simulation: at each instant the ready tasks are
    taken in `keys` order and each starts if a slot is free and the rules let it; one the rules
    hold back does not stop the tasks after it. Tasks ending at the same instant end together."""
    unmet = {tid: len(t.blocked_by) for tid, t in tasks.items()}
    ready = [(keys[tid], tid) for tid, t in tasks.items() if not t.blocked_by]
    heapq.heapify(ready)
    parked: list[tuple[tuple[int, float, int], str]] = []  # until an earlier phase finishes
    running: list[tuple[float, int, str]] = []
    now = 0.0
    while ready or running or parked:
        held = []
        while ready and len(running) < slots:
            item = heapq.heappop(ready)
            task = tasks[item[1]]
            if rules.phase_waits(task):
                parked.append(item)
            elif rules.waits(task):
                held.append(item)
            else:
                rules.started(task)
                heapq.heappush(running, (now + estimate[task.id], task.index, task.id))
        if not running:  # nothing may start, ever: a phase order the task file checks reject
            held += parked
            parked.clear()
            first = min(held)
            held.remove(first)
            rules.started(tasks[first[1]])
            heapq.heappush(running, (now + estimate[first[1]], tasks[first[1]].index, first[1]))
        for item in held:
            heapq.heappush(ready, item)
        now = running[0][0]
        while running and running[0][0] == now:
            done = tasks[heapq.heappop(running)[2]]
            if rules.finished(done):
                for item in parked:
                    heapq.heappush(ready, item)
                parked.clear()
            for child in dependents[done.id]:
                unmet[child] -= 1
                if not unmet[child]:
                    heapq.heappush(ready, (keys[child], child))
    return now
