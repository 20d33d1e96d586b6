"""Analyze a random 10,000-task DAG (<= 3 dependencies each): bar < 1 s wall. Also times `--help`
(bar < 0.3 s). Run: python benchmarks/analyze.py"""

from __future__ import annotations

import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ENGINE, private_home, timed, write_tasks


def random_dag(n: int, seed: int = 1) -> list[dict[str, object]]:
    rng = random.Random(seed)
    return [{"id": f"t{i}", "command": ["true"], "estimate": round(rng.uniform(0.1, 5), 2),
             "blockedBy": sorted({f"t{rng.randrange(i)}" for _ in range(rng.randint(0, 3))}) if i else []}
            for i in range(n)]


def main() -> int:
    private_home()
    path = write_tasks(random_dag(10_000))
    analyze = statistics.median(timed([*ENGINE, "analyze", str(path), "-j", "8", "--format", "json"])
                                for _ in range(3))
    helps = statistics.median(timed([*ENGINE, "--help"]) for _ in range(5))
    from parallel_executor.plan.analyzer import analyze as pure_analyze
    from parallel_executor.plan.config import load_config
    from parallel_executor.plan.taskfile import load_task_file
    tasks = load_task_file(path, load_config(), path.parent).tasks
    start = time.perf_counter()
    pure_analyze(tasks, 8)
    pure = time.perf_counter() - start
    print(f"analyze 10,000-task DAG, whole command: {analyze:.3f} s (bar < 1 s) {'OK' if analyze < 1 else 'FAIL'}")
    print(f"  of which the pure analyzer: {pure:.3f} s")
    print(f"parallel-executor --help: {helps:.3f} s (bar < 0.3 s) {'OK' if helps < 0.3 else 'FAIL'}")
    return 0 if analyze < 1 and helps < 0.3 else 1


if __name__ == "__main__":
    sys.exit(main())
