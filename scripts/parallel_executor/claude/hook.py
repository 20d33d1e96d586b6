"""The Stop hook's judgement (PRODUCT §14): did the last turn claim parallel work that ran serially?

A Claude Code 2.1 transcript is JSONL, one line per event. Only three kinds of line are read:
assistant lines (each content block of a response is its own line; the lines of one response
share `message.id`), user lines holding a `tool_result` (the Agent tool's outcome is the line's
`toolUseResult.status`: "completed" in the foreground, "async_launched" in the background), and
typed prompts. Everything else (`attachment`, `queue-operation`, `api-request-blob` that repeats
a message's content, `tools-used`, `cost-state`, `system`, types not yet invented) is skipped,
and so are `<task-notification>` user lines and sidechain lines: they are not the user typing
(a notification only tells, by its `<tool-use-id>`, that a background agent is over).

A response is keyed by `message.id` and the line's `requestRef` (the API request it answers):
real ids are distinct (`msg_01…`), but the captured transcripts' mock server gave every response
the id `msg_mock` (AGENT-CLIS §8b), and the request reference still tells its responses apart.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from parallel_executor.system.jsonfile import BadJSON, parse

TAIL_BYTES = 4 << 20  # a turn is far shorter; a transcript can grow to hundreds of MiB
AGENT_TOOLS = ("Agent", "Task")  # Task: the legacy name (AGENT-CLIS §4.3)
LAUNCHED = ("async_launched", "remote_launched")
NOT_TYPED = ("<task-notification>", "<system-reminder>", "Stop hook feedback")
_DONE = re.compile(r"<tool-use-id>\s*([^<\s]+)\s*</tool-use-id>")
_CLAIM = re.compile(r"\b(?:in\s+parallel|simultaneously|concurrently)\b", re.IGNORECASE)
_NEGATED = re.compile(r"\b(?:not|never|rather\s+than|instead\s+of)\s+(?:\w+\s+){0,2}$|n't\s+(?:\w+\s+){0,2}$",
                      re.IGNORECASE)


class AgentCall(NamedTuple):
    message: str  # the response that issued it
    tool_use_id: str
    line: int  # where it was issued


class Turn(NamedTuple):
    texts: list[str]
    calls: list[AgentCall]
    statuses: dict[str, str]  # tool_use_id -> "completed", "async_launched", "error", ...
    ends: dict[str, int]  # tool_use_id -> the line where it was over: its result, or its notification if async


def read_tail(path: Path, limit: int = TAIL_BYTES) -> list[dict[str, Any]]:
    """The transcript's last `limit` bytes as JSON objects; a cut first line and a torn last line are skipped."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        f.seek(max(0, size - limit))
        data = f.read(limit)
    lines = data.split(b"\n")
    if size > limit:
        lines = lines[1:]  # begins mid-line
    return list(_objects(lines))


def _objects(lines: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    for raw in lines:
        try:
            entry = parse(raw.decode("utf-8"))
        except (BadJSON, UnicodeDecodeError):
            continue
        if isinstance(entry, dict):
            yield entry


def last_turn(entries: list[dict[str, Any]]) -> Turn:
    """What the assistant said and which subagents it called since the last typed prompt."""
    start = max((i + 1 for i, entry in enumerate(entries) if _typed_prompt(entry)), default=0)
    turn = Turn([], [], {}, {})
    for line, entry in enumerate(entries[start:], start):
        if entry.get("isSidechain") is True:
            continue
        if entry.get("type") == "assistant":
            _read_assistant(entry, line, turn)
        elif entry.get("type") == "user":
            _read_results(entry, line, turn)
    return turn


def _content(entry: dict[str, Any]) -> list[Any] | str:
    message = entry.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    return content if isinstance(content, (list, str)) else []


def _typed_prompt(entry: dict[str, Any]) -> bool:
    if entry.get("type") != "user" or entry.get("isSidechain") is True or entry.get("isMeta") is True:
        return False
    origin = entry.get("origin")
    if (isinstance(origin, dict) and origin.get("kind") == "task-notification") \
            or entry.get("turnOrigin") == "task_notification":
        return False
    content = _content(entry)
    blocks = [content] if isinstance(content, str) else content
    if any(isinstance(b, dict) and b.get("type") == "tool_result" for b in blocks):
        return False
    text = " ".join(b if isinstance(b, str) else str(b.get("text", "")) for b in blocks
                    if isinstance(b, str) or (isinstance(b, dict) and b.get("type") == "text")).strip()
    return bool(text) and not text.startswith(NOT_TYPED)


def _read_assistant(entry: dict[str, Any], line: int, turn: Turn) -> None:
    message = entry.get("message")
    message = message if isinstance(message, dict) else {}
    key = f"{message.get('id') or entry.get('uuid')}|{entry.get('requestRef', '')}"
    content = _content(entry)
    for block in [content] if isinstance(content, str) else content:
        if isinstance(block, str):
            turn.texts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str):
            turn.texts.append(block["text"])
        elif isinstance(block, dict) and block.get("type") == "tool_use" and block.get("name") in AGENT_TOOLS \
                and isinstance(block.get("id"), str):
            turn.calls.append(AgentCall(key, block["id"], line))


def _read_results(entry: dict[str, Any], line: int, turn: Turn) -> None:
    content = _content(entry)
    for done in _DONE.findall(content if isinstance(content, str) else " ".join(
            str(b.get("text", "")) for b in content if isinstance(b, dict) and b.get("type") == "text")):
        turn.ends.setdefault(done, line)  # a <task-notification>: that background agent is over
    results = [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"
               and isinstance(b.get("tool_use_id"), str)] \
        if isinstance(content, list) else []
    outcome = entry.get("toolUseResult")
    status = outcome.get("status") if isinstance(outcome, dict) and len(results) == 1 else None
    for block in results:
        use = block["tool_use_id"]
        if block.get("is_error") is True:
            turn.statuses[use] = "error"
        elif isinstance(status, str):
            turn.statuses[use] = status
        elif "Async agent launched" in str(block.get("content")):
            turn.statuses[use] = "async_launched"
        if turn.statuses.get(use) not in LAUNCHED:
            turn.ends[use] = line  # unknown statuses too: a result that is no launch means it is over


def claims_parallel(texts: Iterable[str]) -> bool:
    """A text says work ran in parallel ("not in parallel", "couldn't run them concurrently" do not)."""
    for text in texts:
        for found in _CLAIM.finditer(text):
            if not _NEGATED.search(text[max(0, found.start() - 40):found.start()]):
                return True
    return False


def overlapped(turn: Turn) -> bool:
    """Did any two subagents run at once? Each ran from the line that issued it to the line that ended it:
    its result in the foreground, its <task-notification> in the background (never, if none came yet)."""
    spans = sorted((call.line, turn.ends.get(call.tool_use_id, sys.maxsize)) for call in turn.calls)
    latest_end = -1
    for begin, end in spans:
        if begin < latest_end:
            return True
        latest_end = max(latest_end, end)
    return False


def problem(turn: Turn, last_message: str, max_parallel: int) -> str | None:
    """The feedback for the model, or None when the turn is fine."""
    if not turn.calls or not claims_parallel([*turn.texts, last_message]):
        return None
    per_message: dict[str, int] = {}
    for call in turn.calls:
        per_message[call.message] = per_message.get(call.message, 0) + 1
    crowded = max(per_message.values())
    if crowded > max_parallel:
        return (f"You said the work ran in parallel, but one message issued {crowded} subagent (Agent) calls, "
                f"more than max_parallel_tasks = {max_parallel}: they cannot all run at once. Write the tasks "
                "to a task file and run them with the installed engine (`parallel-executor run tasks.json`), "
                "which runs them in parallel within that limit; or correct what you told the user.")
    if len(turn.calls) < 2 or overlapped(turn):
        return None
    return (f"You said the work ran in parallel, but the {len(turn.calls)} subagent (Agent) calls of this turn "
            "ran one after another: each finished (in the foreground, or its background run was over) before "
            "the next was issued in a later message. To run independent subagents at the same time, issue all "
            "their Agent calls in ONE message (or launch them with run_in_background: true), or write a task file "
            "and run the installed engine (`parallel-executor run tasks.json`). Otherwise, correct what you told "
            "the user.")
