"""`history [--json] [--limit N]`: recent runs, newest first, from their status files.

A run resumed with `--resume` keeps one run id over several sessions: its row shows the latest
session (marked `resumed`), and under it a row for each earlier one, newest first; `--json` lists
them, oldest first, in `sessions`.

The table fits the terminal (COLUMNS, else the terminal's width): the task file keeps the tail of its
path (`…/proj/tasks.json`), then the least needed columns go; the run id and the state are never cut.
Off a terminal (a pipe, a file) without COLUMNS, rows are whole: scripts get every path in full."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
from typing import Any

import click

from parallel_executor.engine.journal import LIVE_STATES, engine_alive, read_status, run_ids
from parallel_executor.engine.resume import sessions
from parallel_executor.errors import EXIT_OK, UserError
from parallel_executor.system.timestamps import epoch

FAILED = ("failed", "timeout")


def main(as_json: bool, limit: int) -> int:
    runs = [summary(doc) for doc in _docs(limit)]
    if as_json:
        click.echo(json.dumps(runs, indent=2))
    elif not runs:
        click.echo("no runs yet")
    else:
        from tabulate import tabulate

        headers, rows = fit([row for r in runs for row in _rows(r)], terminal_width())
        click.echo(tabulate(rows, headers=headers))
    return EXIT_OK


HEADERS = ("run", "state", "file", "started", "wall", "tasks", "failed", "speedup", "cost")
# Least needed first: a run id begins with the run's start time, so `started` goes first; `file` last.
DROP_ORDER = ("started", "cost", "speedup", "wall", "tasks", "failed", "file")
FILE_MIN = 16  # narrower than this, a path says too little: a column goes instead
FILE = HEADERS.index("file")


def terminal_width() -> int | None:
    """COLUMNS, else the terminal's width; None off a terminal (no COLUMNS): no limit."""
    if not os.environ.get("COLUMNS") and not sys.stdout.isatty():
        return None
    return shutil.get_terminal_size().columns


def fit(rows: list[tuple[Any, ...]], width: int | None) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The headers and rows to print within width: the file's path cut to its tail, else fewer columns."""
    from tabulate import tabulate

    if width is None:
        return list(HEADERS), rows
    for dropped in range(len(DROP_ORDER)):
        keep = [n for n, h in enumerate(HEADERS) if h not in DROP_ORDER[:dropped]]
        without_file = [tuple("" if n == FILE else row[n] for n in keep) for row in rows]
        headers = [HEADERS[n] for n in keep]
        table = tabulate(without_file, headers=headers)
        room = width - (max(map(len, table.splitlines())) - len("file"))  # what the file's cells may take
        longest = max((len(str(row[FILE])) for row in rows), default=0)
        if room >= min(max(longest, len("file")), FILE_MIN):
            return headers, [tuple(tail(str(row[n]), room) if n == FILE else row[n] for n in keep) for row in rows]
    return ["run", "state"], [row[:2] for row in rows]  # never cut: wider than the terminal, if it must


def tail(path: str, limit: int) -> str:
    """path in at most limit characters: its tail after `…`, from a folder boundary when one is there."""
    if len(path) <= limit:
        return path
    end = path[len(path) - limit + 1:]
    cut = end.find("/")
    return "…" + (end[cut:] if 0 <= cut < len(end) - 1 else end)


def summary(doc: dict[str, Any]) -> dict[str, Any]:
    totals = doc.get("totals") or {}
    state = doc["state"]
    if state in LIVE_STATES and not engine_alive(doc):
        state = f"{state} (engine gone)"
    this = doc.get("resumed") or doc.get("started")  # this session's start: a resumed run keeps its first
    wall = totals.get("wall_time")
    if wall is None and this:
        wall = round((epoch(doc["ended"]) if doc.get("ended") else time.time()) - epoch(this), 3)
    failed = [t["id"] for t in doc["tasks"] if t["status"] in FAILED]
    runs = sessions(doc)
    runs[-1].update(state=state, wall_time=wall)
    for number, session in enumerate(runs):
        session["resumed"] = number > 0
    return {"run_id": doc["run_id"], "state": state, "task_file": doc["task_file"], "started": doc.get("started") or "",
            "wall_time": wall, "tasks": len(doc["tasks"]), "failures": len(failed), "failed_tasks": failed,
            "speedup": totals.get("speedup"), "cost_usd": totals.get("cost_usd"),
            "results_dir": doc.get("results_dir"), "resumed": len(runs) > 1, "sessions": runs}


def _rows(run: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The run's latest session, then each earlier one (newest first) under it: `session 1 of 2`."""
    *earlier, latest = run["sessions"]
    state = f"{run['state']}, resumed" if run["resumed"] else run["state"]
    rows: list[tuple[Any, ...]] = [
        (run["run_id"], state, run["task_file"], _when(latest["started"]), _num(run["wall_time"], "{:.2f}s"),
         run["tasks"], briefly(run["failed_tasks"]), _num(run["speedup"], "{:.2f}x"),
         _num(run["cost_usd"], "${:.4f}"))]
    for number, session in reversed(list(enumerate(earlier, 1))):
        rows.append((f"session {number} of {len(earlier) + 1}", session.get("state", ""), "",
                     _when(session.get("started")),
                     _num(session.get("wall_time"), "{:.2f}s"), session.get("tasks", ""),
                     briefly(session.get("failed_tasks") or [], session.get("failed")), "-", "-"))
    return rows


def briefly(ids: list[str], count: int | None = None) -> str:
    """The failed tasks in a few words: `-`, `b`, `a, b`, `a, b +3` (count: how many, if more than named)."""
    count = max(len(ids), count or 0)
    if not count:
        return "-"
    if not ids:
        return str(count)
    named = ids[:2]
    return ", ".join(named) + (f" +{count - len(named)}" if count > len(named) else "")


def _docs(limit: int) -> list[dict[str, Any]]:
    docs = []
    for run_id in run_ids():
        with contextlib.suppress(UserError):
            docs.append(read_status(run_id))
        if len(docs) == limit:
            break
    return docs


def _when(stamp: Any) -> str:
    return stamp[:19].replace("T", " ") if isinstance(stamp, str) else ""


def _num(value: Any, form: str) -> str:
    return form.format(value) if isinstance(value, (int, float)) else "-"
