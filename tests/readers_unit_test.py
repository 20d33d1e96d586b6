"""The readers on hand-made output (what the captures do not show: odd JSON, truncation, retries that
recovered), and the fake CLIs (tests/fakes/) that stand in for the real ones in end-to-end tests."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from parallel_executor.agents.readers import (
    READERS,
    ends_attempt,
    live_text,
    read_aider_text,
    read_claude_stream,
    read_codex_jsonl,
    read_gemini_json,
    read_gemini_stream,
    structured_in,
)

pytestmark = pytest.mark.timeout(60)
FAKES = Path(__file__).resolve().parent / "fakes"
CAPTURES = Path(__file__).resolve().parent / "captures"

ODD = ["", "\n\n", "[" * 100_000, "{" * 100_000, '{"type":"result"}', '{"type":"result","subtype":5,"is_error":"x"}',
       '{"type":"result","modelUsage":{"m":5,"n":{"inputTokens":"x"}},"permission_denials":[1,"a",{"tool_name":3}],'
       '"total_cost_usd":"NaN","num_turns":"2","errors":"boom"}', '[1, 2, {"type": "result", "result": 7}]',
       '{"type":"turn.completed","usage":[1]}\n{"type":"turn.failed","error":"x"}\n{"type":"error","message":null}',
       '{"type":"result","status":"error","error":"plain"}\n{"type":"message","role":"assistant","content":{}}',
       '{"error":{"message":"{\\"error\\": [1]}","code":"429"}}', '{"response": 5, "stats": {"models": [1]}}',
       "litellm.RateLimitError\nTokens: x sent, y received.", "\x00\ud800 \x1b[31m{", "Aider v1\n" * 50]


@pytest.mark.parametrize("text", ODD, ids=range(len(ODD)))
def test_a_reader_never_raises(text: str) -> None:
    for kind, reader in READERS.items():
        for stdout, stderr in ((text, ""), ("", text), (text, text)):
            for code in (0, 1, 144, -9):
                outcome = reader(stdout, stderr, code)
                assert isinstance(outcome.ok, bool) and outcome.error_class in (None, "transient", "permanent"), kind
        for line in text.splitlines() or [text]:
            assert live_text(line) is None or isinstance(live_text(line), str)
            assert ends_attempt(kind, line) is None or kind == "codex-jsonl"


@pytest.mark.parametrize("name", ["claude-stream-agent-bg", "codex-mock-flakystream", "gemini-stream",
                                  "claude-mock-tool-maxturns1"])
def test_a_truncated_stream_is_never_a_success_with_a_missing_answer(name: str) -> None:
    stdout = (CAPTURES / name / "stdout").read_text()
    kind = {"claude": "claude-stream", "codex": "codex-jsonl", "gemini": "gemini-stream"}[name.split("-")[0]]
    for cut in range(0, len(stdout), 37):
        outcome = READERS[kind](stdout[:cut], "", -15)  # killed half-way
        assert not outcome.ok and outcome.error


def test_claude_denials_are_named_and_shortened() -> None:
    denials = [{"tool_name": "Bash", "tool_input": {"command": "npm test", "description": "run"}},
               {"tool_name": "Write", "tool_input": {"file_path": "/src/" + "x" * 200, "content": "y"}},
               {"tool_name": "Bash", "tool_input": {"command": "npm test"}},  # twice: named once
               {"tool_name": "WebSearch", "tool_input": {}}]
    doc = {"type": "result", "subtype": "success", "is_error": False, "result": "ok", "permission_denials": denials}
    outcome = read_claude_stream(json.dumps(doc), "", 0)
    assert outcome.ok and outcome.denials[0] == "Bash(npm test)" and outcome.denials[2] == "WebSearch"
    assert outcome.denials[1].startswith("Write(/src/xxx") and len(outcome.denials[1]) <= 90
    assert len(outcome.denials) == 3


def test_claude_result_without_model_usage_counts_usage_and_a_clean_result_needs_exit_0() -> None:
    doc = {"type": "result", "subtype": "success", "is_error": False, "result": "ok",
           "usage": {"input_tokens": 5, "output_tokens": 2}}
    assert dict(read_claude_stream(json.dumps(doc), "", 0).usage) == {"input_tokens": 5, "output_tokens": 2}
    offline = {**doc, "is_error": True, "result": "API Error: ECONNRESET", "api_error": "connection_failed"}
    assert read_claude_stream(json.dumps(offline), "", 1).error_class == "transient"
    late = read_claude_stream(json.dumps(doc), "Segmentation fault\n", 139)
    assert not late.ok and late.error == "exit code 139: Segmentation fault" and late.error_class is None


def test_codex_error_then_turn_completed_is_a_warning_but_a_last_error_is_not() -> None:
    started = '{"type":"thread.started","thread_id":"th"}\n{"type":"turn.started"}\n'
    warning = '{"type":"error","message":"Reconnecting... 1/2 (stream disconnected)"}\n'
    answer = '{"type":"item.completed","item":{"type":"agent_message","text":"hi"}}\n'
    done = '{"type":"turn.completed","usage":{"input_tokens":3,"output_tokens":1}}\n'
    assert read_codex_jsonl(started + warning + answer + done, "", 0).ok
    stuck = read_codex_jsonl(started + warning, "", -15)
    assert (stuck.ok, stuck.error_class, stuck.session_id) == (False, "transient", "th")
    assert read_codex_jsonl('{"type":"error","message":"bad key"}\n', "", 1).error == "bad key"


def test_gemini_prefers_the_inner_api_message_and_classes_by_code_or_exit() -> None:
    inner = json.dumps({"error": {"code": 503, "message": "The model is overloaded."}})
    error = {"type": "x", "message": f"[API Error: {inner}]"}
    stream = json.dumps({"type": "result", "status": "error", "error": error})
    outcome = read_gemini_stream(stream, "", 1)
    assert (outcome.error, outcome.error_class) == ("The model is overloaded.", "transient")
    stderr = "log line\n  at x (y.js:1:2)\n" + json.dumps({"error": {"message": "Busy", "code": 429}}, indent=2)
    assert read_gemini_json("", stderr, 173).error_class == "transient"
    assert read_gemini_json("", "", 0).error == "unreadable gemini-json output ('no output')"


def test_aider_recovered_after_a_retry_is_a_success_with_its_tokens() -> None:
    stdout = ("Aider v0.86.2\nMain model: m with diff edit format\nRepo-map: disabled\n\n"
              'litellm.RateLimitError: AnthropicException - {"error":\n"rate"}\n'
              "The API provider has rate limited you. Try again later or check your quotas.\n"
              "Retrying in 0.2 seconds...\n"
              "All done.\n\nTokens: 2.5k sent, 120 received. Cost: $0.01 message, $0.02 session.\n")
    outcome = read_aider_text(stdout, "", 0)
    assert outcome.ok and outcome.result == "All done." and outcome.cost_usd == 0.02
    assert dict(outcome.usage) == {"input_tokens": 2500, "output_tokens": 120}
    assert read_aider_text("boom\n", "Traceback…\nValueError: x\n", 1).error == "exit code 1: ValueError: x"


def test_live_text_skips_plain_lines_fast_and_renders_tool_calls() -> None:
    tool = {"type": "assistant", "message": {"content": [
        {"type": "text", "text": "Let me run the tests.\n"},
        {"type": "tool_use", "name": "Bash", "input": {"command": "npm test", "description": "tests"}}]}}
    assert live_text(json.dumps(tool)) == "→ Bash: npm test"
    started = time.perf_counter()
    for _ in range(10_000):
        assert live_text("x" * 10_000) is None
    assert time.perf_counter() - started < 1.0
    codex = {"type": "item.started", "item": {"type": "command_execution", "command": "bash -lc ls"}}
    assert live_text(json.dumps(codex)) == "→ shell: bash -lc ls"


def test_structured_in() -> None:
    assert structured_in('{"a": 1}') == {"a": 1}
    assert structured_in("text ```json\n{\"b\": 2}\n``` more") == {"b": 2}
    assert structured_in("no json here {") is None


def fake(agent: str, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(FAKES / agent), *argv], capture_output=True, text=True, timeout=30,
                          env={**os.environ, **env})


SHIPPED_ARGV = {
    "claude": (["-p", "--output-format", "stream-json", "--verbose", "--model", "m", "--permission-mode",
                "acceptEdits", "--allowedTools", "Bash(npm *)", "--max-turns", "5", "--"], "claude-stream"),
    "codex": (["exec", "--json", "--skip-git-repo-check", "--model", "m", "--sandbox", "workspace-write", "--"],
              "codex-jsonl"),
    "gemini": (["--output-format", "stream-json", "--skip-trust", "--approval-mode", "auto_edit"], "gemini-stream"),
    "aider": (["--yes-always", "--no-stream", "--no-pretty", "--no-auto-commits", "--analytics-disable"], "aider-text"),
}


@pytest.mark.parametrize("agent", sorted(SHIPPED_ARGV))
def test_fakes_answer_the_shipped_argv_in_the_real_shape(agent: str) -> None:
    argv, kind = SHIPPED_ARGV[agent]
    prompt = "-x: a prompt that starts with a dash and goes on for a while"
    last = {"gemini": [f"--prompt={prompt}"], "aider": [f"--message={prompt}"]}.get(agent, [prompt])
    done = fake(agent, *argv, *last)
    outcome = READERS[kind](done.stdout, done.stderr, done.returncode)
    assert outcome.ok and outcome.result == f"done: {prompt[:40]}", (done.stdout, done.stderr)
    expected = {"claude": (100, 50, 0.0123), "codex": (30, 12, 0.0), "gemini": (40, 9, 0.0), "aider": (11, 7, 0.00014)}
    assert (outcome.usage["input_tokens"], outcome.usage["output_tokens"], outcome.cost_usd) == expected[agent]
    failed = fake(agent, *argv, *last, FAKE_AGENT_MODE="error")
    outcome = READERS[kind](failed.stdout, failed.stderr, failed.returncode)
    assert not outcome.ok and outcome.error_class == "permanent" and not outcome.auth_failed


@pytest.mark.parametrize("name", ["claude-mock-e529-stream", "gemini-mock-e429", "aider-mock-e401"])
def test_fake_replays_a_capture_byte_for_byte(name: str) -> None:
    done = subprocess.run([str(FAKES / name.split("-")[0])], capture_output=True, timeout=30,
                          env={**os.environ, "FAKE_AGENT_MODE": f"capture:{name}"})
    assert done.stdout == (CAPTURES / name / "stdout").read_bytes()
    assert done.stderr == (CAPTURES / name / "stderr").read_bytes()
    assert done.returncode == int((CAPTURES / name / "rc").read_text())


def test_fake_script_takes_one_mode_per_call_then_repeats_the_last(tmp_path: Path) -> None:
    script = tmp_path / "script"
    script.write_text("capture:claude-mock-e429\nsuccess\n")
    log = tmp_path / "log"
    log.mkdir()
    codes = [fake("claude", "-p", "--", "hi", FAKE_AGENT_SCRIPT=str(script), FAKE_AGENT_LOG=str(log)).returncode
             for _ in range(3)]
    assert codes == [1, 0, 0]
    calls = [json.loads(p.read_text()) for p in log.iterdir()]
    assert len(calls) == 3 and all(c["end"] >= c["start"] for c in calls)
    assert {c["mode"] for c in calls} == {"capture:claude-mock-e429", "success"}


def test_fake_sleep_shows_progress_first_and_logs_its_environment(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.mkdir()
    argv, _ = SHIPPED_ARGV["claude"]
    env = {**os.environ, "FAKE_AGENT_SLEEP": "1", "FAKE_AGENT_LOG": str(log), "CLAUDE_CODE_MAX_RETRIES": "0",
           "IS_SANDBOX": "1"}
    with subprocess.Popen([str(FAKES / "claude"), *argv, "slow one"], stdout=subprocess.PIPE, text=True,
                          env=env) as agent:
        assert agent.stdout is not None
        first, second = agent.stdout.readline(), agent.stdout.readline()
        assert agent.poll() is None  # still sleeping
        assert json.loads(first)["subtype"] == "init" and live_text(second) == "working on: slow one"
        assert agent.wait(10) == 0
    call = json.loads(next(log.iterdir()).read_text())
    assert call["env"] == {"CLAUDE_CODE_MAX_RETRIES": "0", "IS_SANDBOX": "1"} and call["end"] - call["start"] >= 1


def test_fake_replaying_a_timed_out_capture_hangs_like_the_real_cli() -> None:
    env = {**os.environ, "FAKE_AGENT_MODE": "capture:codex-nokey-skipgit-long"}
    with subprocess.Popen([str(FAKES / "codex"), "exec", "--json", "--", "hi"], stdout=subprocess.PIPE, text=True,
                          env=env) as agent:
        assert agent.stdout is not None
        reason = None
        while reason is None:
            reason = ends_attempt("codex-jsonl", agent.stdout.readline())
        time.sleep(1)
        assert reason.startswith("Reconnecting... waiting for network") and agent.poll() is None
        agent.kill()
