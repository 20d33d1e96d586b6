"""Gemini CLI's output (`--output-format stream-json`, or `json`; shared/AGENT-CLIS.md §3.3). The exit
code is the HTTP status mod 256 (173 = 429, 244 = 500, 247 = 503) or Gemini's own (41 auth, 42 input,
44 sandbox, 52 config, 53 turn limit, 54 tool, 55 untrusted folder); in json mode a failure's error
JSON is on stderr, after log lines and stack traces."""

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
    stderr_message,
    structured_in,
    tokens,
    trailing_objects,
    unreadable,
    whole_json,
)

_TRANSIENT_EXITS = {173, 244, 246, 247, 248}  # 429, 500, 502, 503, 504 mod 256
_PERMANENT_EXITS = {41, 42, 44, 52, 53, 54, 55, 144, 145, 147, 148}  # …, 400, 401, 403, 404 mod 256
_INNER = re.compile(r"\{.*\}", re.DOTALL)


def read_gemini_stream(stdout: str, stderr: str, exit_code: int) -> Outcome:
    """`gemini --output-format stream-json`: init, messages (assistant text in delta chunks), result."""
    try:
        events = json_lines(stdout)
        result = next((e for e in reversed(events) if e.get("type") == "result"), None)
        if result is None:
            return _without_result("gemini-stream", stdout, stderr, exit_code)
        answer = "".join(as_str(e.get("content")) for e in events
                         if e.get("type") == "message" and e.get("role") == "assistant")
        session = next((as_str(e.get("session_id")) for e in events if e.get("session_id")), None)
        stats = as_dict(result.get("stats"))
        usage = tokens(stats.get("input_tokens"), stats.get("output_tokens"))
        error = None if result.get("status") == "success" else as_dict(result.get("error")) or {"message": "failed"}
        return _outcome(answer, error, usage, session, stderr, exit_code)
    except (RecursionError, ValueError, TypeError, AttributeError) as e:
        return Outcome(ok=False, result=stdout[-2000:], error=f"unreadable gemini-stream output ({type(e).__name__})")


def read_gemini_json(stdout: str, stderr: str, exit_code: int) -> Outcome:
    """`gemini --output-format json`: `response` and `stats` on stdout, or `error` (on stderr)."""
    try:
        whole = whole_json(stdout)
        doc = whole if isinstance(whole, dict) else next(trailing_objects(stdout), None)
        if doc is None:
            return _without_result("gemini-json", stdout, stderr, exit_code)
        answer = as_str(doc.get("response"))
        tokens_in = tokens_out = 0
        for model in as_dict(as_dict(doc.get("stats")).get("models")).values():
            counts = as_dict(as_dict(model).get("tokens"))
            tokens_in += as_int(counts.get("prompt"))
            tokens_out += as_int(counts.get("candidates"))
        error = doc.get("error")
        if error is not None and not isinstance(error, dict):
            error = {"message": as_str(error)}
        return _outcome(answer, error, tokens(tokens_in, tokens_out), as_str(doc.get("session_id")) or None,
                        stderr, exit_code)
    except (RecursionError, ValueError, TypeError, AttributeError) as e:
        return Outcome(ok=False, result=stdout[-2000:], error=f"unreadable gemini-json output ({type(e).__name__})")


def _without_result(kind: str, stdout: str, stderr: str, exit_code: int) -> Outcome:
    """No result on stdout: the error object on stderr, else stderr's own words (rc 55: plain text)."""
    if exit_code == 0 and stdout.strip():
        return unreadable(kind, stdout, stderr, exit_code)
    error = next((as_dict(d.get("error")) for d in trailing_objects(stderr) if isinstance(d.get("error"), dict)), None)
    if error is not None:
        session = next((as_str(d.get("session_id")) for d in trailing_objects(stderr) if d.get("session_id")), None)
        return _outcome("", error, tokens(0, 0), session or None, stderr, exit_code)
    if exit_code == 0:
        return unreadable(kind, stdout, stderr, exit_code)
    said = stderr_message(stderr)
    error_class, auth = _classify(exit_code, None, said)
    if error_class is None and exit_code == 1 and said:  # a bad flag or setting: yargs' message, then usage
        error_class = PERMANENT
    return Outcome(ok=False, result="", error=said or f"unreadable {kind} output (exit code {exit_code}, 'no output')",
                   error_class=error_class, auth_failed=auth)


def _outcome(answer: str, error: dict[str, Any] | None, usage: dict[str, int], session: str | None,
             stderr: str, exit_code: int) -> Outcome:
    message = error_class = None
    auth = False
    if error is not None:
        message, code = _message(error)
        error_class, auth = _classify(exit_code, code, message)
    elif exit_code != 0:
        message = failed_exit(exit_code, stderr)
    return Outcome(ok=message is None, result=answer, error=message, usage=usage, session_id=session,
                   data=structured_in(answer), error_class=error_class, auth_failed=auth)


def _message(error: dict[str, Any]) -> tuple[str, int | None]:
    """The error's message, unwrapped when it holds the API's own JSON (`{"error":{"message":…}}`,
    also as `[API Error: {…}]`), and its code."""
    message = as_str(error.get("message")) or as_str(error.get("type")) or "failed"
    code = error.get("code") if isinstance(error.get("code"), int) else None
    if match := _INNER.search(message):
        inner = as_dict(as_dict(whole_json(match.group(0))).get("error"))
        if as_str(inner.get("message")):
            message = as_str(inner["message"])
            code = inner["code"] if isinstance(inner.get("code"), int) else code
    return shorten(message, 500), code


def _classify(exit_code: int, code: int | None, message: str | None) -> tuple[str | None, bool]:
    status = code if code is not None and code >= 100 else None
    if exit_code == 41 or code == 41 or status == 401:
        return PERMANENT, True
    if status in (429, 408) or (status is not None and status >= 500) or exit_code in _TRANSIENT_EXITS:
        return TRANSIENT, False
    if (status is not None and 400 <= status < 500) or exit_code in _PERMANENT_EXITS or (code in _PERMANENT_EXITS):
        return PERMANENT, False
    if message and re.search(r"overloaded|resource has been exhausted|try again later", message, re.IGNORECASE):
        return TRANSIENT, False
    return None, False
