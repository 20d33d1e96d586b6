"""Claude Code's output (`-p --output-format stream-json --verbose`, or `json`): the `result` object
(shared/AGENT-CLIS.md §3.1). Errors keep `subtype: "success"` and set `is_error`; limits have no
`result` but `errors[]`; startup failures print only to stderr."""

from __future__ import annotations

from typing import Any

from parallel_executor.agents.outcome import (
    PERMANENT,
    TRANSIENT,
    Outcome,
    as_dict,
    as_float,
    as_int,
    as_str,
    failed_exit,
    json_lines,
    shorten,
    structured_in,
    tokens,
    unreadable,
    whole_json,
)

_LIMITS = ("error_max_turns", "error_max_budget_usd", "error_max_structured_output_retries")
_AUTH_TEXT = ("not logged in", "invalid api key", "authentication_error", "oauth token has expired")


def read_claude_stream(stdout: str, stderr: str, exit_code: int) -> Outcome:
    """`claude -p --output-format stream-json --verbose`: the last `result` line."""
    return _read_claude("claude-stream", stdout, stderr, exit_code)


def read_claude_json(stdout: str, stderr: str, exit_code: int) -> Outcome:
    """`claude -p --output-format json`: one result object (a JSON array of events with --verbose)."""
    return _read_claude("claude-json", stdout, stderr, exit_code)


def _read_claude(kind: str, stdout: str, stderr: str, exit_code: int) -> Outcome:
    try:
        results = _results(stdout)
        if not results:
            return unreadable(kind, stdout, stderr, exit_code)
        return _outcome(results, stderr, exit_code)
    except (RecursionError, ValueError, TypeError, AttributeError) as e:  # never raise: a failed task instead
        return Outcome(ok=False, result=stdout[-2000:], error=f"unreadable {kind} output ({type(e).__name__})")


def _results(stdout: str) -> list[dict[str, Any]]:
    whole = whole_json(stdout)
    docs = whole if isinstance(whole, list) else [whole] if isinstance(whole, dict) else json_lines(stdout)
    return [d for d in docs if isinstance(d, dict) and _is_result(d)]


def _is_result(doc: dict[str, Any]) -> bool:
    kind = doc.get("type")
    return kind == "result" or (kind is None and ("subtype" in doc or "result" in doc))


def _outcome(results: list[dict[str, Any]], stderr: str, exit_code: int) -> Outcome:
    last = results[-1]  # with background agents, one result per wake-up: the last is the session's end
    answer = as_str(last.get("result"))
    subtype = as_str(last.get("subtype") or "success")
    ok = not last.get("is_error") and subtype == "success" and exit_code == 0
    error = error_class = None
    auth = False
    if not ok:
        error, error_class, auth = _failure(last, answer, subtype, stderr, exit_code)
    turns = [t for t in (r.get("num_turns") for r in results) if isinstance(t, int)]
    return Outcome(ok=ok, result=answer, error=error, cost_usd=as_float(last.get("total_cost_usd")),
                   usage=_usage(last), session_id=as_str(last.get("session_id")) or None,
                   data=structured_in(answer), turns=sum(turns) if turns else None, error_class=error_class,
                   denials=_denials(results), auth_failed=auth)


def _failure(doc: dict[str, Any], answer: str, subtype: str, stderr: str,
             exit_code: int) -> tuple[str, str | None, bool]:
    errors = doc.get("errors")
    said = answer or ("; ".join(as_str(e) for e in errors if e) if isinstance(errors, list) else "")
    if not doc.get("is_error") and subtype == "success":  # a clean result, but the process failed after it
        return failed_exit(exit_code, stderr), None, False
    error = shorten(said, 500) if said else subtype if subtype != "success" else failed_exit(exit_code, stderr)
    status = doc.get("api_error_status")
    lowered = said.lower()
    auth = status == 401 or any(text in lowered for text in _AUTH_TEXT)
    if auth or subtype in _LIMITS or status in (400, 401, 403, 404, 413):
        return error, PERMANENT, auth
    if status in (408, 409, 429) or (isinstance(status, int) and status >= 500):
        return error, TRANSIENT, False
    if doc.get("api_error") == "connection_failed" or "can't reach the api server" in lowered:
        return error, TRANSIENT, False
    return error, None, False


def _usage(doc: dict[str, Any]) -> dict[str, int]:
    """modelUsage: the whole session, subagents included (usage counts the main thread only)."""
    models = as_dict(doc.get("modelUsage"))
    if models:
        per_model = [as_dict(m) for m in models.values()]
        return tokens(sum(as_int(m.get("inputTokens")) for m in per_model),
                      sum(as_int(m.get("outputTokens")) for m in per_model))
    usage = as_dict(doc.get("usage"))
    return tokens(usage.get("input_tokens"), usage.get("output_tokens"))


def _denials(results: list[dict[str, Any]]) -> tuple[str, ...]:
    named: list[str] = []
    for doc in results:
        denials = doc.get("permission_denials")
        for denial in denials if isinstance(denials, list) else ():
            name = tool_call(denial.get("tool_name"), denial.get("tool_input")) if isinstance(denial, dict) else ""
            if name and name not in named:
                named.append(name)
    return tuple(named)


def tool_call(tool: Any, tool_input: Any, form: str = "{tool}({detail})") -> str:
    """`Bash(npm test)`: a tool and what it was called on (command, file, else its first string)."""
    name = as_str(tool).strip()
    if not name:
        return ""
    args = as_dict(tool_input)
    detail = next((args[k] for k in ("command", "file_path", "path", "notebook_path", "pattern", "url", "prompt")
                   if isinstance(args.get(k), str) and args[k].strip()), None)
    if detail is None:
        detail = next((v for v in args.values() if isinstance(v, str) and v.strip()), "")
    detail = shorten(detail, 80)
    return form.format(tool=name, detail=detail) if detail else name
