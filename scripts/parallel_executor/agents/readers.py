"""Reading an agent CLI's stdout into an Outcome (§7): one reader per `output` kind of the config.

A reader never raises: output it cannot read is a failed task with a clear error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Outcome:
    """What a runner's output reader makes of an attempt that exited."""

    ok: bool
    result: str
    error: str | None = None
    cost_usd: float = 0.0
    usage: Mapping[str, int] = field(default_factory=dict)
    session_id: str | None = None
    data: Any = None
    turns: int | None = None


Reader = Callable[[str, int], Outcome]

_FENCED_JSON = re.compile(r"```(?:json)?\s*\n(\{.*?\})\s*\n```", re.DOTALL)


def read_text(stdout: str, exit_code: int) -> Outcome:
    """stdout is the result; the exit code says whether it worked."""
    return Outcome(ok=exit_code == 0, result=stdout)


def read_claude_json(stdout: str, exit_code: int) -> Outcome:
    """`claude -p ... --output-format json`: one result object (the last one, if more were printed)."""
    doc = _last_json_object(stdout)
    if doc is None:
        return _unreadable("claude-json", stdout, exit_code)
    result = str(doc.get("result") or "")
    subtype = str(doc.get("subtype", "success"))
    error = None
    if subtype != "success":  # error_max_turns, error_during_execution, ...
        error = subtype + (f": {result[:200]}" if result else "")
    elif doc.get("is_error"):
        error = result[:200] or "the agent reported an error"
    elif exit_code != 0:
        error = f"exit code {exit_code}"
    usage = doc.get("usage") or {}
    return Outcome(
        ok=error is None,
        result=result,
        error=error,
        cost_usd=float(doc.get("total_cost_usd") or 0.0),
        usage=_tokens(usage.get("input_tokens"), usage.get("output_tokens")),
        session_id=doc.get("session_id"),
        data=structured_in(result),
        turns=doc.get("num_turns"),
    )


def read_codex_jsonl(stdout: str, exit_code: int) -> Outcome:
    """`codex exec --json`: the last agent message is the result; usage is summed over turns."""
    events = [e for e in (_json_line(line) for line in stdout.splitlines()) if e is not None]
    if not events:
        return _unreadable("codex-jsonl", stdout, exit_code)
    message, errors, tokens_in, tokens_out, session = "", [], 0, 0, None
    for event in events:
        kind = event.get("type")
        item = event.get("item") or {}
        if kind == "item.completed" and item.get("type") == "agent_message":
            message = str(item.get("text") or "")
        elif kind == "turn.completed":
            usage = event.get("usage") or {}
            tokens_in += int(usage.get("input_tokens") or 0)
            tokens_out += int(usage.get("output_tokens") or 0)
        elif kind == "turn.failed":
            errors.append(str((event.get("error") or {}).get("message") or "turn failed"))
        elif kind == "error":
            errors.append(str(event.get("message") or "error"))
        elif kind == "thread.started":
            session = event.get("thread_id")
    error = "; ".join(errors) or (f"exit code {exit_code}" if exit_code else None)
    return Outcome(ok=error is None, result=message, error=error, usage=_tokens(tokens_in, tokens_out),
                   session_id=session, data=structured_in(message))


def read_gemini_json(stdout: str, exit_code: int) -> Outcome:
    """`gemini -p ... --output-format json`: `response`, `stats` (tokens per model), `error`."""
    doc = _last_json_object(stdout)
    if doc is None:
        return _unreadable("gemini-json", stdout, exit_code)
    response = str(doc.get("response") or "")
    error = doc.get("error")
    tokens_in = tokens_out = 0
    for model in ((doc.get("stats") or {}).get("models") or {}).values():
        tokens = (model or {}).get("tokens") or {}
        tokens_in += int(tokens.get("prompt") or 0)
        tokens_out += int(tokens.get("candidates") or 0)
    message = None
    if error:
        message = str(error.get("message") or error) if isinstance(error, dict) else str(error)
    elif exit_code != 0:
        message = f"exit code {exit_code}"
    return Outcome(ok=message is None, result=response, error=message, usage=_tokens(tokens_in, tokens_out),
                   data=structured_in(response))


READERS: dict[str, Reader] = {
    "text": read_text,
    "claude-json": read_claude_json,
    "codex-jsonl": read_codex_jsonl,
    "gemini-json": read_gemini_json,
}


def structured_in(text: str) -> dict[str, Any] | None:
    """A JSON object that is the whole text, or the first ```json block in it."""
    candidates = [text.strip(), *_FENCED_JSON.findall(text)]
    for candidate in candidates:
        if candidate.startswith("{"):
            try:
                value = json.loads(candidate)
            except (ValueError, RecursionError):
                continue
            if isinstance(value, dict):
                return value
    return None


def _last_json_object(stdout: str) -> dict[str, Any] | None:
    try:
        whole = json.loads(stdout)
        return whole if isinstance(whole, dict) else None
    except (ValueError, RecursionError):
        pass
    for line in reversed(stdout.splitlines()):
        doc = _json_line(line)
        if doc is not None:
            return doc
    return None


def _json_line(line: str) -> dict[str, Any] | None:
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        value = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _tokens(tokens_in: Any, tokens_out: Any) -> dict[str, int]:
    return {"input_tokens": int(tokens_in or 0), "output_tokens": int(tokens_out or 0)}


def _unreadable(kind: str, stdout: str, exit_code: int) -> Outcome:
    sample = stdout.strip().splitlines()[-1][:120] if stdout.strip() else "no output"
    how = f"exit code {exit_code}, " if exit_code else ""
    return Outcome(ok=False, result=stdout, error=f"unreadable {kind} output ({how}{sample!r})")
