"""What an output reader returns (§7), and the helpers the readers share: JSON found in noisy text,
stderr boiled down to its message, failures classed transient or permanent.

Nothing here raises on odd input: the readers built on it never do.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

TRANSIENT, PERMANENT = "transient", "permanent"


@dataclass(frozen=True)
class Outcome:
    """What a runner's output reader makes of an attempt that exited.

    error_class: "transient" (rate limit, overload, 5xx, network: worth retrying), "permanent"
    (authentication, bad flag, unknown model, quota, a limit reached) or None (success, or a
    failure the reader cannot class). denials: tool calls the agent was refused, `Bash(npm test)`;
    they do not make `ok` False. auth_failed: not logged in / bad credentials."""

    ok: bool
    result: str
    error: str | None = None
    cost_usd: float = 0.0
    usage: Mapping[str, int] = field(default_factory=dict)
    session_id: str | None = None
    data: Any = None
    turns: int | None = None
    error_class: str | None = None
    denials: tuple[str, ...] = ()
    auth_failed: bool = False


Reader = Callable[[str, str, int], Outcome]

_FENCED_JSON = re.compile(r"```(?:json)?\s*\n(\{.*?\})\s*\n```", re.DOTALL)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
_STDERR_NOISE = re.compile(
    r"^(WARNING: proceeding|Reading additional input from stdin|For more information, try|"
    r"Warning: Input is not a terminal|Warning: 256-color|Ripgrep is not available|\(Use `node --trace-warnings|"
    r"\(node:\d+\)|at |\d{4}-\d\d-\d\dT\S+\s+(INFO|DEBUG|TRACE|WARN)\b)")
_MAX_ERROR = 500


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


def json_line(line: str) -> dict[str, Any] | None:
    """The JSON object that is this whole line, else None (cheap for lines that are not JSON)."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        value = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def json_lines(text: str) -> list[dict[str, Any]]:
    return [doc for doc in map(json_line, text.splitlines()) if doc is not None]


def whole_json(text: str) -> Any:
    """The text parsed as one JSON value, or None."""
    if text.strip()[:1] not in ("{", "["):
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def trailing_objects(text: str, limit: int = 40) -> Iterator[dict[str, Any]]:
    """JSON objects that start at the beginning of a line, from the last one up (pretty-printed ones
    too: Gemini prints its error object after log lines and stack traces)."""
    starts = [m.start() for m in re.finditer(r"(?m)^\{", text)][-limit:]
    decoder = json.JSONDecoder()
    for start in reversed(starts):
        try:
            value, _ = decoder.raw_decode(text, start)
        except (ValueError, RecursionError):
            continue
        if isinstance(value, dict):
            yield value


def stderr_message(stderr: str, lines: int = 3) -> str:
    """What a failed start said on stderr: its error line(s), without warnings, stack frames and the
    usage text a bad flag brings (clap and yargs print the error before "Usage:")."""
    kept: list[str] = []
    for raw in _ANSI.sub("", stderr).splitlines():
        line = raw.strip()
        if line.startswith("Usage:") and kept:
            break
        if line and not _STDERR_NOISE.match(line):
            kept.append(line)
    for i, line in enumerate(kept):  # clap: "error: …" then its "[possible values: …]" / "tip: …"
        if line.startswith("error:"):
            kept = kept[i:i + 2]
            break
    return shorten(" ".join(kept[-lines:]), _MAX_ERROR)


def shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def tokens(tokens_in: Any, tokens_out: Any) -> dict[str, int]:
    return {"input_tokens": as_int(tokens_in), "output_tokens": as_int(tokens_out)}


def as_int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError, OverflowError):
        return 0


def as_float(value: Any) -> float:
    try:
        number = float(value or 0.0)
    except (TypeError, ValueError, OverflowError):
        return 0.0
    return number if number == number and abs(number) != float("inf") else 0.0


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_str(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def unreadable(kind: str, stdout: str, stderr: str, exit_code: int) -> Outcome:
    """Output the reader cannot make sense of: a failure that says what it got."""
    if not stdout.strip() and exit_code != 0 and (said := stderr_message(stderr)):
        return Outcome(ok=False, result="", error=said, error_class=PERMANENT if exit_code > 0 else None)
    sample = stdout.strip().splitlines()[-1][:120] if stdout.strip() else "no output"
    how = f"exit code {exit_code}, " if exit_code else ""
    return Outcome(ok=False, result=stdout, error=f"unreadable {kind} output ({how}{sample!r})")


def failed_exit(exit_code: int, stderr: str) -> str:
    said = stderr_message(stderr, lines=1)
    return f"exit code {exit_code}" + (f": {said}" if said else "")
