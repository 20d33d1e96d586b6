"""Pure planning: waves, critical path, simulated makespan and the recommendation (§5, §6)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from graphlib import TopologicalSorter

from parallel_executor.plan.config import Config
from parallel_executor.plan.model import TaskSpec
from parallel_executor.plan.simulate import Rules, makespan

DEFAULT_ESTIMATE = 1.0
ReadyKey = tuple[int, float, int]


@dataclass(frozen=True)
class Analysis:
    waves: list[list[str]]
    critical_path: list[str]
    critical_length: float
    total_work: float
    slots: int
    makespan: float
    speedup: float
    recommendation: str
    reason: str
    without_estimate: list[str] = field(default_factory=list)  # assumed DEFAULT_ESTIMATE seconds each


class Graph:
    """A validated task list (no cycles, no unknown ids) with its order, built once."""

    def __init__(self, tasks: Sequence[TaskSpec]) -> None:
        self.tasks = {t.id: t for t in tasks}
        self.dependents: dict[str, list[str]] = {t.id: [] for t in tasks}
        for t in tasks:
            for dep in t.blocked_by:
                self.dependents[dep].append(t.id)
        self.order = list(TopologicalSorter({t.id: t.blocked_by for t in tasks}).static_order())


def estimates(tasks: Sequence[TaskSpec], history: Mapping[str, float] | None = None) -> dict[str, float]:
    """`estimate`, else the median of past durations by task id then by type, else 1."""
    past = history or {}
    return {
        t.id: t.estimate if t.estimate is not None
        else past.get(f"id:{t.id}", past.get(f"type:{t.type}", DEFAULT_ESTIMATE))
        for t in tasks
    }


def without_estimate(tasks: Sequence[TaskSpec], history: Mapping[str, float] | None = None) -> list[str]:
    """Tasks with no `estimate` and no past duration by id or type: `estimates` assumed 1 s for them."""
    past = history or {}
    return [t.id for t in tasks
            if t.estimate is None and f"id:{t.id}" not in past and f"type:{t.type}" not in past]


def levels(graph: Graph) -> dict[str, int]:
    """Length of each task's longest chain of dependencies: wave k holds the tasks of level k."""
    level: dict[str, int] = {}
    for tid in graph.order:
        level[tid] = 1 + max((level[d] for d in graph.tasks[tid].blocked_by), default=-1)
    return level


def waves(graph: Graph) -> list[list[str]]:
    level = levels(graph)
    grouped: list[list[str]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for tid in graph.tasks:
        grouped[level[tid]].append(tid)
    return grouped


def remaining_paths(graph: Graph, estimate: Mapping[str, float]) -> dict[str, float]:
    """Longest path from each task to the end, the task included (its "bottom level")."""
    rest: dict[str, float] = {}
    for tid in reversed(graph.order):
        rest[tid] = estimate[tid] + max((rest[c] for c in graph.dependents[tid]), default=0.0)
    return rest


def critical_path(graph: Graph, estimate: Mapping[str, float]) -> tuple[list[str], float]:
    finish: dict[str, float] = {}
    via: dict[str, str | None] = {}
    for tid in graph.order:
        before = max(graph.tasks[tid].blocked_by, key=lambda d: finish[d], default=None)
        via[tid] = before
        finish[tid] = estimate[tid] + (finish[before] if before else 0.0)
    if not finish:
        return [], 0.0
    end: str | None = max(finish, key=lambda tid: (finish[tid], -graph.tasks[tid].index))
    length = finish[end] if end else 0.0
    path: list[str] = []
    while end is not None:
        path.append(end)
        end = via[end]
    return path[::-1], length


def ready_key(task: TaskSpec, remaining: float) -> ReadyKey:
    """Order of ready tasks (§6): higher priority, then longer remaining path, then file order."""
    return (-int(task.priority), -remaining, task.index)


def simulate(graph: Graph, slots: int, estimate: Mapping[str, float], rules: Rules | None = None) -> float:
    """Makespan of the engine's dynamic list scheduler on `slots` slots, under the path locks,
    phases and compatibility rules of `rules` (none by default)."""
    remaining = remaining_paths(graph, estimate)
    keys = {tid: ready_key(t, remaining[tid]) for tid, t in graph.tasks.items()}
    return makespan(graph.tasks, graph.dependents, keys, slots, estimate, rules or Rules(list(graph.tasks.values())))


def recommend(count: int, speedup: float, types: set[str | None]) -> tuple[str, str]:
    """The seed's rule: parallel only with 3+ tasks, speedup >= 1.5, and >= 2 for mixed types
    (two or more distinct types: tasks without a type do not count as one)."""
    types = {t for t in types if t is not None}
    if count < 3:
        return "sequential", f"fewer than 3 tasks ({count})"
    if speedup < 1.5:
        return "sequential", f"estimated speedup {speedup:.2f}x is below 1.5x"
    if len(types) > 1 and speedup < 2:
        return "sequential", f"mixed task types and estimated speedup {speedup:.2f}x is below 2x"
    return "parallel", f"estimated speedup {speedup:.2f}x with {count} tasks"


def analyze(tasks: Sequence[TaskSpec], slots: int, history: Mapping[str, float] | None = None,
            config: Config | None = None) -> Analysis:
    """The plan of `tasks` on `slots` slots; `config` brings its phases and compatibility rules
    (path locks come from the tasks themselves)."""
    graph = Graph(tasks)
    estimate = estimates(tasks, history)
    path, length = critical_path(graph, estimate)
    total = sum(estimate.values())
    span = simulate(graph, slots, estimate, Rules(tasks, config))
    speedup = total / span if span > 0 else 1.0
    recommendation, reason = recommend(len(tasks), speedup, {t.type for t in tasks})
    return Analysis(waves(graph), path, length, total, slots, span, speedup, recommendation, reason,
                    without_estimate(tasks, history))
