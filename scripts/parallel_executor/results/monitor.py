"""The live monitor (§8): what a person at a terminal sees while a run goes on.

rich draws it (no hand-written cursor control; it honours NO_COLOR and the terminal's width).
The engine's loop never draws: its listener only queues finished-task lines, and a thread of
our own redraws every `monitoring.refresh_interval` seconds from a snapshot of the run. The same
view serves `status --watch`, built from status.json instead of a live engine.
"""

from __future__ import annotations

import collections
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import psutil
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from parallel_executor.engine.records import TaskRun
from parallel_executor.engine.run import Run
from parallel_executor.plan.model import Status
from parallel_executor.results.report import agents_line, describe
from parallel_executor.system.timestamps import epoch

SYMBOLS = {"running": ("▶", "cyan"), "waiting": ("…", "yellow"), "suspended": ("‖", "yellow"), "pending": ("·", "dim"),
           "success": ("✓", "green"), "failed": ("✗", "red"), "timeout": ("⏱", "red"),
           "skipped": ("-", "yellow"), "cancelled": ("■", "magenta")}
SHOWN_PER_REFRESH = 30  # finished lines printed per redraw; a burst beyond that is summed up


class Row(NamedTuple):
    id: str
    status: str
    runner: str
    elapsed: float
    detail: str  # last output line, or why it waits


class Snapshot(NamedTuple):
    elapsed: float
    slots: int
    total: int
    done: int
    rows: list[Row]
    agents: str = ""  # e.g. "agents 3/5: rate limited", when the run has agent tasks


def snapshot_of_run(ex: Run) -> Snapshot:
    now = time.time()
    rows = []
    for task in list(ex.running.values()):
        status = "suspended" if task.reason.startswith("suspended") else "running"
        rows.append(Row(task.spec.id, status, _who(task.spec.runner, task.spec.subagent), now - (task.start or now),
                        task.live or last_line(task.files.stdout, task.files.stderr)))
    rows += [Row(t.spec.id, "waiting", _who(t.spec.runner, t.spec.subagent), 0.0, t.reason)
             for t in list(ex.tasks.values()) if t.status is Status.WAITING]
    done = sum(t.status.finished for t in list(ex.tasks.values()))
    return Snapshot(now - ex.started, ex.options.slots, len(ex.tasks), done, rows,
                    agents_line(ex.agents_doc()))


def snapshot_of_status(doc: dict[str, Any]) -> Snapshot:
    """The same view from a status.json (for `status --watch`)."""
    now = time.time()
    results = doc.get("results_dir", "")
    rows = [Row(t["id"], t["status"], _who(t.get("runner"), t.get("subagent")), now - _epoch(t.get("started"), now),
                t.get("latest") or last_line(os.path.join(results, f"{t['id']}.stdout"),
                                             os.path.join(results, f"{t['id']}.stderr"))
                if t["status"] == "running" else t.get("reason") or "")
            for t in doc["tasks"] if t["status"] in ("running", "waiting")]
    done = sum(t["status"] not in ("pending", "waiting", "running") for t in doc["tasks"])
    end = _epoch(doc.get("ended"), now)
    return Snapshot(end - _epoch(doc.get("started"), now), int(doc.get("slots", 0)), len(doc["tasks"]), done, rows,
                    agents_line(doc.get("agents")))


def view(snap: Snapshot, width: int, height: int) -> RenderableType:
    memory = psutil.virtual_memory()
    running = sum(r.status != "waiting" for r in snap.rows)
    head = Text(f"{snap.done}/{snap.total} done · {_clock(snap.elapsed)} · slots {running}/{snap.slots} · "
                f"{snap.agents + ' · ' if snap.agents else ''}"
                f"mem {memory.available / 2**30:.1f}G free · cpu {psutil.cpu_percent():.0f}%",
                no_wrap=True, overflow="ellipsis")
    bar = Table.grid()  # a ProgressBar alone does not end its line
    bar.add_row(ProgressBar(total=max(snap.total, 1), completed=snap.done, width=max(10, min(width, 100) - 1)))
    table = Table(box=None, show_header=False, pad_edge=False, expand=False)
    table.add_column(width=1)
    table.add_column(no_wrap=True, max_width=max(8, width // 4), overflow="ellipsis")
    if width >= 70:
        table.add_column(no_wrap=True, max_width=20, overflow="ellipsis", style="dim")
    table.add_column(no_wrap=True, justify="right")
    table.add_column(no_wrap=True, overflow="ellipsis", ratio=1)
    room = max(1, height - 4)
    for row in snap.rows[:room]:
        symbol, style = SYMBOLS.get(row.status, ("▶", "cyan"))
        cells: list[RenderableType] = [Text(symbol, style=style), row.id, *([row.runner] if width >= 70 else []),
                 _clock(row.elapsed) if row.status != "waiting" else "", Text(row.detail, style="dim")]
        table.add_row(*cells)
    parts: list[RenderableType] = [head, bar, table]
    if len(snap.rows) > room:
        parts.append(Text(f"... and {len(snap.rows) - room} more", style="dim"))
    return Group(*parts)


def finished_line(kind: str, task: TaskRun) -> Text | None:
    detail = describe(kind, task)
    if detail is None or kind in ("started", "waiting", "resumed"):
        return None
    symbol, style = SYMBOLS.get(kind, ("↻", "yellow"))
    return Text.assemble((f"{symbol} ", style), (task.spec.id, "bold"), f"  {kind}  ", (detail, "dim"))


class Monitor:
    """Draws snapshots every `interval` seconds on `console` until stopped; also an executor listener."""

    def __init__(self, interval: float, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.interval = interval
        self.lines: collections.deque[Text] = collections.deque()
        self.source: Callable[[], Snapshot] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="monitor", daemon=True)
        self._live = Live(console=self.console, auto_refresh=False, transient=True, redirect_stdout=False,
                          redirect_stderr=False)

    def __call__(self, kind: str, task: TaskRun) -> None:
        line = finished_line(kind, task)
        if line is not None:
            self.lines.append(line)  # deque.append is atomic: the drawing thread takes them

    def show(self, text: str) -> None:
        """A block of text (a task's output) printed above the live display at the next redraw."""
        self.lines.append(Text(text.rstrip("\n")))

    def start(self, source: Callable[[], Snapshot]) -> None:
        self.source = source
        self._live.start()
        self._thread.start()

    def stop(self) -> None:
        if self.source is None:
            return  # never started
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._draw()
        self._live.stop()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._draw()

    def _draw(self) -> None:
        assert self.source is not None
        self._print_finished(self._take_lines())
        width, height = self.console.size
        self._live.update(view(self.source(), width, height), refresh=True)

    def _take_lines(self) -> list[Text]:
        taken = []
        while self.lines:
            taken.append(self.lines.popleft())
        return taken

    def _print_finished(self, lines: Iterable[Text]) -> None:
        lines = list(lines)
        shown = lines[-SHOWN_PER_REFRESH:]
        if len(lines) > len(shown):
            self.console.print(Text(f"... {len(lines) - len(shown)} more finished", style="dim"))
        for line in shown:
            self.console.print(line, no_wrap=True, overflow="ellipsis")


def last_line(*paths: str) -> str:
    """The last non-empty line of the first file that has one (a task's stdout, then stderr)."""
    for path in paths:
        try:
            with open(path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - 2048))
                lines = f.read().decode("utf-8", errors="replace").splitlines()
        except OSError:
            continue
        for line in reversed(lines):
            if line.strip():
                return line.strip()
    return ""


def _who(runner: str | None, subagent: str | None) -> str:
    return "/".join(x for x in (runner or "command", subagent) if x and x != "general-purpose")


def _epoch(stamp: str | None, default: float) -> float:
    return epoch(stamp) if stamp else default


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(max(0.0, seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
