"""The output readers (agents/readers.py) replayed on the real CLIs' captures (tests/captures/):
whatever a CLI printed — success, API errors, stderr-only failures, bad flags — a reader returns an
Outcome and never raises, and a non-zero exit is never a success."""

from __future__ import annotations

from pathlib import Path

import pytest
from parallel_executor.agents.readers import READERS

pytestmark = pytest.mark.timeout(30)
CAPTURES = sorted(p for p in (Path(__file__).parent / "captures").iterdir() if (p / "stdout").is_file())


def replay(capture: Path) -> tuple[str, int]:
    return (capture / "stdout").read_bytes().decode("utf-8", errors="replace"), int((capture / "rc").read_text())


def test_there_are_captures_of_every_cli() -> None:
    assert len(CAPTURES) >= 100
    assert {p.name.split("-")[0].rstrip("0123456789") for p in CAPTURES} >= {"claude", "codex", "gemini", "aider"}


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
def test_every_reader_reads_every_capture_and_a_failed_exit_is_never_a_success(capture: Path) -> None:
    stdout, code = replay(capture)
    for name, reader in READERS.items():
        outcome = reader(stdout, code)
        assert isinstance(outcome.ok, bool) and isinstance(outcome.result, str), name
        if code != 0:  # (the text reader leaves the error to the engine: "exit code N" and stderr's last line)
            assert not outcome.ok and (outcome.error or name == "text"), (name, code)


@pytest.mark.parametrize(("capture", "reader"), [("claude-mock-ok", "claude-json"), ("codex-mock-ok", "codex-jsonl"),
                                                 ("gemini-mock-ok", "gemini-json")])
def test_a_successful_run_reads_as_its_answer(capture: str, reader: str) -> None:
    outcome = READERS[reader](*replay(Path(__file__).parent / "captures" / capture))
    assert outcome.ok and outcome.result == "hi from mock" and outcome.error is None
    assert outcome.usage["input_tokens"] > 0
