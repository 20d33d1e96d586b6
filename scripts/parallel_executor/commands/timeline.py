"""`timeline [RUN_ID] [--html FILE]`: when each task of a run ran, as a text Gantt chart or a
self-contained HTML page (§5)."""

from __future__ import annotations

import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import click

from parallel_executor.engine.journal import LIVE_STATES, engine_alive, latest_run, read_events, read_status, results_of
from parallel_executor.errors import EXIT_OK, UserError
from parallel_executor.results import timeline
from parallel_executor.results.runlog import log_path
from parallel_executor.results.timeline_html import write_page
from parallel_executor.system.jsonfile import BadJSON, read_json
from parallel_executor.system.locations import runs_dir

STYLES = {timeline.BAR: "green", timeline.BAD: "red", timeline.FAIL: "bold red", timeline.OPEN: "bold cyan",
          timeline.WAIT: "dim", timeline.HELD: "yellow", timeline.SKIP: "magenta"}
_RUNS = re.compile("|".join(f"{re.escape(char)}+" for char in STYLES))


def main(run_id: str | None, html: Path | None) -> int:
    tl = load(run_id or latest_run())
    if html is not None:
        if html.is_symlink() or html.is_dir():
            raise UserError(f"{html}: is a {'symbolic link' if html.is_symlink() else 'directory'}; not written")
        try:
            write_page(tl, html)
        except OSError as e:
            raise UserError(f"{html}: {e.strerror or e}") from None
        click.echo(str(html))
        return EXIT_OK
    show(timeline.chart(tl, shutil.get_terminal_size((100, 24)).columns))
    return EXIT_OK


def load(run_id: str) -> timeline.Timeline:
    doc = read_status(run_id)
    results = results_of(doc)
    details = {str(t["id"]): detail(results / f"{t['id']}.json") for t in doc["tasks"]}
    until = time.time() if doc.get("state") in LIVE_STATES and engine_alive(doc) else None
    tl = timeline.build(doc, read_events(runs_dir() / run_id), details, until)
    tl.serial_time = logged_serial_time(run_id)
    return tl


def detail(path: Path) -> timeline.Detail:
    """A task's result file, read defensively: missing or corrupt, it just tells less."""
    try:
        doc: Any = read_json(path)
    except (OSError, BadJSON):
        return timeline.Detail()
    if not isinstance(doc, dict):
        return timeline.Detail()
    code = _number(doc, "exit_code")
    return timeline.Detail(int(code) if code is not None else None, _number(doc, "duration"),
                           _number(doc, "cost_usd"), str(doc.get("error") or ""))


def _number(doc: dict[str, Any], key: str) -> float | None:
    value = doc.get(key)
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def logged_serial_time(run_id: str) -> float | None:
    """The serial estimate the run logged as it ended (`serial_estimate=` of its run-finished line),
    in the log or its rotated copies; None when it had none or the line is gone."""
    pattern = re.compile(rf" {re.escape(run_id)} run-finished .*serial_estimate=([0-9.]+)")
    for path in [log_path(), *(log_path().with_name(f"{log_path().name}.{n}") for n in (1, 2, 3))]:
        try:
            found = pattern.findall(path.read_text(errors="replace"))
        except OSError:
            continue
        if found:
            return float(found[-1])
    return None


def show(lines: list[str]) -> None:
    """Plain text off a terminal; on one, the bars in colour."""
    if not sys.stdout.isatty():
        click.echo("\n".join(lines))
        return
    from rich.console import Console
    from rich.text import Text

    console = Console(highlight=False, soft_wrap=True)
    for line in lines:
        text = Text(line)
        left, right = line.find("|"), line.rfind("|")  # the bar, between its two rules
        for run in _RUNS.finditer(line, left + 1, right) if 0 <= left < right else ():
            text.stylize(STYLES[run.group()[0]], run.start(), run.end())
        console.print(text)
