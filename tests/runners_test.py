"""What each runner passes (§3.1, §4): argv per runner and control, `--` before the prompt, placeholders
filled byte-exact at launch, and the checks and warnings of `validate`."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from parallel_executor.agents.runners import argv_for
from parallel_executor.engine.attempts import ANSWER_BYTES, Attempts
from parallel_executor.engine.records import TaskFiles
from parallel_executor.plan.config import load_config
from parallel_executor.plan.model import TaskSpec
from parallel_executor.plan.taskfile import load_task_file

from tests.conftest import engine

pytestmark = pytest.mark.timeout(30)
PROMPT = "-x: fix the \"bug\" in {model} {{braces}}\nand 'quotes' $(rm -rf /) `id`"


def load(tasks_file: Callable[..., Path], tasks: list[dict[str, Any]]) -> tuple[dict[str, TaskSpec], list[str]]:
    loaded = load_task_file(tasks_file({"tasks": tasks}), load_config(), Path.cwd())
    return loaded.by_id(), list(loaded.warnings)


def argv(tasks_file: Callable[..., Path], **task: Any) -> list[str]:
    specs, _ = load(tasks_file, [{"id": "t", "prompt": PROMPT, **task}])
    return argv_for(specs["t"], load_config().runners)


def test_claude_streams_with_every_control_before_the_prompt_which_comes_last_after_dashdash(
        home: Path, tasks_file: Callable[..., Path]) -> None:
    got = argv(tasks_file, model="sonnet", subagent="reviewer", permission_mode="plan", tools="Read,Grep",
               allowed_tools=["Bash(git *)", "Edit"], max_turns=7, budget_usd=0.5)
    assert got == ["claude", "-p", "--output-format", "stream-json", "--verbose", "--model", "sonnet",
                   "--agent", "reviewer", "--permission-mode", "plan", "--tools", "Read,Grep",
                   "--allowedTools", "Bash(git *),Edit", "--max-turns", "7", "--max-budget-usd", "0.5",
                   "--", PROMPT]


@pytest.mark.parametrize(("mode", "flags"), [
    ("acceptEdits", ["--permission-mode", "acceptEdits"]), ("auto", ["--permission-mode", "auto"]),
    ("plan", ["--permission-mode", "plan"]), ("dontAsk", ["--permission-mode", "dontAsk"]),
    ("default", ["--permission-mode", "default"]), ("manual", ["--permission-mode", "manual"]),
    ("bypassPermissions", ["--permission-mode", "bypassPermissions"])])
def test_claude_permission_modes(home: Path, tasks_file: Callable[..., Path], mode: str, flags: list[str]) -> None:
    assert argv(tasks_file, permission_mode=mode)[5:] == [*flags, "--", PROMPT]


def test_the_default_permission_mode_is_accept_edits_and_general_purpose_needs_no_agent_flag(
        home: Path, tasks_file: Callable[..., Path]) -> None:
    assert argv(tasks_file, subagent="general-purpose")[5:] == ["--permission-mode", "acceptEdits", "--", PROMPT]


def test_a_required_agent_without_a_subagent_runs_as_that_agent(home: Path, tasks_file: Callable[..., Path]) -> None:
    got = argv(tasks_file, required_agent="sec-auditor", agent_description="Audits security")
    assert got[5:7] == ["--agent", "sec-auditor"]


@pytest.mark.parametrize(("runner", "mode", "expected"), [
    ("codex", None, ["codex", "exec", "--json", "--skip-git-repo-check", "--model", "m",
                     "--sandbox", "workspace-write", "--", PROMPT]),
    ("codex", "plan", ["codex", "exec", "--json", "--skip-git-repo-check", "--model", "m",
                       "--sandbox", "read-only", "--", PROMPT]),
    ("codex", "bypassPermissions", ["codex", "exec", "--json", "--skip-git-repo-check", "--model", "m",
                                    "--dangerously-bypass-approvals-and-sandbox", "--", PROMPT]),
    ("gemini", None, ["gemini", "--output-format", "stream-json", "--skip-trust", "--model", "m",
                      "--approval-mode", "auto_edit", f"--prompt={PROMPT}"]),
    ("gemini", "plan", ["gemini", "--output-format", "stream-json", "--skip-trust", "--model", "m",
                        "--approval-mode", "plan", f"--prompt={PROMPT}"]),
    ("gemini", "bypassPermissions", ["gemini", "--output-format", "stream-json", "--skip-trust", "--model", "m",
                                     "--approval-mode", "yolo", f"--prompt={PROMPT}"]),
    ("aider", None, ["aider", "--yes-always", "--no-stream", "--no-pretty", "--no-auto-commits", "--no-check-update",
                     "--no-show-release-notes", "--analytics-disable", "--model", "m", f"--message={PROMPT}"]),
])
def test_codex_gemini_and_aider(home: Path, tasks_file: Callable[..., Path], runner: str, mode: str | None,
                                expected: list[str]) -> None:
    assert argv(tasks_file, runner=runner, model="m", **({"permission_mode": mode} if mode else {})) == expected


def test_a_control_a_runner_cannot_express_is_a_warning_naming_the_runner(
        home: Path, tasks_file: Callable[..., Path]) -> None:
    tasks = [{"id": "c", "prompt": "p", "runner": "codex", "max_turns": 3, "permission_mode": "auto"},
             {"id": "a", "prompt": "p", "runner": "aider", "permission_mode": "plan", "budget_usd": 1}]
    specs, warnings = load(tasks_file, tasks)
    assert any("'c', field 'max_turns': runner 'codex' cannot express 3" in w for w in warnings)
    assert any("'c', field 'permission_mode': runner 'codex' cannot express 'auto'" in w for w in warnings)
    assert any("'a', field 'permission_mode': runner 'aider'" in w and "no permission flag" in w for w in warnings)
    assert any("'a', field 'budget_usd': runner 'aider'" in w for w in warnings)
    assert specs["c"].max_turns is None and specs["a"].permission_mode is None
    done = engine("validate", tasks_file({"tasks": tasks}))
    assert done.returncode == 0 and "runner 'codex' cannot express 3" in done.stderr, done.stderr


def test_a_placeholder_must_name_a_dependency(home: Path, tasks_file: Callable[..., Path]) -> None:
    path = tasks_file({"tasks": [{"id": "a", "command": ["true"]}, {"id": "b", "command": ["true"]},
                                 {"id": "r", "prompt": "see {{result:a}} and {{data:b}}", "blockedBy": ["a"]}]})
    done = engine("validate", path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "task 'r', field 'prompt': {{data:b}} names 'b', which is not in its blockedBy" in done.stderr
    assert "{{result:a}}" not in done.stderr


def _files(tmp_path: Path, tid: str) -> TaskFiles:
    return TaskFiles(*(str(tmp_path / f"{tid}.{x}") for x in ("json", "stdout", "stderr", "data.json")))


def test_placeholders_are_filled_byte_exact_once_and_cut_to_64_kib(tmp_path: Path) -> None:
    answer = "line 1 \"quoted\" {{result:b}} {braces}\n\tnewline ü\u2028"
    docs = {"a": {"status": "success", "output": answer, "data": {"k": ["v", 1]}},
            "big": {"status": "success", "output": "x" * 10 + "y" * ANSWER_BYTES},
            "f": {"status": "failed", "error": "exit code 1", "output": "boom"}}
    for tid, doc in docs.items():
        Path(_files(tmp_path, tid).result).write_text(json.dumps(doc))
    attempts = Attempts({}, "run", dict(os.environ), {t: _files(tmp_path, t) for t in [*docs, "b"]}, True)
    filled = attempts.fill("A={{result:a}}|D={{data:a}}|{x}|{{other}}|{{result:f}}|{{result:big}}")
    assert filled == (f"A={answer}|D={{\"k\": [\"v\", 1]}}|{{x}}|{{{{other}}}}|[f failed: exit code 1]\nboom|"
                      + "y" * ANSWER_BYTES)


@pytest.mark.skipif(os.geteuid() != 0, reason="Claude Code refuses bypassPermissions only as root")
def test_bypass_permissions_as_root_is_a_warning_unless_is_sandbox(home: Path, tasks_file: Callable[..., Path]) -> None:
    _, warnings = load(tasks_file, [{"id": "b", "prompt": "p", "permission_mode": "bypassPermissions"},
                                    {"id": "s", "prompt": "p", "permission_mode": "bypassPermissions",
                                     "env": {"IS_SANDBOX": "1"}}])
    root = [w for w in warnings if "bypassPermissions" in w]
    assert len(root) == 1 and root[0].startswith("task 'b'") and "IS_SANDBOX=1" in root[0]


def test_the_claude_runner_turns_its_own_retries_off(tmp_path: Path) -> None:
    from parallel_executor.engine.records import TaskRun

    specs = {"t": TaskSpec(id="t", index=0, subject="", prompt="p", command=None, runner="claude", subagent=None,
                           model=None, type=None, blocked_by=(), phase=None, paths=(), reads=(), artifacts=(),
                           cwd=tmp_path, env={}, timeout=5.0, retries=0, priority=1, estimate=None)}  # type: ignore[arg-type]
    files = {"t": _files(tmp_path, "t")}
    attempt = Attempts(load_config().runners, "run", {"PATH": "/bin", "CLAUDECODE": "1"}, files, True) \
        .prepare(TaskRun(specs["t"], files["t"]))
    assert attempt.env["CLAUDE_CODE_MAX_RETRIES"] == "0" and "CLAUDECODE" not in attempt.env
