"""A run's timeline as one self-contained HTML page: inline SVG and CSS, no script, no external
resource, and a Content-Security-Policy that forbids fetching any, so opening it touches no network.
Hover details are SVG <title> elements. Every text from the run (ids, commands, prompts, errors,
paths) is data, escaped."""

from __future__ import annotations

import shlex
from html import escape
from pathlib import Path

from parallel_executor.results.timeline import Attempt, TaskLine, Timeline, summary
from parallel_executor.system.fsutil import write_atomic

ROW = 18  # px per task row
CHAR = 7.2  # px per character of the monospace labels
BAR_WIDTH = 900
SLOTS_HEIGHT = 60
MAX_COMMAND = 600  # characters of a command or prompt shown on hover
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
STYLE = """body{font:13px/1.4 system-ui,sans-serif;margin:16px;color:#222;background:#fff}
h1{font-size:16px;margin:0 0 4px}p{margin:0 0 10px}svg text{font:12px monospace;fill:#222}
.ok{fill:#3a9a4a}.bad{fill:#d9822b}.mark{stroke:#c0392b;stroke-width:2.5}.open{fill:#3a7bd5}
.waiting{fill:#ddd}.held{fill:#f1c40f;opacity:.6}.skipped{fill:#b07cc6}.grid{stroke:#eee}
.slots{fill:#7fa7d9;stroke:#3a7bd5}.task:hover rect{stroke:#000;stroke-width:.5}.run-paused{fill:#f1c40f;opacity:.15}
"""


def write_page(tl: Timeline, path: Path) -> None:
    """Owner-only, replaced atomically; a link at the target is replaced, never followed."""
    write_atomic(path, page(tl).encode("utf-8"))


def page(tl: Timeline) -> str:
    label = CHAR * max([len(t.id) for t in tl.tasks] + [5]) + 12
    x = _Scale(tl, label)
    rows_height = ROW * len(tl.tasks)
    height = rows_height + SLOTS_HEIGHT + 40
    body = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{label + BAR_WIDTH + 40:.0f}" height="{height}" '
            f'role="img" aria-label="timeline of run {escape(tl.run_id)}">']
    body += [f'<rect class="run-paused" x="{x(s.start):.1f}" y="0" width="{x.width(s.start, s.end):.1f}" '
             f'height="{rows_height}"><title>run paused {escape(s.reason)}</title></rect>' for s in tl.run_spans]
    body += _grid(tl, x, rows_height, height)
    body += [_task(t, n * ROW, tl, x) for n, t in enumerate(tl.tasks)]
    body.append(_slots(tl, x, rows_height + 30))
    body.append("</svg>")
    estimate = f"{tl.speedup_estimate:.2f}x" if tl.speedup_estimate is not None else "unknown (no history)"
    head = (f"<h1>Run {escape(tl.run_id)}: {escape(tl.state)}</h1>\n<p class=\"figures\">wall time "
            f"{tl.wall:.2f}s · sum of task times {tl.task_time:.2f}s · <b>parallelism {tl.parallelism:.2f}</b> · "
            f"<b>speedup estimate {escape(estimate)}</b> · {len(tl.tasks)} tasks, {tl.slots} slots</p>")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
            f"<title>timeline {escape(tl.run_id)}</title>\n<style>{STYLE}</style></head>\n<body>\n{head}\n"
            + "\n".join(body) + f"\n<p>{escape(summary(tl))}</p>\n</body></html>\n")


class _Scale:
    def __init__(self, tl: Timeline, left: float) -> None:
        self.tl, self.left = tl, left
        self.per_second = BAR_WIDTH / (tl.horizon - tl.start) if tl.horizon > tl.start else 0.0

    def __call__(self, moment: float) -> float:
        return self.left + (moment - self.tl.start) * self.per_second

    def width(self, start: float, end: float | None) -> float:
        return max(1.0, (self.tl.end_of(end) - start) * self.per_second)


def _grid(tl: Timeline, x: _Scale, rows_height: int, height: int) -> list[str]:
    out = []
    for n in range(11):
        at = x.left + BAR_WIDTH * n / 10
        out.append(f'<line class="grid" x1="{at:.1f}" y1="0" x2="{at:.1f}" y2="{rows_height}"/>'
                   f'<text x="{at:.1f}" y="{rows_height + 14}">{(tl.horizon - tl.start) * n / 10:.1f}s</text>')
    return out


def _task(t: TaskLine, y: int, tl: Timeline, x: _Scale) -> str:
    parts = [f'<g class="task" data-task-id="{escape(t.id)}" data-status="{escape(t.status)}">'
             f"<title>{escape(_hover(t, tl))}</title>", f'<text x="4" y="{y + 13}">{escape(t.id)}</text>']
    for s in t.spans:
        kind = "waiting" if s.kind == "waiting" else "held"
        parts.append(f'<rect class="{kind}" x="{x(s.start):.1f}" y="{y + 5}" width="{x.width(s.start, s.end):.1f}" '
                     f'height="{ROW - 10}"/>')
    if t.settled is not None and not t.attempts:
        parts.append(f'<rect class="skipped" x="{x(t.settled):.1f}" y="{y + 3}" width="3" height="{ROW - 6}"/>')
    for a in t.attempts:
        parts.append(_attempt(a, y, tl, x))
    return "".join(parts) + "</g>"


def _attempt(a: Attempt, y: int, tl: Timeline, x: _Scale) -> str:
    kind = "bad" if a.failed else "open" if a.end is None else "ok"
    left, width = x(a.start), x.width(a.start, a.end)
    bar = (f'<rect class="attempt {kind}" data-attempt="{a.number}" x="{left:.1f}" y="{y + 3}" '
           f'width="{width:.1f}" height="{ROW - 6}"/>')
    if not a.failed:
        return bar
    right, top, bottom = left + width, y + 3, y + ROW - 3
    return bar + (f'<path class="mark fail" d="M{right - 5:.1f} {top}L{right + 5:.1f} {bottom}'
                  f'M{right - 5:.1f} {bottom}L{right + 5:.1f} {top}"/>')


def _slots(tl: Timeline, x: _Scale, top: int) -> str:
    steps = tl.usage()
    peak = max([level for _, level in steps] + [tl.slots, 1])
    base = top + SLOTS_HEIGHT

    def y(level: int) -> float:
        return base - SLOTS_HEIGHT * level / peak

    d = [f"M{x(tl.start):.1f} {base}"]
    for moment, level in steps:
        d.append(f"H{x(moment):.1f}V{y(level):.1f}")
    d.append(f"H{x(tl.horizon):.1f}V{base}Z")
    most = max([lv for _, lv in steps] + [0])
    return (f'<g class="usage"><text x="4" y="{base - 4}">slots</text><path class="slots" d="{"".join(d)}">'
            f"<title>tasks running at once: at most {most} of {tl.slots} slots</title></path>"
            f'<line class="grid" x1="{x.left:.1f}" y1="{y(tl.slots):.1f}" x2="{x.left + BAR_WIDTH:.1f}" '
            f'y2="{y(tl.slots):.1f}"/></g>')


def _hover(t: TaskLine, tl: Timeline) -> str:
    command = shlex.join(t.argv) if t.argv else "-"
    lines = [f"{t.id}" + (f" — {t.subject}" if t.subject else ""), f"status: {t.status}",
             f"command: {command[:MAX_COMMAND]}{'…' if len(command) > MAX_COMMAND else ''}",
             f"attempts: {len(t.attempts)}", f"duration: {t.duration:.2f}s"]
    if t.detail.exit_code is not None:
        lines.append(f"exit code: {t.detail.exit_code}")
    if t.detail.cost_usd:
        lines.append(f"cost: ${t.detail.cost_usd:.4f}")
    for a in t.attempts:
        end = f"{a.end - a.start:.2f}s" if a.end is not None else "still open"
        code = f", exit code {a.exit_code}" if a.exit_code is not None else ""
        lines.append(f"  attempt {a.number}: +{a.start - tl.start:.2f}s, {end}, {a.outcome}{code}")
    lines += [f"  {s.kind} {tl.end_of(s.end) - s.start:.2f}s" + (f": {s.reason}" if s.reason else "")
              for s in t.spans]
    if t.reason or t.detail.error:
        lines.append(f"reason: {(t.detail.error or t.reason)[:MAX_COMMAND]}")
    return "\n".join(lines)
