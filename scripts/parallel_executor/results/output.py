"""`run --output failed|all|none` (§8): tasks' output printed as they end.

`failed` (the default): a task that failed or timed out shows its last 20 lines at once, so the
reason is on the screen without opening a file. `all`: each task's whole output when it ends,
whole and never interleaved with another's (GNU parallel's grouped output). An agent's streamed
output is shown as its messages and tool calls. Nothing is read or printed while nothing fails.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

from parallel_executor.engine.records import TaskRun
from parallel_executor.plan.model import Status
from parallel_executor.system.fsutil import tail_file

FAILED_LINES = 20
ALL_BYTES = 64 << 20  # of one task's output printed by --output all; past that, its file is named
TAIL_BYTES = 256 << 10  # read to find a failed task's last lines
_FAILED = (Status.FAILED.value, Status.TIMEOUT.value)


class OutputPrinter:
    """A run listener; `emit` writes one finished block (to a stream, or above the live monitor)."""

    def __init__(self, mode: str, emit: Callable[[str], None]) -> None:
        self.mode, self.emit = mode, emit

    def __call__(self, kind: str, task: TaskRun) -> None:
        if self.mode == "all" and task.status.finished and kind == task.status.value and task.attempts:
            self.emit(block(task, None))
        elif self.mode == "failed" and kind in _FAILED:
            self.emit(block(task, FAILED_LINES))


def to_stream(stream: TextIO = sys.stdout) -> Callable[[str], None]:
    def emit(text: str) -> None:
        stream.write(text)
        stream.flush()

    return emit


def block(task: TaskRun, last: int | None) -> str:
    """The task's output as one block: a header, stdout then stderr (the last `last` lines of them)."""
    agent = task.spec.runner is not None
    limit = ALL_BYTES if last is None else TAIL_BYTES
    out = _lines(task.files.stdout, agent, limit)
    err = _lines(task.files.stderr, False, limit)
    if last is not None:
        err = err[-last:]
        out = out[-(last - len(err)):] if len(err) < last else []
    shown = len(out) + len(err)
    what = "no output" if not shown else "its output" if last is None else \
        f"last {shown} lines of its output" if shown > 1 else "its last line of output"
    head = f"── {task.spec.id} ({task.status.value}{', ' + task.error_line if task.error_line else ''}): " \
           f"{what} " + "─" * 8
    body = [*out, *(["── stderr:"] if err and out else []), *err]
    return "\n".join([head, *body]) + "\n"


def _lines(path: str, agent: bool, limit: int) -> list[str]:
    text, cut = tail_file(path, limit)
    lines = text.splitlines()
    if cut and lines:
        lines[0] = f"[... the earlier output is in {path}]"
    if agent:
        from parallel_executor.agents.streams import rendered

        lines = rendered(lines)
    return lines
