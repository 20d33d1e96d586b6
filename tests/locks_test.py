"""Path locks (§7): conflicting tasks never overlap, within a run and across engines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from parallel_executor.plan.pathlocks import LockSet, normalize, overlap

from tests.conftest import ENGINE, helper, run_json, wait_for
from tests.executor_test import intervals

POOL = ["src", "src/a", "src/a/x.py", "src/b", "docs", "docs/**/*.md", "build/"]


def spans_overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def test_conflict_rules() -> None:
    assert normalize("src/**/*.py", "/repo") == "/repo/src"
    assert normalize("../x/", "/repo/sub") == "/repo/x"
    assert overlap("/repo/src", "/repo/src/a.py") and overlap("/repo/src/a.py", "/repo/src")
    assert not overlap("/repo/src", "/repo/src2")
    writer, reader = LockSet(("/r/src",), ()), LockSet((), ("/r/src/a",))
    assert writer.conflicts(reader) and reader.conflicts(writer)
    assert not LockSet((), ("/r/src",)).conflicts(reader)  # readers share


task_sets = st.lists(
    st.tuples(st.lists(st.sampled_from(POOL), max_size=2), st.lists(st.sampled_from(POOL), max_size=2)),
    min_size=2, max_size=7)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(specs=task_sets)
def test_conflicting_tasks_never_overlap(home: Path, tasks_file: Callable[..., Path], tmp_path: Path,
                                         specs: list[tuple[list[str], list[str]]]) -> None:
    out = tmp_path / f"out-{os.urandom(4).hex()}"
    out.mkdir()
    tasks: list[dict[str, Any]] = [
        {"id": f"t{i}", "command": helper("interval.py", str(out), f"t{i}", "0.15"), "paths": paths, "reads": reads}
        for i, (paths, reads) in enumerate(specs)]
    code, _ = run_json(tasks_file(tasks), "-j", "4", cwd=tmp_path)
    assert code == 0
    spans = intervals(out)
    sets = [LockSet(tuple(normalize(p, str(tmp_path)) for p in w), tuple(normalize(p, str(tmp_path)) for p in r))
            for w, r in specs]
    for i in range(len(specs)):
        for j in range(i + 1, len(specs)):
            if sets[i].conflicts(sets[j]):
                assert not spans_overlap(spans[f"t{i}"], spans[f"t{j}"]), (specs[i], specs[j])


def test_non_conflicting_tasks_run_concurrently(home: Path, tasks_file: Callable[..., Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    tasks = [{"id": "w-src", "command": helper("interval.py", str(out), "w-src", "0.5"), "paths": ["src/"]},
             {"id": "w-docs", "command": helper("interval.py", str(out), "w-docs", "0.5"), "paths": ["docs/"]},
             {"id": "r-src-1", "command": helper("interval.py", str(out), "r-src-1", "0.5"), "reads": ["lib/"]},
             {"id": "r-src-2", "command": helper("interval.py", str(out), "r-src-2", "0.5"), "reads": ["lib/x"]}]
    code, _ = run_json(tasks_file(tasks), "-j", "4", cwd=tmp_path)
    assert code == 0
    spans = intervals(out)
    assert spans_overlap(spans["w-src"], spans["w-docs"]) and spans_overlap(spans["r-src-1"], spans["r-src-2"])


def test_two_engines_on_overlapping_paths_never_overlap(home: Path, tasks_file: Callable[..., Path],
                                                        tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    files = [tasks_file([{"id": f"{name}{i}", "command": helper("interval.py", str(out), f"{name}{i}", "0.3"),
                          "paths": ["shared/"]} for i in range(2)], name=f"{name}.json") for name in ("a", "b")]
    engines = [subprocess.Popen([*ENGINE, "run", "--quiet", str(f), "-j", "2"], cwd=tmp_path,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for f in files]
    try:
        for e in engines:
            assert e.wait(timeout=60) == 0
    finally:
        for e in engines:  # a hung engine must not outlive the test
            e.kill()
            e.wait()
    spans = sorted(intervals(out).values())
    assert len(spans) == 4
    assert all(not spans_overlap(spans[i], spans[i + 1]) for i in range(3))
    assert json.loads((home / "memory" / "temp" / "resource-locks.json").read_text()) == {"locks": []}


def write_lock(home: Path, pid: int, path: Path) -> None:
    locks = home / "memory" / "temp" / "resource-locks.json"
    locks.parent.mkdir(parents=True, exist_ok=True)
    locks.write_text(json.dumps({"locks": [{"agent_id": "other", "task": "other", "run_id": "elsewhere",
                                            "pid": pid, "locked_paths": [str(path)], "mode": "write",
                                            "lock_time": "2026-11-22T00:00:00+00:00"}]}))


def test_stale_lock_of_a_dead_engine_is_reclaimed(home: Path, tasks_file: Callable[..., Path],
                                                  tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    write_lock(home, dead.pid, tmp_path / "shared")
    code, summary = run_json(tasks_file([{"id": "t", "command": ["true"], "paths": ["shared/file"]}]), cwd=tmp_path)
    assert code == 0, summary


def test_lock_timeout_fails_the_task_naming_the_holder(home: Path, tasks_file: Callable[..., Path],
                                                       tmp_path: Path) -> None:
    write_lock(home, os.getpid(), tmp_path / "shared")  # held by a live process: this test
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"lock_timeout_seconds": 0.5}))
    path = tasks_file([{"id": "t", "command": ["true"], "paths": ["shared/"], "retries": 0},
                       {"id": "free", "command": ["true"], "paths": ["elsewhere/"]}])
    code, summary = run_json(path, "--config", config, cwd=tmp_path)
    assert code == 1
    assert summary["tasks"]["free"]["status"] == "success"
    error = summary["tasks"]["t"]["error"]
    assert error == f"lock timeout after 0.5s: paths held by task 'other' of run elsewhere (pid {os.getpid()})"


def test_a_released_lock_leaves_the_shared_file_while_the_run_goes_on(home: Path, tasks_file: Callable[..., Path],
                                                                     tmp_path: Path) -> None:
    locks = home / "memory" / "temp" / "resource-locks.json"

    def holders() -> list[str]:
        try:
            return [e["task"] for e in json.loads(locks.read_text())["locks"]]
        except (FileNotFoundError, ValueError):
            return []

    go = tmp_path / "go"  # long runs until the test has seen quick's lock go (at most 30 s)
    long = f"for i in $(seq 600); do [ -e {go} ] && exit 0; sleep 0.05; done"
    path = tasks_file([{"id": "quick", "command": ["sleep", "0.5"], "paths": ["shared/"]},
                       {"id": "long", "command": long, "paths": ["elsewhere/"]}])
    engine = subprocess.Popen([*ENGINE, "run", "--quiet", str(path)], cwd=tmp_path, stdout=subprocess.DEVNULL)
    try:
        wait_for(lambda: sorted(holders()) == ["long", "quick"])
        wait_for(lambda: holders() == ["long"], timeout=2.5)  # quick ends at 0.5 s; long runs until told
        assert engine.poll() is None
    finally:
        go.touch()
        assert engine.wait(timeout=30) == 0
    assert holders() == []


def test_a_retried_task_keeps_its_locks_and_runs_again(home: Path, tasks_file: Callable[..., Path],
                                                        tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"retry_backoff_seconds": 0.1, "lock_timeout_seconds": 5}))
    marker = tmp_path / "failed-once"
    flaky = [sys.executable, "-c", f"import pathlib, sys; p = pathlib.Path({str(marker)!r}); "
             "sys.exit(0) if p.exists() else (p.touch(), sys.exit(3))"]
    path = tasks_file([{"id": "flaky", "command": flaky, "retries": 1, "paths": ["shared/"]}])
    code, summary = run_json(path, "--config", config, cwd=tmp_path, timeout=30)
    assert code == 0 and summary["tasks"]["flaky"] == {**summary["tasks"]["flaky"], "status": "success", "attempts": 2}
