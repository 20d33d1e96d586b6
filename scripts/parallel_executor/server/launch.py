"""`POST /api/runs` (§15): check the task file as `validate` does, then start an ordinary engine
process — the `run` a user types, in its own session, so that it outlives the server and shows in
`status`, `history` and the monitor's data like any other run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from parallel_executor.engine.journal import new_run_id
from parallel_executor.errors import UserError
from parallel_executor.plan.config import load_config
from parallel_executor.plan.taskfile import load_task_file
from parallel_executor.server.runs import ApiError
from parallel_executor.system.fsutil import open_private, private_dir, write_json_atomic
from parallel_executor.system.locations import runs_dir

START_WITHIN = 60.0  # seconds for a new engine to write its first status.json (a Dask cluster can be slow)
# "options" -> the run flag, and what a value must be.
OPTIONS: dict[str, tuple[str, Any]] = {
    "max_parallel": ("--max-parallel", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1),
    "timeout": ("--timeout", lambda v: _number(v) and v > 0),
    "retries": ("--retries", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0),
    "halt": ("--halt", lambda v: v in ("never", "soon", "now")),
    "budget": ("--budget", lambda v: _number(v) and v >= 0),
    "backend": ("--backend", lambda v: v in ("local", "dask")),
}
WHAT = {"max_parallel": "a whole number >= 1", "timeout": "seconds > 0", "retries": "a whole number >= 0",
        "halt": "never, soon or now", "budget": "US dollars >= 0", "backend": "local or dask"}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value and abs(value) < 1e12


def start(body: Any, cwd: Path) -> dict[str, Any]:
    """Start a run from {"task_file": PATH} or {"tasks": DOC, "base_dir": DIR}, with "options"."""
    if not isinstance(body, dict) or ("task_file" in body) == ("tasks" in body):
        raise ApiError(400, 'give either {"task_file": PATH} or {"tasks": TASK-FILE-JSON, "base_dir": DIR}')
    unknown = sorted(set(body) - {"task_file", "tasks", "base_dir", "options"})
    if unknown:
        raise ApiError(400, f"unknown field {', '.join(unknown)}")
    flags = _flags(body.get("options", {}))
    run_id = new_run_id()
    # Inline tasks' relative cwds resolve against base_dir, else the server's folder (a file's: its own).
    base = _folder(body.get("base_dir"), cwd) if "base_dir" in body else (None if "task_file" in body else cwd)
    if "task_file" in body:
        if not isinstance(body["task_file"], str) or not body["task_file"] or "\0" in body["task_file"]:
            raise ApiError(400, "task_file must be a path")
        path, shown = cwd / body["task_file"], body["task_file"]
    else:
        folder = private_dir(runs_dir() / run_id)
        path, shown = folder / "tasks.json", ""
        write_json_atomic(path, body["tasks"], fsync=True)
    try:
        _check(path, base or path.resolve().parent, body.get("options", {}), shown)
        return _spawn(run_id, path, base, flags)
    except BaseException:
        shutil.rmtree(runs_dir() / run_id, ignore_errors=True)  # a run that never began leaves nothing
        raise


def _flags(options: Any) -> list[str]:
    if not isinstance(options, dict):
        raise ApiError(422, "options must be an object", problems=["options must be an object"])
    problems = [f"options.{k}: unknown (known: {', '.join(OPTIONS)})" for k in options if k not in OPTIONS]
    problems += [f"options.{k}: must be {WHAT[k]}" for k, v in options.items() if k in OPTIONS and not OPTIONS[k][1](v)]
    if problems:
        raise ApiError(422, "bad options", problems=problems)
    return [arg for k, v in options.items() for arg in (OPTIONS[k][0], str(v))]


def _folder(value: Any, cwd: Path) -> Path:
    if not isinstance(value, str) or not value or "\0" in value or not (cwd / value).is_dir():
        raise ApiError(400, "base_dir must be an existing directory")
    return (cwd / value).resolve()


def _check(path: Path, base: Path, options: dict[str, Any], shown: str) -> None:
    """The task file as `validate` sees it: 422 with one problem per line."""
    overrides: dict[str, Any] = {k: options[k] for k in ("timeout", "retries") if k in options}
    try:
        load_task_file(path, load_config(None), base, overrides)
    except UserError as e:
        prefix = f"{path}: "
        problems = [line[len(prefix):] if line.startswith(prefix) else line for line in e.lines]
        raise ApiError(422, f"task file {shown or '(inline)'} has problems", problems=problems) from None


def _spawn(run_id: str, path: Path, base: Path | None, flags: list[str]) -> dict[str, Any]:
    folder = private_dir(runs_dir() / run_id)
    argv = [sys.executable, "-m", "parallel_executor", "run", str(path), "--run-id", run_id, "--quiet", *flags,
            *(["--base-dir", str(base)] if base else [])]
    log = open_private(folder / "engine.log", os.O_WRONLY | os.O_TRUNC)
    try:
        engine = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=base or path.parent,
                                  start_new_session=True)  # its own session: the server's Ctrl-C is not its
    finally:
        os.close(log)
    threading.Thread(target=engine.wait, name=f"reap-{run_id}", daemon=True).start()  # no zombie left
    deadline = time.monotonic() + START_WITHIN
    while not (folder / "status.json").exists():
        if engine.poll() is not None or time.monotonic() > deadline:
            raise _refused(folder / "engine.log", engine)
        time.sleep(0.02)
    return {"run_id": run_id, "status_url": f"/api/runs/{run_id}", "events_url": f"/api/runs/{run_id}/events"}


def _refused(log: Path, engine: subprocess.Popen[bytes]) -> ApiError:
    """The engine ended (or hung) before its run began: what it said, as problems."""
    if engine.poll() is None:
        os.killpg(engine.pid, signal.SIGKILL)  # its session: whatever it started goes too
        engine.wait()
    try:
        said = log.read_text(errors="replace").splitlines()
    except OSError:
        said = []
    problems = [line.removeprefix("parallel-executor: ") for line in said if line.strip()][-50:]
    if engine.returncode == 2:
        return ApiError(422, "the run refused to start", problems=problems)
    return ApiError(500, f"the engine ended before its run began (exit {engine.returncode})", problems=problems)
