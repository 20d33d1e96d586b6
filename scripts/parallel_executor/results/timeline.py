"""When each task of a run ran (§5 `timeline`): typed records built from the journal, and the text
Gantt chart. The journal (events.jsonl) is the one source of attempts, waits and pauses; status.json
gives the run's frame and each task's row; result files, or the engine's own records right after a
run, add exit codes, durations and costs. An attempt with no end (a run still going, or one whose
engine was killed) is drawn up to the run's horizon and marked open."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from parallel_executor.system.timestamps import epoch

ENDINGS = frozenset({"success", "failed", "timeout", "cancelled", "retrying"})  # how an attempt ends
UNSTARTED = frozenset({"skipped", "not needed"})  # settled without an attempt
SPANS = {"waiting": "waiting", "suspended": "suspended", "resumed": "suspended", "paused": "paused",
         "unpaused": "paused", "throttled": "throttled", "unthrottled": "throttled"}  # event -> span kind
_CLOSES = frozenset({"resumed", "unpaused", "unthrottled"})
_EXIT = re.compile(r"exit code (-?\d+)")
BAR, BAD, FAIL, OPEN, WAIT, HELD, SKIP = "█", "▓", "✗", "▸", "·", "‖", "-"
SPARK = " ▁▂▃▄▅▆▇█"
LEGEND = f"{BAR} ran  {BAD}{FAIL} failed attempt  {OPEN} still open  {WAIT} waiting  {HELD} paused  {SKIP} skipped"


class Attempt(NamedTuple):
    number: int
    start: float
    end: float | None  # None: no end in the journal (still running, or its engine died)
    outcome: str  # an ENDINGS kind, or "open"
    exit_code: int | None
    error: str

    @property
    def failed(self) -> bool:
        return self.outcome not in ("success", "open")


class Span(NamedTuple):
    """A time a task waited (for a slot, a path lock, memory...), or was paused, suspended or throttled."""

    kind: str
    start: float
    end: float | None
    reason: str


class Detail(NamedTuple):
    """What a task's result (file or the engine's record) adds; every field may be unknown."""

    exit_code: int | None = None
    duration: float | None = None
    cost_usd: float | None = None
    error: str = ""


@dataclass
class TaskLine:
    id: str
    subject: str
    status: str
    reason: str
    attempts: list[Attempt] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)
    argv: list[str] = field(default_factory=list)  # of its latest attempt
    settled: float | None = None  # when it was skipped or found not needed
    detail: Detail = field(default_factory=Detail)

    @property
    def duration(self) -> float:
        if self.detail.duration is not None:
            return self.detail.duration
        return sum((a.end or a.start) - a.start for a in self.attempts)

    @property
    def open(self) -> bool:
        return any(a.end is None for a in self.attempts)


@dataclass
class Timeline:
    run_id: str
    state: str
    start: float
    horizon: float  # the run's end; for a run with no end, now (engine alive) or its last event
    slots: int
    tasks: list[TaskLine]
    run_spans: list[Span]  # the whole run paused
    totals: Mapping[str, Any]  # status.json's totals once finished, else {}
    serial_time: float | None = None  # the tasks one by one (the speedup estimate's numerator), when known

    @property
    def wall(self) -> float:
        return float(self.totals.get("wall_time") or max(0.0, self.horizon - self.start))

    @property
    def task_time(self) -> float:
        return float(self.totals.get("task_time_sum") or sum(t.duration for t in self.tasks))

    @property
    def parallelism(self) -> float:
        return self.task_time / self.wall if self.wall > 0 else 0.0

    @property
    def speedup_estimate(self) -> float | None:
        return self.serial_time / self.wall if self.serial_time is not None and self.wall > 0 else None

    def end_of(self, moment: float | None) -> float:
        return self.horizon if moment is None else moment

    def usage(self) -> list[tuple[float, int]]:
        """Tasks running over time: (moment, count from then on), in order; the last count is 0."""
        steps: dict[float, int] = {}
        for task in self.tasks:
            for a in task.attempts:
                steps[a.start] = steps.get(a.start, 0) + 1
                end = self.end_of(a.end)
                steps[end] = steps.get(end, 0) - 1
        level, out = 0, []
        for moment in sorted(steps):
            level += steps[moment]
            out.append((moment, level))
        return out


def build(doc: Mapping[str, Any], events: Iterable[Mapping[str, Any]], details: Mapping[str, Detail],
          until: float | None = None) -> Timeline:
    """The timeline of a run from its status document and journal. What has no end is drawn up to
    the run's end, else `until` (now, while its engine lives), else its last event."""
    rows = doc.get("tasks") or []
    tasks = {str(r["id"]): TaskLine(str(r["id"]), str(r.get("subject") or ""), str(r.get("status") or ""),
                                    str(r.get("reason") or ""), detail=details.get(str(r["id"]), Detail()))
             for r in rows if isinstance(r, Mapping) and "id" in r}
    run_spans: list[Span] = []
    start = epoch(doc["started"]) if doc.get("started") else None
    last = start or 0.0
    for event in events:
        try:
            moment = epoch(str(event["time"]))
        except (KeyError, ValueError):
            continue
        last, start = max(last, moment), moment if start is None else min(start, moment)
        kind = str(event.get("event") or "")
        if kind in ("run-paused", "run-unpaused"):
            _span(run_spans, "paused", moment, kind == "run-paused", str(event.get("reason") or ""))
        task = tasks.get(str(event.get("task"))) if "task" in event else None
        if task is not None:
            _apply(task, kind, moment, event)
    ended = epoch(doc["ended"]) if doc.get("ended") else None
    horizon = ended if ended is not None else until if until is not None else last
    first = start if start is not None else horizon
    totals = doc.get("totals") if isinstance(doc.get("totals"), Mapping) else {}
    return Timeline(str(doc.get("run_id") or ""), str(doc.get("state") or ""), first, max(horizon, first),
                    int(doc.get("slots") or 0), list(tasks.values()), run_spans, totals or {})


def _apply(task: TaskLine, kind: str, moment: float, event: Mapping[str, Any]) -> None:
    error = str(event.get("error") or "")
    if kind == "started":
        _close_waits(task, moment)
        task.attempts.append(Attempt(int(event.get("attempt") or len(task.attempts) + 1), moment, None, "open",
                                     None, ""))
        argv = event.get("argv")
        task.argv = [str(a) for a in argv] if isinstance(argv, list) else task.argv
    elif kind in ENDINGS:
        _close_waits(task, moment)
        if task.attempts and task.attempts[-1].end is None:
            code = _EXIT.search(error)
            task.attempts[-1] = task.attempts[-1]._replace(end=moment, outcome=kind, error=error,
                                                           exit_code=int(code.group(1)) if code else None)
        if task.spans:
            task.spans[:] = [s._replace(end=moment) if s.end is None else s for s in task.spans]
        if kind == "retrying":  # the back-off before the next attempt
            task.spans.append(Span("waiting", moment, None, str(event.get("reason") or "retrying")))
    elif kind in UNSTARTED:
        _close_waits(task, moment)
        task.settled = moment
    elif kind in SPANS:
        _span(task.spans, SPANS[kind], moment, kind not in _CLOSES, str(event.get("reason") or ""))


def _span(spans: list[Span], kind: str, moment: float, opens: bool, reason: str) -> None:
    """Close the open span of this kind; open a new one unless the event ends it. A new waiting
    reason ends the old wait and starts another."""
    for n, span in enumerate(spans):
        if span.kind == kind and span.end is None:
            if opens and span.reason == reason:
                return  # the same wait, said again
            spans[n] = span._replace(end=moment)
    if opens:
        spans.append(Span(kind, moment, None, reason))


def _close_waits(task: TaskLine, moment: float) -> None:
    if task.spans:
        task.spans[:] = [s._replace(end=moment) if s.kind == "waiting" and s.end is None else s for s in task.spans]


# ---- the text chart ------------------------------------------------------------------------


def chart(tl: Timeline, width: int) -> list[str]:
    """One row per task (its id never cut), a time axis, the slots in use, a legend, the summary."""
    idw = max([len(t.id) for t in tl.tasks] + [5])
    bar_width = max(12, width - idw - 24)
    scale = Scale(tl.start, tl.horizon, bar_width)
    rows = [f"{t.id:<{idw}} |{_bar(t, tl, scale)}| {_state(t):<9} {t.duration:>7.2f}s" for t in tl.tasks]
    peak = max((level for _, level in tl.usage()), default=0)
    rows.append(" " * idw + "  " + axis(scale))
    rows.append(f"{'slots':<{idw}} |{_sparkline(tl, scale, max(peak, tl.slots, 1))}| peak {peak} of {tl.slots}")
    return [*rows, "", LEGEND, summary(tl)]


def summary(tl: Timeline) -> str:
    estimate = tl.speedup_estimate
    speedup = f"speedup estimate {estimate:.2f}x" if estimate is not None else "speedup estimate unknown (no history)"
    still = ", still open" if any(t.open for t in tl.tasks) else ""
    return (f"run {tl.run_id} ({tl.state}{still}): wall {tl.wall:.2f}s, task time {tl.task_time:.2f}s, "
            f"parallelism {tl.parallelism:.2f}, {speedup}")


class Scale(NamedTuple):
    start: float
    end: float
    columns: int

    def col(self, moment: float) -> int:
        span = self.end - self.start
        at = int((moment - self.start) / span * self.columns) if span > 0 else 0
        return min(self.columns - 1, max(0, at))

    def moment(self, col: int) -> float:
        return self.start + (self.end - self.start) * col / self.columns


def _bar(task: TaskLine, tl: Timeline, scale: Scale) -> str:
    cells = [" "] * scale.columns
    for span in task.spans:
        char = WAIT if span.kind == "waiting" else HELD
        for c in range(scale.col(span.start), scale.col(tl.end_of(span.end)) + 1):
            cells[c] = char
    if task.settled is not None and not task.attempts:
        cells[scale.col(task.settled)] = SKIP
    for a in task.attempts:
        first, last = scale.col(a.start), scale.col(tl.end_of(a.end))
        for c in range(first, last + 1):
            cells[c] = BAD if a.failed else BAR
        if a.failed:
            cells[last] = FAIL
        elif a.end is None:
            cells[last] = OPEN
    return "".join(cells)


def _state(task: TaskLine) -> str:
    return "running" if task.open and task.status in ("running", "paused", "") else task.status


def axis(scale: Scale) -> str:
    """Ticks with the seconds since the run began, about every 12 columns."""
    line = [" "] * (scale.columns + 8)
    step = max(12, scale.columns // 6)
    for col in range(0, scale.columns, step):
        label = f"{scale.moment(col) - scale.start:.1f}s"
        if col + len(label) > scale.columns + 8:
            break
        line[col] = "^"
        line[col + 1: col + 1 + len(label)] = label
    return "".join(line).rstrip()


def _sparkline(tl: Timeline, scale: Scale, top: int) -> str:
    """Per column, the most tasks running at once within it."""
    most = [0] * scale.columns
    steps = tl.usage()
    for n, (moment, level) in enumerate(steps):
        until = steps[n + 1][0] if n + 1 < len(steps) else moment
        for c in range(scale.col(moment), scale.col(until) + 1 if until > moment else scale.col(moment) + 1):
            most[c] = max(most[c], level)
    return "".join(SPARK[min(len(SPARK) - 1, -(-level * (len(SPARK) - 1) // top))] for level in most)
