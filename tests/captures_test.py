"""The output readers (agents/readers.py) replayed on the real CLIs' captures (tests/captures/):
whatever a CLI printed — success, API errors, stderr-only failures, bad flags — a reader returns an
Outcome and never raises, a non-zero exit is never a success, and each capture reads as what it is
(its answer or error, transient or permanent, an authentication failure, the denied tool calls)."""

from __future__ import annotations

from pathlib import Path

import pytest
from parallel_executor.agents.readers import READERS, Outcome, ends_attempt, live_text

pytestmark = pytest.mark.timeout(30)
HERE = Path(__file__).parent / "captures"
CAPTURES = sorted(p for p in HERE.iterdir() if (p / "stdout").is_file())
BASH_DENIED = ("Bash(echo hello-from-mock > mock-was-here.txt)",)
T, P = "transient", "permanent"


def replay(capture: Path) -> tuple[str, str, int]:
    def text(name: str) -> str:
        return (capture / name).read_bytes().decode("utf-8", errors="replace")
    return text("stdout"), text("stderr"), int((capture / "rc").read_text())


def reader_for(capture: Path) -> str:
    """The reader the project uses for that CLI and output format."""
    cli = capture.name.split("-")[0].rstrip("0123456789")
    stream = "stream-json" in (capture / "cmd").read_text()
    return {"claude": "claude-stream" if stream else "claude-json", "codex": "codex-jsonl",
            "gemini": "gemini-stream" if stream else "gemini-json", "aider": "aider-text"}[cli]


def read(name: str, exit_code: int | None = None) -> Outcome:
    stdout, stderr, code = replay(HERE / name)
    return READERS[reader_for(HERE / name)](stdout, stderr, code if exit_code is None else exit_code)


def test_there_are_captures_of_every_cli() -> None:
    assert len(CAPTURES) >= 100
    assert {p.name.split("-")[0].rstrip("0123456789") for p in CAPTURES} >= {"claude", "codex", "gemini", "aider"}


def test_the_readers_are_the_config_output_kinds() -> None:
    assert set(READERS) == {"text", "claude-stream", "claude-json", "codex-jsonl", "gemini-stream", "gemini-json",
                            "aider-text"}


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
def test_every_reader_reads_every_capture_and_a_failed_exit_is_never_a_success(capture: Path) -> None:
    stdout, stderr, code = replay(capture)
    for name, reader in READERS.items():
        for exit_code in (code, -9):  # as captured, and killed by the engine
            outcome = reader(stdout, stderr, exit_code)
            assert isinstance(outcome.ok, bool) and isinstance(outcome.result, str), name
            assert outcome.error_class in (None, T, P) and isinstance(outcome.denials, tuple), name
            if exit_code != 0:  # (the text reader leaves the error to the engine: "exit code N" and stderr's last line)
                assert not outcome.ok and (outcome.error or name == "text"), (name, exit_code)
            if outcome.ok:
                assert outcome.error is None and outcome.error_class is None and not outcome.auth_failed, name
        for line in stdout.splitlines():
            text = live_text(line)
            assert text is None or (isinstance(text, str) and text.strip())


# capture: (ok, a substring of the error (None: no error), error_class, auth_failed, denials)
EXPECTED: dict[str, tuple[bool, str | None, str | None, bool, tuple[str, ...]]] = {
    "claude-mock-ok": (True, None, None, False, ()),
    "claude-mock-ok-stream": (True, None, None, False, ()),
    "claude-json-verbose": (True, None, None, False, ()),  # --verbose makes json an array
    "claude-mock-tool-default": (True, None, None, False, BASH_DENIED),  # a denial is not a failure
    "claude-pm-plan": (True, None, None, False, BASH_DENIED),
    "claude-mock-e401": (False, "Invalid API key", P, True, ()),
    "claude-nokey-json": (False, "Not logged in", P, True, ()),
    "claude-mock-e429": (False, "Request rejected (429)", T, False, ()),
    "claude-mock-e529": (False, "529 Overloaded", T, False, ()),
    "claude-mock-e529-stream": (False, "529 Overloaded", T, False, ()),
    "claude197-e529": (False, "529 Overloaded", T, False, ()),
    "claude-mock-e500": (False, "500 Internal server error", T, False, ()),
    "claude-mock-e404": (False, "issue with the selected model", P, False, ()),
    "claude-mock-e400": (False, "Prompt is too long", P, False, ()),
    "claude-bogus-nonet-json-noretry": (False, "Can't reach the API server", T, False, ()),
    "claude-mock-tool-maxturns1": (False, "Reached maximum number of turns (1)", P, False, BASH_DENIED),
    "claude-mock-tool-budget": (False, "Reached maximum budget ($1e-7)", P, False, BASH_DENIED),
    "claude-agent-missing": (False, "--agent 'no-such-agent' not found. Available agents: claude", P, False, ()),
    "claude-dash-prompt": (False, "error: unknown option '-x: fix the bug'", P, False, ()),
    "claude-dsp-root": (False, "cannot be used with root/sudo privileges", P, False, ()),
    "claude-pm-bypassPermissions": (False, "cannot be used with root/sudo privileges", P, False, ()),
    "claude-pm-bogus": (False, "argument 'bogus' is invalid", P, False, ()),
    "claude-variadic-swallow": (False, '"say hi" was read as a value of --allowedTools', P, False, ()),
    "claude-mock-ok-stream-noverbose": (False, "stream-json requires --verbose", P, False, ()),
    "codex-mock-ok": (True, None, None, False, ()),
    "codex-mock-flakystream": (True, None, None, False, ()),  # Reconnecting... 1/2, then the answer
    "codex-mock-e429": (False, "last status: 429 Too Many Requests", T, False, ()),
    "codex-mock-e429quota": (False, "Quota exceeded", P, False, ()),
    "codex-mock-e500": (False, "high demand", T, False, ()),
    "codex-mock-failed": (False, "stream disconnected before completion", T, False, ()),
    "codex-mock-e401": (False, "401 Unauthorized", P, True, ()),
    "codex-mock-e400": (False, "`gpt-nope` does not exist", P, False, ()),
    "codex-nokey-nogit": (False, "Not inside a trusted directory and --skip-git-repo-check", P, False, ()),
    "codex-flag-full-auto": (False, "error: unexpected argument '--full-auto' found", P, False, ()),
    "codex-flag-sandbox-bogus": (False, "invalid value 'bogus' for '--sandbox", P, False, ()),
    "codex-nokey-skipgit-long": (False, "Reconnecting... waiting for network", T, False, ()),
    "gemini-mock-ok": (True, None, None, False, ()),
    "gemini-stream": (True, None, None, False, ()),
    "gemini-mock-e400key": (False, "API key not valid. Please pass a valid API key.", P, False, ()),
    "gemini-mock-e403": (False, "Permission denied on resource project.", P, False, ()),
    "gemini-mock-e429": (False, "Resource has been exhausted", T, False, ()),
    "gemini-mock-e500": (False, "An internal error has occurred.", T, False, ()),
    "gemini-mock-e503": (False, "The model is overloaded", T, False, ()),
    "gemini-stream-e503": (False, "API key not valid", P, False, ()),  # named e503, but the server said 400
    "gemini-in-repo-untrusted": (False, "Gemini CLI is not running in a trusted directory", P, False, ()),
    "gemini-bogus-nonet-json": (False, "Gemini CLI is not running in a trusted directory", P, False, ()),
    "gemini-nokey-json": (False, "Please set an Auth method", P, True, ()),
    "gemini-nokey-text": (False, "Please set an Auth method", P, True, ()),
    "gemini-am-bogus": (False, 'Argument: approval-mode, Given: "bogus"', P, False, ()),
    "aider-mock-ok": (True, None, None, False, ()),
    "aider-mock-e401": (False, "not able to authenticate you", P, True, ()),  # aider exits 0
    "aider-mock-e529": (False, "servers are down or overloaded", T, False, ()),  # aider exits 0
    "aider-nokey": (False, "waiting for a browser login", P, True, ()),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_capture_reads_as_what_it_is(name: str) -> None:
    ok, error, error_class, auth_failed, denials = EXPECTED[name]
    outcome = read(name)
    assert (outcome.ok, outcome.error_class, outcome.auth_failed, outcome.denials) == (ok, error_class, auth_failed,
                                                                                      denials), outcome
    if error is None:
        assert outcome.error is None
    else:
        assert outcome.error and error in outcome.error, outcome.error
        assert "\x1b" not in outcome.error and len(outcome.error) <= 500


@pytest.mark.parametrize("name", [n for n, (ok, *_) in EXPECTED.items() if ok])
def test_a_successful_run_reads_as_its_answer(name: str) -> None:
    outcome = read(name)
    assert outcome.result == "hi from mock" and outcome.usage["input_tokens"] > 0


@pytest.mark.parametrize(("name", "tokens", "cost", "turns", "session"), [
    ("claude-mock-ok", (11, 7), 0.000184, 1, "04c99f8f"),
    ("claude-mock-ok-stream", (11, 7), 0.000184, 1, "d164a956"),
    ("claude-hooks-agent-fg", (33, 21), 0.000552, 2, "f5828a0e"),  # modelUsage counts the subagent; usage 22/14
    ("claude-stream-agent-bg", (44, 28), 0.000736, 3, "34e613bb"),  # two result lines (2 + 1 turns)
    ("codex-mock-ok", (11, 7), 0.0, None, "01a22b9a-b131"),
    ("gemini-mock-ok", (22, 14), 0.0, None, "bbb3d26d"),
    ("gemini-stream", (22, 14), 0.0, None, "086d22b9"),
    ("aider-mock-ok", (11, 7), 0.00014, None, None),
])
def test_cost_tokens_turns_and_session(name: str, tokens: tuple[int, int], cost: float, turns: int | None,
                                       session: str | None) -> None:
    outcome = read(name)
    assert (outcome.usage["input_tokens"], outcome.usage["output_tokens"]) == tokens
    assert outcome.cost_usd == pytest.approx(cost) and outcome.turns == turns
    assert (outcome.session_id or "").startswith(session or "") and bool(outcome.session_id) == bool(session)


def test_codex_says_a_failure_once() -> None:
    error = read("codex-mock-e401").error or ""
    assert error.count("401 Unauthorized") == 1 and "; " not in error


def test_codex_waiting_for_network_ends_the_attempt_and_reads_as_transient() -> None:
    stdout, stderr, _ = replay(HERE / "codex-nokey-skipgit-long")
    ends = [ends_attempt("codex-jsonl", line) for line in stdout.splitlines()]
    assert ends[:7] == [None] * 7  # thread.started … Reconnecting... 5/5, the WebSockets fallback
    assert ends[7] == "Reconnecting... waiting for network (Connection failed: error sending request)"
    assert all(ends[7:])
    assert not any(ends_attempt(kind, line) for kind in READERS if kind != "codex-jsonl"
                   for line in stdout.splitlines())
    flaky = replay(HERE / "codex-mock-flakystream")[0]
    assert not any(ends_attempt("codex-jsonl", line) for line in flaky.splitlines())
    killed = READERS["codex-jsonl"]("\n".join(stdout.splitlines()[:8]) + "\n", stderr, -15)
    assert (killed.ok, killed.error, killed.error_class) == (False, ends[7], T)


@pytest.mark.parametrize(("name", "line", "text"), [
    ("claude-mock-ok-stream", 1, "hi from mock"),
    ("claude-mock-ok-stream", 0, None),  # system/init
    ("claude-mock-ok-stream", 2, None),  # the result
    ("claude-stream-agent", 1, "→ Agent: say hi from the subagent"),
    ("claude-mock-e529-stream", 1, "API Error: 529 Overloaded."),
    ("gemini-stream", 2, "hi from mock"),
    ("gemini-stream", 1, None),  # the user's message
    ("codex-mock-ok", 2, "hi from mock"),
    ("codex-mock-flakystream", 2, None),  # Reconnecting... 1/2
])
def test_live_text_is_the_agents_latest_words(name: str, line: int, text: str | None) -> None:
    found = live_text(replay(HERE / name)[0].splitlines()[line])
    assert found == text if text is None or not text.endswith(".") else (found or "").startswith(text)
