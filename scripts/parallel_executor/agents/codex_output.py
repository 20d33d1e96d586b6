"""Codex's output (`codex exec --json`): JSONL events (shared/AGENT-CLIS.md §3.2). `turn.failed` is
the failure; an `error` event that a `turn.completed` follows (`Reconnecting... 1/2`) was only a
warning; without a network Codex never exits (`Reconnecting... waiting for network`)."""

from __future__ import annotations

import re
from typing import Any

from parallel_executor.agents.outcome import (
    PERMANENT,
    TRANSIENT,
    Outcome,
    as_dict,
    as_int,
    as_str,
    failed_exit,
    json_lines,
    shorten,
    structured_in,
    tokens,
    unreadable,
)

WAITING_FOR_NETWORK = "Reconnecting... waiting for network"
_QUOTA = re.compile(r"quota exceeded|insufficient_quota|billing", re.IGNORECASE)
_AUTH = re.compile(r"\b401\b|unauthorized|incorrect api key|invalid api key|not logged in|authenticat",
                   re.IGNORECASE)
_TRANSIENT = re.compile(r"\b429\b|too many requests|rate limit|exceeded retry limit|high demand|overloaded|"
                        r"stream disconnected|reconnecting|waiting for network|connection (failed|reset|refused)|"
                        r"timed out|timeout|\b5\d\d\b|internal server error|service unavailable|bad gateway",
                        re.IGNORECASE)
_PERMANENT = re.compile(r"\b40[034]\b|forbidden|does not exist|not found|invalid|not supported|unsupported",
                        re.IGNORECASE)


def read_codex_jsonl(stdout: str, stderr: str, exit_code: int) -> Outcome:
    """`codex exec --json`: the last agent message is the result; usage is summed over turns."""
    try:
        events = json_lines(stdout)
        if not events:
            return unreadable("codex-jsonl", stdout, stderr, exit_code)
        return _outcome(events, stderr, exit_code)
    except (RecursionError, ValueError, TypeError, AttributeError) as e:
        return Outcome(ok=False, result=stdout[-2000:], error=f"unreadable codex-jsonl output ({type(e).__name__})")


def classify(message: str) -> tuple[str | None, bool]:
    """(error_class, auth_failed) of a Codex error message."""
    if _QUOTA.search(message):
        return PERMANENT, False
    if _AUTH.search(message):
        return PERMANENT, True
    if _TRANSIENT.search(message):
        return TRANSIENT, False
    if _PERMANENT.search(message):
        return PERMANENT, False
    return None, False


def _outcome(events: list[dict[str, Any]], stderr: str, exit_code: int) -> Outcome:
    message, failure, pending = "", None, None  # pending: the last `error` event no turn.completed followed
    tokens_in = tokens_out = 0
    session = None
    completed = False
    for event in events:
        kind = event.get("type")
        item = as_dict(event.get("item"))
        if kind == "item.completed" and item.get("type") == "agent_message":
            message = as_str(item.get("text"))
        elif kind == "turn.completed":
            usage = as_dict(event.get("usage"))
            tokens_in += as_int(usage.get("input_tokens"))
            tokens_out += as_int(usage.get("output_tokens"))
            completed, pending = True, None
        elif kind == "turn.failed":
            failure = as_str(as_dict(event.get("error")).get("message")) or pending or "turn failed"
            pending = None
        elif kind == "error":
            pending = as_str(event.get("message")) or "error"
        elif kind == "thread.started":
            session = as_str(event.get("thread_id")) or None
    error = failure or pending
    if error is None and exit_code != 0:
        error = failed_exit(exit_code, stderr)
    elif error is None and not completed and not message:
        error = "codex ended without finishing a turn"
    error_class, auth = classify(error) if error and (failure or pending) else (None, False)
    return Outcome(ok=error is None, result=message, error=shorten(error, 500) if error else None,
                   usage=tokens(tokens_in, tokens_out), session_id=session, data=structured_in(message),
                   error_class=error_class, auth_failed=auth)
