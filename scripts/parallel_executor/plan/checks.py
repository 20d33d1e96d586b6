"""Checks beyond the schema of what a task file or config holds that could not run (PRODUCT §4).

Each returns problems as `(where, text)` pairs, `where` being a field path such as 'command.0'
('' for the whole task), so the caller words them as the rest of its messages.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

from parallel_executor.plan import schemas
from parallel_executor.system import jsonfile

RESERVED_ID = "reserved: it would share a results file"
RESERVED_SUFFIXES = (".data", ".stdout", ".stderr", ".json")
ENV_NAME = "env name must be non-empty and hold no '=' or NUL"
TASK_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")  # the schema's id pattern, for fullmatch


def reserved_id(task_id: str) -> bool:
    return task_id == "merged" or task_id.endswith(RESERVED_SUFFIXES)


def env_problems(env: Any) -> list[tuple[str, str]]:
    """Names of an `env` map that no process environment can hold."""
    if not isinstance(env, dict):
        return []
    return [("env", f"{name!r}: {ENV_NAME}") for name in env
            if not name or "=" in name or "\x00" in name]


def text_problems(value: Any, where: str = "") -> list[tuple[str, str]]:
    """Every string (and map key) holding a NUL or a lone surrogate: no argv, path, environment
    or UTF-8 file can carry one. Iterative, so no depth can hurt it."""
    problems: list[tuple[str, str]] = []
    for path, text, is_key in jsonfile.strings(value, where):
        # (a NUL in a map key can only be an env name, which has its own message: env_problems)
        why = jsonfile.bad_text(text.replace("\x00", "") if is_key else text)
        if why:
            problems.append((path, f"name {text!r} {why}" if is_key else why))
    return problems


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


def copy_problems(copy: Any, where: str) -> list[tuple[str, str]]:
    """Entries of a worktree's `copy` list that would reach outside the repository: absolute or with a '..'."""
    if not isinstance(copy, list):
        return []
    return [(f"{where}.{i}", f"{schemas.short_repr(entry)} must be relative to the repository's root, "
                             "without a leading '/' or a '..' part")
            for i, entry in enumerate(copy)
            if isinstance(entry, str) and (entry.startswith("/") or ".." in PurePosixPath(entry).parts)]
