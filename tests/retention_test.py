"""Run retention in `cleanup` (§10): old ended runs go, with their own results; nothing else does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import engine, py

pytestmark = pytest.mark.timeout(60)
DAY = 86400.0
OLD, YOUNG, LIVE, DEAD, MINE, LINKED, CORRUPT, LINKED_RUN, RESUMED, PAUSED = (
    f"20240101-12000{n}.000-ab1{n}" for n in range(10))


def _iso(stamp: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(stamp, timezone.utc).isoformat(timespec="milliseconds")


def age_tree(path: Path, days: float) -> None:
    """Set the mtime of path and everything under it (links themselves, not their targets) days back."""
    when = time.time() - days * DAY
    for folder, dirs, files in os.walk(path, topdown=False):
        for name in dirs + files:
            os.utime(Path(folder) / name, (when, when), follow_symlinks=False)
    os.utime(path, (when, when), follow_symlinks=False)


def dead_engine() -> tuple[int, float]:
    """The pid and start time of a process that has ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    started = psutil.Process(child.pid).create_time()
    child.wait()
    return child.pid, started


class Runs:
    """Run directories and results written the way the engine writes them, under a test's home."""

    def __init__(self, home: Path) -> None:
        self.runs = home / "memory" / "temp" / "runs"
        self.results = home / "memory" / "temp" / "parallel-results"

    def add(self, run_id: str, *, ended_days: float | None, state: str = "success",
            engine: tuple[int, float] | None = None, results: Path | None = None, payload: int = 20000,
            mtime_days: float | None = None) -> Path:
        results = results or self.results / run_id
        run_dir = self.runs / run_id
        run_dir.mkdir(parents=True)
        pid, started = engine or (4000000, 1.0)
        status = {"run_id": run_id, "pid": pid, "pid_started": started, "task_file": "/x/tasks.json",
                  "results_dir": str(results), "started": _iso(time.time() - 41 * DAY),
                  "ended": None if ended_days is None else _iso(time.time() - ended_days * DAY),
                  "state": state, "tasks": []}
        (run_dir / "status.json").write_text(json.dumps(status))
        (run_dir / "events.jsonl").write_text('{"event": "started"}\n' * 50)
        if not results.is_symlink():
            results.mkdir(parents=True, exist_ok=True)
            (results / "a.stdout").write_bytes(b"x" * payload)
            (results / "a.json").write_text("{}")
            os.link(results / "a.stdout", results / "a.copy")  # du counts a hard link once
        age_tree(run_dir, 40 if mtime_days is None else mtime_days)
        return run_dir

    def marker(self, run_id: str, engine: tuple[int, float]) -> Path:
        path = self.runs / "active" / run_id
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{engine[0]} {engine[1]}")
        return path


def du(*paths: Path) -> int:
    """What `du` says the paths occupy (links not followed, hard links once)."""
    out = subprocess.run(["du", "-s", "-c", "-B1", *map(str, paths)], capture_output=True, text=True, check=True)
    return int(out.stdout.splitlines()[-1].split()[0])


def cleanup(*args: str) -> dict[str, Any]:
    done = engine("cleanup", "--json", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def by_run(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["run_id"]: r for r in report["runs"]}


@pytest.fixture
def me() -> tuple[int, float]:
    return os.getpid(), psutil.Process().create_time()


@pytest.fixture
def planted(home: Path, tmp_path: Path, me: tuple[int, float]) -> Runs:
    runs = Runs(home)
    runs.add(OLD, ended_days=40)
    runs.add(YOUNG, ended_days=1, mtime_days=1)
    runs.add(LIVE, ended_days=None, state="running", engine=me)  # 40 days old by every time stamp, but alive
    runs.add(PAUSED, ended_days=None, state="paused", engine=me)
    runs.add(DEAD, ended_days=None, state="running", engine=dead_engine())
    runs.marker(DEAD, dead_engine())
    runs.add(MINE, ended_days=40, results=tmp_path / "my-results")
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "keep.txt").write_text("not the engine's")
    (runs.results / LINKED).symlink_to(target)
    runs.add(LINKED, ended_days=40, results=runs.results / LINKED)
    runs.add(CORRUPT, ended_days=40)
    (runs.runs / CORRUPT / "status.json").write_text("{not json")
    age_tree(runs.runs / CORRUPT, 40)
    runs.add(RESUMED, ended_days=40)
    runs.marker(RESUMED, me)  # `run --resume` has just begun: its marker comes before its new status
    return runs


GONE = [OLD, DEAD, MINE, LINKED, CORRUPT]


def expected_paths(runs: Runs) -> list[Path]:
    return [*(runs.runs / r for r in GONE), *(runs.results / r for r in (OLD, DEAD, LINKED, CORRUPT)),
            runs.runs / "active" / DEAD]


def test_only_old_ended_runs_go_with_their_own_results(planted: Runs, tmp_path: Path) -> None:
    freed = du(*expected_paths(planted)) - du(planted.runs / "active" / DEAD)  # the marker is not counted
    dry = cleanup("--dry-run")
    assert dry["dry_run"] is True and dry["resources"] == []
    assert {r for r, v in by_run(dry).items() if v["removed"]} == set(GONE)
    assert all(p.exists() or p.is_symlink() for p in expected_paths(planted))  # a dry run deletes nothing
    assert dry["freed_bytes"] == freed

    done = cleanup()
    assert by_run(done) == {**by_run(dry), CORRUPT: by_run(done)[CORRUPT]}  # the corrupt status was set aside
    assert done["freed_bytes"] == freed
    assert sorted(p.name for p in planted.runs.iterdir()) == sorted(["active", YOUNG, LIVE, RESUMED, PAUSED])
    assert sorted(p.name for p in planted.results.iterdir()) == sorted([YOUNG, LIVE, RESUMED, PAUSED])
    assert not (planted.runs / "active" / DEAD).exists()
    runs = by_run(done)
    assert runs[LIVE]["reason"] == runs[PAUSED]["reason"] == "running" and runs[LIVE]["ended"] is None
    assert runs[RESUMED]["reason"] == "running" and not runs[RESUMED]["removed"]
    assert runs[YOUNG]["reason"].startswith("ended 1.0 days ago") and not runs[YOUNG]["due"]
    assert "engine gone" in runs[DEAD]["reason"]
    assert runs[MINE]["results_removed"] is False and "outside the results root" in runs[MINE]["reason"]
    assert (tmp_path / "my-results" / "a.stdout").stat().st_size == 20000  # the user's folder stays whole
    assert (tmp_path / "elsewhere" / "keep.txt").read_text() == "not the engine's"  # a link's target too
    assert runs[LINKED]["results_removed"] is True
    assert sum(r["bytes"] for r in done["runs"] if r["removed"]) == done["freed_bytes"]


def test_text_report(planted: Runs) -> None:
    dry = engine("cleanup", "--dry-run").stdout
    assert f"{OLD}  " in dry and "would remove" in dry and LIVE not in dry and YOUNG not in dry
    assert "would remove 5 runs older than 30 days: " in dry and "(dry run: nothing deleted)" in dry
    done = engine("cleanup").stdout.splitlines()
    assert done[-1].startswith("removed 5 runs older than 30 days: ") and done[-1].endswith("freed; 4 kept")
    assert engine("cleanup").stdout.splitlines()[-1] == "removed 0 runs older than 30 days: 0 B freed; 4 kept"


def test_a_symlinked_run_directory_is_removed_as_a_link(home: Path, tmp_path: Path) -> None:
    runs = Runs(home)
    Runs(tmp_path).add(LINKED_RUN, ended_days=40)  # a whole run, elsewhere
    outside = tmp_path / "memory" / "temp" / "runs" / LINKED_RUN
    (outside / "status.json").write_text("{not json")  # read through the link, it would be moved aside
    runs.runs.mkdir(parents=True)
    (runs.runs / LINKED_RUN).symlink_to(outside)
    age_tree(runs.runs / LINKED_RUN, 40)
    report = cleanup()
    assert by_run(report)[LINKED_RUN]["removed"] and not (runs.runs / LINKED_RUN).is_symlink()
    assert sorted(p.name for p in outside.iterdir()) == ["events.jsonl", "status.json"]  # untouched


def test_retention_zero_keeps_every_run_and_a_negative_one_is_a_config_error(planted: Runs, tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text('{"runs_retention_days": 0}')
    report = cleanup("--config", str(config))
    assert not any(r["removed"] for r in report["runs"]) and report["freed_bytes"] == 0
    assert len(list(planted.runs.iterdir())) == 10  # nine runs and `active`
    config.write_text('{"runs_retention_days": -1}')
    done = engine("cleanup", "--config", str(config))
    assert done.returncode == 2 and "key 'runs_retention_days'" in done.stderr


def test_a_real_run_aged_is_cleaned(home: Path, tasks_file: Callable[..., Path]) -> None:
    tasks = tasks_file([{"id": "a", "command": py("print('x' * 5000)")}])
    assert engine("run", "-q", tasks).returncode == 0
    assert engine("run", "-q", tasks).returncode == 0
    runs = Runs(home)
    old, young = sorted(p.name for p in runs.runs.iterdir() if p.name != "active")
    status_path = runs.runs / old / "status.json"
    status = json.loads(status_path.read_text())
    status["ended"] = _iso(time.time() - 31 * DAY)
    status_path.write_text(json.dumps(status))
    assert (runs.results / old / "a.stdout").stat().st_size == 5001
    freed = du(runs.runs / old, runs.results / old)
    report = cleanup()
    assert [r["run_id"] for r in report["runs"] if r["removed"]] == [old] and report["freed_bytes"] == freed
    assert not (runs.runs / old).exists() and not (runs.results / old).exists()
    assert (runs.runs / young / "status.json").is_file() and (runs.results / young / "a.stdout").is_file()
    assert (home / "memory" / "logs" / "parallel-execution.log").is_file()  # logs stay as they are


def test_a_run_resumed_after_it_was_judged_is_not_removed(home: Path, me: tuple[int, float]) -> None:
    from parallel_executor.results.retention import judge, remove

    runs = Runs(home)
    runs.add(OLD, ended_days=40)
    verdict = judge(OLD, 30, time.time())
    assert verdict.removed
    runs.marker(OLD, me)  # `run --resume OLD` begins between the judgement and the deletion
    assert remove(verdict, 30, time.time()).reason == "running"
    assert (runs.runs / OLD / "status.json").is_file() and (runs.results / OLD / "a.stdout").is_file()
