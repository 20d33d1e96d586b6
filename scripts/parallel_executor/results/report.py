"""What a person or a script sees of a run (§8): event lines, the final table, the JSON summary."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TextIO

from parallel_executor.engine.records import TaskRun
from parallel_executor.engine.run import Run
from parallel_executor.results.merge import summary_line

if TYPE_CHECKING:
    from parallel_executor.results.aftermath import Aftermath
from parallel_executor.plan.model import Status
from parallel_executor.system.timestamps import iso

_SHOWN = {"started", "retrying", "waiting", "suspended", "resumed", *(s.value for s in Status)}


def describe(kind: str, task: TaskRun) -> str | None:
    """The detail of an event line, or None for events a person need not see."""
    if kind not in _SHOWN:
        return None
    return {
        "started": f"attempt {task.attempts}" + ("" if task.transient else f"/{task.spec.retries + 1}")
                   + (f", pid {task.pid}" if task.pid else ""),  # (no pid here: it runs on a Dask worker)
        "retrying": task.reason,
        "waiting": task.reason,
        "success": f"in {task.busy:.2f}s",
    }.get(kind, task.error or task.reason)


class EventPrinter:
    """One line per event, with a time stamp: readable in a log and in CI."""

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.stream = stream

    def __call__(self, kind: str, task: TaskRun) -> None:
        detail = describe(kind, task)
        if detail is not None:
            self.stream.write(f"{time.strftime('%H:%M:%S')} {kind:<9} {task.spec.id}  {detail}\n")
            self.stream.flush()


def table(ex: Run, after: Aftermath, full_up_to: int = 100) -> str:
    """Every task for a run of up to `full_up_to` tasks; past that, those that did not succeed. Then
    the merged summary of each type, and the figures (§8)."""
    from tabulate import tabulate  # imported here: it costs start-up time a --json run never needs

    shown = [t for t in ex.tasks.values() if len(ex.tasks) <= full_up_to or t.status is not Status.SUCCESS]
    failing = _failing_tests(after.merged)
    rows: list[tuple[str, str, int | str, str, str, str]] = [
        (t.spec.id, t.status.value + (" (earlier)" if t.reused else ""), t.attempts, f"{t.busy:.2f}s",
         f"${t.cost:.4f}" if t.cost else "-", shorten(_problem(t, failing.get(t.spec.id, []))))
        for t in shown
    ]
    if len(shown) < len(ex.tasks):
        rows.append((f"... {len(ex.tasks) - len(shown)} more", "success", "", "", "", ""))
    sums = ex.totals()
    counts: dict[str, int] = {}
    for t in ex.tasks.values():
        counts[t.status.value] = counts.get(t.status.value, 0) + 1
    estimate = after.speedup_estimate(float(sums["wall_time"]))
    footer = [
        ("run", f"{ex.state.run_id}: {ex.final_state()} ({', '.join(f'{n} {s}' for s, n in counts.items())})"),
        *((name, line.removeprefix(f"{name}: ")) for name, group in after.merged.items()
          if (line := summary_line(name, group))),
        ("wall time", f"{sums['wall_time']:.2f}s"),
        ("sum of task times", f"{sums['task_time_sum']:.2f}s"),
        ("parallelism", f"{sums['parallelism']:.2f} tasks at once on average (sum of task times / wall time)"),
        ("speedup estimate", _estimate_line(estimate, after)),
        ("cost", f"${sums['cost_usd']:.4f} over every attempt ({sums['input_tokens']} tokens in, "
                 f"{sums['output_tokens']} out)"),
        ("results", str(ex.state.results_dir)),
        ("timeline", after.timeline or f"parallel-executor timeline {ex.state.run_id} --html FILE"),
        *((f"worktree {tree.key}", worktree_line(tree.doc())) for tree in (ex.worktrees.trees.values()
                                                                          if ex.worktrees else ())),
    ]
    head = tabulate(rows, headers=["task", "status", "attempts", "duration", "cost", "error"])
    return head + "\n\n" + tabulate(footer, tablefmt="plain")


def _estimate_line(estimate: float | None, after: Aftermath) -> str:
    if estimate is None:
        return "no history yet: the next run of these tasks will have one (each task's time when least contended)"
    assert after.serial_time is not None
    n = after.without_history
    partial = f"; {n} {'task has' if n == 1 else 'tasks have'} no earlier run" if n else ""
    return f"{estimate:.2f}x against running them one by one ({after.serial_time:.2f}s, each task at its " \
           f"least contended time{partial})"


def _failing_tests(merged: Mapping[str, Any]) -> dict[str, list[str]]:
    """The failing test ids of each test task, as the merge found them (§9)."""
    found: dict[str, list[str]] = {}
    for group in merged.values():
        details = group.get("details") if isinstance(group, dict) else None
        for tid, detail in details.items() if isinstance(details, dict) else ():
            if isinstance(detail, dict) and isinstance(detail.get("failing_tests"), list) and detail["failing_tests"]:
                found[str(tid)] = [str(x) for x in detail["failing_tests"]]
    return found


def _problem(t: TaskRun, failing: list[str]) -> str:
    """A failed task's error's first line (with its class; for a test task the failing tests), or
    the tools an agent was denied (§7)."""
    denied = t.outcome.denials if t.outcome else ()
    error = t.error_line
    text = f"[{t.error_class}] {error}" if error and t.error_class else error
    if failing and t.status is not Status.SUCCESS:
        text = f"{len(failing)} failing: {', '.join(failing[:3])}" + (" ..." if len(failing) > 3 else "")
    if denied:
        text = (text + "; " if text else "") + "denied: " + ", ".join(denied)
    return text


def summary(ex: Run, waves: list[list[str]], after: Aftermath) -> dict[str, Any]:
    return {
        "run_id": ex.state.run_id,
        "status": ex.final_state(),
        "results_dir": str(ex.state.results_dir),
        **(sums := ex.totals()),
        "speedup_estimate": after.speedup_estimate(float(sums["wall_time"])),
        "tokens": {"input": sums["input_tokens"], "output": sums["output_tokens"]},
        "tasks": {
            t.spec.id: {"status": t.status.value, "attempts": t.attempts, "exit_code": t.exit_code,
                        "start_time": iso(t.start), "end_time": iso(t.end), "duration": round(t.busy, 6),
                        "error": t.error, "error_class": t.error_class if t.status is not Status.SUCCESS else None,
                        "cost_usd": round(t.cost, 6),
                        "tokens": {"input": t.tokens_in, "output": t.tokens_out},
                        "session_id": t.outcome.session_id if t.outcome else None,
                        "permission_denials": list(t.outcome.denials) if t.outcome else []}
            for t in ex.tasks.values()
        },
        "waves": waves,
        "merged": after.merged,
        "timeline": after.timeline,
        **({"worktrees": ex.worktrees.docs()} if ex.worktrees else {}),
    }


def worktree_line(doc: dict[str, Any]) -> str:
    """What became of a worktree's work (§11): merged, kept (where, and how to finish), or why not."""
    state, branch = doc["state"], doc["branch"]
    if state == "merged":
        how = "squashed into" if doc["merge"] == "squash" else "merged into"
        return f"{branch} {how} {doc['target']}; worktree and branch removed"
    if state == "kept" and doc["merge"] == "none" and not doc.get("error"):
        return f"{branch} kept (merge: none), not merged"
    error = doc.get("error") or "not merged"
    kept = state != "removed" and doc["path"] not in error and (state != "kept" or doc["merge"] != "none")
    return f"{branch} {state}: {error}" + (f"; worktree kept at {doc['path']}" if kept else "")


def agents_line(doc: dict[str, Any] | None) -> str:
    """The agents part of the header, from the status document's `agents`."""
    if not doc:
        return ""
    lowered = doc.get("rate_limited") or {}
    cap = min([int(doc.get("cap", 0)), *map(int, lowered.values())])
    line = f"agents {doc.get('running', 0)}/{cap}" + (": rate limited" if lowered else "")
    if doc.get("budget_usd") is not None:
        line += f" · ${doc.get('spent_usd', 0):.2f} of ${doc['budget_usd']:g}"
    return line


def shorten(text: str, width: int = 60) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= width else text[: width - 3] + "..."
