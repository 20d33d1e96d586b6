"""After a run (§8, §9): task durations for planning and for the serial estimate, merged results,
the stats dashboard, the timeline page, the log's last line. The tasks have run: a step that fails is a warning,
and never changes what the run reports."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

import click

from parallel_executor.engine.journal import read_events
from parallel_executor.engine.run import Run
from parallel_executor.plan.config import Config
from parallel_executor.plan.model import Status
from parallel_executor.results import stats
from parallel_executor.results.history import record_durations
from parallel_executor.results.merge import load_docs, merge
from parallel_executor.results.runlog import RunLog
from parallel_executor.results.serial import contention, estimate
from parallel_executor.results.timeline import Detail, build
from parallel_executor.results.timeline_html import write_page
from parallel_executor.system.fsutil import write_json_atomic

T = TypeVar("T")
TIMELINE_UP_TO = 1000  # tasks: the page costs ~35 us a task to draw, and a run's end must stay quick


class Aftermath(NamedTuple):
    merged: dict[str, Any]
    serial_time: float | None  # the tasks one by one, from their least contended runs (None: no history)
    without_history: int  # tasks whose serial time is only this run's
    timeline: str | None = None  # the page drawn in the results directory (None: not drawn: too many tasks)

    def speedup_estimate(self, wall: float) -> float | None:
        return round(self.serial_time / wall, 3) if self.serial_time is not None and wall > 0 else None


def record(executor: Run, config: Config, log: RunLog) -> Aftermath:
    # Each task's last attempt, as it ran in this session (not reused from an earlier one).
    spans = {t.spec.id: (t.attempt_start, t.end) for t in executor.tasks.values()
             if not t.reused and t.attempts and t.end is not None and t.end >= t.attempt_start}
    loads = contention(spans)
    ran = [(tid, executor.tasks[tid].spec.type, round(end - start, 3), loads[tid], executor.tasks[tid].status)
           for tid, (start, end) in spans.items()]
    ok = [(tid, kind, seconds, load) for tid, kind, seconds, load, status in ran if status is Status.SUCCESS]
    none: dict[str, list[list[float]]] = {}
    past = bookkeeping("the task durations", lambda: record_durations(ok, [tid for tid, *_ in ran]), none)
    serial, without = estimate([(tid, seconds, load) for tid, _, seconds, load, _ in ran], past) if ran else (None, 0)
    merged: dict[str, Any] = bookkeeping("merged.json", lambda: merge_run(executor, config), {})
    sums = executor.totals()
    statuses = [t.status.value for t in executor.tasks.values() if not t.reused and t.status is not Status.NOT_NEEDED]
    figures = stats.figures(executor.state.run_id, sums, statuses, merged, serial)
    bookkeeping("the stats", lambda: stats.record_run(figures), None)
    log.line(f"run-finished state={executor.final_state()} wall={sums['wall_time']}s "
             f"task_time_sum={sums['task_time_sum']}s parallelism={sums['parallelism']} "
             f"serial_estimate={serial} cost_usd={sums['cost_usd']}")
    log.close()
    page = bookkeeping("timeline.html", lambda: draw_timeline(executor, serial), None) \
        if len(executor.tasks) <= TIMELINE_UP_TO else None
    return Aftermath(merged, serial, without, page)


def draw_timeline(executor: Run, serial: float | None) -> str:
    """The run's timeline page beside its results; exit codes, durations and costs from the engine's
    records, not read back from the result files."""
    details = {t.spec.id: Detail(t.exit_code, round(t.busy, 6), t.cost, t.error or "") for t in executor.tasks.values()}
    timeline = build(executor.status_doc(), read_events(executor.state.run_dir), details)
    timeline.serial_time = serial
    path = executor.state.results_dir / "timeline.html"
    write_page(timeline, path)
    return str(path)


def merge_run(executor: Run, config: Config) -> dict[str, Any]:
    """Merge by type into merged.json. Result files are read back only for types with a strategy
    of their own; the default aggregation needs nothing beyond what the engine holds."""
    tasks = executor.tasks.values()
    own = [t.spec.id for t in tasks if config.merge_strategies.get(t.spec.type or "", "default") != "default"]
    loaded = {d["id"]: d for d in load_docs(executor.state.results_dir, own)}
    docs = [loaded.get(t.spec.id) or {"id": t.spec.id, "type": t.spec.type, "status": t.status.value, "error": t.error}
            for t in tasks]
    merged = merge(docs, config.merge_strategies, {t.spec.id: str(t.spec.cwd) for t in tasks})
    write_json_atomic(executor.state.results_dir / "merged.json", merged)
    return merged


def bookkeeping(what: str, step: Callable[[], T], fallback: T) -> T:
    try:
        return step()
    except (OSError, ValueError) as e:  # filelock's Timeout is an OSError
        click.echo(f"parallel-executor: warning: could not update {what}: {e}", err=True)
        return fallback
