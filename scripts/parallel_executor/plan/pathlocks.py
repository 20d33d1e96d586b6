"""The path-lock rule (§7), shared by the engine's locks and the analyzer's simulation: two tasks
conflict when a `paths` entry of one equals, contains or lies inside a `paths` or `reads` entry of
the other (paths resolved against the task's cwd, and cut at their first glob)."""

from __future__ import annotations

import os
from dataclasses import dataclass

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
