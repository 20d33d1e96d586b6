"""`status`, `cancel` and `history` against real runs (§5, §8)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from tests.conftest import (
    ENGINE,
    engine,
    helper,
    processes_with_marker,
    run_json,
    start_engine,
    tasks_running,
    wait_for,
)


def tree_tasks(tasks_file: Callable[..., Path], marker: str) -> Path:
    return tasks_file([{"id": "a", "command": helper("tree.py", marker)},
                       {"id": "b", "command": helper("tree.py", marker)},
                       {"id": "after", "command": ["true"], "blockedBy": ["a"]}])


def test_status_json_during_a_run_shows_running_tasks_and_the_engine(home: Path,
                                                                      tasks_file: Callable[..., Path]) -> None:
    marker = f"status-{os.getpid()}-{time.time_ns()}"
    proc = start_engine(tree_tasks(tasks_file, marker), "-q")
    try:
        wait_for(lambda: tasks_running(home, 2))
        done = engine("status", "--json")
        assert done.returncode == 0, done.stderr
        doc = json.loads(done.stdout)
        assert doc["pid"] == proc.pid and doc["engine_alive"] is True and doc["state"] == "running"
        assert {t["id"]: t["status"] for t in doc["tasks"]} == {"a": "running", "b": "running", "after": "pending"}
        assert all(t["pid"] for t in doc["tasks"] if t["status"] == "running")
        table = engine("status", doc["run_id"])
        assert table.returncode == 0 and f"engine pid  {proc.pid}" in table.stdout
        assert "2 running" in table.stdout and "a       running" in table.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)


def test_cancel_ends_the_run_with_no_survivor(home: Path, tasks_file: Callable[..., Path]) -> None:
    marker = f"cancel-{os.getpid()}-{time.time_ns()}"
    proc = start_engine(tree_tasks(tasks_file, marker), "--json")
    wait_for(lambda: len(processes_with_marker(marker)) == 6)
    done = engine("cancel", timeout=30)
    assert done.returncode == 0, done.stderr
    assert "cancelled: 3 cancelled" in done.stdout
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 143 and json.loads(out)["status"] == "cancelled"
    assert processes_with_marker(marker) == []
    again = engine("cancel")
    assert again.returncode == 2 and "no run is running" in again.stderr
    status = json.loads(engine("status", "--json").stdout)
    assert status["state"] == "cancelled" and status["engine_alive"] is False
    named = engine("cancel", status["run_id"])
    assert named.returncode == 2 and "is not running (it ended: cancelled)" in named.stderr


def test_cancel_after_the_engine_was_killed_ends_its_tasks(home: Path, tasks_file: Callable[..., Path]) -> None:
    marker = f"orphan-{os.getpid()}-{time.time_ns()}"
    proc = start_engine(tree_tasks(tasks_file, marker), "-q")
    wait_for(lambda: len(processes_with_marker(marker)) == 6)
    proc.kill()
    proc.communicate(timeout=10)
    assert len(processes_with_marker(marker)) == 6  # orphans, until someone ends them
    done = engine("cancel")
    assert done.returncode == 0 and "was already gone" in done.stdout
    wait_for(lambda: processes_with_marker(marker) == [], timeout=5)
    assert json.loads(engine("status", "--json").stdout)["state"] == "cancelled"


def test_history_lists_runs_newest_first(home: Path, tasks_file: Callable[..., Path]) -> None:
    assert engine("history").stdout.strip() == "no runs yet"
    first = run_json(tasks_file([{"id": "a", "command": "sleep 0.2"}, {"id": "b", "command": "sleep 0.2"}]))[1]
    second = run_json(tasks_file([{"id": "x", "command": "exit 1", "retries": 0}], "other.json"))[1]
    done = engine("history", "--json")
    runs = json.loads(done.stdout)
    assert [r["run_id"] for r in runs] == [second["run_id"], first["run_id"]]
    assert runs[1]["tasks"] == 2 and runs[1]["failures"] == 0 and runs[1]["state"] == "success"
    assert runs[1]["speedup"] == first["speedup"] and runs[1]["wall_time"] == first["wall_time"]
    assert runs[0]["failures"] == 1 and runs[0]["task_file"].endswith("other.json")
    table = engine("history", "-n", "1").stdout
    assert second["run_id"] in table and first["run_id"] not in table and "speedup" in table


def test_status_watch_off_a_terminal_follows_the_run_to_its_end(home: Path, tasks_file: Callable[..., Path],
                                                                tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"monitoring": {"refresh_interval": 0.1}}))
    go = tmp_path / "go"  # a runs until the watch has printed its first line (at most 30 s); b ends at once then
    wait = f"for i in $(seq 600); do [ -e {go} ] && exit 0; sleep 0.05; done"
    proc = start_engine(tasks_file([{"id": "a", "command": wait}, {"id": "b", "command": wait,
                                                                    "blockedBy": ["a"]}]), "-q")
    try:
        wait_for(lambda: tasks_running(home, 1))
        watch = subprocess.Popen([*ENGINE, "status", "--watch", "--config", str(config)], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        assert watch.stderr is not None
        first = watch.stderr.readline()
    finally:
        go.touch()
    out, rest = watch.communicate(timeout=20)
    err = first + rest
    proc.communicate(timeout=20)
    assert watch.returncode == 0, err
    assert "running: 1 pending, 1 running" in err or "running: 1 running, 1 pending" in err
    assert "success: 2 success" in err and "\x1b[" not in err + out
    assert "state       success" in out
