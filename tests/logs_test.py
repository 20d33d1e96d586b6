"""`logs TASK_ID` (PRODUCT §5): a task's whole output, from the latest run that has it, or followed."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ENGINE, engine, py, run_json

pytestmark = pytest.mark.timeout(60)


def test_logs_prints_the_whole_output_of_the_latest_run(home: Path, tasks_file: Callable[..., Path]) -> None:
    path = tasks_file([{"id": "a", "command": py("import sys\nfor i in range(3000): print('line', i)\n"
                                                 "print('oops', file=sys.stderr)")}])
    code, first = run_json(path)
    assert code == 0
    out = engine("logs", "a")
    assert out.returncode == 0 and out.stdout.splitlines() == [f"line {i}" for i in range(3000)]
    assert engine("logs", "a", "--stderr", "--run", first["run_id"]).stdout == "oops\n"


def test_logs_refuses_what_names_no_task(home: Path, tasks_file: Callable[..., Path]) -> None:
    _, first = run_json(tasks_file([{"id": "a", "command": ["true"]}]))
    for args in (["../a"], ["b"], ["b", "--run", first["run_id"]], ["a", "--run", "../x"]):
        done = engine("logs", *args)
        assert done.returncode == 2 and "Traceback" not in done.stderr and done.stderr.startswith("parallel-executor:")


def test_logs_follow_streams_until_the_task_ends(home: Path, tasks_file: Callable[..., Path]) -> None:
    path = tasks_file([{"id": "slow", "command": py("import time\nfor i in range(4):\n"
                                                    "    print('tick', i, flush=True); time.sleep(0.3)")}])
    run = subprocess.Popen([*ENGINE, "run", str(path), "-q"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        done = None
        for _ in range(100):  # until the run has a status with the task in it
            done = engine("logs", "slow", "-f", timeout=30)
            if done.returncode == 0:
                break
        assert done is not None and done.returncode == 0
        assert done.stdout.splitlines()[-1] == "tick 3"  # it waited for the end
    finally:
        run.wait(timeout=30)


def test_an_agents_stream_is_shown_as_its_messages_unless_raw(home: Path, tasks_file: Callable[..., Path]) -> None:
    fakes = Path(__file__).resolve().parent / "fakes"
    env = {"PATH": f"{fakes}:{os.environ['PATH']}", "FAKE_AGENT_MODE": "capture:claude-stream-agent"}
    code, _ = run_json(tasks_file([{"id": "agent", "prompt": "hi"}]), env=env)
    assert code == 0
    shown, raw = engine("logs", "agent").stdout, engine("logs", "agent", "--raw").stdout
    assert raw.startswith('{"type":"system"') and not shown.lstrip().startswith("{")
    assert "hi from mock" in shown and len(shown) < len(raw) / 3
