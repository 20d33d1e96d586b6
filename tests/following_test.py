"""Following a run (§5, §8): the monitor's queue, counts and narrow layout in a real pseudo-terminal,
its first frame and the Ctrl-C message within a second, and `pause`/`unpause` from another
terminal, seen by psutil, status.json and the journal."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pexpect
import psutil
import pytest

from tests.conftest import ENGINE, engine, py, running_status, start_engine, wait_for

ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
LATENCY = 1.0  # seconds: room for a loaded CI machine (it is ~0.2 s on an idle one)
LONG_LINE = "x" * 300


def chatty(name: str, seconds: float) -> list[str]:
    """A task that prints long lines for `seconds` of its own running time (a paused one stays behind)."""
    return py(f"import time\nfor i in range(int({seconds} * 10)):\n"
              f"    print('{name} step', i, '{LONG_LINE}', flush=True); time.sleep(0.1)")


def chatty_until(name: str, go: Path) -> list[str]:
    """A task that prints long lines every 0.1 s until the test creates go (at most 30 s)."""
    return py(f"import pathlib, time\nfor i in range(300):\n    print('{name} step', i, '{LONG_LINE}', flush=True)\n"
              f"    if pathlib.Path({str(go)!r}).exists(): break\n    time.sleep(0.1)")


def spawn_run(path: Path, home: Path, width: int, config: Path, *args: str) -> pexpect.spawn:
    return pexpect.spawn(ENGINE[0], [*ENGINE[1:], "run", str(path), "--config", str(config), *args],
                         dimensions=(30, width), encoding="utf-8", timeout=20,
                         env={**os.environ, "CLAUDE_CONFIG_DIR": str(home), "TERM": "xterm-256color"})


def config(tmp_path: Path, **extra: object) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"monitoring": {"refresh_interval": 0.2}, **extra}))
    return path


@pytest.mark.parametrize("width", [80, 160])
def test_the_monitor_lists_the_queue_and_keeps_id_status_and_elapsed(
        home: Path, tasks_file: Callable[..., Path], tmp_path: Path, width: int) -> None:
    ids = ["review-security-audit", "review-performance-pass", "lint-everything", "unit-tests-backend"]
    go = tmp_path / "go"
    path = tasks_file([*({"id": tid, "command": chatty_until(tid, go)} for tid in ids),
                       {"id": "final-report", "command": "exit 4", "blockedBy": ids[:2]}])
    started = time.monotonic()
    child = spawn_run(path, home, width, config(tmp_path), "-j", "2")
    child.logfile_read = seen = io.StringIO()
    try:
        child.expect(r"0/5 done")
        first_frame = time.monotonic() - started
        # the first two run until a frame has shown both with their output
        wait_for(lambda: _read(child) and all(re.search(rf"{tid} +running +\d:\d\d +(command +)?{tid} step",
                                                        ESCAPES.sub("", seen.getvalue())) for tid in ids[:2]))
    finally:
        go.touch()
    child.expect(pexpect.EOF, timeout=30)
    child.close()
    monitor = re.split(r"task +status +attempts", ESCAPES.sub("", seen.getvalue()))[0]  # the report follows
    assert child.exitstatus == 1
    assert first_frame < LATENCY, f"the first frame took {first_frame:.2f}s"
    lines = monitor.replace("\r", "\n").split("\n")
    assert all(len(line) <= width for line in lines), max(lines, key=len)
    for tid in ids[:2]:  # running at -j 2, each with its elapsed time and some of its output
        assert re.search(rf"{tid} +running +\d:\d\d +(command +)?{tid} step", monitor), tid
    for tid in ids[2:]:  # queued behind them, with why
        assert re.search(rf"{tid} +waiting +waiting for a slot", monitor.replace("command  ", "")), tid
    blocked = "blocked by review-security-audit" + (", review-performance-pass" if width > 100 else "")
    assert re.search(rf"final-report +pending +(command +)?{blocked}", monitor)  # at 80 columns the reason is cut
    assert re.search(r"\d/5 done · 1 failed · \d:\d\d", monitor)  # the failure counted in the header
    assert re.search(r"ETA \d:\d\d", monitor)


def _read(child: pexpect.spawn) -> bool:
    """Whatever the child printed by now (into its logfile_read); always true."""
    with contextlib.suppress(pexpect.TIMEOUT):
        child.read_nonblocking(100_000, timeout=0.05)
    return True


def test_a_long_queue_collapses_to_counts(home: Path, tasks_file: Callable[..., Path], tmp_path: Path) -> None:
    path = tasks_file([*({"id": f"job-{n:02d}", "command": "sleep 0.6"} for n in range(40)),
                       {"id": "after", "command": "true", "blockedBy": ["job-00"]}])
    child = spawn_run(path, home, 100, config(tmp_path), "-j", "2")
    child.expect(r"\.\.\. and (\d+) waiting, 1 pending")  # 30 rows: what does not fit is counted
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()


def test_the_first_frame_and_the_first_ctrl_c_are_drawn_at_once(home: Path, tasks_file: Callable[..., Path],
                                                                 tmp_path: Path) -> None:
    trapped = tmp_path / "trapped"
    trapped.mkdir()
    stubborn = (f"trap 'echo term' TERM; touch {trapped}/$PARALLEL_TASK_ID; "  # outlives the grace period's start
                "for i in $(seq 50); do sleep 0.1; done")
    path = tasks_file([{"id": "slow-one", "command": stubborn}, {"id": "slow-two", "command": stubborn}])
    started = time.monotonic()  # the default refresh of 2 s: neither may wait for it
    child = spawn_run(path, home, 80, config(tmp_path, kill_grace_seconds=1, monitoring={"refresh_interval": 2}))
    child.expect(r"0/2 done")
    first_frame = time.monotonic() - started
    wait_for(lambda: len(list(trapped.iterdir())) == 2)  # both run, with their trap set
    sent = time.monotonic()
    child.sendintr()
    child.expect(r"stopping: ending 2 tasks \(Ctrl-C again to kill now\)")
    said = time.monotonic() - sent
    child.expect(r"stopping · ")  # the header says so too
    child.expect(r"slow-two\S* +running")  # in the frame drawn at once, not at the next refresh
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130
    assert said < LATENCY, f"the Ctrl-C message took {said:.2f}s"
    assert first_frame < LATENCY, f"the first frame took {first_frame:.2f}s"


def test_off_a_terminal_the_signal_is_one_line(home: Path, tasks_file: Callable[..., Path]) -> None:
    proc = start_engine(tasks_file([{"id": "t", "command": "sleep 5"}]))
    wait_for(lambda: bool((doc := running_status(home)) and doc["tasks"][0]["status"] == "running"))  # type: ignore
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143
    assert "parallel-executor: stopping: ending 1 task (SIGTERM)" in err


def _tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def _stopped(pid: int) -> bool:
    return all(p.status() == psutil.STATUS_STOPPED for p in _tree(pid))


def test_pause_holds_tasks_past_their_sleep_and_timeout_then_unpause_finishes(
        home: Path, tasks_file: Callable[..., Path]) -> None:
    path = tasks_file([
        {"id": "short", "command": "sleep 0.4 & sleep 0.4; wait", "timeout": 1.5},  # a tree of three
        {"id": "long", "command": chatty("long", 1.5), "timeout": 4},
        {"id": "later", "command": "true"},
    ])
    proc = start_engine(path, "-j", "2")
    wait_for(lambda: bool((doc := running_status(home)) and doc["tasks"][0]["pid"] and doc["tasks"][1]["pid"]))
    run_id = str(running_status(home)["run_id"])  # type: ignore[index]
    paused = engine("pause", timeout=20)
    assert paused.returncode == 0 and "paused: 2 running task trees stopped" in paused.stdout, paused.stderr
    doc = running_status(home)
    assert doc is not None and doc["state"] == "paused"
    short, long, later = doc["tasks"]  # type: ignore[misc]
    assert (short["status"], long["status"], later["status"], later["reason"]) == \
        ("paused", "paused", "waiting", "paused")
    wait_for(lambda: _stopped(short["pid"]) and _stopped(long["pid"]), timeout=5)
    assert len(_tree(short["pid"])) == 3
    time.sleep(2.0)  # past short's own sleep and its timeout, and long's timeout counted from its start
    assert proc.poll() is None and _stopped(short["pid"]) and _stopped(long["pid"])
    assert running_status(home)["tasks"][2]["status"] == "waiting"  # type: ignore[index]
    again = engine("unpause", run_id, timeout=20)
    assert again.returncode == 0, again.stderr
    wait_for(lambda: not _stopped(long["pid"]), timeout=5)  # it has a second of its own work left: seen going
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    result = {t["id"]: t["status"] for t in json.loads(next(home.glob("memory/temp/runs/*/status.json")).read_text())
              ["tasks"]}
    assert result == {"short": "success", "long": "success", "later": "success"}
    events = [json.loads(line)["event"] for line in next(home.glob("memory/temp/runs/*/events.jsonl")).open()]
    assert events.count("run-paused") == 1 and events.count("run-unpaused") == 1
    assert events.count("paused") == 2 and events.count("unpaused") == 2
    ended = engine("pause", run_id)
    assert ended.returncode == 2 and "is not running (it ended: success)" in ended.stderr


def test_a_paused_run_can_be_cancelled(home: Path, tasks_file: Callable[..., Path]) -> None:
    proc = start_engine(tasks_file([{"id": "t", "command": "sleep 30"}, {"id": "u", "command": "true",
                                                                         "blockedBy": ["t"]}]))
    wait_for(lambda: bool((doc := running_status(home)) and doc["tasks"][0]["pid"]))
    assert engine("pause").returncode == 0
    done = engine("cancel", timeout=40)
    assert done.returncode == 0, done.stderr
    proc.communicate(timeout=30)
    assert proc.returncode == 143
    statuses = [t["status"] for t in running_status(home)["tasks"]]  # type: ignore[index]
    assert statuses == ["cancelled", "cancelled"]


def test_nothing_starts_while_paused(home: Path, tasks_file: Callable[..., Path]) -> None:
    proc = start_engine(tasks_file([{"id": "victim", "command": "sleep 30"}, {"id": "later", "command": "true"}]),
                        "-j", "1")
    wait_for(lambda: bool((doc := running_status(home)) and doc["tasks"][0]["pid"]))
    victim = int(running_status(home)["tasks"][0]["pid"])  # type: ignore[index]
    assert engine("pause").returncode == 0
    for p in _tree(victim):
        p.kill()  # its slot is free now, but the run is paused
    wait_for(lambda: running_status(home)["tasks"][0]["status"] == "failed")  # type: ignore[index]
    time.sleep(0.5)
    later = running_status(home)["tasks"][1]  # type: ignore[index]
    assert (later["status"], later["reason"], later["attempts"]) == ("waiting", "paused", 0)
    assert engine("unpause").returncode == 0
    proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert [t["status"] for t in running_status(home)["tasks"]] == ["failed", "success"]  # type: ignore[index]
