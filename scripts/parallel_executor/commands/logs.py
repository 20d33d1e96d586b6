"""`logs TASK_ID [--run RUN_ID] [--stderr] [-f/--follow] [--raw]`: a task's whole output (its last attempt).

An agent's stdout in a streaming format (JSON lines) is shown as what the agent said and did, one
line per message or tool call, unless --raw asks for the lines themselves."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from parallel_executor.agents.streams import rendered
from parallel_executor.engine.journal import LIVE_STATES, read_status, results_of, run_ids
from parallel_executor.errors import EXIT_OK, UserError
from parallel_executor.plan import checks, model

POLL = 0.2  # seconds between looks at a followed file and its run's status
FINISHED = {status.value for status in model.FINISHED}


def main(task_id: str, run_id: str | None, stderr: bool, follow: bool, raw: bool = False) -> int:
    if not checks.TASK_ID.fullmatch(task_id):
        raise UserError(f"'{task_id}' is not a task id")
    run_id = run_id or _latest_with(task_id)
    doc = read_status(run_id)
    if _task(doc, task_id) is None:
        raise UserError(f"run {run_id} has no task '{task_id}'")
    path = results_of(doc) / f"{task_id}.{'stderr' if stderr else 'stdout'}"
    render = not (raw or stderr or not (_task(doc, task_id) or {}).get("runner"))
    offset = _copy(path, 0, render, last=not follow)
    while follow and not _ended(run_id, task_id):
        time.sleep(POLL)
        offset = _copy(path, offset, render, last=False)
    if follow:
        _copy(path, offset, render, last=True)  # what it wrote as it ended
    elif not path.exists():
        print(f"parallel-executor: task '{task_id}' of run {run_id} has no output yet", file=sys.stderr)
    return EXIT_OK


def _latest_with(task_id: str) -> str:
    for run_id in run_ids():
        try:
            if _task(read_status(run_id), task_id) is not None:
                return run_id
        except UserError:
            continue
    raise UserError(f"no run has a task '{task_id}'")


def _task(doc: dict[str, Any], task_id: str) -> dict[str, Any] | None:
    return next((t for t in doc["tasks"] if t["id"] == task_id), None)


def _ended(run_id: str, task_id: str) -> bool:
    doc = read_status(run_id)
    task = _task(doc, task_id)
    return doc["state"] not in LIVE_STATES or task is None or task["status"] in FINISHED


def _rendered(chunk: bytes) -> bytes:
    return "".join(f"{line}\n" for line in rendered(chunk.decode("utf-8", errors="replace").splitlines())).encode()


def _copy(path: Path, offset: int, render: bool = False, last: bool = True) -> int:
    """Write what the file holds past offset to stdout; the new offset (0 again if it was truncated:
    a retry starts its output afresh). Rendered, only whole lines are taken (unless it is the last look)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return offset
    with os.fdopen(fd, "rb") as f:
        if os.fstat(fd).st_size < offset:
            offset = 0
        f.seek(offset)
        while chunk := f.read(1 << 16):
            if render:
                whole = chunk if last else chunk[: chunk.rfind(b"\n") + 1]
                if not whole:
                    break  # a line still being written, or longer than a chunk: shown when whole
                chunk = whole
                f.seek(offset + len(chunk))
                sys.stdout.buffer.write(_rendered(chunk))
            else:
                sys.stdout.buffer.write(chunk)
            offset += len(chunk)
    sys.stdout.buffer.flush()
    return offset
