"""The Dask backend's cost, on a LocalCluster of 2 worker processes x 2 threads (127.0.0.1, no dashboard)
that the engine reaches with --scheduler, so the cluster's start is never counted.

(a) Per-task overhead: 500 `true` tasks through the engine (`run --backend dask --scheduler ADDR -q -j 4`)
    against a bare loop of `client.submit(subprocess.run, ["true"], pure=False)` on the same cluster,
    alternating, several rounds. Per-task time = wall / 500 for each; from the engine's wall time its
    fixed start-up (a 1-task run: the interpreter, connecting to the scheduler, the run's files) is
    subtracted first. Bar: engine <= 1.2x the bare loop (median of the per-round ratios).
(b) Makespan: the 200-task DAG of benchmarks/makespan.py at -j 4 on the same cluster, against
    max(critical path, total work / 4). Bar: <= 1.10x (median over the rounds).
Run: python benchmarks/dask.py [--rounds N]"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# This file is named dask.py: its folder on sys.path would hide the dask package from this process
# and from the worker processes the cluster spawns (they start with this process's sys.path).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import logging  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from types import ModuleType  # noqa: E402
from typing import Any  # noqa: E402

from distributed import Client, LocalCluster, as_completed  # noqa: E402

TASKS = 500
SLOTS = 4


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def engine_wall(common: ModuleType, path: Path, address: str, slots: int) -> float:
    wall: float = common.timed([*common.ENGINE, "run", str(path), "--backend", "dask", "--scheduler", address,
                                "-q", "-j", str(slots)], stderr=subprocess.DEVNULL)
    return wall


def bare_wall(client: Any, window: int) -> float:
    """TASKS `true` tasks through a bare client.submit loop, at most `window` in flight."""
    start = time.perf_counter()
    pending = as_completed([client.submit(subprocess.run, ["true"], pure=False) for _ in range(min(window, TASKS))])
    submitted = min(window, TASKS)
    for _ in pending:
        if submitted < TASKS:
            pending.add(client.submit(subprocess.run, ["true"], pure=False))
            submitted += 1
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    common, dag = _load("common"), _load("makespan")
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]  # makespan.py put it back
    common.private_home()
    many = common.write_tasks([{"id": f"t{i}", "command": ["true"]} for i in range(TASKS)])
    one = common.write_tasks([{"id": "t0", "command": ["true"]}])
    graph = dag.random_dag()
    graph_path = common.write_tasks(graph)
    bound = dag.lower_bound(graph, SLOTS)

    with LocalCluster(n_workers=2, threads_per_worker=2, processes=True, host="127.0.0.1",
                      dashboard_address=None, silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        address = cluster.scheduler_address
        client.gather([client.submit(subprocess.run, ["true"], pure=False) for _ in range(8)])  # warm up
        engine_wall(common, one, address, SLOTS)
        walls: dict[str, list[float]] = {k: [] for k in ("startup", "engine", "bare", "engine4", "bare4", "ext")}
        for round_ in range(args.rounds):  # alternate who goes first: no fixed order bias
            runs = [lambda: walls["engine"].append(engine_wall(common, many, address, TASKS)),
                    lambda: walls["bare"].append(bare_wall(client, TASKS)),
                    lambda: walls["engine4"].append(engine_wall(common, many, address, SLOTS)),
                    lambda: walls["bare4"].append(bare_wall(client, SLOTS))]
            for run in runs if round_ % 2 == 0 else runs[::-1]:
                run()
            walls["startup"].append(engine_wall(common, one, address, SLOTS))
            walls["ext"].append(dag.makespan(graph_path, "dynamic", SLOTS, "--backend", "dask", "--scheduler", address))
    # The engine's embedded LocalCluster: -j 4 on 2 CPUs sizes it as 2 workers x 2 threads.
    spans = [dag.makespan(graph_path, "dynamic", SLOTS, "--backend", "dask") for _ in range(args.rounds)]

    def ratio(engine: str, bare: str) -> float:
        return statistics.median(max(e - s, 0.0) / b for e, s, b in
                                 zip(walls[engine], walls["startup"], walls[bare], strict=True))

    median = {k: statistics.median(v) for k, v in walls.items()}
    overhead, overhead4, span = ratio("engine", "bare"), ratio("engine4", "bare4"), statistics.median(spans)
    ok_overhead, ok_span = overhead <= 1.2, span <= 1.10 * bound
    print(f"cluster: LocalCluster, 2 worker processes x 2 threads on 127.0.0.1; {args.rounds} rounds, medians; "
          f"the engine's start-up (a 1-task run, {median['startup']:.3f} s) subtracted")
    for label, engine, bare, value in (("all in flight (-j 500)", "engine", "bare", overhead),
                                       (f"at most {SLOTS} in flight (-j {SLOTS})", "engine4", "bare4", overhead4)):
        per_task = (median[engine] - median["startup"]) / TASKS
        print(f"{TASKS} tasks, {label}: engine {median[engine]:.3f} s ({per_task * 1e3:.2f} ms a task), bare loop "
              f"{median[bare]:.3f} s ({median[bare] / TASKS * 1e3:.2f} ms a task): {value:.2f}x")
    verdict = "OK" if ok_overhead else "FAIL"
    print(f"engine / bare loop per task, all in flight: {overhead:.2f}x (bar <= 1.2x) {verdict}")
    print(f"200-task DAG at -j {SLOTS}, the engine's embedded LocalCluster: makespan {span:.3f} s, lower bound "
          f"max(critical path, work/{SLOTS}) {bound:.3f} s: {span / bound:.3f}x (bar <= 1.10x) "
          f"{'OK' if ok_span else 'FAIL'}")
    print(f"  (the same on the benchmark's cluster through --scheduler: {median['ext'] / bound:.3f}x, reported: "
          "a scheduler the engine does not own keeps Dask's 5 ms batching to each worker)")
    return 0 if ok_overhead and ok_span else 1


if __name__ == "__main__":
    sys.exit(main())
