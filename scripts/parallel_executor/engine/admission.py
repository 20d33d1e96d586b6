"""Admission checks (§6): what the scheduler asks before a ready task starts.

Each answers `blocked(task)` with a reason or None, and follows `started`/`settled`. Here: wave
barriers (`--schedule waves`) and the seed policy's phases and subagent compatibility rules;
memory (memory.py) and path locks (locks.py) plug in the same way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Protocol

from parallel_executor.plan.analyzer import Graph, levels
from parallel_executor.plan.config import Config, Phase
from parallel_executor.plan.model import Status, TaskSpec


class NeverAdmitted(Exception):
    """The task can never start: it fails (it waited for a path lock past lock_timeout_seconds), or
    is skipped (the budget is spent, its runner failed to authenticate)."""

    def __init__(self, reason: str, status: Status = Status.FAILED) -> None:
        super().__init__(reason)
        self.status = status


class Admission(Protocol):
    def blocked(self, task: TaskSpec) -> str | None:
        """Why `task` cannot start now, or None. Raises NeverAdmitted when it never will."""

    def started(self, task: TaskSpec) -> None: ...

    def settled(self, task: TaskSpec) -> None:
        """`task` reached a final state (whether or not it ever started)."""


class WaveBarrier:
    """`--schedule waves`: a task waits until every task of the earlier waves has settled."""

    def __init__(self, graph: Graph) -> None:
        self.level = levels(graph)
        self.left = [0] * (max(self.level.values(), default=0) + 1)
        for wave in self.level.values():
            self.left[wave] += 1
        self.current = 0
        self._advance()

    def blocked(self, task: TaskSpec) -> str | None:
        return f"waiting for wave {self.current} to finish" if self.level[task.id] > self.current else None

    def started(self, task: TaskSpec) -> None:
        pass

    def settled(self, task: TaskSpec) -> None:
        self.left[self.level[task.id]] -= 1
        self._advance()

    def _advance(self) -> None:
        while self.current < len(self.left) - 1 and self.left[self.current] == 0:
            self.current += 1


class PhaseGate:
    """Every task of a phase settles before a task of a later phase starts; a serial phase runs
    one task at a time. Tasks with no phase are bound only by blockedBy."""

    def __init__(self, tasks: Sequence[TaskSpec], phases: Sequence[Phase]) -> None:
        self.order = {p.name: i for i, p in enumerate(phases)}
        self.serial = {p.name for p in phases if not p.parallel}
        self.left = Counter(t.phase for t in tasks if t.phase)
        self.running: Counter[str] = Counter()

    def blocked(self, task: TaskSpec) -> str | None:
        if not task.phase:
            return None
        earlier = [p for p, n in self.left.items() if n and self.order[p] < self.order[task.phase]]
        if earlier:
            return f"waiting for phase '{min(earlier, key=self.order.__getitem__)}' to finish"
        if task.phase in self.serial and self.running[task.phase]:
            return f"phase '{task.phase}' runs one task at a time"
        return None

    def started(self, task: TaskSpec) -> None:
        if task.phase:
            self.running[task.phase] += 1

    def settled(self, task: TaskSpec) -> None:
        if task.phase:
            self.left[task.phase] -= 1
            if self.running[task.phase]:
                self.running[task.phase] -= 1


class Compatibility:
    """`exclusive_subagents`: one running instance at most; `never_together`: pairs of subagent
    types that never run at the same time ("*" stands for any other task)."""

    def __init__(self, config: Config) -> None:
        self.exclusive = set(config.exclusive_subagents)
        self.pairs = list(config.never_together)
        self.running: Counter[str | None] = Counter()

    def blocked(self, task: TaskSpec) -> str | None:
        kind = task.subagent
        if kind in self.exclusive and self.running[kind]:
            return f"subagent '{kind}' is exclusive and already running"
        anything_running = sum(self.running.values()) > 0
        for a, b in self.pairs:
            if "*" in (a, b):
                loner = b if a == "*" else a
                if (kind == loner and anything_running) or self.running[loner]:
                    return f"subagent '{loner}' never runs together with another task"
            elif (kind == a and self.running[b]) or (kind == b and self.running[a]):
                return f"subagents '{a}' and '{b}' never run together"
        return None

    def started(self, task: TaskSpec) -> None:
        self.running[task.subagent] += 1

    def settled(self, task: TaskSpec) -> None:
        if self.running[task.subagent]:
            self.running[task.subagent] -= 1


def policy_checks(tasks: Sequence[TaskSpec], config: Config) -> list[PhaseGate | Compatibility]:
    """The checks a task file needs (none costs anything when unused)."""
    checks: list[PhaseGate | Compatibility] = []
    if any(t.phase for t in tasks):
        checks.append(PhaseGate(tasks, config.phases))
    if config.exclusive_subagents or config.never_together:
        checks.append(Compatibility(config))
    return checks
