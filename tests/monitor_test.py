"""The live monitor in a real pseudo-terminal (pexpect), and `status --watch` on one."""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import pexpect

from tests.conftest import ENGINE, start_engine, tasks_running, wait_for

COLOR = re.compile(r"\x1b\[[0-9;]*(3[0-9]|4[0-9]|9[0-7])(;[0-9;]*)?m")  # foreground/background colours
ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def spawn(args: list[str], home: Path, width: int = 100, **env: str) -> pexpect.spawn:
    return pexpect.spawn(ENGINE[0], [*ENGINE[1:], *args], dimensions=(30, width), encoding="utf-8", timeout=20,
                         env={**os.environ, "CLAUDE_CONFIG_DIR": str(home), "TERM": "xterm-256color", **env})


def steps_until(name: str, go: Path) -> str:
    """Steps every 0.1 s until the test, having seen what it looks for, creates go (at most 30 s)."""
    return f"for i in $(seq 300); do echo step $i of {name}; [ -e {go} ] && exit 0; sleep 0.1; done"


def fast_config(tmp_path: Path) -> Path:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"monitoring": {"refresh_interval": 0.2}}))
    return config


def test_monitor_shows_running_rows_then_the_report(home: Path, tasks_file: Callable[..., Path],
                                                    tmp_path: Path) -> None:
    go = tmp_path / "go"
    path = tasks_file([{"id": "alpha", "command": steps_until("alpha", go)},
                       {"id": "beta", "command": steps_until("beta", go)},
                       {"id": "gamma", "command": "exit 3", "retries": 0, "blockedBy": ["alpha"]}])
    child = spawn(["run", str(path), "--config", str(fast_config(tmp_path))], home)
    child.logfile_read = seen = io.StringIO()
    try:
        child.expect(r"0/3 done · \d+:\d\d · ETA \d+:\d\d · slots 2/5 · mem [\d.]+G free · cpu \d+%")
        child.expect(r"gamma[^\r\n]*pending[^\r\n]*blocked by alpha")  # the queue, with why
        # id, status, elapsed, runner, last line
        child.expect(r"alpha[^\r\n]*running[^\r\n]*0:0\d[^\r\n]*command[^\r\n]*step \d+ of alpha")
        child.expect(r"beta[^\r\n]*step \d+ of beta")
    finally:
        go.touch()
    child.expect(r"✓ [^\r\n]*alpha[^\r\n]*success")  # finished tasks scroll above the live rows
    child.expect(r"✗ [^\r\n]*gamma[^\r\n]*failed[^\r\n]*exit code 3")
    child.expect(r"task +status +attempts")  # the final report once the monitor is gone
    child.expect(r"parallelism")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1
    assert COLOR.search(seen.getvalue())  # colours by default: the NO_COLOR test below means something


def test_monitor_respects_no_color_and_a_narrow_terminal(home: Path, tasks_file: Callable[..., Path],
                                                         tmp_path: Path) -> None:
    go = tmp_path / "go"
    path = tasks_file([{"id": "a-task-with-a-rather-long-name", "command": steps_until("a", go)},
                       {"id": "b", "command": steps_until("b", go)}])
    child = spawn(["run", str(path), "--config", str(fast_config(tmp_path))], home, width=40, NO_COLOR="1")
    child.logfile_read = seen = io.StringIO()
    try:
        child.expect(r"step \d+ of [ab]")  # a frame with a task's output drawn
    finally:
        go.touch()
    child.expect(r"task +status")
    monitor_part = re.split(r"task +status", seen.getvalue())[0]  # all that came before the report
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "step" in monitor_part and "slots" in monitor_part
    assert COLOR.search(monitor_part) is None
    for line in ESCAPES.sub("", monitor_part).replace("\r", "\n").split("\n"):
        assert len(line) <= 40, line


def test_status_watch_on_a_terminal_shows_the_run_and_exits(home: Path, tasks_file: Callable[..., Path],
                                                            tmp_path: Path) -> None:
    go = tmp_path / "go"
    proc = start_engine(tasks_file([{"id": "slowpoke", "command": steps_until("slowpoke", go)}]), "-q")
    try:
        wait_for(lambda: tasks_running(home, 1))
        child = spawn(["status", "--watch", "--config", str(fast_config(tmp_path))], home)
        child.expect(r"slowpoke[^\r\n]*step \d+ of slowpoke")
    finally:
        go.touch()
    child.expect(r"state +success")
    child.expect(pexpect.EOF)
    child.close()
    proc.communicate(timeout=20)
    assert child.exitstatus == 0 and proc.returncode == 0
