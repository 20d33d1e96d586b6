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

from parallel_executor.engine.documents import shown
from parallel_executor.engine.records import TaskRun
from parallel_executor.engine.run import Run
from parallel_executor.plan.model import Status
from parallel_executor.results.report import agents_line, describe
from parallel_executor.system.timestamps import epoch

SYMBOLS = {"running": ("▶", "cyan"), "waiting": ("…", "yellow"), "paused": ("‖", "yellow"), "pending": ("·", "dim"),
           "success": ("✓", "green"), "failed": ("✗", "red"), "timeout": ("⏱", "red"),
           "skipped": ("-", "yellow"), "cancelled": ("■", "magenta")}
SHOWN_PER_REFRESH = 30  # finished lines printed per redraw; a burst beyond that is summed up
QUEUE_ROWS = 100  # queued tasks a snapshot lists; the rest are counted
FAILED = frozenset({"failed", "timeout"})
RUNNING = frozenset({"running", "paused"})
QUEUED = ("waiting", "pending")  # in the order they are listed


class Row(NamedTuple):
    id: str
    status: str
    runner: str
    elapsed: float | None  # of a running task
    detail: str  # last output line, or why it waits


class Snapshot(NamedTuple):
    elapsed: float
    slots: int
    total: int
    done: int
    rows: list[Row]  # running tasks, then queued ones (waiting, then pending), up to QUEUE_ROWS of those
    agents: str  # e.g. "agents 3/5: rate limited", when the run has agent tasks
    failed: int
    queued: dict[str, int]  # every queued task, counted by status
    eta: float | None
    state: str  # running, paused, stopping or how it ended


def snapshot_of_run(ex: Run) -> Snapshot:
    now, tasks, paused = time.time(), list(ex.tasks.values()), ex.scheduler.paused
    rows = [Row(t.spec.id, t.status.value, _who(t.spec.runner, t.spec.subagent, t.branch), now - (t.start or now),
                t.reason if t.status is not Status.RUNNING else
                t.live or last_line(t.files.stdout, t.files.stderr))
            for t in list(ex.running.values())]
    queued: dict[str, list[Row]] = {"waiting": [], "pending": []}
    for t in tasks:
        if t.status in (Status.PENDING, Status.WAITING):
            status, reason = shown(t, ex.tasks, paused)
            queued[status].append(Row(t.spec.id, status, _who(t.spec.runner, t.spec.subagent), None, reason))
    done = sum(t.status.finished for t in tasks)
    failed = sum(t.status.value in FAILED for t in tasks)
    try:
        eta = ex.eta()
    except (KeyError, RuntimeError):  # the loop's thread changed the run meanwhile: next time
        eta = None
    return Snapshot(now - ex.started, ex.options.slots, len(tasks), done, rows + _first(queued),
                    agents_line(ex.agents_doc()), failed, {k: len(v) for k, v in queued.items()}, eta,
                    ex.scheduler.live_state())


def snapshot_of_status(doc: dict[str, Any]) -> Snapshot:
    """The same view from a status.json (for `status --watch`)."""
    now = time.time()
    results = doc.get("results_dir", "")
    rows: list[Row] = []
    queued: dict[str, list[Row]] = {"waiting": [], "pending": []}
    for t in doc["tasks"]:
        who = _who(t.get("runner"), t.get("subagent"), t.get("branch"))
        if t["status"] in RUNNING:
            detail = t.get("reason") or "" if t["status"] == "paused" else t.get("latest") or last_line(
                os.path.join(results, f"{t['id']}.stdout"), os.path.join(results, f"{t['id']}.stderr"))
            rows.append(Row(t["id"], t["status"], who, now - _epoch(t.get("started"), now), detail))
        elif t["status"] in queued:
            queued[t["status"]].append(Row(t["id"], t["status"], who, None, t.get("reason") or ""))
    done = sum(t["status"] not in (*RUNNING, *QUEUED) for t in doc["tasks"])
    failed = sum(t["status"] in FAILED for t in doc["tasks"])
    end = _epoch(doc.get("ended"), now)
    return Snapshot(end - _epoch(doc.get("started"), now), int(doc.get("slots", 0)), len(doc["tasks"]), done,
                    rows + _first(queued), agents_line(doc.get("agents")), failed,
                    {k: len(v) for k, v in queued.items()}, None, str(doc.get("state", "")))


def _first(queued: dict[str, list[Row]]) -> list[Row]:
    return (queued["waiting"] + queued["pending"])[:QUEUE_ROWS]


def view(snap: Snapshot, width: int, height: int) -> RenderableType:
    memory = psutil.virtual_memory()
    running = sum(r.status in RUNNING for r in snap.rows)
    state = {"paused": ("PAUSED · ", "bold yellow"), "stopping": ("stopping · ", "bold red")}.get(snap.state, ("", ""))
    eta = f" · ETA {_clock(snap.eta)}" if snap.eta is not None and snap.done < snap.total else ""
    head = Text.assemble(state, f"{snap.done}/{snap.total} done",
                         (f" · {snap.failed} failed", "red") if snap.failed else "",
                         f" · {_clock(snap.elapsed)}{eta} · slots {running}/{snap.slots} · "
                         f"{snap.agents + ' · ' if snap.agents else ''}"
                         f"mem {memory.available / 2**30:.1f}G free · cpu {psutil.cpu_percent():.0f}%")
    head.no_wrap, head.overflow = True, "ellipsis"
    bar = Table.grid()  # a ProgressBar alone does not end its line
    bar.add_row(ProgressBar(total=max(snap.total, 1), completed=snap.done, width=max(10, min(width, 100) - 1)))
    counts = {"running": running, **snap.queued}
    room = max(1, height - 4)
    listed = sum(counts.values())
    shown = snap.rows if listed <= room and len(snap.rows) == listed else snap.rows[:room - 1]
    lines: list[RenderableType] = [head, bar, *_lines(shown, width)]
    seen = {k: sum(r.status in (RUNNING if k == "running" else (k,)) for r in shown) for k in counts}
    more = [f"{n - seen[k]} {k}" for k, n in counts.items() if n > seen[k]]
    if more:  # the queue collapsed to counts
        lines.append(Text(f"... and {', '.join(more)}", style="dim", no_wrap=True, overflow="ellipsis"))
    return Group(*lines)


def _lines(rows: list[Row], width: int) -> list[Text]:
    """One line per task: the id, status and elapsed time whole; the runner when there is room;
    the output text or reason in what is left, cut first."""
    if not rows:
        return []
    fixed = 2 + 1 + 7 + 1 + 7 + 2  # symbol, status, elapsed and the spaces between
    idw = max(len(r.id) for r in rows)
    idw = idw if idw + fixed + 16 <= width else 0  # aligned while that leaves room for text
    runner = width >= 100
    rw = min(16, max(len(r.runner) for r in rows)) if runner else 0
    lines = []
    for r in rows:
        symbol, style = SYMBOLS.get(r.status, ("▶", "cyan"))
        elapsed = _clock(r.elapsed) if r.elapsed is not None else ""
        line = Text.assemble((f"{symbol} ", style), (f"{r.id:<{idw}}", "bold"), f" {r.status:<7} {elapsed:>7}",
                             (f"  {r.runner[:rw]:<{rw}}" if runner else "", "dim"), "  ", (r.detail, "dim"))
        line.truncate(width, overflow="ellipsis")
        lines.append(line)
    return lines


def finished_line(kind: str, task: TaskRun) -> Text | None:
    detail = describe(kind, task)
    if detail is None or kind in ("started", "waiting", "resumed", "paused"):  # the rows show these
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
        self._wake = threading.Event()  # a notice: redraw now, not at the next refresh
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

    def notice(self, line: str) -> None:
        """A line about the whole run ("stopping: …", "paused: …"), shown at once."""
        self.lines.append(Text(line, style="bold yellow"))
        self._wake.set()

    def start(self, source: Callable[[], Snapshot]) -> None:
        """Draw the first frame now (from the drawing thread), then every `interval` seconds."""
        self.source = source
        self._live.start()
        self._thread.start()

    def stop(self) -> None:
        if self.source is None:
            return  # never started
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join()
        self._draw()
        self._live.stop()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._draw()
            self._wake.wait(self.interval)
            self._wake.clear()

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


def _who(runner: str | None, subagent: str | None, branch: str | None = None) -> str:
    who = "/".join(x for x in (runner or "command", subagent) if x and x != "general-purpose")
    return f"{who} ⎇ {branch.rsplit('/', 1)[-1]}" if branch else who  # its worktree's epic or task


def _epoch(stamp: str | None, default: float) -> float:
    return epoch(stamp) if stamp else default


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(max(0.0, seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
