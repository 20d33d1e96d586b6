"""`timeline`: the text chart and the HTML page of real runs; the page opened in a real headless Chromium."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from parallel_executor.engine.journal import read_events
from parallel_executor.results import timeline
from parallel_executor.results.timeline_html import page
from parallel_executor.system.timestamps import iso

from tests.conftest import engine, processes_with_marker, wait_for

pytestmark = pytest.mark.timeout(90)

TASKS = {"tasks": [
    {"id": "a", "command": ["sh", "-c", "sleep 0.6"]},
    {"id": "b", "command": ["sh", "-c", "sleep 0.6; exit 3"]},
    {"id": "c", "command": ["sh", "-c", "sleep 0.2"], "blockedBy": ["a"]},
]}
CHROMIUM = "chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def the_real_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The three tasks run through the engine once for this file (the tests only read the run): the
    Claude home it ran in, and the report's `timeline` line (the page's path)."""
    root = tmp_path_factory.mktemp("timeline-run")
    home = root / "claude"
    home.mkdir()
    path = root / "tasks.json"
    path.write_text(json.dumps(TASKS))
    done = engine("run", path, "-j", "2", env={"CLAUDE_CONFIG_DIR": str(home)})
    assert done.returncode == 1, done.stderr
    return home, next(line.split(None, 1)[1] for line in done.stdout.splitlines() if line.startswith("timeline "))


@pytest.fixture
def real_run(the_real_run: tuple[Path, str], monkeypatch: pytest.MonkeyPatch) -> str:
    home, page_path = the_real_run
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(home))
    return page_path


def bars(text: str) -> dict[str, tuple[str, str]]:
    """Each task row of the chart: id -> (its bar, what follows it)."""
    rows = {}
    for line in text.splitlines():
        found = re.fullmatch(r"(\S+)\s+\|(.*)\| (.*)", line)
        if found:
            rows[found.group(1)] = (found.group(2), found.group(3))
    return rows


def filled(bar: str) -> set[int]:
    return {n for n, char in enumerate(bar) if char != " "}


def test_the_chart_of_a_real_run_shows_what_overlapped_what_failed_and_what_waited(real_run: str) -> None:
    done = engine("timeline", env={"COLUMNS": "100"})
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout  # not a terminal: plain text
    rows = bars(done.stdout)
    (a, a_tail), (b, b_tail), (c, c_tail) = rows["a"], rows["b"], rows["c"]
    assert filled(a) & filled(b)  # a and b ran at the same time: their bars share columns
    assert timeline.FAIL in b and timeline.FAIL not in a + c  # b's attempt failed, marked at its end
    assert b_tail.startswith("failed") and a_tail.startswith("success") and c_tail.startswith("success")
    assert min(filled(c)) >= max(filled(a))  # c began when a ended
    slots = rows["slots"][0]
    assert slots[min(filled(a))] == timeline.SPARK[-1]  # two of two slots in use at the start
    assert re.search(r"parallelism \d+\.\d\d", done.stdout) and "speedup estimate" in done.stdout


def test_the_page_opened_in_a_real_browser_has_one_element_per_task(real_run: str, tmp_path: Path) -> None:
    auto = Path(real_run)
    assert auto.name == "timeline.html" and auto.stat().st_mode & 0o777 == 0o600
    target = tmp_path / "page.html"
    done = engine("timeline", "--html", target)
    assert done.returncode == 0 and done.stdout.strip() == str(target), done.stderr
    assert target.stat().st_mode & 0o777 == 0o600
    text = target.read_text()
    assert "<script" not in text and not re.search(r"\s(src|href)=", text)  # nothing to fetch, nothing to run
    assert "Content-Security-Policy" in text and "default-src 'none'" in text
    dom = browser(tmp_path, "--dump-dom", target.as_uri())
    groups = TaskGroups()
    groups.feed(dom)
    assert sorted(groups.ids) == ["a", "b", "c"]  # exactly one element per task, as the browser built it
    assert groups.failure_marks == {"b"}
    assert "parallelism" in dom and "speedup estimate" in dom
    shot = tmp_path / "shot.png"
    browser(tmp_path, f"--screenshot={shot}", "--window-size=1200,500", target.as_uri())
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 2000
    assert int.from_bytes(data[16:20], "big") == 1200


def test_a_torn_journal_of_a_run_whose_engine_died_draws_its_open_attempt(tmp_path: Path) -> None:
    start = 1_800_000_000.0
    events = [{"time": iso(start), "event": "run-started", "pid": 1},
              {"time": iso(start), "event": "waiting", "task": "b", "reason": "waiting for a slot"},
              {"time": iso(start + 0.01), "event": "started", "task": "a", "attempt": 1, "argv": ["true"]},
              {"time": iso(start + 1), "event": "retrying", "task": "a", "error": "exit code 4",
               "reason": "attempt 1 failed (exit code 4); retrying in 1s"},
              {"time": iso(start + 1.01), "event": "started", "task": "b", "attempt": 1, "argv": ["sleep", "9"]},
              {"time": iso(start + 2), "event": "started", "task": "a", "attempt": 2, "argv": ["true"]},
              {"time": iso(start + 3), "event": "success", "task": "a"},
              {"time": iso(start + 4), "event": "paused", "task": "b"}]
    (tmp_path / "events.jsonl").write_bytes(
        b"".join(json.dumps(e).encode() + b"\n" for e in events) + b'{"time": "' + iso(start + 5).encode()[:10])
    doc = {"run_id": "r", "state": "running", "started": iso(start), "slots": 2,
           "tasks": [{"id": "a", "status": "success"}, {"id": "b", "status": "paused"}]}
    tl = timeline.build(doc, read_events(tmp_path), {}, None)
    assert tl.horizon == pytest.approx(start + 4, abs=0.01)  # its last whole event: the torn line is skipped
    a, b = tl.tasks
    assert [(x.number, x.outcome, x.exit_code) for x in a.attempts] == [(1, "retrying", 4), (2, "success", None)]
    assert b.open and b.attempts[0].end is None
    assert [(s.kind, s.reason, s.end is None) for s in b.spans] == [("waiting", "waiting for a slot", False),
                                                                     ("paused", "", True)]
    text = "\n".join(timeline.chart(tl, 80))
    rows = bars(text)
    assert rows["a"][0].count(timeline.FAIL) == 1 and timeline.WAIT in rows["a"][0]  # the retry's back-off
    assert rows["b"][0].rstrip().endswith(timeline.OPEN) and rows["b"][1].startswith("running")
    assert "still open" in text
    alive = timeline.build(doc, read_events(tmp_path), {}, start + 10)  # its engine lives: drawn up to now
    assert alive.horizon == start + 10 and bars("\n".join(timeline.chart(alive, 80)))["b"][0].endswith(timeline.OPEN)


def test_the_page_escapes_what_the_tasks_carry() -> None:
    doc = {"run_id": "r<1>", "state": "success", "started": iso(1e9), "ended": iso(1e9 + 1), "slots": 1,
           "tasks": [{"id": "x", "status": "failed", "subject": "<img src=x onerror=alert(1)>",
                      "reason": "</title><script>alert(2)</script>"}]}
    events = [{"time": iso(1e9), "event": "started", "task": "x", "argv": ["echo", "</title><a href=//e.org>"]},
              {"time": iso(1e9 + 1), "event": "failed", "task": "x", "error": "exit code 1"}]
    text = page(timeline.build(doc, events, {}))
    assert "<img" not in text and "<script" not in text and "<a " not in text and "r&lt;1&gt;" in text


def test_an_unknown_run_is_one_line_not_a_traceback(home: Path) -> None:
    done = engine("timeline", "20990101-000000.000-abcd")
    assert done.returncode == 2 and "no run '20990101-000000.000-abcd'" in done.stderr
    assert "Traceback" not in done.stderr


class TaskGroups(HTMLParser):
    """The task elements of a DOM, and which hold a failure mark."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.failure_marks: set[str] = set()
        self.inside: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if "data-task-id" in found:
            self.ids.append(str(found["data-task-id"]))
        if tag == "g":
            self.inside.append(found.get("data-task-id") or (self.inside[-1] if self.inside else None))
        if "fail" in (found.get("class") or "").split() and self.inside and self.inside[-1]:
            self.failure_marks.add(str(self.inside[-1]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "g" and self.inside:
            self.inside.pop()


def browser(tmp_path: Path, *args: str) -> str:
    """Headless Chromium, its whole process tree ended afterwards; a missing browser fails the test."""
    program = shutil.which(CHROMIUM)
    assert program, "chromium is not installed: `make browser` (apt-get install chromium) installs it"
    profile = tmp_path / "chromium-profile"
    child = subprocess.Popen([program, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = child.communicate(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)  # its own session: every helper process it started
        child.wait()
    wait_for(lambda: not processes_with_marker(str(profile)))
    assert child.returncode == 0, err
    return out
