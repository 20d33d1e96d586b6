"""What the API reads (§15): the runs' own files, never state of the server's own, so that a restart
of the server loses nothing. Every function here is plain and blocking; the app runs them on threads."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from parallel_executor.agents.streams import rendered
from parallel_executor.engine.journal import (
    LIVE_STATES,
    RUN_ID,
    marked_engine,
    read_events,
    read_status,
    results_of,
    run_ids,
)
from parallel_executor.errors import UserError
from parallel_executor.plan import checks
from parallel_executor.system import procs
from parallel_executor.system.fsutil import tail_file
from parallel_executor.system.jsonfile import BadJSON, read_json
from parallel_executor.system.locations import runs_dir
from parallel_executor.system.timestamps import epoch

LAST_LINE_BYTES = 4096  # enough of a running task's output to find its last line
_FINISHED: dict[str, tuple[tuple[int, int, int], dict[str, Any]]] = {}  # run id -> (status.json's stat, summary)
LOG_LIMIT = 8 << 20  # bytes of a log served at once (its end); ?tail= asks for fewer lines


class ApiError(Exception):
    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra


def status_of(run_id: str) -> dict[str, Any]:
    """A run's status.json; 404 for an id that is not a run's (matched in full, never a path)."""
    if not RUN_ID.fullmatch(run_id):
        raise ApiError(404, f"no run '{run_id}'")
    try:
        return read_status(run_id)
    except UserError as e:
        raise ApiError(404, e.lines[0]) from None


def listed(limit: int) -> list[dict[str, Any]]:
    """The runs, newest first, as `history --json` shows them. A finished run's summary is kept while
    its status.json stays the same file: the dashboard asks every few seconds."""
    from parallel_executor.commands.history import summary

    runs = []
    for run_id in run_ids():
        with contextlib.suppress(UserError, KeyError, TypeError, ValueError, OSError):
            info = os.stat(runs_dir() / run_id / "status.json")
            stamp = (info.st_ino, info.st_mtime_ns, info.st_size)
            kept = _FINISHED.get(run_id)
            if kept is None or kept[0] != stamp:
                kept = stamp, summary(read_status(run_id))
                if kept[1]["state"] not in LIVE_STATES:
                    _FINISHED[run_id] = kept
            runs.append(kept[1])
        if len(runs) == limit:
            break
    return runs


def run_doc(run_id: str) -> dict[str, Any]:
    """status.json, with each running task's last output line, an `engine_alive` flag, and the summary
    once the run has ended."""
    from parallel_executor.commands.history import summary

    doc = status_of(run_id)
    results = results_of(doc)
    for task in doc["tasks"]:
        if task.get("status") in ("running", "paused"):
            task["last_line"] = last_line(results / f"{task['id']}.stdout")
    doc["engine_alive"] = doc["state"] in LIVE_STATES and engine_alive(run_id)
    if doc["state"] not in LIVE_STATES:
        doc["summary"] = summary(doc)
    return doc


def last_line(path: Path) -> str:
    text, _ = tail_file(str(path), LAST_LINE_BYTES)
    lines = rendered([line for line in text.splitlines() if line.strip()][-20:])
    return lines[-1][:500] if lines else ""


def engine_alive(run_id: str) -> bool:
    """Is the engine of a run that has not finished still there? (By its marker: no status.json read.)"""
    engine = marked_engine(runs_dir() / "active" / run_id)
    return engine is not None and procs.alive(*engine)


def task_log(run_id: str, task_id: str, stream: str, tail: int | None, raw: bool) -> bytes:
    """A task's stdout or stderr (its last attempt): an agent's stream-json shown as its messages,
    as `logs` does, unless raw; the last `tail` lines when asked."""
    if stream not in ("stdout", "stderr"):
        raise ApiError(400, "stream must be stdout or stderr")
    doc = status_of(run_id)
    if not checks.TASK_ID.fullmatch(task_id) or all(t.get("id") != task_id for t in doc["tasks"]):
        raise ApiError(404, f"run {run_id} has no task '{task_id}'")
    text, cut = tail_file(str(results_of(doc) / f"{task_id}.{stream}"), LOG_LIMIT)
    lines = text.splitlines()[1 if cut else 0:]  # a cut first line is not a line
    if not raw and stream == "stdout":
        lines = rendered(lines)
    if tail is not None:
        lines = lines[-tail:] if tail else []
    return "".join(f"{line}\n" for line in lines).encode()


def batches(run_id: str) -> list[dict[str, Any]]:
    """The run's waves (as `analyze` plans them, from its journal), each with its tasks' status
    counts, its duration (first start to last end) and its cost."""
    doc = status_of(run_id)
    waves: list[list[str]] | None = None
    for event in read_events(runs_dir() / run_id):
        if event.get("event") == "run-started" and isinstance(event.get("waves"), list):
            waves = event["waves"]  # the latest session's plan
    if waves is None:
        raise ApiError(404, f"run {run_id}'s journal has no waves (it ran before the API existed)")
    rows = {t["id"]: t for t in doc["tasks"]}
    results = results_of(doc)
    return [_batch(n, [tid for tid in wave if tid in rows], rows, results) for n, wave in enumerate(waves)]


def _batch(number: int, ids: list[str], rows: dict[str, dict[str, Any]], results: Path) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for tid in ids:
        counts[rows[tid]["status"]] = counts.get(rows[tid]["status"], 0) + 1
    starts = [rows[tid]["started"] for tid in ids if rows[tid].get("started")]
    ends = [rows[tid]["ended"] for tid in ids if rows[tid].get("ended")]
    duration = None
    if starts and ends and len(ends) == len(ids):
        duration = round(max(map(epoch, ends)) - min(map(epoch, starts)), 3)
    cost = sum(_cost(results / f"{tid}.json") for tid in ids)
    return {"batch": number, "task_ids": ids, "counts": counts, "duration": duration, "cost_usd": round(cost, 6)}


def _cost(path: Path) -> float:
    with contextlib.suppress(OSError, BadJSON):
        doc = read_json(path) if os.path.isfile(path) and not os.path.islink(path) else None
        value = doc.get("cost_usd") if isinstance(doc, dict) else None
        if isinstance(value, (int, float)) and value >= 0:
            return float(value)
    return 0.0


def timeline_page(run_id: str) -> str:
    from parallel_executor.commands.timeline import load
    from parallel_executor.results.timeline_html import page

    status_of(run_id)
    return page(load(run_id))
