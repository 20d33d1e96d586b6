"""`run FILE --resume [RUN_ID]` (§7): which results of the run being resumed still stand.

A result stands when its task's last journal status was success, its result file is valid, and
the task's definition is the one the result was produced with. Every run records the definition
digest of each task in its `run-started` event; a run written before digests existed has none,
and its tasks then count as unchanged (so old runs stay resumable). Whatever runs again takes
everything downstream of it along: a dependent's inputs change with its dependency.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any

from parallel_executor.engine.journal import (
    check_run_id,
    engine_alive,
    latest_run_of,
    read_events,
    read_status,
    results_of,
)
from parallel_executor.errors import UserError
from parallel_executor.plan import schemas
from parallel_executor.plan.model import Status, TaskFile, TaskSpec
from parallel_executor.system.jsonfile import read_json
from parallel_executor.system.locations import runs_dir

CHANGED = "its definition changed"
NEW = "new in the file"
FAILURES = ("failed", "timeout")
UNSETTLED = {"running": "interrupted", "paused": "interrupted", "stopping": "interrupted",
             "waiting": "never started", "pending": "never started"}
SHOWN = {**UNSETTLED, "not needed": "not needed: decided again"}  # why a task that did not succeed runs again


def definition_digest(task: TaskSpec) -> str:
    """A short stable hash of what the task does (not of how it is run: timeout, retries,
    priority, estimate, subject and phase are left out). ~2 µs a task: one string, one blake2b."""
    t = task
    env = repr(sorted(t.env.items())) if t.env else ""
    text = (f"{t.command!r}\0{t.cwd}\0{env}\0{t.paths!r}\0{t.reads!r}\0{t.artifacts!r}\0{t.blocked_by!r}"
            f"\0{t.type!r}\0{t.isolation!r}\0{t.trigger}")
    if t.prompt is not None:  # what an agent is, and may do (a command task has none of it)
        text += (f"\0{t.prompt!r}\0{t.runner!r}\0{t.subagent!r}\0{t.model!r}\0{t.permission_mode!r}\0{t.tools!r}"
                 f"\0{t.allowed_tools!r}\0{t.max_turns!r}\0{t.budget_usd!r}\0{t.fail_on_denials!r}"
                 f"\0{t.required_skill!r}\0{t.required_agent!r}\0{t.skill_description!r}"
                 f"\0{t.skill_capabilities!r}\0{t.agent_description!r}\0{t.agent_tools!r}")
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def digests(taskfile: TaskFile) -> dict[str, str]:
    """What the run-started event records: task id -> definition digest."""
    return {t.id: definition_digest(t) for t in taskfile.tasks}


@dataclass(frozen=True)
class Resume:
    run_id: str
    results_dir: Path
    reused: dict[str, dict[str, Any]]  # task id -> its result doc: the tasks whose success stands
    rerun: dict[str, str]  # task id -> why it runs again
    started: str | None  # the run's first start time (ISO, as status.json has it)
    previous: list[dict[str, Any]]  # the sessions before this one, oldest first


def plan_resume(asked: str, taskfile: TaskFile, results_dir: Path | None) -> Resume:
    """asked: a run id, or "latest" (the latest run of this task file). UserError (exit 2) for a run
    of another file, a run whose engine is alive, an unknown or malformed id."""
    run_id = latest_run_of(taskfile.path) if asked == "latest" else check_run_id(asked)
    status = read_status(run_id)
    if _resolved(status["task_file"]) != _resolved(str(taskfile.path)):
        raise UserError([f"run {run_id} is a run of {status['task_file']}, not of {taskfile.path}: it cannot be "
                         "resumed with this file",
                         f"resume it with its own file, or run {taskfile.path} with `--resume` alone "
                         "(its latest run) or without it (a new run)"])
    if engine_alive(status):
        raise UserError(f"run {run_id} is still running (engine pid {status['pid']})")
    results_dir = results_dir or results_of(status)
    last, produced, latest = journal_of(run_id)
    known = set(latest) if latest is not None else {str(t.get("id")) for t in status["tasks"]}
    rows = {str(t.get("id")): str(t.get("status", "")) for t in status["tasks"]}
    reused: dict[str, dict[str, Any]] = {}
    rerun: dict[str, str] = {}
    for task in taskfile.tasks:
        before = produced.get(task.id) or (latest or {}).get(task.id)
        why = _why_not(task, known, last.get(task.id) or rows.get(task.id), before)
        doc = None if why else _result(results_dir, task.id)
        if why or doc is None:
            rerun[task.id] = why or "its result file is missing or not valid"
        else:
            reused[task.id] = doc
    _downstream(taskfile.tasks, reused, rerun)
    return Resume(run_id, results_dir, reused, rerun, status.get("started"), sessions(status))


def journal_of(run_id: str) -> tuple[dict[str, str], dict[str, str], dict[str, str] | None]:
    """From runs/<run_id>/events.jsonl: each task's last status; the digest each task's last status
    was reached with (where its session recorded digests); the digests of the last session (None if
    it recorded none)."""
    last: dict[str, str] = {}
    produced: dict[str, str] = {}
    current: dict[str, str] | None = None
    for event in read_events(runs_dir() / run_id):
        if event.get("event") == "run-started":
            found = event.get("digests")
            current = {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else None
            continue
        task = event.get("task")
        if not isinstance(task, str) or "status" not in event:
            continue
        last[task] = str(event["status"])
        digest = current.get(task) if current is not None else None
        if digest is None:
            produced.pop(task, None)  # reached in a session without digests: unknown
        else:
            produced[task] = digest
    return last, produced, current


def _why_not(task: TaskSpec, known: set[str], status: str | None, before: str | None) -> str | None:
    """Why the task's earlier result does not stand (None: it stands, if its result file is good)."""
    if task.id not in known:
        return NEW
    if status != Status.SUCCESS.value:
        return f"did not succeed ({SHOWN.get(status, status) if status else 'never started'})"
    if before is not None and before != definition_digest(task):
        return CHANGED
    return None


def _result(results_dir: Path, task_id: str) -> dict[str, Any] | None:
    try:
        doc = read_json(results_dir / f"{task_id}.json")
    except (OSError, ValueError):
        return None
    if schemas.is_valid("result", doc) and doc["status"] == Status.SUCCESS.value:
        return doc  # type: ignore[no-any-return]
    return None  # a result that cannot be trusted is not reused


def _downstream(tasks: Iterable[TaskSpec], reused: dict[str, dict[str, Any]], rerun: dict[str, str]) -> None:
    """Rerun every dependent (transitively) of a task that runs again, naming the task it all started from."""
    specs = {t.id: t for t in tasks}
    root: dict[str, str] = {tid: tid for tid in rerun}
    for tid in TopologicalSorter({t.id: t.blocked_by for t in specs.values()}).static_order():
        if tid in rerun or tid not in specs:
            continue
        dep = next((d for d in specs[tid].blocked_by if d in rerun), None)
        if dep is None:
            continue
        origin = root[dep]
        root[tid] = origin
        reused.pop(tid, None)
        because = {CHANGED: "whose definition changed", NEW: "which is new in the file"}.get(rerun[origin],
                                                                                                "which runs again")
        rerun[tid] = f"downstream of '{origin}', {because}"


def sessions(status: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The sessions a status.json describes, oldest first: those it lists as previous, then its own."""
    earlier = status.get("previous")
    found = [dict(s) for s in earlier if isinstance(s, dict)] if isinstance(earlier, list) else []
    return [*found, session(status)]


def session(status: Mapping[str, Any]) -> dict[str, Any]:
    """status.json's own session: when, how it ended, and the counts of what did not succeed."""
    tasks = [t for t in status.get("tasks") or [] if isinstance(t, dict)]
    state = str(status.get("state", ""))
    if state in UNSETTLED and not engine_alive(dict(status)):
        state = "cancelled"  # its engine died
    totals = status.get("totals")
    return {"started": status.get("resumed") or status.get("started"), "ended": status.get("ended"),
            "state": state, "tasks": len(tasks),
            "failed": sum(t.get("status") in FAILURES for t in tasks),
            "skipped": sum(t.get("status") == "skipped" for t in tasks),
            "cancelled": sum(t.get("status") == "cancelled" for t in tasks),
            "failed_tasks": [str(t.get("id")) for t in tasks if t.get("status") in FAILURES],
            "wall_time": totals.get("wall_time") if isinstance(totals, dict) else None}


def _resolved(path: str) -> Path:
    try:
        return Path(path).resolve()
    except (OSError, RuntimeError):
        return Path(path)
