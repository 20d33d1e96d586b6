"""An honest speedup figure (§8): what running the tasks one by one would have taken.

The sum of task times over the wall time (the run's *parallelism*) rewards oversubscription: at
-j 4 on 2 cores every task takes longer, the sum grows, and the figure rises while the user waits
longer. So each successful task's time is kept with the *contention* it ran under (how many tasks
ran at once, on average, during it), and a task's serial time is its time in its least contended
run. The estimate is the sum of those over the wall time; it needs history (a past run of at least
one task), and is None without it.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence


def contention(spans: Mapping[str, tuple[float, float]]) -> dict[str, float]:
    """Mean number of tasks running during each task's span (itself included), by one sweep."""
    edges = sorted({t for span in spans.values() for t in span})
    if not edges:
        return {}
    level = [0] * len(edges)  # tasks running from edges[i] to edges[i + 1]
    for start, end in spans.values():
        level[bisect.bisect_left(edges, start)] += 1
        level[bisect.bisect_left(edges, end)] -= 1
    area = [0.0]  # integral of the running count from edges[0] to edges[i]
    running = 0
    for i in range(len(edges) - 1):
        running += level[i]
        area.append(area[-1] + running * (edges[i + 1] - edges[i]))
    result = {}
    for tid, (start, end) in spans.items():
        width = end - start
        inside = area[bisect.bisect_left(edges, end)] - area[bisect.bisect_left(edges, start)]
        result[tid] = round(inside / width, 3) if width > 0 else 1.0
    return result


def estimate(now: Sequence[tuple[str, float, float]], past: Mapping[str, Sequence[Sequence[float]]]
             ) -> tuple[float | None, int]:
    """(serial seconds, tasks without history) for this run's successful tasks (id, seconds,
    contention), each at its least contended time among its past runs and this one."""
    total, without = 0.0, 0
    for tid, seconds, load in now:
        runs = [(c, s) for s, c in past.get(tid, ())]
        without += not runs
        total += min([*runs, (load, seconds)])[1]
    return (None if without == len(now) else round(total, 3)), without
