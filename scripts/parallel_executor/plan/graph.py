"""Pure checks of the dependency graph: unknown ids, self-dependencies, every cycle, phases and epics."""

from __future__ import annotations

import itertools
from collections.abc import Collection, Hashable, Mapping, Sequence
from graphlib import TopologicalSorter
from typing import TypeVar

Node = TypeVar("Node", bound=Hashable)
SHOWN_STEPS = 8


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


def epic_problems(deps: Mapping[str, Sequence[str]], epic_of: Mapping[str, str]) -> list[str]:
    """Paths that leave an epic and come back into it (§11), one per knot of epics.

    `epic_of` maps each worktree task of an epic to its epic. A task outside an epic that waits for
    one of its tasks waits for the epic's merge, and the merge for every task of the epic: so a path
    out and back in (directly, or through another epic's merge) could never finish. Those are the
    cycles of the graph with each epic drawn as one node: found in time linear in the edges.
    `deps` must be free of cycles; an unknown id (a task left out for its own errors) is passed over.
    """
    def unit(task: str) -> tuple[str, str]:
        return ("epic", epic_of[task]) if task in epic_of else ("task", task)

    successors: dict[tuple[str, str], list[tuple[str, str]]] = {}
    children: dict[str, list[str]] = {t: [] for t in deps}
    members: dict[str, list[str]] = {}  # each epic's tasks, in file order
    for task, blockers in deps.items():
        successors.setdefault(unit(task), [])
        if task in epic_of:
            members.setdefault(epic_of[task], []).append(task)
        for dep in blockers:
            if dep not in children:
                continue
            children[dep].append(task)
            if unit(dep) != unit(task):
                successors.setdefault(unit(dep), []).append(unit(task))
    first = {task: i for i, task in enumerate(deps)}
    found = []
    for component in _strongly_connected(successors):
        if len(component) > 1:
            epic = min((name for kind, name in component if kind == "epic"), key=lambda e: first[members[e][0]])
            knot = {name for kind, name in component if kind == "task"} | \
                {t for kind, name in component if kind == "epic" for t in members[name]}
            found.append((first[members[epic][0]], _out_and_back(epic, knot, children, epic_of, members)))
    return [line for _, line in sorted(found)]


def _out_and_back(epic: str, knot: set[str], children: Mapping[str, Sequence[str]], epic_of: Mapping[str, str],
                  members: Mapping[str, Sequence[str]]) -> str:
    """A shortest path from a task of the epic, through tasks of the knot outside it, back into it."""
    came_from: dict[str, str] = {}
    jumped: set[str] = set()  # reached through another epic's merge, from the task it came from
    opened: set[str] = set()

    def reach(task: str, source: str) -> list[str]:
        came_from[task] = source
        reached = [task]
        other = epic_of.get(task)
        if other is not None and other not in opened:
            opened.add(other)
            for mate in members[other]:
                if mate not in came_from:
                    came_from[mate] = task
                    jumped.add(mate)
                    reached.append(mate)
        return reached

    frontier = [x for a in members[epic] for child in children[a]
                if child in knot and epic_of.get(child) != epic and child not in came_from for x in reach(child, a)]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for child in children[node]:
                if epic_of.get(child) == epic:
                    return _show_path(epic, [child, *_back_to(epic, node, came_from, epic_of)], jumped, epic_of)
                if child in knot and child not in came_from:
                    following += reach(child, node)
        frontier = following
    raise AssertionError("a knot of epics always holds a path out of one and back")


def _back_to(epic: str, node: str, came_from: Mapping[str, str], epic_of: Mapping[str, str]) -> list[str]:
    path = [node]
    while epic_of.get(path[-1]) != epic:
        path.append(came_from[path[-1]])
    return path


def _show_path(epic: str, backwards: list[str], jumped: set[str], epic_of: Mapping[str, str]) -> str:
    """a -> x -> b; `c .. d` where the path goes through the merge of c's and d's epic."""
    path = backwards[::-1]
    steps = [(" .. " if task in jumped else " -> ") + task for task in path[1:]]
    if len(steps) > SHOWN_STEPS:  # one readable line, whatever the length of the path
        steps[SHOWN_STEPS // 2:-SHOWN_STEPS // 2] = [f" -> ... ({len(steps) - SHOWN_STEPS:,} more)"]
    shown = path[0] + "".join(steps)
    line = f"epic '{epic}': {shown} leaves the epic and comes back; it cannot merge in order"
    through = [f"{a} .. {b} in epic '{epic_of[b]}'" for a, b in itertools.pairwise(path) if b in jumped]
    if through:
        line += f" ({', '.join(through)}: an epic merges only once all its tasks are done)"
    return line


def _strongly_connected(edges: Mapping[Node, Sequence[Node]]) -> list[list[Node]]:
    """Tarjan's algorithm, iterative so that a 10,000-task chain cannot hit the recursion limit."""
    order: dict[Node, int] = {}
    low: dict[Node, int] = {}
    stack: list[Node] = []
    on_stack: set[Node] = set()
    components: list[list[Node]] = []
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
