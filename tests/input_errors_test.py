"""Zero tracebacks: every bad task file, config or command-line value is exit 2 and one clear line
per problem (PRODUCT §4), and what could not run is refused before anything starts."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from parallel_executor.plan.config import parse_size, total_memory

from tests.conftest import engine

OK_TASK = {"id": "a", "command": ["true"]}


def refused(*args: str | Path, env: dict[str, str] | None = None) -> list[str]:
    """The problem lines of a command that must refuse its input: exit 2, no traceback."""
    done = engine(*args, env=env)
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    prefix = "parallel-executor: "
    lines = done.stderr.splitlines()
    assert all(line.startswith(prefix) for line in lines), lines
    return [line[len(prefix):] for line in lines]


def only(lines: list[str]) -> str:
    assert len(lines) == 1, lines
    return lines[0]


@pytest.fixture
def config_file(tmp_path: Path) -> Callable[[str | bytes], Path]:
    def write(content: str | bytes) -> Path:
        path = tmp_path / "config.json"
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return path

    return write


# 1. Nesting deeper than Python's recursion limit: a RecursionError before.

@pytest.mark.parametrize("text", [
    "[" * 1000 + "]" * 1000,
    '{"tasks": [{"id": "a", "command": ' + "[" * 900 + "]" * 900 + "}]}",
])
def test_deep_nesting(home: Path, tasks_file: Callable[..., Path], text: str) -> None:
    path = tasks_file(text)
    for command in (["validate"], ["analyze"], ["run", "--dry-run"]):
        assert only(refused(*command, path)) == f"{path}: nested more than 100 levels deep"


# 2. A bad default: a TypeError before (unhashable phase), and it was merged into every task.

@pytest.mark.parametrize(("defaults", "expected"), [
    ({"phase": []}, "defaults, field 'phase': [] is not of type 'string'"),
    ({"runner": 5}, "defaults, field 'runner': 5 is not of type 'string'"),
    ({"timeout": -1}, "defaults, field 'timeout': -1 is less than or equal to the minimum of 0"),
    ({"blockedBy": "zz"}, "defaults: unknown field 'blockedBy'"),
    ({"env": {"A": 1}}, "defaults, field 'env.A': 1 is not of type 'string'"),
])
def test_a_bad_default_is_reported_once_and_applied_to_no_task(
        home: Path, tasks_file: Callable[..., Path], defaults: dict[str, object], expected: str) -> None:
    path = tasks_file({"defaults": defaults, "tasks": [OK_TASK, {"id": "b", "prompt": "hi"}]})
    assert only(refused("validate", path)) == f"{path}: {expected}"


@pytest.mark.parametrize("defaults", [None, [], "x"])
def test_defaults_not_an_object(home: Path, tasks_file: Callable[..., Path], defaults: object) -> None:
    path = tasks_file({"defaults": defaults, "tasks": [OK_TASK]})
    assert only(refused("validate", path)) == f"{path}: 'defaults' must be an object, not {defaults!r}"


# 3. Numbers JSON cannot hold, or Python cannot convert: a ValueError, or NaN accepted (a spinning loop).

@pytest.mark.parametrize(("value", "expected"), [
    ("NaN", "NaN is not a JSON number"),
    ("-Infinity", "-Infinity is not a JSON number"),
    ("1e999", "the number 1e999 is too large"),
    ("9" * 5000, "a number is too long (Exceeds the limit (4300 digits) for integer string conversion)"),
])
def test_numbers_json_cannot_hold(home: Path, tasks_file: Callable[..., Path], value: str, expected: str) -> None:
    path = tasks_file('{"tasks": [{"id": "a", "command": "true", "timeout": ' + value + "}]}")
    assert only(refused("validate", path)) == f"{path}: {expected}"


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("timeout", 10**400, "is greater than the maximum of 1000000000"),
    ("timeout", 1e300, "1e+300 is greater than the maximum of 1000000000"),
    ("estimate", 1e308, "1e+308 is greater than the maximum of 1000000000"),
])
def test_numbers_too_large_to_plan_with(home: Path, tasks_file: Callable[..., Path], field: str, value: float,
                                        expected: str) -> None:
    path = tasks_file({"tasks": [{**OK_TASK, field: value}]})
    line = only(refused("analyze", path))
    assert line.startswith(f"{path}: task 'a', field '{field}': ") and line.endswith(expected)
    assert len(line) < len(str(path)) + 150  # a 400-digit number is not printed whole


@pytest.mark.parametrize(("option", "expected"), [
    (["--timeout", "nan"], "option --timeout: nan is not a finite number"),
    (["--timeout", "inf"], "option --timeout: inf is not a finite number"),
    (["--timeout", "1e12"], "option --timeout: 1000000000000.0 is greater than the maximum of 1000000000"),
    (["--retries", "1000"], "option --retries: 1000 is greater than the maximum of 100"),
])
def test_command_line_values(home: Path, tasks_file: Callable[..., Path], option: list[str], expected: str) -> None:
    assert only(refused("run", "--dry-run", *option, tasks_file([OK_TASK]))) == expected


def test_a_bad_option_and_a_bad_file_are_reported_together(home: Path, tasks_file: Callable[..., Path]) -> None:
    path = tasks_file([{**OK_TASK, "retries": -1}])
    assert refused("run", "--timeout", "nan", path) == [
        "option --timeout: nan is not a finite number",
        f"{path}: task 'a', field 'retries': -1 is less than the minimum of 0"]


# 4. Text no argv, path or environment can hold: crashes at run time (or a mangled argv) before.

@pytest.mark.parametrize(("task", "field", "why"), [
    ({"id": "a", "command": "true", "cwd": "a\0b"}, "cwd", "holds a NUL character"),
    ({"id": "a", "command": "tr\0ue"}, "command", "holds a NUL character"),
    ({"id": "a", "command": ["true", "\0"]}, "command.1", "holds a NUL character"),
    ({"id": "a", "prompt": "x\0"}, "prompt", "holds a NUL character"),
    ({"id": "a", "command": "true", "env": {"A": "\0"}}, "env.A", "holds a NUL character"),
    ({"id": "a", "command": "true", "paths": ["src/\0"]}, "paths.0", "holds a NUL character"),
    ({"id": "a", "command": "true", "reads": ["\0"]}, "reads.0", "holds a NUL character"),
    ({"id": "a", "command": "true", "subject": "\ud800"}, "subject", "holds a lone surrogate (not valid Unicode)"),
    ({"id": "a", "command": "tr\udfffue"}, "command", "holds a lone surrogate (not valid Unicode)"),
    ({"id": "a", "command": ["\ud800"]}, "command.0", "holds a lone surrogate (not valid Unicode)"),
    ({"id": "a", "prompt": "\udc00"}, "prompt", "holds a lone surrogate (not valid Unicode)"),
    ({"id": "a", "command": "true", "env": {"\ud800": "1"}}, "env",
     "name '\\ud800' holds a lone surrogate (not valid Unicode)"),
    ({"id": "a", "command": "true", "env": {"A=B": "1"}}, "env",
     "'A=B': env name must be non-empty and hold no '=' or NUL"),
    ({"id": "a", "command": "true", "env": {"": "1"}}, "env", "'': env name must be non-empty and hold no '=' or NUL"),
    ({"id": "a", "command": "true", "env": {"A\0": "1"}}, "env",
     "'A\\x00': env name must be non-empty and hold no '=' or NUL"),
])
def test_text_that_cannot_run(home: Path, tasks_file: Callable[..., Path], task: dict[str, object], field: str,
                              why: str) -> None:
    path = tasks_file({"tasks": [task]})
    for command in (["validate"], ["run", "--dry-run"]):
        assert only(refused(*command, path)) == f"{path}: task 'a', field '{field}': {why}"


def test_bad_text_in_defaults_and_ids(home: Path, tasks_file: Callable[..., Path]) -> None:
    path = tasks_file({"defaults": {"cwd": "\0", "env": {"=": ""}},
                       "tasks": [{"id": "\ud800", "command": "true"}, {"id": "b\0", "command": "true"}]})
    assert refused("validate", path) == [
        f"{path}: task '\\ud800', field 'id': '\\ud800' does not match ^[A-Za-z0-9][A-Za-z0-9._-]{{0,127}}$",
        f"{path}: task 'b\\x00', field 'id': 'b\\x00' does not match ^[A-Za-z0-9][A-Za-z0-9._-]{{0,127}}$",
        f"{path}: defaults, field 'env': '=': env name must be non-empty and hold no '=' or NUL",
        f"{path}: defaults, field 'cwd': holds a NUL character"]


def test_surrogate_pairs_and_escaped_backslashes_are_fine(home: Path, tasks_file: Callable[..., Path]) -> None:
    path = tasks_file('{"tasks": [{"id": "a", "command": "echo \\\\u0000", "subject": "\\ud83d\\ude00"}]}')
    assert engine("validate", path).returncode == 0


# 5. Printing what stdout cannot encode: a UnicodeEncodeError before.

def test_a_file_name_that_is_not_utf8_prints(home: Path, tmp_path: Path) -> None:
    path = tmp_path / os.fsdecode(b"\xff.json")
    path.write_text(json.dumps([OK_TASK]))
    strict = {"PYTHONIOENCODING": "utf-8"}  # errors="strict", as under most UTF-8 locales
    for command in (["validate"], ["run", "--dry-run"], ["analyze"]):
        done = engine(*command, path, env=strict)
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert engine("validate", path, env=strict).stdout == f"{tmp_path}/\\udcff.json: OK, 1 task in 1 wave\n"


# 6. Memory no machine has: every task waited forever; a 400-digit size was an OverflowError.

def test_memory_beyond_the_machine(home: Path, tasks_file: Callable[..., Path],
                                   config_file: Callable[[str | bytes], Path]) -> None:
    too_much = f"{total_memory() // 2**30 + 1}GiB"
    path = tasks_file([OK_TASK])
    config = config_file(json.dumps({"memory_per_agent": too_much}))
    line = only(refused("validate", path, "--config", config))
    assert line.startswith(f"config {config}: key 'memory_per_agent': '{too_much}' plus memory_reserve '512MB' "
                           "is more than this machine's memory (")
    assert line.endswith(" GiB): no task could ever start")
    config = config_file(json.dumps({"memory_reserve": "9" * 400 + "MB"}))
    line = only(refused("run", "--dry-run", path, "--config", config))
    assert line.startswith(f"config {config}: key 'memory_reserve': '999") and "no task could ever start" in line
    assert len(line) < len(str(config)) + 200


def test_sizes_are_exact() -> None:
    assert parse_size("9" * 400 + "MB") == int("9" * 400) * 10**6
    assert parse_size("1.5GiB") == 3 * 2**29
    assert parse_size(1e3) == 1000


# 7. Config files as unreadable as task files can be.

@pytest.mark.parametrize(("content", "expected"), [
    (b'{"retries": 1, "x": "\xff"}', "not UTF-8 text (byte 21)"),
    ('{"retries": 1}'.encode("utf-16"), "is UTF-16 text; save it as UTF-8"),
    ("[" * 1000 + "]" * 1000, "nested more than 100 levels deep"),
    ('{"task_timeout_seconds": NaN}', "NaN is not a JSON number"),
    ('{"max_concurrent": ' + "9" * 5000 + "}",
     "a number is too long (Exceeds the limit (4300 digits) for integer string conversion)"),
    ('{"retries": 1,}', "1:15: invalid JSON: Expecting property name enclosed in double quotes"),
])
def test_unreadable_config(home: Path, tasks_file: Callable[..., Path], config_file: Callable[[str | bytes], Path],
                           content: str | bytes, expected: str) -> None:
    config = config_file(content)
    separator = "" if expected[0].isdigit() else " "
    line = only(refused("validate", tasks_file([OK_TASK]), "--config", config))
    assert line == f"config {config}:{separator}{expected}"


@pytest.mark.parametrize(("config", "expected"), [
    ({"max_concurrent": 10**400}, "key 'max_concurrent': 1" + "0" * 56 + "... is greater than the maximum of 10000"),
    ({"kill_grace_seconds": 10**400}, "key 'kill_grace_seconds': 1" + "0" * 56 + "... is greater than the maximum of "
                                      "1000000000"),
    ({"retries": 10**6}, "key 'retries': 1000000 is greater than the maximum of 100"),
    ({"temp_resources": {"keep_recent_days": 1e300}},
     "key 'temp_resources.keep_recent_days': 1e+300 is greater than the maximum of 1000000000"),
    ({"runners": {"x": {"command": ["x\0"]}}}, "key 'runners.x.command.0': holds a NUL character"),
    ({"phases": [{"name": "\ud800"}]}, "key 'phases.0.name': holds a lone surrogate (not valid Unicode)"),
    ([], "key '(top)': [] is not of type 'object'"),
    ({"memory_reserve": "9" * 1001 + "MB"}, "key 'memory_reserve': '" + "9" * 56 + "... has the wrong type or form "
                                            "(expected: bytes, or a string such as \"256MB\" or \"2GiB\")"),
    ({"memory_limit_per_agent": "x"}, "key 'memory_limit_per_agent': 'x' has the wrong type or form (expected: no "
                                      "limit (null), or bytes, or a string such as \"1GiB\")"),
])
def test_config_values_that_cannot_run(home: Path, tasks_file: Callable[..., Path],
                                       config_file: Callable[[str | bytes], Path], config: object,
                                       expected: str) -> None:
    path = config_file(json.dumps(config))
    assert only(refused("analyze", tasks_file([OK_TASK]), "--config", path)) == f"config {path}: {expected}"


def test_config_integers_written_as_floats(home: Path, tasks_file: Callable[..., Path],
                                           config_file: Callable[[str | bytes], Path]) -> None:
    config = config_file(json.dumps({"max_concurrent": 2.0, "memory_reserve": 1e3, "retries": 1.0}))
    done = engine("run", "--dry-run", tasks_file([OK_TASK]), "--config", config)
    assert done.returncode == 0, done.stderr
    assert "2 slots" in done.stdout and "retries 1)" in done.stdout


# 8. Ids that would share a results file, and ids matched in full.

@pytest.mark.parametrize("task_id", ["merged", "a.data", "a.stdout", "a.stderr", "a.json"])
def test_reserved_ids(home: Path, tasks_file: Callable[..., Path], task_id: str) -> None:
    path = tasks_file([{"id": task_id, "command": "true"}])
    assert only(refused("validate", path)) == f"{path}: task '{task_id}', field 'id': reserved: it would share a " \
                                              "results file"


@pytest.mark.parametrize("task_id", ["x\n", "x\ny", "\nx"])
def test_ids_are_matched_in_full(home: Path, tasks_file: Callable[..., Path], task_id: str) -> None:
    path = tasks_file([{"id": task_id, "command": "true"}, {"id": "b", "command": "true", "blockedBy": [task_id]}])
    shown = repr(task_id)
    assert refused("validate", path) == [
        f"{path}: task {shown}, field 'id': {shown} does not match ^[A-Za-z0-9][A-Za-z0-9._-]{{0,127}}$",
        f"{path}: task 'b', field 'blockedBy.0': {shown} does not match ^[A-Za-z0-9][A-Za-z0-9._-]{{0,127}}$"]


def test_a_long_valid_id_is_named_whole(home: Path, tasks_file: Callable[..., Path]) -> None:
    long_id = "a" * 128
    path = tasks_file([{"id": long_id, "command": "true"}, {"id": long_id, "command": "true"}])
    assert only(refused("validate", path)) == f"{path}: duplicate task id '{long_id}' (tasks #1 and #2)"


# 9. Odd but well-formed JSON.

@pytest.mark.parametrize(("doc", "expected"), [
    ({"tasks": [None, [], 5]}, ["task #1: None is not of type 'object'", "task #2: [] is not of type 'object'",
                                "task #3: 5 is not of type 'object'"]),
    ({"tasks": [{"id": {}, "command": "x"}, {"id": {}, "command": "x"}]},
     ["task #1, field 'id': {} is not of type 'string'", "task #2, field 'id': {} is not of type 'string'"]),
    ({"tasks": [{"id": "a", "command": "x", "blockedBy": [{}]}]},
     ["task 'a', field 'blockedBy.0': {} is not of type 'string'"]),
    ({"tasks": {}}, ["'tasks' must be a list of tasks"]),
    ({"tasks": None}, ["'tasks' must be a list of tasks"]),
    ({"tasks": [{"id": "a", "command": "x" * 10**6, "timeout": "x" * 10**6}]},
     ["task 'a', field 'timeout': '" + "x" * 56 + "... is not of type 'number'"]),
    ({"tasks": [{"id": "a", "command": "x", "\ud800" * 100: 1}]},
     ["task 'a': unknown field '" + "\\ud800" * 9 + "\\u..."]),
])
def test_odd_documents(home: Path, tasks_file: Callable[..., Path], doc: object, expected: list[str]) -> None:
    path = tasks_file(doc)
    for command in (["validate"], ["analyze"], ["run", "--dry-run"]):
        assert refused(*command, path) == [f"{path}: {line}" for line in expected]
