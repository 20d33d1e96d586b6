"""Aider's output (`aider --yes-always --no-stream --no-pretty --message=…`; shared/AGENT-CLIS.md §3.4):
plain text, banners first. API errors (litellm's) are printed and aider still exits 0; without a key
it waits five minutes for a browser login."""

from __future__ import annotations

import re

from parallel_executor.agents.outcome import (
    PERMANENT,
    TRANSIENT,
    Outcome,
    as_float,
    shorten,
    stderr_message,
    structured_in,
    tokens,
)

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_HEADER = re.compile(r"^(Main model|Weak model|Editor model|Model|Git repo|Repo-map|Cur working dir|Git working dir)"
                     r":|^Added .* to the chat\.?$|^Use /help\b|^Restored previous conversation")
_NOISE = re.compile(r"^(Aider v\d|Analytics have been permanently disabled|Added \.aider\* to \.gitignore|"
                    r"Git repository created in |Update git (name|email) with:|HTTPSConnectionPool\(|"
                    r"Error checking pypi for new version|Newer aider version|Retrying in [\d.]+ seconds|"
                    r"Warning: Input is not a terminal|Scanning repo:|Initial repo scan|[─━-]{10,}$)")
_TOKENS = re.compile(r"^Tokens: (?P<sent>[\d.]+)(?P<s>[kKmM]?) sent,.*?(?P<recv>[\d.]+)(?P<r>[kKmM]?) received\.?"
                     r"(?:.*\$(?P<cost>[\d.]+) session)?")
_LITELLM = re.compile(r"^litellm\.(?P<kind>[A-Za-z]+)\b")
_EXPLAINED = re.compile(r"^The API provider")
_OAUTH = ("Waiting up to 5 minutes for you to finish in the browser", "No LLM model was specified and no API keys")
_AUTH_KINDS = ("AuthenticationError",)
_TRANSIENT_KINDS = ("RateLimitError", "InternalServerError", "ServiceUnavailableError", "APIConnectionError",
                    "Timeout", "APIError")
_PERMANENT_KINDS = ("BadRequestError", "NotFoundError", "ContextWindowExceededError", "PermissionDeniedError",
                    "UnprocessableEntityError", "ContentPolicyViolationError", "BudgetExceededError")


def read_aider_text(stdout: str, stderr: str, exit_code: int) -> Outcome:
    """The answer is stdout without aider's banners; litellm errors fail the task although aider exits 0."""
    try:
        return _read(stdout, stderr, exit_code)
    except (RecursionError, ValueError, TypeError, AttributeError) as e:
        return Outcome(ok=False, result=stdout[-2000:], error=f"unreadable aider-text output ({type(e).__name__})")


def _read(stdout: str, stderr: str, exit_code: int) -> Outcome:
    lines = [line.rstrip() for line in _ANSI.sub("", stdout).splitlines()]
    body = _body(lines)
    sent = received = 0
    cost = 0.0
    kept: list[str] = []
    failure: tuple[str, str | None, bool] | None = None
    i = 0
    while i < len(body):
        line = body[i].strip()
        if match := _TOKENS.match(line):
            sent += _count(match["sent"], match["s"])
            received += _count(match["recv"], match["r"])
            cost = as_float(match["cost"]) or cost
            failure = None  # a reply came after the error: aider's own retry worked
        elif match := _LITELLM.match(line):
            i, failure = _error_block(body, i, match["kind"])
            continue
        elif _EXPLAINED.match(line):
            failure = (line, TRANSIENT if "overloaded" in line else None, False)
        elif line.startswith("Error checking pypi"):  # wrapped over a few lines, up to its "))"
            while i + 1 < len(body) and not body[i].endswith("))") and not body[i + 1].startswith("Added "):
                i += 1
        elif not _NOISE.match(line):
            kept.append(body[i])
        i += 1
    answer = "\n".join(kept).strip("\n")
    answer = "\n".join(line.rstrip() for line in answer.splitlines())
    if any(marker in stdout for marker in _OAUTH):
        failure = ("no API key: aider is waiting for a browser login (No LLM model was specified and no API keys "
                   "were provided)", PERMANENT, True)
    if failure is None and exit_code != 0:
        said = stderr_message(stderr, lines=1) or (shorten(answer.splitlines()[-1], 200) if answer.strip() else "")
        failure = (f"exit code {exit_code}" + (f": {said}" if said else ""), None, False)
    error, error_class, auth = failure if failure else (None, None, False)
    return Outcome(ok=failure is None, result=answer, error=error, cost_usd=cost, usage=tokens(sent, received),
                   data=structured_in(answer), error_class=error_class, auth_failed=auth)


def _body(lines: list[str]) -> list[str]:
    """The lines after aider's start-up banner (`Aider v…` then model, repo and repo-map lines)."""
    start = next((i for i, line in enumerate(lines) if line.startswith("Aider v")), None)
    if start is None:
        return lines
    end = start
    for i in range(start + 1, min(start + 20, len(lines))):
        if _HEADER.match(lines[i].strip()):
            end = i
    return lines[end + 1:]


def _error_block(body: list[str], i: int, kind: str) -> tuple[int, tuple[str, str | None, bool]]:
    """A litellm error (its JSON wraps over lines) and aider's one-line explanation after it."""
    block = [body[i].strip()]
    i += 1
    while i < len(body) and body[i].strip() and not _EXPLAINED.match(body[i].strip()) \
            and not _NOISE.match(body[i].strip()) and not _LITELLM.match(body[i].strip()):
        block.append(body[i].strip())
        i += 1
    explained = ""
    if i < len(body) and _EXPLAINED.match(body[i].strip()):
        explained = body[i].strip()
        i += 1
    detail = shorten(" ".join(block), 300)
    text = f"{explained} ({detail})" if explained else detail
    lowered = text.lower()
    if kind in _AUTH_KINDS or "not able to authenticate" in lowered:
        return i, (text, PERMANENT, True)
    if kind in _TRANSIENT_KINDS or "overloaded" in lowered or "rate limit" in lowered:
        return i, (text, TRANSIENT, False)
    return i, (text, PERMANENT if kind in _PERMANENT_KINDS else None, False)


def _count(number: str, unit: str) -> int:
    scale = {"k": 1_000, "m": 1_000_000}.get(unit.lower(), 1)
    return int(as_float(number) * scale)
