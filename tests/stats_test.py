"""The dashboard and the log (§9): measured figures, concurrent runs, whole lines, rotation."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

from parallel_executor.results.runlog import rotate_if_full

from tests.conftest import ENGINE, run_json


def stats(home: Path) -> dict[str, object]:
    return json.loads((home / "memory/logs/parallel-execution-stats.json").read_text())  # type: ignore[no-any-return]


def test_two_runs_hold_measured_figures(home: Path, tasks_file: Callable[..., Path]) -> None:
    ok = tasks_file([{"id": "a", "command": "sleep 0.3", "type": "build"},
                     {"id": "b", "command": "sleep 0.3", "type": "build"}], "ok.json")
    bad = tasks_file([{"id": "c", "command": "sleep 0.2"}, {"id": "d", "command": "exit 4", "retries": 0}], "bad.json")
    summaries = [run_json(ok)[1], run_json(bad)[1]]
    doc = stats(home)
    assert doc["total_parallel_executions"] == 2 and doc["total_tasks_parallelized"] == 4
    assert doc["failure_rate"] == 0.25
    speedups = [s["task_time_sum"] / s["wall_time"] for s in summaries]
    assert abs(doc["average_speedup"] - sum(speedups) / 2) < 0.01  # type: ignore[operator]
    assert 1.2 < speedups[0] < 2.1  # two 0.3 s tasks side by side: measured, not estimated
    assert doc["total_time_saved_minutes"] == 0  # no history yet: no time saved is claimed (§9)
    third = run_json(ok)[1]  # now each task has a past run: the time saved is the serial estimate's
    assert third["speedup_estimate"] is not None and summaries[0]["speedup_estimate"] is None
    saved = max(0.0, third["speedup_estimate"] * third["wall_time"] - third["wall_time"]) / 60
    assert abs(stats(home)["total_time_saved_minutes"] - saved) < 0.001  # type: ignore[operator]
    assert doc["merge_success_rate"] == 1.0 and doc["temp_skills_created"] == 0
    assert doc["last_run"]["run_id"] == summaries[1]["run_id"]  # type: ignore[index]
    log = (home / "memory/logs/parallel-execution.log").read_text().splitlines()
    for s in summaries:
        mine = [line.split(" ", 2)[2] for line in log if line.split(" ")[1] == s["run_id"]]
        assert mine[0].startswith("run-started") and mine[-1].startswith(f"run-finished state={s['status']}")
    assert any(re.fullmatch(r"failed d exit code 4", line.split(" ", 2)[2]) for line in log)
    assert (home / "memory/logs/parallel-execution.log").stat().st_mode & 0o077 == 0


def test_concurrent_runs_lose_no_update_and_no_line(home: Path, tasks_file: Callable[..., Path]) -> None:
    engines, tasks = 6, 40
    files = [tasks_file([{"id": f"t{i}", "command": ["true"]} for i in range(tasks)], f"f{n}.json")
             for n in range(engines)]
    procs = [subprocess.Popen([*ENGINE, "run", "-q", str(f)], stdout=subprocess.DEVNULL) for f in files]
    assert [p.wait(timeout=60) for p in procs] == [0] * engines
    doc = stats(home)
    assert doc["total_parallel_executions"] == engines and doc["total_tasks_parallelized"] == engines * tasks
    lines = (home / "memory/logs/parallel-execution.log").read_text().splitlines()
    whole = re.compile(r"\S+ \d{8}-\d{6}\.\d{3}-[0-9a-f]{4} (run-started|run-finished|started|success|waiting) .*")
    assert all(whole.fullmatch(line) for line in lines)  # (tasks wait for a CPU: command tasks are held to them)
    assert len([line for line in lines if " waiting " not in line]) == engines * (2 + 2 * tasks)


def test_log_rotation_keeps_the_newest_files(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    for round_ in range(4):
        log.write_text(f"round {round_}\n" * 100)
        rotate_if_full(log, max_bytes=500, backups=2)
    assert not log.exists()
    assert (tmp_path / "x.log.1").read_text().startswith("round 3")
    assert (tmp_path / "x.log.2").read_text().startswith("round 2")
    assert not (tmp_path / "x.log.3").exists()
    log.write_text("small\n")
    rotate_if_full(log, max_bytes=500, backups=2)
    assert log.read_text() == "small\n"
