"""Every error case of PRODUCT §4: exit code 2, one clear line per problem, no traceback."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import engine


def validate(path: Path) -> tuple[int, list[str]]:
    done = engine("validate", path)
    assert "Traceback" not in done.stderr
    return done.returncode, done.stderr.splitlines()


def only(lines: list[str]) -> str:
    assert len(lines) == 1, lines
    return lines[0]


def test_valid_file(home: Path, tasks_file: Callable[..., Path]) -> None:
    path = tasks_file({"defaults": {"timeout": 5}, "tasks": [
        {"id": "a", "command": ["true"]}, {"id": "b", "prompt": "hi", "blockedBy": ["a"]}]})
    done = engine("validate", path)
    assert done.returncode == 0
    assert done.stdout.strip() == f"{path}: OK, 2 tasks in 2 waves"


def test_bare_list_is_accepted(home: Path, tasks_file: Callable[..., Path]) -> None:
    assert engine("validate", tasks_file([{"id": "a", "command": "true"}])).returncode == 0


def test_bad_json_reports_line_and_column(home: Path, tasks_file: Callable[..., Path]) -> None:
    code, lines = validate(tasks_file('{"tasks": [\n  {"id": "a",, "command": "x"}\n]}'))
    assert code == 2
    assert only(lines).endswith("tasks.json:2:14: invalid JSON: Expecting property name enclosed in double quotes")


def test_missing_file(home: Path, tmp_path: Path) -> None:
    code, lines = validate(tmp_path / "nope.json")
    assert code == 2 and only(lines).endswith("nope.json: no such file")


@pytest.mark.parametrize(("task", "expected"), [
    ({"id": "a", "command": ["true"], "timeout": -1}, "task 'a', field 'timeout': -1 is less than or equal to"),
    ({"id": "a", "command": ["true"], "priority": "urgent"}, "task 'a', field 'priority': 'urgent' is not one of"),
    ({"id": "a", "command": ["true"], "blockedby": []}, "task 'a': unknown field 'blockedby'"),
    ({"id": "a"}, "task 'a': needs exactly one of 'prompt' or 'command'"),
    ({"id": "a", "prompt": "x", "command": "y"}, "task 'a': needs exactly one of 'prompt' or 'command'"),
    ({"id": "no spaces", "command": "x"}, "task 'no spaces', field 'id': 'no spaces' does not match"),
    ({"command": "x"}, "task #1: 'id' is required"),
    ({"id": "a", "command": []}, "task 'a', field 'command': [] is empty"),
    ({"id": "a", "command": [1]}, "task 'a', field 'command.0': 1 is not of type 'string'"),
    ({"id": "a", "prompt": "x", "required_skill": "../etc"}, "task 'a', field 'required_skill': '../etc' does not"),
    ({"id": "a", "prompt": "x", "runner": "nope"}, "task 'a', field 'runner': unknown runner 'nope' (known: aider,"),
    ({"id": "a", "command": "x", "phase": "nope"}, "task 'a', field 'phase': unknown phase 'nope' (known: archit"),
])
def test_schema_violation_names_task_and_field(
    home: Path, tasks_file: Callable[..., Path], task: dict[str, object], expected: str
) -> None:
    code, lines = validate(tasks_file({"tasks": [task]}))
    assert code == 2
    assert expected in only(lines)


def test_duplicate_ids(home: Path, tasks_file: Callable[..., Path]) -> None:
    code, lines = validate(tasks_file([{"id": "a", "command": "x"}, {"id": "a", "command": "y"}]))
    assert code == 2 and only(lines).endswith("duplicate task id 'a' (tasks #1 and #2)")


def test_unknown_blocked_by(home: Path, tasks_file: Callable[..., Path]) -> None:
    code, lines = validate(tasks_file([{"id": "a", "command": "x", "blockedBy": ["ghost"]}]))
    assert code == 2 and only(lines).endswith("task 'a': blockedBy names unknown task 'ghost'")


def test_self_dependency(home: Path, tasks_file: Callable[..., Path]) -> None:
    code, lines = validate(tasks_file([{"id": "a", "command": "x", "blockedBy": ["a"]}]))
    assert code == 2 and only(lines).endswith("task 'a': depends on itself")


def test_cycle_is_printed(home: Path, tasks_file: Callable[..., Path]) -> None:
    code, lines = validate(tasks_file([
        {"id": "a", "command": "x", "blockedBy": ["c"]},
        {"id": "b", "command": "x", "blockedBy": ["a"]},
        {"id": "c", "command": "x", "blockedBy": ["b"]},
    ]))
    assert code == 2 and only(lines).endswith("dependency cycle: a -> c -> b -> a")


def test_all_problems_reported_at_once(home: Path, tasks_file: Callable[..., Path]) -> None:
    code, lines = validate(tasks_file([
        {"id": "a", "command": "x", "blockedBy": ["b"]},
        {"id": "b", "command": "x", "blockedBy": ["a"]},
        {"id": "c", "command": "x", "timeout": 0},
        {"id": "c", "command": "x"},
        {"id": "d", "command": "x", "blockedBy": ["zz"]},
    ]))
    assert code == 2
    assert len(lines) == 4, lines
    joined = "\n".join(lines)
    for part in ("field 'timeout'", "unknown task 'zz'", "dependency cycle: a -> b -> a"):
        assert part in joined


def test_empty_file_and_wrong_shape(home: Path, tasks_file: Callable[..., Path]) -> None:
    assert only(validate(tasks_file({"tasks": []}))[1]).endswith("holds no tasks")
    assert "must be a JSON object" in only(validate(tasks_file("42"))[1])
    assert "unknown top-level field 'task'" in validate(tasks_file({"task": []}))[1][0]


def test_run_rejects_bad_file_before_anything_runs(home: Path, tasks_file: Callable[..., Path],
                                                   tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = tasks_file([{"id": "a", "command": ["touch", str(marker)]}, {"id": "b", "command": "x",
                                                                      "blockedBy": ["b"]}])
    done = engine("run", path)
    assert done.returncode == 2 and "depends on itself" in done.stderr
    assert not marker.exists()


def test_bad_config_names_the_key(home: Path, tasks_file: Callable[..., Path], tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"max_concurrent": 0, "memory_reserve": "lots"}))
    done = engine("validate", tasks_file([{"id": "a", "command": "x"}]), "--config", config)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "key 'max_concurrent'" in done.stderr and "key 'memory_reserve'" in done.stderr


def test_partial_config_keeps_other_defaults(home: Path, tmp_path: Path) -> None:
    from parallel_executor.plan.config import load_config

    config = tmp_path / "config.json"
    config.write_text(json.dumps({"runners": {"echo": {"command": ["echo", "{prompt}"], "output": "text"}},
                                  "memory_reserve": "1GiB"}))
    loaded = load_config(config)
    assert set(loaded.runners) == {"claude", "codex", "gemini", "aider", "echo"}
    assert loaded.memory_reserve == 2**30 and loaded.memory_per_agent == 256 * 10**6
    assert loaded.max_concurrent == 5
