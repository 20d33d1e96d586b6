"""Memory admission, suspension and the per-task limit, with real processes (§7)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psutil
from parallel_executor.system.procs import tree_pids

from tests.conftest import ENGINE, py, run_json, wait_for

GB = 2**30


def test_task_past_the_limit_is_killed_others_succeed(home: Path, tasks_file: Callable[..., Path],
                                                      tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"memory_limit_per_agent": "150MiB", "memory_reserve": 0, "memory_per_agent": 0}))
    hog = py("import time\nblock = bytearray(400 * 2**20)\nfor i in range(0, len(block), 4096): block[i] = 1\n"
             "time.sleep(20)")
    path = tasks_file([{"id": "hog", "command": hog, "retries": 0}, {"id": "ok", "command": py("print('fine')")}])
    start = time.monotonic()
    code, summary = run_json(path, "--config", config)
    assert code == 1 and time.monotonic() - start < 15
    assert summary["tasks"]["ok"]["status"] == "success"
    error = summary["tasks"]["hog"]["error"]
    assert summary["tasks"]["hog"]["status"] == "failed" and error.startswith("memory limit 150 MB exceeded (peak ")
    result = json.loads((Path(summary["results_dir"]) / "hog.json").read_text())
    assert result["peak_rss_bytes"] > 150 * 2**20


def test_memory_of_the_whole_tree_counts(home: Path, tasks_file: Callable[..., Path], tmp_path: Path) -> None:
    # The memory is in a grandchild started from a worker thread of the task: found all the same.
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"memory_limit_per_agent": "150MiB", "memory_reserve": 0, "memory_per_agent": 0}))
    grandchild = "b = bytearray(400 * 2**20)\nfor i in range(0, len(b), 4096): b[i] = 1\nimport time; time.sleep(20)"
    leader = py("import subprocess, sys, threading, time\n"
                f"threading.Thread(target=lambda: subprocess.run([sys.executable, '-c', {grandchild!r}])).start()\n"
                "time.sleep(20)")
    code, summary = run_json(tasks_file([{"id": "tree", "command": leader, "retries": 0}]), "--config", config)
    assert code == 1 and summary["tasks"]["tree"]["error"].startswith("memory limit 150 MB exceeded")


def test_tree_pids_lists_every_descendant() -> None:
    leader = subprocess.Popen(py("import subprocess, sys, threading, time\n"
                                 "sleeper = [sys.executable, '-c', 'import time; time.sleep(30)']\n"
                                 "subprocess.Popen(sleeper)\n"
                                 "threading.Thread(target=lambda: subprocess.Popen(sleeper)).start()\n"
                                 "time.sleep(30)"))
    try:
        wait_for(lambda: len(psutil.Process(leader.pid).children(recursive=True)) == 2)
        expected = {leader.pid, *(c.pid for c in psutil.Process(leader.pid).children(recursive=True))}
        assert set(tree_pids(leader.pid)) == expected
    finally:
        for member in tree_pids(leader.pid):
            os.kill(member, 9)
        leader.wait(timeout=10)


def start(path: Path, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([*ENGINE, "run", str(path), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, **env})


def status_of(home: Path, task: str) -> dict[str, object]:
    for path in home.glob("memory/temp/runs/*/status.json"):
        try:
            doc = json.loads(path.read_text())
        except ValueError:
            continue
        return next(t for t in doc["tasks"] if t["id"] == task)  # type: ignore[no-any-return]
    return {}


def test_admission_waits_for_memory_and_says_why(home: Path, tasks_file: Callable[..., Path],
                                                  tmp_path: Path) -> None:
    free = tmp_path / "available"
    free.write_text("0")
    proc = start(tasks_file([{"id": "t", "command": ["true"]}]), env={
        "PARALLEL_EXECUTOR_AVAILABLE_MEMORY_FILE": str(free)})
    wait_for(lambda: status_of(home, "t").get("status") == "waiting")
    assert status_of(home, "t")["reason"] == "waiting for memory (0 MB available, 732 MB needed)"
    free.write_text(str(4 * GB))
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "waiting   t  waiting for memory (0 MB available" in err


def test_newest_task_is_suspended_and_resumed(home: Path, tasks_file: Callable[..., Path], tmp_path: Path) -> None:
    free = tmp_path / "available"
    free.write_text(str(4 * GB))
    go = tmp_path / "go"  # both run until the test has seen new suspended and resumed (at most 30 s)
    sleeper = py(f"import pathlib, time\nfor _ in range(600):\n    if pathlib.Path({str(go)!r}).exists(): break\n"
                 "    time.sleep(0.05)")
    proc = start(tasks_file([{"id": "old", "command": sleeper}, {"id": "new", "command": sleeper, "priority": "low"}]),
                 "-j", "2", env={"PARALLEL_EXECUTOR_AVAILABLE_MEMORY_FILE": str(free)})
    try:
        wait_for(lambda: status_of(home, "new").get("status") == "running" and status_of(home, "old").get("pid"))
        free.write_text(str(100 * 2**20))  # below the 512 MB reserve
        wait_for(lambda: status_of(home, "new").get("status") == "paused")
        assert str(status_of(home, "new")["reason"]).startswith("suspended: low memory")
        pid = int(status_of(home, "new")["pid"])  # type: ignore[call-overload]
        assert psutil.Process(pid).status() == psutil.STATUS_STOPPED
        assert psutil.Process(int(status_of(home, "old")["pid"])).status() != psutil.STATUS_STOPPED  # type: ignore
        free.write_text(str(4 * GB))
        wait_for(lambda: status_of(home, "new").get("status") == "running")
    finally:
        go.touch()
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "suspended new" in err.replace("  ", " ") and "resumed" in err
