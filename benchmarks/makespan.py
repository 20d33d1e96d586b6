"""Makespan near the limit of the task graph: a random 200-task DAG (each task `sleep` 0.01-0.2 s,
0-3 dependencies, fixed seed) at -j 4. Bar: makespan <= 1.08 x max(critical path, total work / 4),
and below the `--schedule waves` makespan measured in the same run.
Makespan = first task start to last task end, from the run's JSON summary.
Run: python benchmarks/makespan.py [--rounds N]"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ENGINE, private_home, write_tasks


def random_dag(n: int = 200, seed: int = 7) -> list[dict[str, object]]:
    rng = random.Random(seed)
    tasks = []
    for i in range(n):
        seconds = round(rng.uniform(0.01, 0.2), 3)
        deps = sorted({f"t{rng.randrange(i)}" for _ in range(rng.randint(0, 3))}) if i else []
        tasks.append({"id": f"t{i}", "command": ["sleep", str(seconds)], "estimate": seconds, "blockedBy": deps})
    return tasks


def lower_bound(tasks: list[dict[str, object]], slots: int) -> float:
    finish: dict[str, float] = {}
    for t in tasks:  # file order is a topological order here
        finish[str(t["id"])] = float(t["estimate"]) + max((finish[d] for d in t["blockedBy"]), default=0.0)  # type: ignore
    return max(max(finish.values()), sum(float(t["estimate"]) for t in tasks) / slots)  # type: ignore


def makespan(path: Path, schedule: str, slots: int, *options: str) -> float:
    """From the first task's start to the last task's end, by the tasks' own times (what starts the
    engine, or a cluster, is not counted); `options` go to `run` as well."""
    done = subprocess.run([*ENGINE, "run", str(path), "-j", str(slots), "--json", "--schedule", schedule, *options],
                          capture_output=True, text=True, check=True)
    tasks = json.loads(done.stdout)["tasks"].values()
    start = min(datetime.fromisoformat(t["start_time"]) for t in tasks)
    end = max(datetime.fromisoformat(t["end_time"]) for t in tasks)
    return (end - start).total_seconds()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    private_home()
    tasks = random_dag()
    path = write_tasks(tasks)
    bound = lower_bound(tasks, 4)
    dynamic, waves = [], []
    for _ in range(args.rounds):
        dynamic.append(makespan(path, "dynamic", 4))
        waves.append(makespan(path, "waves", 4))
    d, w = statistics.median(dynamic), statistics.median(waves)
    ok_bound, ok_waves = d <= 1.08 * bound, d < w
    print(f"lower bound max(critical path, work/4): {bound:.3f} s")
    print(f"dynamic makespan: {d:.3f} s = {d / bound:.3f}x the bound (bar <= 1.08x) {'OK' if ok_bound else 'FAIL'}")
    print(f"waves makespan:   {w:.3f} s; dynamic is {'below' if ok_waves else 'NOT below'} it "
          f"({d / w:.2f}x) {'OK' if ok_waves else 'FAIL'}")
    return 0 if ok_bound and ok_waves else 1


if __name__ == "__main__":
    sys.exit(main())
