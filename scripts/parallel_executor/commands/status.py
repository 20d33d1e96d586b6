"""`status [RUN_ID] [--json] [--watch]`: a run's tasks, from its status.json."""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from parallel_executor.commands.history import briefly
from parallel_executor.engine.journal import LIVE_STATES, engine_alive, latest_run, read_status
from parallel_executor.engine.resume import sessions
from parallel_executor.errors import EXIT_OK
from parallel_executor.plan.config import load_config
from parallel_executor.results.report import agents_line, shorten
from parallel_executor.system.timestamps import epoch


def main(run_id: str | None, as_json: bool, watch: bool, config_path: Path | None) -> int:
    run_id = run_id or latest_run()
    if watch:
        watch_run(run_id, load_config(config_path).refresh_interval, as_json)
    doc = read_status(run_id)
    if as_json:
        click.echo(json.dumps({**doc, "engine_alive": engine_alive(doc)}, indent=2))
    else:
        click.echo(render(doc))
    return EXIT_OK


def render(doc: dict[str, Any]) -> str:
    from tabulate import tabulate

    now = time.time()
    rows = [(t["id"], t["status"], t["attempts"], _elapsed(t, now), t.get("pid") or "", shorten(_detail(t)))
            for t in doc["tasks"]]
    state = doc["state"]
    if state in LIVE_STATES and not engine_alive(doc):
        state = f"{state}, but its engine (pid {doc['pid']}) is gone: the next run or `cancel` ends its tasks"
    head = [("run", doc["run_id"]), ("state", state), ("engine pid", doc["pid"]), ("task file", doc["task_file"]),
            ("started", doc["started"])]
    if doc.get("resumed"):
        head.append(("resumed", doc["resumed"]))
        for number, session in enumerate(sessions(doc)[:-1], 1):
            head.append((f"session {number}", _session_line(session)))
    head += [("results", doc.get("results_dir") or "-"), ("tasks", tally(doc))]
    if doc.get("agents") and doc["state"] in LIVE_STATES:
        head.append(("agents", agents_line(doc["agents"])))
    if doc.get("totals"):
        t = doc["totals"]
        head.append(("measured", f"wall {t['wall_time']:.2f}s, task time {t['task_time_sum']:.2f}s, "
                                  f"speedup {t['speedup']:.2f}x, cost ${t['cost_usd']:.4f}"))
    table = tabulate(rows, headers=["task", "status", "attempts", "elapsed", "pid", "reason"])
    return tabulate(head, tablefmt="plain") + "\n\n" + table


def watch_run(run_id: str, interval: float, as_json: bool) -> None:
    """Redraw until the run ends: the live view on a terminal, a line per change elsewhere."""
    if sys.stderr.isatty() and not as_json:
        from parallel_executor.results.monitor import Monitor, snapshot_of_status

        monitor = Monitor(interval)
        monitor.start(lambda: snapshot_of_status(read_status(run_id)))
        try:
            _wait_end(run_id, interval, lambda doc: None)
        finally:
            monitor.stop()
        return
    seen = [""]

    def line(doc: dict[str, Any]) -> None:
        text = f"{doc['state']}: {tally(doc)}"
        if text != seen[0]:
            seen[0] = text
            click.echo(f"{time.strftime('%H:%M:%S')} {run_id} {text}", err=True)

    _wait_end(run_id, interval, line)


def tally(doc: dict[str, Any]) -> str:
    return ", ".join(f"{n} {s}" for s, n in sorted(Counter(t["status"] for t in doc["tasks"]).items()))


def _wait_end(run_id: str, interval: float, each: Callable[[dict[str, Any]], None]) -> None:
    while True:
        doc = read_status(run_id)
        each(doc)
        if doc["state"] not in LIVE_STATES or not engine_alive(doc):
            return
        time.sleep(interval)


def _session_line(session: dict[str, Any]) -> str:
    """An earlier session of a resumed run: `partial, 2026-11-30T12:50:20…, 0.01s: failed b, 1 skipped`."""
    parts = [str(session.get("state", "")), str(session.get("started") or "")]
    if isinstance(session.get("wall_time"), (int, float)):
        parts.append(f"{session['wall_time']:.2f}s")
    counts = [f"{session[k]} {k}" for k in ("skipped", "cancelled") if session.get(k)]
    failed = briefly(session.get("failed_tasks") or [], session.get("failed"))
    return ", ".join(parts) + ": " + ", ".join(([f"failed {failed}"] if failed != "-" else []) + counts or ["-"])


def _detail(task: dict[str, Any]) -> str:
    """Why it waits or failed; for a running agent its latest message; `throttled: cpu` when held."""
    text = task.get("latest") or task.get("reason") or ""
    return f"throttled: cpu · {text}" if task.get("throttled") else text


def _elapsed(task: dict[str, Any], now: float) -> str:
    if not task.get("started"):
        return ""
    end = epoch(task["ended"]) if task.get("ended") else now
    return f"{end - epoch(task['started']):.2f}s"
