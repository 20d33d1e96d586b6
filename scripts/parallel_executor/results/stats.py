"""The dashboard (§9): memory/logs/parallel-execution-stats.json, the seed's fields from measured times.

Runs of the engine may end at the same moment, so every update is a read-modify-write under a
file lock. Rates and averages are derived from running counts kept in the file, so each run adds
its own figures exactly, whatever came before.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from filelock import FileLock

from parallel_executor.agents import registry
from parallel_executor.plan import schemas
from parallel_executor.system.fsutil import private_dir, write_json_atomic
from parallel_executor.system.jsonfile import read_state
from parallel_executor.system.locations import logs_dir

_COUNTS = ("total_parallel_executions", "total_tasks_parallelized", "tasks_failed", "speedup_sum",
           "time_saved_seconds", "merges", "merges_succeeded")


class RunFigures(NamedTuple):
    """What one run measured."""

    run_id: str
    tasks: int  # tasks that ran in this run (results reused by --resume are not counted again)
    failed: int  # of those, how many did not succeed
    wall_time: float
    task_time_sum: float
    merges: int  # merged groups (task types)
    merges_succeeded: int
    serial_time: float | None = None  # the tasks one by one, from their least contended runs (None: no history)


def stats_path() -> Path:
    return logs_dir() / "parallel-execution-stats.json"


def figures(run_id: str, totals: Mapping[str, float], statuses: list[str], merged: Mapping[str, Any],
            serial_time: float | None = None) -> RunFigures:
    return RunFigures(run_id, len(statuses), sum(s != "success" for s in statuses), float(totals["wall_time"]),
                      float(totals["task_time_sum"]), len(merged),
                      sum("merge_error" not in group for group in merged.values()), serial_time)


def record_run(run: RunFigures) -> dict[str, Any]:
    """Add one run to the dashboard and return the new document."""
    path = stats_path()
    private_dir(path.parent)
    with FileLock(str(path) + ".lock", timeout=60):
        old: dict[str, Any] = read_state(path, lambda doc: schemas.is_valid("stats", doc), dict)
        counts = {key: old.get("counts", {}).get(key, 0) for key in _COUNTS}
        speedup = run.task_time_sum / run.wall_time if run.wall_time > 0 else 0.0
        for key, value in [("total_parallel_executions", 1), ("total_tasks_parallelized", run.tasks),
                           ("tasks_failed", run.failed), ("speedup_sum", speedup),
                           ("time_saved_seconds", max(0.0, (run.serial_time or 0.0) - run.wall_time)
                            if run.serial_time is not None else 0.0), ("merges", run.merges),
                           ("merges_succeeded", run.merges_succeeded)]:
            counts[key] += value
        doc = {**_dashboard(counts), "last_run": {**run._asdict(), "speedup": round(speedup, 3)},
               "last_updated": datetime.now().astimezone().isoformat(timespec="seconds"), "counts": counts}
        write_json_atomic(path, doc, fsync=True)
    return doc


def _dashboard(counts: Mapping[str, float]) -> dict[str, Any]:
    runs, tasks, merges = counts["total_parallel_executions"], counts["total_tasks_parallelized"], counts["merges"]
    resources = registry.read()
    created = {kind: len(entries) for kind, entries in resources.items()}
    kept = {kind: sum(e.get("status") == "active" for e in entries.values()) for kind, entries in resources.items()}
    return {
        "total_parallel_executions": runs,
        "total_tasks_parallelized": tasks,
        "average_speedup": round(counts["speedup_sum"] / runs, 3) if runs else 0.0,
        "total_time_saved_minutes": round(counts["time_saved_seconds"] / 60, 3),
        "temp_skills_created": created["skill"], "temp_skills_kept": kept["skill"],
        "temp_agents_created": created["agent"], "temp_agents_kept": kept["agent"],
        "merge_success_rate": round(counts["merges_succeeded"] / merges, 4) if merges else 1.0,
        "failure_rate": round(counts["tasks_failed"] / tasks, 4) if tasks else 0.0,
    }
