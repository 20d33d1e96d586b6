"""Agent runners end to end, with fake claude/codex/gemini CLIs that print the real formats."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from parallel_executor.agents.readers import read_claude_json, read_codex_jsonl, read_gemini_json, structured_in

from tests.conftest import engine, run_json

FAKES = Path(__file__).resolve().parent / "fakes"


def run_agents(tasks: Any, tasks_file: Callable[..., Path], tmp_path: Path, mode: str = "success",
               **env: str) -> tuple[int, dict[str, Any], dict[str, dict[str, Any]], list[dict[str, Any]]]:
    log = tmp_path / "agent-log"
    log.mkdir(exist_ok=True)
    environment = {"PATH": f"{FAKES}:{os.environ['PATH']}", "FAKE_AGENT_MODE": mode, "FAKE_AGENT_LOG": str(log),
                   **env}
    code, summary = run_json(tasks_file(tasks), env=environment)
    results = {tid: json.loads((Path(summary["results_dir"]) / f"{tid}.json").read_text())
               for tid in summary["tasks"]}
    calls = [json.loads(f.read_text()) for f in sorted(log.iterdir())]
    return code, summary, results, calls


@pytest.mark.parametrize("runner", ["claude", "codex", "gemini"])
def test_success_with_cost_and_usage(home: Path, tasks_file: Callable[..., Path], tmp_path: Path,
                                     runner: str) -> None:
    code, summary, results, _ = run_agents([{"id": "t", "prompt": "Write hello.py", "runner": runner}],
                                           tasks_file, tmp_path)
    assert code == 0, summary
    result = results["t"]
    assert result["status"] == "success" and result["output"] == "done: Write hello.py"
    expected = {"claude": (100, 50, 0.0123), "codex": (30, 12, 0.0), "gemini": (40, 9, 0.0)}[runner]
    assert (result["usage"]["input_tokens"], result["usage"]["output_tokens"], result["cost_usd"]) == expected
    assert summary["cost_usd"] == expected[2] and summary["input_tokens"] == expected[0]
    if runner == "claude":
        assert result["session_id"] and result["num_turns"] == 3


@pytest.mark.parametrize(("runner", "error"), [("claude", "Reached maximum number of turns (3)"),
                                               ("codex", "Quota exceeded. Check your plan and billing details."),
                                               ("gemini", "Request contains an invalid argument.")])
def test_agent_error_is_a_failed_task(home: Path, tasks_file: Callable[..., Path], tmp_path: Path, runner: str,
                                      error: str) -> None:
    code, summary, _, _ = run_agents([{"id": "t", "prompt": "x", "runner": runner, "retries": 0}], tasks_file,
                                     tmp_path, mode="error")
    assert code == 1
    assert summary["tasks"]["t"]["status"] == "failed" and summary["tasks"]["t"]["error"] == error


@pytest.mark.parametrize("runner", ["claude", "codex", "gemini"])
def test_unreadable_output_is_a_failed_task_not_a_crash(home: Path, tasks_file: Callable[..., Path],
                                                        tmp_path: Path, runner: str) -> None:
    code, summary, _, _ = run_agents([{"id": "t", "prompt": "x", "runner": runner, "retries": 0}], tasks_file,
                                     tmp_path, mode="garbage")
    assert code == 1
    assert summary["tasks"]["t"]["error"].startswith(f"unreadable {runner}-")


def test_prompt_reaches_the_agent_byte_for_byte(home: Path, tasks_file: Callable[..., Path],
                                                tmp_path: Path) -> None:
    prompt = ("It's \"quoted\" $(touch /tmp/pwned) `id` ; rm -rf ~\n"
              "second line\t\u0442\u0430\u0431\u044b ünïcode 🚀 {model}")
    tasks = [{"id": "c", "prompt": prompt, "runner": "claude", "model": "opus", "subagent": "reviewer"},
             {"id": "g", "prompt": prompt, "runner": "gemini", "subagent": "general-purpose"},
             {"id": "x", "prompt": prompt, "runner": "codex"}]
    code, _, _, calls = run_agents(tasks, tasks_file, tmp_path, CLAUDECODE="1")
    assert code == 0
    argv = {call["agent"]: call["argv"] for call in calls}
    assert argv["claude"] == ["-p", "--output-format", "stream-json", "--verbose", "--model", "opus",
                              "--agent", "reviewer", "--permission-mode", "acceptEdits", "--", prompt]
    assert argv["gemini"] == ["--output-format", "stream-json", "--skip-trust", "--approval-mode", "auto_edit",
                              f"--prompt={prompt}"]  # general-purpose adds no --agent
    assert argv["codex"] == ["exec", "--json", "--skip-git-repo-check", "--sandbox", "workspace-write", "--", prompt]
    assert all(call["claudecode"] is None for call in calls)
    assert not Path("/tmp/pwned").exists()


def test_structured_result_from_the_agent_text(home: Path, tasks_file: Callable[..., Path],
                                               tmp_path: Path) -> None:
    _, _, results, _ = run_agents([{"id": "t", "prompt": "x"}], tasks_file, tmp_path, mode="data")
    assert results["t"]["data"] == {"files": ["a.py"], "ok": True}


def test_missing_agent_cli_fails_preflight(home: Path, tasks_file: Callable[..., Path]) -> None:
    done = engine("run", tasks_file([{"id": "t", "prompt": "x", "runner": "gemini"}]),
                  env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 2
    assert "runner 'gemini': executable 'gemini' not found on PATH" in done.stderr


def test_readers_directly() -> None:
    assert read_claude_json("noise\n" + json.dumps({"subtype": "success", "result": "ok"}), "", 0).ok
    assert read_claude_json(json.dumps({"subtype": "success", "is_error": True, "result": "boom"}), "", 0).error \
        == "boom"
    assert read_codex_jsonl('{"type":"error","message":"bad key"}\n', "", 1).error == "bad key"
    assert read_gemini_json("", "", 0).error == "unreadable gemini-json output ('no output')"
    assert structured_in('{"a": 1}') == {"a": 1}
    assert structured_in("text ```json\n{\"b\": 2}\n``` more") == {"b": 2}
    assert structured_in("no json here {") is None
