"""The command line as a user meets it: help, entry points, schemas, usage errors."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from jsonschema import Draft202012Validator
from parallel_executor.plan import schemas
from parallel_executor.plan.config import DEFAULT_CONFIG

from tests.conftest import ROOT, engine


def test_help_lists_every_command() -> None:
    done = engine("--help")
    assert done.returncode == 0
    for command in ("validate", "analyze", "run", "status", "cancel", "history", "registry", "cleanup", "cron"):
        assert f"  {command} " in done.stdout


def test_usage_errors_exit_2_without_traceback(home: Path) -> None:
    for args in (["run"], ["run", "x.json", "--halt", "sometimes"], ["frobnicate"], ["status"]):
        done = engine(*args)
        assert done.returncode == 2, args
        assert "Traceback" not in done.stderr and done.stderr.strip(), args


def test_bin_script_runs_from_any_directory(home: Path, tasks_file: Callable[..., Path], tmp_path: Path) -> None:
    path = tasks_file([{"id": "hello", "command": "echo hi"}])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run([str(ROOT / "bin" / "parallel-executor.sh"), str(path), "--json"], cwd=elsewhere,
                          capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["tasks"]["hello"]["status"] == "success"


def test_shipped_schemas_are_valid_and_accept_the_shipped_files() -> None:
    for name in ("tasks", "config"):
        Draft202012Validator.check_schema(schemas.load_schema(name))
    config = json.loads(DEFAULT_CONFIG.read_text())
    assert schemas.validator("config").is_valid(config) and schemas.is_valid("config", config)
    demo = json.loads((ROOT / "examples" / "demo" / "tasks.json").read_text())
    assert schemas.validator("tasks").is_valid(demo) and schemas.is_valid("tasks", demo)


def test_fast_and_detailed_validation_agree() -> None:
    documents = [
        [{"id": "a", "command": "x"}],
        [{"id": "a"}],
        {"tasks": [{"id": "a", "prompt": "p", "timeout": 0}]},
        {"defaults": {"retries": -1}, "tasks": [{"id": "a", "command": ["x"]}]},
        {"tasks": [{"id": "a", "command": ["x"], "paths": ["src/"], "priority": "critical"}]},
        {"tasks": "nope"},
    ]
    for doc in documents:
        assert schemas.is_valid("tasks", doc) == schemas.validator("tasks").is_valid(doc), doc


def test_analyze_json(home: Path, tasks_file: Callable[..., Path]) -> None:
    path = tasks_file([{"id": "a", "command": "x", "estimate": 2},
                       *({"id": f"b{i}", "command": "x", "blockedBy": ["a"], "estimate": 3} for i in range(4))])
    done = engine("analyze", path, "--format", "json", "-j", "2")
    result = json.loads(done.stdout)
    assert result["waves"] == [["a"], ["b0", "b1", "b2", "b3"]]
    assert result["critical_path"] == ["a", "b0"]
    assert result["estimated_makespan"] == 8 and result["estimated_speedup"] == 1.75
    assert result["recommendation"] == "parallel"
    table = engine("analyze", path, "-j", "2").stdout
    assert "recommendation" in table and "a -> b0" in table
