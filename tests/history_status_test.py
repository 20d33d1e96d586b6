"""`status` and `history` (§5, §8): why each task failed, where the results are, and the sessions
of a resumed run (status.json's `previous` and `resumed`; files without them still read)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from parallel_executor.commands.history import briefly

from tests.conftest import engine, run_json


def failing_run(tasks_file: Callable[..., Path]) -> dict[str, Any]:
    code, summary = run_json(tasks_file([
        {"id": "ok", "command": "true"},
        {"id": "boom", "command": "printf 'first line\\nsecond line\\n' >&2; exit 3"},
        {"id": "slow", "command": "sleep 5", "timeout": 0.3},
        {"id": "after", "command": "true", "blockedBy": ["boom"]},
        {"id": "bad", "command": "exit 4"},
    ]))
    assert code == 1, summary
    return summary


def status_file(home: Path, run_id: str) -> Path:
    return home / "memory" / "temp" / "runs" / run_id / "status.json"


def test_status_gives_each_failed_task_its_reason_and_the_results_folder(home: Path,
                                                                        tasks_file: Callable[..., Path]) -> None:
    summary = failing_run(tasks_file)
    done = engine("status")
    assert done.returncode == 0, done.stderr
    lines = {line.split()[0]: line for line in done.stdout.splitlines() if line.strip()}
    assert lines["results"].split()[1] == summary["results_dir"]
    error = json.loads((Path(summary["results_dir"]) / "boom.json").read_text())["error"]
    assert error.startswith("exit code 3")
    assert lines["boom"].rstrip().endswith(error.splitlines()[0])
    assert "dependency 'boom' failed" in lines["after"]
    assert "timeout" in lines["slow"] and len(lines["slow"].split()) > 4  # a reason follows
    assert "resumed" not in lines and "session" not in done.stdout  # a run never resumed
    rows = {t["id"]: t for t in json.loads(engine("status", "--json").stdout)["tasks"]}
    assert rows["boom"]["reason"] == error.splitlines()[0] and rows["bad"]["reason"].startswith("exit code 4")
    assert rows["ok"]["reason"] == ""


def test_history_names_the_failed_tasks_and_gives_the_results_folder(home: Path,
                                                                    tasks_file: Callable[..., Path]) -> None:
    summary = failing_run(tasks_file)
    run = json.loads(engine("history", "--json").stdout)[0]
    assert run["failures"] == 3 and sorted(run["failed_tasks"]) == ["bad", "boom", "slow"]
    assert run["results_dir"] == summary["results_dir"] and run["resumed"] is False
    assert [(s["state"], s["resumed"], s["failed"], s["skipped"]) for s in run["sessions"]] == \
        [("partial", False, 3, 1)]
    table = engine("history").stdout
    assert ", ".join(run["failed_tasks"][:2]) + " +1" in table


def test_a_resumed_run_shows_each_session(home: Path, tasks_file: Callable[..., Path]) -> None:
    summary = failing_run(tasks_file)
    path = status_file(home, summary["run_id"])
    doc = json.loads(path.read_text())
    first = {"started": "2024-01-01T09:00:00.000+00:00", "ended": "2024-01-01T09:00:30.000+00:00",
             "state": "cancelled", "tasks": 5, "failed": 1, "skipped": 0, "cancelled": 3,
             "failed_tasks": ["boom"], "wall_time": 30.0}
    doc.update(previous=[first], resumed=doc["started"], started=first["started"])
    path.write_text(json.dumps(doc))
    run = json.loads(engine("history", "--json").stdout)[0]
    assert run["started"] == first["started"] and run["resumed"] is True
    assert [(s["state"], s["started"], s["resumed"]) for s in run["sessions"]] == \
        [("cancelled", first["started"], False), ("partial", doc["resumed"], True)]
    assert run["sessions"][0]["wall_time"] == 30.0 and run["sessions"][1]["wall_time"] == summary["wall_time"]
    table = engine("history").stdout.splitlines()
    assert "partial, resumed" in table[2] and table[3].startswith("session 1 of 2")
    assert "cancelled" in table[3] and "2024-01-01 09:00:00" in table[3] and "30.00s" in table[3]
    status = engine("status").stdout
    assert f"started     {first['started']}" in status and f"resumed     {doc['resumed']}" in status
    assert "session 1   cancelled, 2024-01-01T09:00:00.000+00:00, 30.00s: failed boom, 3 cancelled" in status


def test_briefly() -> None:
    assert briefly([]) == "-" and briefly(["a"]) == "a" and briefly(["a", "b"]) == "a, b"
    assert briefly(["a", "b", "c", "d"]) == "a, b +2" and briefly([], 3) == "3" and briefly(["a"], 2) == "a +1"
