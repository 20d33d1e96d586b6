"""The run's documents (§3, §8), built from the scheduler's records: status.json, each task's
result file, and the measured totals that the summary, the report and the stats use."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from typing import Any

from parallel_executor.engine.records import TaskRun
from parallel_executor.plan.model import Status
from parallel_executor.system.fsutil import PRIVATE_FILE
from parallel_executor.system.jsonfile import parse
from parallel_executor.system.timestamps import iso

MAX_RESULT_BYTES = 16 << 20  # a structured result is read into memory: bounded


def totals(tasks: Iterable[TaskRun], started: float, ended: float | None) -> dict[str, float | int]:
    """Measured figures of the run (§8): wall time, sum of task times, speedup, cost, tokens."""
    tasks = list(tasks)
    wall = (ended or time.time()) - started
    work = sum(t.busy for t in tasks if not t.reused)
    tokens = {"input_tokens": sum(t.tokens_in for t in tasks),  # every attempt's, for each task (§8)
              "output_tokens": sum(t.tokens_out for t in tasks)}
    return {"wall_time": round(wall, 3), "task_time_sum": round(work, 3),
            "parallelism": round(work / wall, 3) if wall > 0 else 0.0,
            "speedup": round(work / wall, 3) if wall > 0 else 0.0,  # version 2's name of parallelism
            "cost_usd": round(sum(t.cost for t in tasks), 6), **tokens}


def shown(task: TaskRun, tasks: Mapping[str, TaskRun], paused: bool) -> tuple[str, str]:
    """A task's status and reason as status.json and the monitor show them (§8): one not started
    is `pending` while its dependencies have not settled (`blocked by a, b`), else `waiting`, with why."""
    status = task.status
    if status is Status.PENDING and not task.reason:  # (a retry's wait has its reason)
        blocked = [d for d in task.spec.blocked_by if not tasks[d].status.finished]
        if blocked:
            return "pending", "blocked by " + listed(blocked)
        return "waiting", "paused" if paused else "waiting for a slot"
    if status is Status.WAITING and paused:
        return "waiting", "paused"
    return status.value, task.reason or (task.error_line if status.finished else "")


def listed(names: list[str], most: int = 3) -> str:
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return ", ".join(names[:most]) + more


class StatusRows:
    """status.json's task entries, kept between writes: a rewrite rebuilds only the rows of
    tasks that changed since the last one (or whose queue reason may have), then is one json.dumps."""

    def __init__(self, tasks: Mapping[str, TaskRun]) -> None:
        self.tasks, self.paused = tasks, False
        self.rows = {tid: self.row(t) for tid, t in tasks.items()}
        self.stale: dict[str, TaskRun] = {}

    def changed(self, task: TaskRun) -> None:
        self.stale[task.spec.id] = task

    def pause(self, paused: bool) -> None:
        """Every unfinished task's reason may now say `paused`, or no longer."""
        self.paused = paused
        self.stale.update((tid, t) for tid, t in self.tasks.items() if not t.status.finished)

    def current(self) -> list[dict[str, Any]]:
        for tid, task in self.stale.items():
            self.rows[tid] = self.row(task)
        self.stale.clear()
        return list(self.rows.values())

    def row(self, t: TaskRun) -> dict[str, Any]:
        status, reason = shown(t, self.tasks, self.paused)
        return {
            "id": t.spec.id, "subject": t.spec.subject, "runner": t.spec.runner,
            "subagent": t.spec.subagent, "status": status, "attempts": t.attempts,
            "started": iso(t.start), "ended": iso(t.end) if t.status.finished else None,
            "paths": list(t.spec.paths), "pid": t.pid, "reason": reason,
            **({"latest": t.live} if t.live and t.status is Status.RUNNING else {}),
            **({"throttled": "cpu"} if t.throttled else {}),
            **({"branch": t.branch} if t.branch else {}),
        }


def result_doc(task: TaskRun) -> dict[str, Any]:
    spec, outcome, files = task.spec, task.outcome, task.files
    return {
        "task_id": spec.id, "id": spec.id, "subject": spec.subject, "type": spec.type, "runner": spec.runner,
        "subagent": spec.subagent, "status": task.status.value, "attempts": task.attempts,
        "exit_code": task.exit_code, "start_time": iso(task.start), "end_time": iso(task.end),
        "duration": round(task.busy, 6), "error": task.error, "reason": task.reason,
        "output": outcome.result if outcome else task.stdout,
        "stderr": task.stderr,
        "stdout_file": files.stdout if task.attempts else None,
        "stderr_file": files.stderr if task.attempts else None,
        "data": structured(task),
        "cost_usd": round(task.cost, 6),
        "usage": task.tokens,
        "error_class": task.error_class if task.status is not Status.SUCCESS else None,
        "permission_denials": list(outcome.denials) if outcome else [],
        "num_turns": outcome.turns if outcome else None,
        "session_id": outcome.session_id if outcome else None,
        "artifacts": list(spec.artifacts),
        "branch": task.branch,  # its worktree's (§11): a dependent finds a kept branch here
        "peak_rss_bytes": task.peak_rss,
        "cpu_seconds": round(task.cpu_seconds, 3) if task.cpu_seconds is not None else None,
    }


def structured(task: TaskRun) -> Any:
    """What the task wrote to PARALLEL_RESULT_FILE, else what its runner found in its output."""
    fallback = task.outcome.data if task.outcome else None
    if not task.attempts:
        return fallback
    try:
        fd = os.open(task.files.data, os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return fallback
    except OSError as e:
        return {"error": f"PARALLEL_RESULT_FILE cannot be read ({e.strerror}; a link is not followed)"}
    with os.fdopen(fd, "rb") as f:
        os.fchmod(fd, PRIVATE_FILE)  # the task wrote it with its own umask
        data = f.read(MAX_RESULT_BYTES + 1)
    if len(data) > MAX_RESULT_BYTES:
        return {"error": f"PARALLEL_RESULT_FILE is larger than {MAX_RESULT_BYTES >> 20} MiB"}
    try:
        return parse(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        return {"error": f"PARALLEL_RESULT_FILE is not valid JSON: {e}"}
