"""Pure checks of the dependency graph: unknown ids, self-dependencies and every cycle."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from graphlib import TopologicalSorter


def graph_problems(deps: Mapping[str, Sequence[str]], also_known: Collection[str] = ()) -> list[str]:
    """One line per problem; `deps` maps each id (in file order) to the ids it waits for.

    `also_known` are ids of tasks left out of `deps` (reported elsewhere): no error for them.
    """
    problems: list[str] = []
    for task, blockers in deps.items():
        for dep in blockers:
            if dep == task:
                problems.append(f"task '{task}': depends on itself")
            elif dep not in deps and dep not in also_known:
                problems.append(f"task '{task}': blockedBy names unknown task '{dep}'")
    known = {t: [d for d in ds if d in deps and d != t] for t, ds in deps.items()}
    for component in _strongly_connected(known):
        if len(component) > 1:
            problems.append("dependency cycle: " + " -> ".join(_cycle_in(component, known)))
    return problems


def phase_problems(deps: Mapping[str, Sequence[str]], phase: Mapping[str, str | None],
                   order: Mapping[str, int]) -> list[str]:
    """Tasks that wait (directly, or through tasks without a phase) for a task of a later phase:
    every task of an earlier phase must end before a later phase starts, so they never could.
    `deps` must be free of cycles and unknown ids."""
    problems = []
    latest: dict[str, tuple[int, str] | None] = {}  # the latest-phase task each one waits for
    for task in TopologicalSorter(deps).static_order():
        candidates = [c for d in deps[task] if (c := latest[d]) is not None]
        candidates += [(order[p], d) for d in deps[task] if (p := phase[d])]
        latest[task] = max(candidates, default=None)
        mine, later = phase[task], latest[task]
        if mine and later and later[0] > order[mine]:
            problems.append(f"task '{task}' (phase '{mine}') waits for '{later[1]}' of the later phase "
                            f"'{phase[later[1]]}': phases run in order, so it could never start")
    return problems


def _strongly_connected(edges: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative so that a 10,000-task chain cannot hit the recursion limit."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for root in edges:
        if root in order:
            continue
        work = [(root, iter(edges[root]))]
        order[root] = low[root] = len(order)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == order[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(component)
            elif child not in order:
                order[child] = low[child] = len(order)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(edges[child])))
            elif child in on_stack:
                low[node] = min(low[node], order[child])
    return components


def _cycle_in(component: list[str], edges: Mapping[str, Sequence[str]]) -> list[str]:
    """A shortest cycle through the component's first task in file order: a -> b -> a."""
    members = set(component)
    start = next(t for t in edges if t in members)
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for child in edges[node]:
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if child in members and child not in came_from:
                    came_from[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError("a strongly connected component always holds a cycle")
