"""Admission checks of the seed policy (§6): phases and subagent compatibility rules.

Each answers `blocked(task)` with a reason or None, and follows `started`/`settled`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from parallel_executor.config import Config, Phase
from parallel_executor.model import TaskSpec


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
