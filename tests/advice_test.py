"""Warnings before a run (PRODUCT §5 validate) and "did you mean" for unknown fields (§4)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from parallel_executor.plan.advice import did_you_mean, task_warnings

from tests.conftest import engine

STRATEGIES = {"testing": "aggregate_results", "test": "aggregate_results", "tests": "aggregate_results",
              "pytest": "aggregate_results", "build": "check_all", "search": "deduplicate_rank"}
RUNNERS = {"claude": "claude-not-installed-here", "codex": sys.executable}


def test_did_you_mean() -> None:
    fields = ["id", "blockedBy", "timeout", "prompt", "command"]
    assert did_you_mean("blockedby", fields) == "blockedBy"  # case first
    assert did_you_mean("BLOCKEDBY", fields) == "blockedBy"
    assert did_you_mean("pATH", ["patch", "Path"]) == "Path"  # the same word in other case beats a closer one
    assert did_you_mean("timout", fields) == "timeout"
    assert did_you_mean("promt", fields) == "prompt"
    assert did_you_mean("tset", STRATEGIES) == "test"
    assert did_you_mean("dependsOn", fields) is None
    assert did_you_mean("cmd", fields) is None
    assert did_you_mean("x", []) is None


def test_an_unknown_type_close_to_a_known_one(tmp_path: Path) -> None:
    tasks: list[dict[str, Any]] = [
        {"id": "t", "type": "tset", "command": "true", "cwd": tmp_path},
        {"id": "ok", "type": "testing", "command": "true", "cwd": tmp_path},
        {"id": "free", "type": "lint", "command": "true", "cwd": tmp_path},  # far from any: the default merge, silently
        {"id": "case", "type": "Build", "command": "true", "cwd": tmp_path},
    ]
    assert task_warnings(tasks, STRATEGIES, RUNNERS) == [
        "task 't': field 'type': unknown type 'tset' (the default merge applies); did you mean 'test'?",
        "task 'case': field 'type': unknown type 'Build' (the default merge applies); did you mean 'build'?",
    ]


def test_programs_not_found(tmp_path: Path) -> None:
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o644)
    tasks: list[dict[str, Any]] = [
        {"id": "typo", "command": ["pytets", "-q"], "cwd": tmp_path},
        {"id": "fine", "command": [sys.executable, "-c", "pass"], "cwd": tmp_path},
        {"id": "shell", "command": "pytets -q", "cwd": tmp_path},  # a shell line is the shell's business
        {"id": "abs", "command": [str(tmp_path / "nope" / "tool")], "cwd": tmp_path},
        {"id": "rel", "command": ["./run.sh"], "cwd": tmp_path},
        {"id": "mine", "command": ["mytool"], "cwd": tmp_path, "env": {"PATH": str(tmp_path)}},
        {"id": "agent", "prompt": "hi", "cwd": tmp_path},  # runner claude: its program is not installed
        {"id": "codex", "prompt": "hi", "runner": "codex", "cwd": tmp_path},
        {"id": "nobody", "prompt": "hi", "runner": "unknown-runner", "cwd": tmp_path},  # refused elsewhere
    ]
    assert task_warnings(tasks, STRATEGIES, RUNNERS) == [
        "task 'typo': program 'pytets' not found on PATH",
        f"task 'abs': program '{tmp_path}/nope/tool' not found ({tmp_path}/nope/tool does not exist)",
        "task 'rel': program './run.sh' is not an executable file",
        "task 'mine': program 'mytool' not found on PATH",
        "task 'agent': runner 'claude': program 'claude-not-installed-here' not found on PATH",
    ]
    script.chmod(0o755)
    (tmp_path / "mytool").write_bytes(script.read_bytes())
    (tmp_path / "mytool").chmod(0o755)
    assert task_warnings(tasks[1:], STRATEGIES, {}) == [
        f"task 'abs': program '{tmp_path}/nope/tool' not found ({tmp_path}/nope/tool does not exist)"]


def test_a_missing_cwd(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    tasks: list[dict[str, Any]] = [
        {"id": "later", "command": ["./build.sh"], "cwd": tmp_path / "x" / "y"},  # no program check under it
        {"id": "file", "command": ["true"], "cwd": tmp_path / "file"},
        {"id": "here", "command": ["true"], "cwd": tmp_path},
    ]
    assert task_warnings(tasks, STRATEGIES, RUNNERS) == [
        f"task 'later': cwd {tmp_path}/x/y does not exist yet",
        f"task 'file': cwd {tmp_path}/file is not a directory",
    ]


def test_one_warning_per_problem_and_fast_for_10000_tasks(tmp_path: Path) -> None:
    missing = tmp_path / "gen"
    tasks: list[dict[str, Any]] = [{"id": f"t{i}", "type": "tset", "command": ["pytets", str(i)], "cwd": missing}
                                   for i in range(10_000)]
    tasks += [{"id": "a", "command": ["pytets"], "cwd": tmp_path}, {"id": "b", "command": ["pytets"], "cwd": tmp_path}]
    start = time.perf_counter()
    warnings = task_warnings(tasks, STRATEGIES, RUNNERS)
    assert time.perf_counter() - start < 2
    assert warnings == [
        "tasks 't0', 't1', 't2', ...: field 'type': unknown type 'tset' (the default merge applies); "
        "did you mean 'test'? (10,000 tasks)",
        f"tasks 't0', 't1', 't2', ...: cwd {missing} does not exist yet (10,000 tasks)",
        "tasks 't0', 't1', 't2', ...: program 'pytets' not found on PATH (10,002 tasks)",
    ]
    assert task_warnings(tasks[-2:], STRATEGIES, RUNNERS) == ["tasks 'a', 'b': program 'pytets' not found on PATH "
                                                              "(2 tasks)"]


def test_validate_says_did_you_mean_for_an_unknown_field(home: Path, tasks_file: Callable[..., Path]) -> None:
    path = tasks_file({"defaults": {"timout": 5},
                       "tasks": [{"id": "a", "command": ["true"]},
                                 {"id": "b", "command": ["true"], "blockedby": ["a"]},
                                 {"id": "c", "command": ["true"], "promt": "x", "zzzz": 1}]})
    done = engine("validate", path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        f"parallel-executor: {path}: defaults: unknown field 'timout'; did you mean 'timeout'?",
        f"parallel-executor: {path}: task 'b': unknown field 'blockedby'; did you mean 'blockedBy'?",
        f"parallel-executor: {path}: task 'c': unknown field 'promt' (did you mean 'prompt'?), 'zzzz'",
    ]
