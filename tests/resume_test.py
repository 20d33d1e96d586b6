"""`--resume` planning (§7): which results stand, what runs again and why, from a run's files.

The runs are written by hand in the shapes the engine writes (status.json, events.jsonl with
definition digests in `run-started`, result files), so that each case is exact."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from parallel_executor.engine.resume import definition_digest, digests, plan_resume
from parallel_executor.errors import UserError
from parallel_executor.plan.config import load_config
from parallel_executor.plan.model import TaskFile
from parallel_executor.plan.taskfile import load_task_file

from tests.conftest import engine, run_json

RUN = "20240101-120000.000-ab12"
T0 = "2024-01-01T12:00:00.000+00:00"
T1 = "2024-01-01T12:00:05.000+00:00"


def load(path: Path) -> TaskFile:
    return load_task_file(path, load_config(), path.parent)


def write_run(home: Path, taskfile: TaskFile, statuses: dict[str, str], *, with_digests: bool = True,
              results: dict[str, str] | None = None, run_id: str = RUN, task_file: str | None = None,
              **extra: Any) -> Path:
    """A finished run of taskfile: each task's last status as given (journal and status.json), a
    result file for each (status as in results, else as in statuses), digests of taskfile's tasks."""
    run_dir = home / "memory" / "temp" / "runs" / run_id
    results_dir = home / "memory" / "temp" / "parallel-results" / run_id
    run_dir.mkdir(parents=True)
    results_dir.mkdir(parents=True)
    started: dict[str, Any] = {"time": T0, "event": "run-started", "pid": 1, "tasks": len(statuses), "slots": 2}
    if with_digests:
        started["digests"] = digests(taskfile)
    events = [started] + [{"time": T1, "event": s, "task": tid, "status": s, "attempts": 1}
                          for tid, s in statuses.items()]
    events.append({"time": T1, "event": "run-finished", "state": "partial"})
    (run_dir / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    rows = [{"id": tid, "status": s, "attempts": 1, "started": T0, "ended": T1, "reason": ""}
            for tid, s in statuses.items()]
    status = {"run_id": run_id, "pid": 1, "pid_started": 1.0, "task_file": task_file or str(taskfile.path),
              "results_dir": str(results_dir), "started": T0, "ended": T1, "state": "partial", "slots": 2,
              "totals": {"wall_time": 5.0, "task_time_sum": 5.0, "speedup": 1.0, "cost_usd": 0.0}, "tasks": rows,
              **extra}
    (run_dir / "status.json").write_text(json.dumps(status))
    for tid, s in {**statuses, **(results or {})}.items():
        (results_dir / f"{tid}.json").write_text(json.dumps({"id": tid, "task_id": tid, "status": s, "attempts": 1,
                                                              "exit_code": 0, "duration": 1.0, "output": tid}))
    return run_dir


@pytest.fixture
def chain(tasks_file: Callable[..., Path]) -> Callable[..., Path]:
    """a -> b -> c, and d on its own; change() edits one task's command."""
    def write(**commands: str) -> Path:
        base = {"a": "echo a", "b": "echo b", "c": "echo c", "d": "echo d", **commands}
        return tasks_file([{"id": "a", "command": base["a"]}, {"id": "b", "command": base["b"], "blockedBy": ["a"]},
                           {"id": "c", "command": base["c"], "blockedBy": ["b"]}, {"id": "d", "command": base["d"]}])
    return write


def test_what_succeeded_with_the_same_definition_is_reused(home: Path, chain: Callable[..., Path]) -> None:
    taskfile = load(chain())
    write_run(home, taskfile, {"a": "success", "b": "failed", "c": "skipped", "d": "success"})
    plan = plan_resume("latest", taskfile, None)
    assert plan.run_id == RUN and plan.started == T0
    assert set(plan.reused) == {"a", "d"} and plan.reused["a"]["output"] == "a"
    assert plan.rerun == {"b": "did not succeed (failed)", "c": "did not succeed (skipped)"}
    assert plan.results_dir == home / "memory" / "temp" / "parallel-results" / RUN


def test_an_edited_task_and_everything_downstream_of_it_run_again(home: Path, chain: Callable[..., Path]) -> None:
    write_run(home, load(chain()), dict.fromkeys("abcd", "success"))
    plan = plan_resume(RUN, load(chain(a="echo A")), None)
    assert set(plan.reused) == {"d"}
    assert plan.rerun == {"a": "its definition changed", "b": "downstream of 'a', whose definition changed",
                          "c": "downstream of 'a', whose definition changed"}


def test_a_new_task_runs_and_a_dependent_of_a_task_that_runs_again_does_too(home: Path,
                                                                         tasks_file: Callable[..., Path]) -> None:
    old = load(tasks_file([{"id": "a", "command": "true"}, {"id": "b", "command": "true", "blockedBy": ["a"]}]))
    # a succeeded, but its result file is not a success: it cannot be trusted, so a and b run again
    write_run(home, old, {"a": "success", "b": "success"}, results={"a": "failed"})
    new = load(tasks_file([{"id": "a", "command": "true"}, {"id": "b", "command": "true", "blockedBy": ["a"]},
                           {"id": "n", "command": "true"}]))
    plan = plan_resume("latest", new, None)
    assert plan.reused == {}
    assert plan.rerun == {"a": "its result file is missing or not valid", "b": "downstream of 'a', which runs again",
                          "n": "new in the file"}


def test_what_does_not_change_what_a_task_does_keeps_its_result(home: Path, tasks_file: Callable[..., Path]) -> None:
    task = {"id": "a", "command": "echo a", "env": {"X": "1"}}
    write_run(home, load(tasks_file([task, {"id": "b", "command": "true"}])), {"a": "success", "b": "success"})
    how = {**task, "timeout": 99, "retries": 3, "priority": "high", "estimate": 7, "subject": "renamed"}
    assert set(plan_resume(RUN, load(tasks_file([how, {"id": "b", "command": "true"}])), None).reused) == {"a", "b"}
    for what in ({"env": {"X": "2"}}, {"command": ["echo", "a"]}, {"paths": ["src"]}, {"type": "test"},
                 {"blockedBy": ["b"]}, {"trigger": "all_done", "blockedBy": ["b"]}):
        changed = load(tasks_file([{**task, **what}, {"id": "b", "command": "true"}]))
        assert plan_resume(RUN, changed, None).rerun == {"a": "its definition changed"}, what


def test_a_run_without_digests_stays_resumable(home: Path, chain: Callable[..., Path]) -> None:
    write_run(home, load(chain()), {"a": "success", "b": "success", "c": "timeout"}, with_digests=False)
    plan = plan_resume(RUN, load(chain(a="echo edited")), None)  # edits cannot be seen: nothing is said
    assert set(plan.reused) == {"a", "b"}
    assert plan.rerun == {"c": "did not succeed (timeout)", "d": "new in the file"}


def test_a_result_counts_with_the_definition_it_was_produced_with(home: Path, chain: Callable[..., Path]) -> None:
    """Session 2 saw a's new definition but died before running it: session 3 must still run a."""
    old, new = load(chain()), load(chain(a="echo A"))
    run_dir = write_run(home, old, dict.fromkeys("abcd", "success"))
    with open(run_dir / "events.jsonl", "a") as f:
        f.write(json.dumps({"time": T1, "event": "run-started", "pid": 2, "digests": digests(new)}) + "\n")
        f.write('{"time": "2024-01-01T12:00:06.0' + "\n")  # torn by a power cut
    assert plan_resume(RUN, new, None).rerun["a"] == "its definition changed"


def test_an_interrupted_task_runs_again(home: Path, chain: Callable[..., Path]) -> None:
    taskfile = load(chain())
    write_run(home, taskfile, {"a": "success", "b": "running", "d": "pending"})
    plan = plan_resume(RUN, taskfile, None)
    assert plan.rerun == {"b": "did not succeed (interrupted)", "c": "did not succeed (never started)",
                          "d": "did not succeed (never started)"}


def test_another_files_run_is_refused_naming_both(home: Path, chain: Callable[..., Path], tmp_path: Path) -> None:
    taskfile = load(chain())
    write_run(home, taskfile, {"a": "success"}, task_file=str(tmp_path / "other.json"))
    with pytest.raises(UserError) as refused:
        plan_resume(RUN, taskfile, None)
    text = "\n".join(refused.value.lines)
    assert f"run {RUN} is a run of {tmp_path / 'other.json'}, not of {taskfile.path}" in text
    assert refused.value.exit_code == 2


def test_a_run_whose_engine_is_alive_is_refused(home: Path, chain: Callable[..., Path]) -> None:
    import psutil

    taskfile = load(chain())
    write_run(home, taskfile, {"a": "success"}, pid=os.getpid(), pid_started=psutil.Process().create_time())
    with pytest.raises(UserError, match="is still running"):
        plan_resume(RUN, taskfile, None)


def test_unknown_and_malformed_ids_are_user_errors(home: Path, chain: Callable[..., Path]) -> None:
    taskfile = load(chain())
    with pytest.raises(UserError, match="no earlier run of"):
        plan_resume("latest", taskfile, None)
    with pytest.raises(UserError, match="is not a run id"):
        plan_resume("../etc", taskfile, None)
    with pytest.raises(UserError, match="no run"):
        plan_resume(RUN, taskfile, None)


def test_previous_sessions_come_from_status_json(home: Path, chain: Callable[..., Path]) -> None:
    taskfile = load(chain())
    first = {"started": "2024-01-01T11:00:00.000+00:00", "ended": "2024-01-01T11:00:01.000+00:00",
             "state": "cancelled", "tasks": 4, "failed": 0, "skipped": 0, "cancelled": 4}
    write_run(home, taskfile, {"a": "success", "b": "failed", "c": "skipped", "d": "timeout"},
              previous=[first, "not a session"], resumed=T0)
    plan = plan_resume(RUN, taskfile, None)
    assert plan.previous[0] == first and len(plan.previous) == 2
    assert plan.previous[1] == {"started": T0, "ended": T1, "state": "partial", "tasks": 4, "failed": 2,
                                "skipped": 1, "cancelled": 0, "failed_tasks": ["b", "d"], "wall_time": 5.0}


def test_an_explicit_results_dir_is_where_results_are_read(home: Path, chain: Callable[..., Path],
                                                           tmp_path: Path) -> None:
    taskfile = load(chain())
    write_run(home, taskfile, {"a": "success"})
    plan = plan_resume(RUN, taskfile, tmp_path / "elsewhere")
    assert plan.results_dir == tmp_path / "elsewhere" and plan.reused == {}


def test_digest_is_short_stable_and_fast(tasks_file: Callable[..., Path]) -> None:
    task = load(tasks_file([{"id": "a", "command": "echo é", "env": {"B": "2", "A": "1"}}])).tasks[0]
    same = dataclasses.replace(task, env={"A": "1", "B": "2"}, timeout=1.0, retries=5)
    assert definition_digest(task) == definition_digest(same) and len(definition_digest(task)) == 16
    agent = load(tasks_file([{"id": "a", "prompt": "hi", "runner": "claude"}])).tasks[0]
    for what in ({"model": "opus"}, {"max_turns": 3}, {"tools": "Read"}, {"subagent": "x"}, {"prompt": "ho"}):
        assert definition_digest(dataclasses.replace(agent, **what)) != definition_digest(agent), what
    many = [dataclasses.replace(task, id=f"t{i}", command=f"echo {i}") for i in range(10_000)]
    best = float("inf")
    for _ in range(5):  # the best of five: a busy machine slows some of them
        start = time.perf_counter()
        for t in many:
            definition_digest(t)
        best = min(best, time.perf_counter() - start)
    assert best < 0.05


def test_resume_end_to_end(home: Path, tasks_file: Callable[..., Path], tmp_path: Path) -> None:
    log = tmp_path / "log"
    flag = tmp_path / "flag"

    def rec(name: str, fail: bool = False) -> str:
        cmd = f"echo {name} >> {log}"
        return f"{cmd}; test -e {flag}" if fail else cmd

    tasks = [{"id": "a", "command": rec("a")}, {"id": "b", "command": rec("b", fail=True), "blockedBy": ["a"]},
             {"id": "c", "command": rec("c")}, {"id": "d", "command": rec("d"), "blockedBy": ["c"]}]
    path = tasks_file(tasks)
    code, first = run_json(path)
    assert code == 1 and first["tasks"]["b"]["status"] == "failed"
    started = json.loads(engine("status", "--json").stdout)["started"]
    flag.touch()
    tasks[2]["command"] = rec("C")  # c edited: c and d run again, a stands
    path = tasks_file(tasks)
    code, second = run_json(path, "--resume")
    assert code == 0 and second["run_id"] == first["run_id"]
    ran = log.read_text().split()
    assert sorted(ran[:4]) == ["a", "b", "c", "d"] and sorted(ran[4:]) == ["C", "b", "d"]
    status = json.loads(engine("status", "--json").stdout)
    assert status["started"] == started and status["resumed"] > started
    assert status["previous"][0]["state"] == "partial" and status["previous"][0]["failed_tasks"] == ["b"]
    history = json.loads(engine("history", "--json").stdout)
    assert [s["state"] for s in history[0]["sessions"]] == ["partial", "success"]
    assert [s["resumed"] for s in history[0]["sessions"]] == [False, True]
    refused = engine("run", tasks_file(tasks, "other.json"), "--resume", first["run_id"])
    assert refused.returncode == 2 and "is a run of" in refused.stderr and "Traceback" not in refused.stderr


def test_journal_seq_grows_by_one_per_line_across_resumes(home: Path, chain: Callable[..., Path]) -> None:
    path = chain(b="exit 1")
    assert run_json(path)[0] == 1
    assert run_json(path, "--resume")[0] == 1  # b fails again: a third session has something to do
    assert run_json(chain(), "--resume")[0] == 0
    journal = next((home / "memory" / "temp" / "runs").glob("*/events.jsonl")).read_text().splitlines()
    events = [json.loads(line) for line in journal]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert [e["event"] for e in events].count("run-started") == 3
