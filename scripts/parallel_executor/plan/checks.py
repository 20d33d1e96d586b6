"""Checks beyond the schema of what a task file or config holds that could not run (PRODUCT §4).

Each returns problems as `(where, text)` pairs, `where` being a field path such as 'command.0'
('' for the whole task), so the caller words them as the rest of its messages.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

from parallel_executor.plan import schemas

RESERVED_ID = "reserved: it would share a results file"
RESERVED_SUFFIXES = (".data", ".stdout", ".stderr", ".json")
ENV_NAME = "env name must be non-empty and hold no '=' or NUL"
# A NUL or a lone surrogate can only come from a \u escape in UTF-8 JSON text: a file without
# one of these (most files) needs no walk. A surrogate pair matches too, and is walked for nothing.
_SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


def reserved_id(task_id: str) -> bool:
    return task_id == "merged" or task_id.endswith(RESERVED_SUFFIXES)


def env_problems(env: Any) -> list[tuple[str, str]]:
    """Names of an `env` map that no process environment can hold."""
    if not isinstance(env, dict):
        return []
    return [("env", f"{name!r}: {ENV_NAME}") for name in env
            if not name or "=" in name or "\x00" in name]


def may_hold_bad_text(text: str) -> bool:
    """Could the document parsed from `text` hold a NUL or a lone surrogate anywhere?"""
    return _SUSPECT_ESCAPE.search(text) is not None


def text_problems(value: Any, where: str = "") -> list[tuple[str, str]]:
    """Every string (and map key) holding a NUL or a lone surrogate: no argv, path, environment
    or UTF-8 file can carry one. Iterative, so no depth can hurt it."""
    problems: list[tuple[str, str]] = []
    for path, text, is_key in _strings(value, where):
        # (a NUL in a map key can only be an env name, which has its own message: env_problems)
        why = "holds a NUL character" if "\x00" in text and not is_key else _surrogate(text)
        if why:
            problems.append((path, f"name {text!r} {why}" if is_key else why))
    return problems


def _surrogate(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "holds a lone surrogate (not valid Unicode)"
    return ""


def _strings(value: Any, where: str) -> Iterator[tuple[str, str, bool]]:
    stack = [(value, where)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            yield path, item, False
        elif isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str):
                    yield path, key, True
                stack.append((child, f"{path}.{key}" if path else str(key)))
        elif isinstance(item, list):
            stack.extend((child, f"{path}.{n}" if path else str(n)) for n, child in enumerate(item))


def not_finite(value: Any) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


def option_problems(overrides: Mapping[str, Any]) -> list[str]:
    """Command-line values that replace task fields (--timeout, --retries), checked as the field is."""
    problems = []
    for key, value in overrides.items():
        if not_finite(value):
            problems.append(f"option --{key}: {value} is not a finite number")
        elif not schemas.is_valid("tasks", [{"id": "x", "command": "x", key: value}]):
            problems += [f"option --{key}: {schemas.describe(e)}"
                         for e in schemas.validator("tasks", "defaults").iter_errors({key: value})]
    return problems
