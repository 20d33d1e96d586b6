"""Run state on disk (§3, §8): status.json, events.jsonl, per-task results, live-run markers.

status.json and results are replaced atomically; events.jsonl only grows by whole lines
(one write() each), so a kill -9 of the engine leaves every file valid JSON.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parallel_executor.engine.records import TaskFiles
from parallel_executor.errors import UserError
from parallel_executor.plan import schemas
from parallel_executor.system import procs
from parallel_executor.system.fsutil import open_private, private_dir, write_atomic, write_json_atomic
from parallel_executor.system.jsonfile import read_state, set_aside
from parallel_executor.system.locations import results_root, runs_dir
from parallel_executor.system.procs import PID_MAX, engine_identity
from parallel_executor.system.timestamps import iso

LIVE_STATES = frozenset({"running", "paused", "stopping"})  # a run's states before it ends (§8)
RUN_ID = re.compile(r"[0-9]{8}-[0-9]{6}\.[0-9]{3}-[0-9a-f]{4}")  # what new_run_id makes, matched in full


def new_run_id() -> str:
    """Start time to the millisecond, so that run ids sort by age, then 16 random bits."""
    now = time.time()
    return time.strftime("%Y%m%d-%H%M%S", time.localtime(now)) + f".{int(now % 1 * 1000):03d}-{secrets.token_hex(2)}"


@dataclass
class RunState:
    run_id: str
    run_dir: Path
    results_dir: Path
    fresh: bool = True  # the results directory is new: no file in it can be stale
    events_fd: int = -1
    seq: int = 0  # the journal's last line number; a resumed run carries on from its lines (§3)
    _writing: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def open(cls, run_id: str, results_dir: Path | None) -> RunState:
        results_dir = results_dir or results_root() / run_id
        fresh = not results_dir.exists()
        state = cls(run_id, private_dir(runs_dir() / run_id), private_dir(results_dir), fresh)
        state.events_fd = open_private(state.run_dir / "events.jsonl", os.O_RDWR | os.O_APPEND)
        state.seq = _lines(state.events_fd)
        # The marker names the engine, so that another engine starting before this run's first
        # status.json can tell it is alive.
        pid, started = engine_identity()
        write_atomic(private_dir(runs_dir() / "active") / run_id, f"{pid} {started}".encode())
        return state

    def close(self) -> None:
        if self.events_fd >= 0:
            os.close(self.events_fd)
            self.events_fd = -1
        (runs_dir() / "active" / self.run_id).unlink(missing_ok=True)

    def event(self, kind: str, **fields: Any) -> None:
        with self._writing:  # worktree threads write events too: seq and line order must agree
            self.seq += 1
            line = json.dumps({"seq": self.seq, "time": iso(time.time()), "event": kind, **fields}, ensure_ascii=False)
            os.write(self.events_fd, (line + "\n").encode())

    def write_status(self, doc: dict[str, Any], final: bool = False) -> None:
        write_json_atomic(self.run_dir / "status.json", doc, fsync=final)

    def files(self, task_id: str) -> TaskFiles:
        base = str(self.results_dir / task_id)
        return TaskFiles(base + ".json", base + ".stdout", base + ".stderr", base + ".data.json")


def _lines(fd: int) -> int:
    count = 0
    while chunk := os.read(fd, 1 << 20):
        count += chunk.count(b"\n")
    return count


def read_events(run_dir: Path) -> Iterator[dict[str, Any]]:
    """Every whole event of events.jsonl; a line that is not one (a torn last line after a power
    cut, even one cut inside a UTF-8 character) is skipped."""
    try:
        with open(run_dir / "events.jsonl", "rb") as f:
            for line in f:
                try:
                    event = json.loads(line.decode("utf-8", errors="replace"))
                except (ValueError, RecursionError):
                    continue
                if isinstance(event, dict):
                    yield event
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return


def check_run_id(run_id: str) -> str:
    if not RUN_ID.fullmatch(run_id):
        raise UserError(f"'{run_id}' is not a run id (they look like 20240101-120000.000-ab12; see `history`)")
    return run_id


def read_status(run_id: str) -> dict[str, Any]:
    """A run's status.json; one that cannot be used is moved aside (and the run is then unknown)."""
    path = runs_dir() / check_run_id(run_id) / "status.json"
    status: dict[str, Any] | None = read_state(path, lambda doc: schemas.is_valid("status", doc), lambda: None)
    if status is None:
        raise UserError(f"no run '{run_id}' (no status under {runs_dir()})")
    return status


def results_of(status: dict[str, Any]) -> Path:
    """Where a run's results are: its --results-dir, else the default folder of its id."""
    return Path(status.get("results_dir") or results_root() / status["run_id"])


def run_ids() -> list[str]:
    """Every recorded run, newest first (run ids begin with their start time)."""
    root = runs_dir()
    found = (p.parent.name for p in root.glob("*/status.json")) if root.is_dir() else ()
    return sorted((run_id for run_id in found if RUN_ID.fullmatch(run_id)), reverse=True)


def latest_run(running: bool = False) -> str:
    """The newest run, or the newest one still running."""
    for run_id in run_ids():
        if not running:
            return run_id
        with contextlib.suppress(UserError):
            if read_status(run_id).get("state") in LIVE_STATES:
                return run_id
    raise UserError("no run is running" if running else f"no run yet (none under {runs_dir()})")


def latest_run_of(task_file: Path) -> str:
    """The newest run whose status names task_file."""
    for run_id in run_ids():
        with contextlib.suppress(UserError):
            if read_status(run_id).get("task_file") == str(task_file):
                return run_id
    raise UserError(f"no earlier run of {task_file} to resume")


def engine_alive(status: dict[str, Any]) -> bool:
    return bool(status.get("pid")) and procs.alive(int(status["pid"]), status.get("pid_started"))


def recover_dead_runs() -> list[str]:
    """Runs whose engine died (kill -9) without ending: kill their leftover processes."""
    active = runs_dir() / "active"
    recovered = []
    for marker in active.glob("*") if active.is_dir() else []:
        if not RUN_ID.fullmatch(marker.name):
            continue  # a marker being written (.tmp), or one set aside
        if not marker.is_file() or marker.is_symlink():
            set_aside(marker, "not a run marker")  # e.g. a directory: it would stop every later run
            continue
        engine = marked_engine(marker)
        if (engine is not None and procs.alive(*engine)) or not marker.exists():
            continue  # alive, or it ended meanwhile
        try:
            status = read_status(marker.name)
        except UserError:
            status = {}
        procs.sweep(marker.name)
        _remove_half_made(status.get("worktrees"))
        if status.get("state") in LIVE_STATES:
            status["state"] = "cancelled"
            status["reason"] = "the engine died; its tasks were ended by a later run"
            write_json_atomic(runs_dir() / marker.name / "status.json", status, fsync=True)
        if engine is None:
            set_aside(marker, "not a run marker (it names no engine)")
        else:
            marker.unlink(missing_ok=True)
        recovered.append(marker.name)
    return recovered


def _remove_half_made(worktrees: Any) -> None:
    """A dead engine's worktrees that were being made (§11): nothing of value is in them yet."""
    for tree in worktrees if isinstance(worktrees, list) else ():
        if isinstance(tree, dict) and tree.get("state") == "preparing" and all(
                isinstance(tree.get(k), str) for k in ("repo", "path", "branch")):
            from parallel_executor.system import git  # only where a run had worktrees

            with contextlib.suppress(git.GitError, OSError):
                git.remove_worktree(Path(tree["repo"]), Path(tree["path"]))
                git.delete_branch(Path(tree["repo"]), tree["branch"])
            tree["state"] = "removed"


def marked_engine(marker: Path) -> tuple[int, float] | None:
    """The pid and start time a marker names; None when it names none (or is gone meanwhile)."""
    try:
        pid_text, started_text = marker.read_text().split()
        pid, started = int(pid_text), float(started_text)
    except (OSError, ValueError):
        return None
    return (pid, started) if 0 < pid <= PID_MAX and math.isfinite(started) else None
