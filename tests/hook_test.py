"""`hook check-parallel` run as Claude Code runs it: a child process, the hook's JSON on stdin.

tests/transcripts/ holds the two transcripts Claude Code 2.1.332 really wrote (captured-*: one
foreground and one background subagent; every response id is the mock's `msg_mock`), and
hand-made ones in the same format with distinct ids: serial-* must be flagged (exit 2), every
other one must pass (exit 0, nothing on stderr). A `<name>.input.json` beside one overrides
fields of the hook input.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ENGINE

TRANSCRIPTS = Path(__file__).resolve().parent / "transcripts"
TORN = json.dumps({"transcript_path": str(TRANSCRIPTS / "serial-two-foreground.jsonl"),
                   "stop_hook_active": False}).encode()[:-10]
ODD_SHAPES = b"""{"type": "assistant", "message": 5}
{"type": "user", "message": {"content": [5, null, {"type": "tool_result"}]}}
{"type": "assistant", "message": {"content": [{"type": "tool_use", "name": "Agent"}, {"type": "text", "text": 3}]}}
{"type": "assistant", "message": {"content": [{"type": "tool_use", "name": "Agent", "id": 1}]}}
"""
CASES = sorted(path.stem for path in TRANSCRIPTS.glob("*.jsonl"))


def hook(stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*ENGINE, "hook", "check-parallel"], input=stdin, capture_output=True, timeout=30,
                          env=dict(os.environ))


def last_text(path: Path) -> str:
    """What Claude Code sends as last_assistant_message: the last assistant text of the transcript."""
    found = ""
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("type") == "assistant":
            found = next((b["text"] for b in entry["message"]["content"] if b.get("type") == "text"), found)
    return found


def stop_input(path: Path, **fields: Any) -> bytes:
    event = {"session_id": "5e55a0e0", "transcript_path": str(path), "cwd": str(path.parent),
             "permission_mode": "default", "hook_event_name": "Stop", "stop_hook_active": False,
             "background_tasks": [], "session_crons": []}
    if "last_assistant_message" not in fields:
        event["last_assistant_message"] = last_text(path)
    extra = path.with_suffix(".input.json")
    if extra.exists():
        event.update(json.loads(extra.read_text()))
    return json.dumps({**event, **fields}).encode()


def test_the_matrix_is_large_enough() -> None:
    made = [name for name in CASES if not name.startswith("captured-")]
    assert len(made) >= 12 and sum(name.startswith("serial-") for name in made) >= 6
    assert {"captured-foreground-subagent", "captured-background-subagent"} <= set(CASES)


@pytest.mark.parametrize("name", CASES)
def test_serial_work_claimed_parallel_is_flagged_and_nothing_else(name: str, home: Path) -> None:
    done = hook(stop_input(TRANSCRIPTS / f"{name}.jsonl"))
    if name.startswith("serial-"):
        assert done.returncode == 2, name
        assert b"parallel-executor run tasks.json" in done.stderr and b"Traceback" not in done.stderr
    else:
        assert (done.returncode, done.stderr) == (0, b""), name


def test_feedback_tells_the_model_what_to_do(home: Path) -> None:
    serial = hook(stop_input(TRANSCRIPTS / "serial-two-foreground.jsonl")).stderr.decode()
    assert "one after another" in serial and "ONE message" in serial and "run_in_background" in serial
    crowded = hook(stop_input(TRANSCRIPTS / "serial-too-many-in-one-message.jsonl")).stderr.decode()
    assert "12 subagent" in crowded and "max_parallel_tasks = 10" in crowded


def test_max_parallel_tasks_comes_from_the_config(home: Path) -> None:
    config = home / "memory" / "config" / "parallel-execution-config.json"
    config.parent.mkdir(parents=True)
    config.write_text(json.dumps({"max_parallel_tasks": 12}))
    assert hook(stop_input(TRANSCRIPTS / "serial-too-many-in-one-message.jsonl")).returncode == 0


def test_a_second_stop_after_feedback_is_let_through(home: Path) -> None:
    done = hook(stop_input(TRANSCRIPTS / "serial-two-foreground.jsonl", stop_hook_active=True))
    assert (done.returncode, done.stderr, done.stdout) == (0, b"", b"")


def test_only_the_transcripts_tail_is_read(home: Path, tmp_path: Path) -> None:
    big = tmp_path / "big.jsonl"
    padding = json.dumps({"type": "attachment", "attachment": {"type": "x", "text": "y" * 4000}}) + "\n"
    big.write_text(padding * 1500 + (TRANSCRIPTS / "serial-two-foreground.jsonl").read_text())  # ~6 MiB
    assert hook(stop_input(big)).returncode == 2


@pytest.mark.parametrize("stdin", [
    b"", b"not json", b"[1, 2]", b"null", b"\xff\xfe\x00", b'{"transcript_path": 5}',
    b'{"stop_hook_active": false}', b'{"transcript_path": "/nonexistent/t.jsonl", "stop_hook_active": false}',
    b'{"transcript_path": "/", "stop_hook_active": false}', b"[" * 100_000, b"{" + b" " * (2 << 20) + b"}",
    TORN,
], ids=lambda stdin: repr(stdin[:30]))
def test_unreadable_input_lets_the_session_stop_quietly(stdin: bytes, home: Path) -> None:
    done = hook(stdin)
    assert (done.returncode, done.stderr, done.stdout) == (0, b"", b"")


@pytest.mark.parametrize("content", [b"", b"\x00\xff" * 1000, b"{" * 50_000 + b"\n", ODD_SHAPES])
def test_unreadable_transcripts_let_the_session_stop_quietly(content: bytes, home: Path, tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(content)
    done = hook(stop_input(path, last_assistant_message="ran in parallel"))
    assert (done.returncode, done.stderr) == (0, b"")
