"""Warnings about a valid task file that would still go wrong at run time (§5 `validate`, exit 0).

Nothing here stops a run: a program may be installed, or a directory made, by an earlier task.
Lookups are cached, and a problem shared by many tasks is said once, with how many tasks it touches.
Free of `schemas` imports: `schemas.describe` uses `did_you_mean` from here.
"""

from __future__ import annotations

import difflib
import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

CUTOFF = 0.75
SHOWN_IDS = 3


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """The choice closest to word (a case-insensitive match first: `blockedby` -> `blockedBy`), or None."""
    by_folded: dict[str, str] = {}
    for choice in choices:
        by_folded.setdefault(choice.casefold(), choice)
    folded = word.casefold()
    if folded in by_folded:
        return by_folded[folded]
    close = difflib.get_close_matches(folded, list(by_folded), n=1, cutoff=CUTOFF)
    return by_folded[close[0]] if close else None


def task_warnings(tasks: list[dict[str, Any]], merge_strategies: Mapping[str, str],
                  runner_programs: Mapping[str, str]) -> list[str]:
    """One line per problem: an unknown type close to a known one, a program not found, a missing cwd.

    tasks are the task file's dicts with the defaults applied (`cwd` an absolute path).
    """
    found: dict[str, list[str]] = {}  # problem -> the ids of the tasks that have it, in file order
    programs = _Programs()
    here = Path.cwd()
    suggestions: dict[str, str | None] = {}
    for task in tasks:
        tid = str(task.get("id"))
        kind = task.get("type")
        if isinstance(kind, str) and kind not in merge_strategies:
            if kind not in suggestions:
                suggestions[kind] = did_you_mean(kind, merge_strategies)
            if suggestions[kind] is not None:
                found.setdefault(f"field 'type': unknown type {kind!r} (the default merge applies); "
                                 f"did you mean {suggestions[kind]!r}?", []).append(tid)
        cwd = task.get("cwd") or None  # a Path shared by the tasks of one folder: its hash is computed once
        cwd = Path(cwd) if isinstance(cwd, str) else cwd
        cwd_problem = programs.cwd_problem(cwd)
        if cwd_problem:
            found.setdefault(cwd_problem, []).append(tid)
        env = task.get("env")
        path_var = env.get("PATH") if isinstance(env, dict) and isinstance(env.get("PATH"), str) else None
        command = task.get("command")
        if isinstance(command, list) and command and isinstance(command[0], str):
            # a relative path runs against the task's cwd; under a cwd yet to be made, nothing to check
            problem = programs.problem(command[0], None if cwd_problem else cwd or here, path_var)
            if problem:
                found.setdefault(problem, []).append(tid)
        elif "prompt" in task:
            runner = str(task.get("runner") or "claude")
            program = runner_programs.get(runner)
            problem = programs.problem(program, None, path_var) if program else None
            if problem:
                found.setdefault(f"runner {runner!r}: {problem}", []).append(tid)
    return [_line(ids, problem) for problem, ids in found.items()]


def _line(ids: list[str], problem: str) -> str:
    if len(ids) == 1:
        return f"task {ids[0]!r}: {problem}"
    shown = ", ".join(map(repr, ids[:SHOWN_IDS])) + (", ..." if len(ids) > SHOWN_IDS else "")
    return f"tasks {shown}: {problem} ({len(ids):,} tasks)"


class _Programs:
    """Cached `shutil.which` and directory lookups (10,000 tasks share a few programs and cwds)."""

    def __init__(self) -> None:
        self.programs: dict[tuple[str, Path | None, str | None], str | None] = {}
        self.cwds: dict[Path | None, str | None] = {}

    def cwd_problem(self, cwd: Path | None) -> str | None:
        if cwd not in self.cwds:
            if cwd is None or cwd.is_dir():
                self.cwds[cwd] = None
            else:
                self.cwds[cwd] = f"cwd {cwd} is not a directory" if cwd.exists() else f"cwd {cwd} does not exist yet"
        return self.cwds[cwd]

    def problem(self, program: str, cwd: Path | None, path_var: str | None) -> str | None:
        """Why program cannot be started, or None. A name with a slash is a path (against cwd if relative)."""
        has_slash = os.sep in program or (os.altsep is not None and os.altsep in program)
        key = (program, cwd if has_slash else None, None if has_slash else path_var)
        if key not in self.programs:
            self.programs[key] = self._look(program, cwd, path_var, has_slash)
        return self.programs[key]

    @staticmethod
    def _look(program: str, cwd: Path | None, path_var: str | None, has_slash: bool) -> str | None:
        if not has_slash:
            return None if shutil.which(program, path=path_var) else f"program {program!r} not found on PATH"
        path = Path(program)
        if not path.is_absolute():
            if cwd is None:
                return None
            path = cwd / path
        if not path.exists():
            return f"program {program!r} not found ({path} does not exist)"
        if path.is_dir() or not os.access(path, os.X_OK):
            return f"program {program!r} is not an executable file"
        return None
