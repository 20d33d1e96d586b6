"""What may run together (§6), for the analyzer's simulation: path locks, phases, compatibility.

The engine's admission checks (engine/locks.py PathLocks, engine/admission.py PhaseGate and
Compatibility) decide this at run time; plan/ may not import the engine, so the pure part of each
rule is restated here. Keep the two in step.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Mapping, Sequence

from parallel_executor.plan.config import Config
from parallel_executor.plan.model import TaskSpec
from parallel_executor.plan.pathlocks import LockSet, lock_set

Key = tuple[int, float, int]  # analyzer.ReadyKey
Signature = tuple[str | None, str | None, LockSet | None] | None


class Rules:
    """The admission rules of a run, followed through a simulated schedule. Each is a relation
    between the task that would start and one running task, so `blocker(task)` names a running task
    that keeps it out (it may start only once that one ends), and tasks of one `signature` are kept
    out alike. Critical tasks' boost slots are not modelled: the plan is for N slots."""

    def __init__(self, tasks: Sequence[TaskSpec], config: Config | None = None) -> None:
        self.locks = {t.id: lock_set(t) for t in tasks if t.paths or t.reads}
        phases = config.phases if config is not None and any(t.phase for t in tasks) else ()
        self.order = {p.name: i for i, p in enumerate(phases)}
        self.serial = {p.name for p in phases if not p.parallel}
        self.left = Counter(t.phase for t in tasks if t.phase in self.order)
        self.exclusive = set(config.exclusive_subagents) if config is not None else set()
        self.pairs = list(config.never_together) if config is not None else []
        self.running: dict[str, TaskSpec] = {}
        self.active = bool(self.locks or self.left or self.exclusive or self.pairs)

    def signature(self, task: TaskSpec) -> Signature:
        """What the rules look at: tasks with the same one are admitted or kept out together."""
        if not self.active:
            return None
        return task.phase if task.phase in self.order else None, task.subagent, self.locks.get(task.id)

    def phase_waits(self, task: TaskSpec) -> bool:
        """An earlier phase still has unfinished tasks (true until it finishes, whatever else ends)."""
        mine = self.order.get(task.phase or "")
        return mine is not None and any(n and self.order[p] < mine for p, n in self.left.items())

    def blocker(self, task: TaskSpec) -> str | None:
        if not self.active:
            return None
        return next((rid for rid, other in self.running.items() if self.apart(task, other)), None)

    def apart(self, task: TaskSpec, other: TaskSpec) -> bool:
        """Whether `task` may not start while `other` runs: a serial phase, an exclusive subagent,
        a never_together pair ("*": any other task), conflicting path locks."""
        if task.phase in self.serial and task.phase == other.phase:
            return True
        mine, theirs = task.subagent, other.subagent
        if mine in self.exclusive and mine == theirs:
            return True
        for a, b in self.pairs:
            if "*" in (a, b):
                if (b if a == "*" else a) in (mine, theirs):
                    return True
            elif (mine, theirs) in ((a, b), (b, a)):
                return True
        locks, other_locks = self.locks.get(task.id), self.locks.get(other.id)
        return locks is not None and other_locks is not None and locks.conflicts(other_locks)

    def started(self, task: TaskSpec) -> None:
        if self.active:
            self.running[task.id] = task

    def finished(self, task: TaskSpec) -> bool:
        """Follow the end of `task`; True when it was the last of its phase (later phases may start)."""
        if not self.active:
            return False
        del self.running[task.id]
        if task.phase not in self.order:
            return False
        self.left[task.phase or ""] -= 1
        return not self.left[task.phase or ""]


class _Classes:
    """The ready tasks, by signature: `ready` holds one entry per class, its best task's key, unless
    the class is parked (kept out until its blocker ends, or an earlier phase finishes)."""

    def __init__(self, rules: Rules, keys: Mapping[str, Key]) -> None:
        self.rules, self.keys = rules, keys
        self.ids: dict[Signature, int] = {}
        self.members: list[list[tuple[Key, str]]] = []  # each a heap
        self.entry: list[Key | None] = []  # the key of the class's live entry in `ready`
        self.parked: list[bool] = []
        self.ready: list[tuple[Key, int]] = []

    def add(self, task: TaskSpec) -> None:
        sid = self.ids.setdefault(self.rules.signature(task), len(self.ids))
        if sid == len(self.members):
            self.members.append([])
            self.entry.append(None)
            self.parked.append(False)
        key = self.keys[task.id]
        heapq.heappush(self.members[sid], (key, task.id))
        current = self.entry[sid]
        if not self.parked[sid] and (current is None or key < current):
            self.offer(sid)

    def offer(self, sid: int) -> None:
        self.parked[sid] = False
        self.entry[sid] = self.members[sid][0][0] if self.members[sid] else None
        if self.members[sid]:
            heapq.heappush(self.ready, (self.members[sid][0][0], sid))

    def next(self) -> int | None:
        """The class of the best ready task, its entry taken (stale entries are dropped)."""
        while self.ready:
            key, sid = heapq.heappop(self.ready)
            if self.entry[sid] == key:
                self.entry[sid] = None
                return sid
        return None


def makespan(tasks: Mapping[str, TaskSpec], dependents: Mapping[str, Sequence[str]], keys: Mapping[str, Key],
             slots: int, estimate: Mapping[str, float], rules: Rules) -> float:
    """The engine's list scheduler, by event simulation: at each instant the ready tasks are
    taken in `keys` order and each starts if a slot is free and the rules let it; one the rules
    keep out does not stop the tasks after it. Tasks ending at the same instant end together."""
    if not rules.active:
        return _plain(tasks, dependents, keys, slots, estimate)
    unmet = {tid: len(t.blocked_by) for tid, t in tasks.items()}
    classes = _Classes(rules, keys)
    for t in tasks.values():
        if not t.blocked_by:
            classes.add(t)
    by_blocker: dict[str, list[int]] = {}
    phase_parked: list[int] = []
    running: list[tuple[float, int, str]] = []
    now = 0.0

    def start(sid: int) -> None:
        task = tasks[heapq.heappop(classes.members[sid])[1]]
        rules.started(task)
        heapq.heappush(running, (now + estimate[task.id], task.index, task.id))
        classes.offer(sid)

    while classes.ready or running or phase_parked:
        while len(running) < slots and (sid := classes.next()) is not None:
            head = tasks[classes.members[sid][0][1]]
            if rules.phase_waits(head):
                classes.parked[sid] = True
                phase_parked.append(sid)
            elif blocker := rules.blocker(head):
                classes.parked[sid] = True
                by_blocker.setdefault(blocker, []).append(sid)
            else:
                start(sid)
        if not running and not phase_parked:
            break  # what was left in `ready` were stale entries
        if not running:  # nothing may start, ever: a phase order the task file checks reject
            sid = min(phase_parked, key=lambda s: classes.members[s][0])
            phase_parked.remove(sid)
            start(sid)
        now = running[0][0]
        while running and running[0][0] == now:
            done = tasks[heapq.heappop(running)[2]]
            released = by_blocker.pop(done.id, [])
            if rules.finished(done):
                released += phase_parked
                phase_parked.clear()
            for sid in released:
                classes.offer(sid)
            for child in dependents[done.id]:
                unmet[child] -= 1
                if not unmet[child]:
                    classes.add(tasks[child])
    return now


def _plain(tasks: Mapping[str, TaskSpec], dependents: Mapping[str, Sequence[str]], keys: Mapping[str, Key],
           slots: int, estimate: Mapping[str, float]) -> float:
    """`makespan` when no rule applies: slots and dependencies alone (the common case, kept fast)."""
    unmet = {tid: len(t.blocked_by) for tid, t in tasks.items()}
    return time_left(tasks, dependents, keys, slots, estimate, unmet, {})


def time_left(tasks: Mapping[str, TaskSpec], dependents: Mapping[str, Sequence[str]], keys: Mapping[str, Key],
              slots: int, estimate: Mapping[str, float], unmet: dict[str, int], running: Mapping[str, float]) -> float:
    """The list scheduler on slots and dependencies, from a point of a run: `tasks` are those left,
    `unmet` their unsettled dependencies (changed here), `running` the seconds left to those running."""
    ready = [(keys[tid], tid) for tid in tasks if not unmet[tid] and tid not in running]
    heapq.heapify(ready)
    ending = [(left, tasks[tid].index, tid) for tid, left in running.items()]
    heapq.heapify(ending)
    now = 0.0
    while ready or ending:
        while ready and len(ending) < slots:
            tid = heapq.heappop(ready)[1]
            heapq.heappush(ending, (now + estimate[tid], tasks[tid].index, tid))
        now = ending[0][0]
        while ending and ending[0][0] == now:
            done = heapq.heappop(ending)[2]
            for child in dependents[done]:
                if child in unmet:
                    unmet[child] -= 1
                    if not unmet[child]:
                        heapq.heappush(ready, (keys[child], child))
    return now
