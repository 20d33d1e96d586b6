"""Reading an agent's stdout while it runs, one line at a time: its latest human-readable text (the
task's last output line in the monitor, `logs --follow` and the dashboard), and the lines that end
an attempt early (Codex waiting for a network that will not come back by itself)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from parallel_executor.agents.claude_output import tool_call
from parallel_executor.agents.codex_output import WAITING_FOR_NETWORK
from parallel_executor.agents.outcome import as_dict, as_str, json_line, shorten

_LIMIT = 200


def rendered(lines: Iterable[str]) -> list[str]:
    """Output lines as a person reads them: a stream-JSON line as the agent's text (or nothing, for
    the lines that carry none), any other line as it is."""
    return [text for line in lines if (text := live_text(line) if line.lstrip().startswith("{") else line) is not None]


def live_text(line: str) -> str | None:
    """The agent's latest text in one stdout line of a streaming format (Claude stream-json,
    Gemini stream-json, Codex JSONL), or a tool call as `→ Bash: npm test`; else None."""
    if line.lstrip()[:1] != "{":
        return None
    try:
        event = json_line(line)
        if event is None:
            return None
        kind = event.get("type")
        if kind == "assistant":
            return _claude(as_dict(event.get("message")))
        if kind == "message" and event.get("role") == "assistant":
            return _last_line(as_str(event.get("content")))
        if kind in ("item.completed", "item.started"):
            return _codex(kind, as_dict(event.get("item")))
    except (RecursionError, ValueError, TypeError, AttributeError):
        return None
    return None


def ends_attempt(kind: str, line: str) -> str | None:
    """Why this stdout line should end the attempt now (the engine classes it transient), else None:
    Codex's `Reconnecting... waiting for network (…)`, which it repeats forever."""
    if kind != "codex-jsonl" or WAITING_FOR_NETWORK not in line:
        return None
    event = json_line(line)
    if event is None or event.get("type") != "error":
        return None
    message = as_str(event.get("message"))
    return message if message.startswith(WAITING_FOR_NETWORK) else None


def _claude(message: dict[str, Any]) -> str | None:
    content = message.get("content")
    found = None
    for block in content if isinstance(content, list) else ():
        block = as_dict(block)
        if block.get("type") == "text":
            found = _last_line(as_str(block.get("text"))) or found
        elif block.get("type") == "tool_use":
            found = "→ " + tool_call(block.get("name"), block.get("input"), "{tool}: {detail}")
    return found


def _codex(kind: str, item: dict[str, Any]) -> str | None:
    item_type = item.get("type")
    if kind == "item.completed" and item_type == "agent_message":
        return _last_line(as_str(item.get("text")))
    if kind == "item.started" and item_type == "command_execution" and as_str(item.get("command")):
        return "→ shell: " + shorten(as_str(item.get("command")), 80)
    if kind == "item.completed" and item_type == "file_change":
        changes = item.get("changes")
        paths = [as_str(as_dict(c).get("path")) for c in changes] if isinstance(changes, list) else []
        return "→ edit: " + shorten(", ".join(p for p in paths if p), 80) if any(paths) else None
    return None


def _last_line(text: str) -> str | None:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return shorten(lines[-1], _LIMIT) if lines else None
