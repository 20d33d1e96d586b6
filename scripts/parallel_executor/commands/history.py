"""`history [--json] [--limit N]`: recent runs, newest first, from their status files."""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

import click

from parallel_executor.engine.journal import engine_alive, read_status, run_ids
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

        rows = [(r["run_id"], r["state"], r["task_file"], r["started"][:19], _num(r["wall_time"], "{:.2f}s"),
                 r["tasks"], r["failures"], _num(r["speedup"], "{:.2f}x"), _num(r["cost_usd"], "${:.4f}"))
                for r in runs]
        click.echo(tabulate(rows, headers=["run", "state", "file", "started", "wall", "tasks", "failed", "speedup",
                                           "cost"]))
    return EXIT_OK


def summary(doc: dict[str, Any]) -> dict[str, Any]:
    totals = doc.get("totals") or {}
    state = doc["state"]
    if state == "running" and not engine_alive(doc):
        state = "running (engine gone)"
    wall = totals.get("wall_time")
    if wall is None and doc.get("started"):
        wall = round((epoch(doc["ended"]) if doc.get("ended") else time.time()) - epoch(doc["started"]), 3)
    return {"run_id": doc["run_id"], "state": state, "task_file": doc["task_file"], "started": doc.get("started") or "",
            "wall_time": wall, "tasks": len(doc["tasks"]),
            "failures": sum(t["status"] in FAILED for t in doc["tasks"]),
            "speedup": totals.get("speedup"), "cost_usd": totals.get("cost_usd")}


def _docs(limit: int) -> list[dict[str, Any]]:
    docs = []
    for run_id in run_ids():
        with contextlib.suppress(UserError):
            docs.append(read_status(run_id))
        if len(docs) == limit:
            break
    return docs


def _num(value: float | None, form: str) -> str:
    return "-" if value is None else form.format(value)
