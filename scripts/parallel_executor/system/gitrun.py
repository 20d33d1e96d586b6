"""Running git for the worktree operations (system/git.py): argv only (paths are data, never shell
words), in a session of its own so that a Ctrl-C at the terminal never stops it half-way, with the
variables that would point it at another repository removed, and its errors made short."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

# Variables a git hook (or a user) may have set that would point git at another repository than -C's.
_REPO_VARS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR",
              "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_PREFIX", "GIT_IMPLICIT_WORK_TREE", "GIT_SHALLOW_FILE")
_READS = frozenset({"status", "rev-parse", "symbolic-ref", "for-each-ref", "merge-base", "merge-tree", "config",
                    "diff", "show-ref"})


class GitError(Exception):
    """A git command failed: the message names it and says why in one or two lines."""

    def __init__(self, command: str, detail: str, returncode: int | None = None) -> None:
        super().__init__(f"{command}: {detail}" if detail else command)
        self.command, self.detail, self.returncode = command, detail, returncode


def git(cwd: Path, *args: str, timeout: float = 120.0, input: str | None = None) -> str:
    """Run `git -C cwd args...` and return its stdout; a non-zero exit or a timeout is a GitError."""
    return run(cwd, args, timeout=timeout, input=input)[1]


def run(cwd: Path, args: Sequence[str], *, ok: Sequence[int] = (0,), timeout: float = 120.0,
         input: str | None = None) -> tuple[int, str]:
    """Exit code and stdout of git; exit codes outside `ok` raise. Some commands answer "no" with 1."""
    command = _short(args)
    try:
        proc = subprocess.Popen(
            ["git", "-C", str(cwd), *args], env=_env(args), start_new_session=True,
            stdin=subprocess.DEVNULL if input is None else subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, encoding="utf-8", errors="surrogateescape",
        )
    except OSError as e:
        raise GitError(command, f"cannot run git: {e.strerror}") from None
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # git's own children (hooks, filters) too
        proc.communicate()
        raise GitError(command, f"timed out after {timeout:g} s", None) from None
    except BaseException:
        # Ctrl-C: git is in a session of its own and did not get it; let it finish rather than leave
        # an index.lock or a half-done merge behind, then go on with the interrupt.
        proc.communicate()
        raise
    if proc.returncode not in ok:
        raise GitError(command, _summary(err or out), proc.returncode)
    return proc.returncode, out


def _env(args: Sequence[str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _REPO_VARS}
    env.update(LC_ALL="C", GIT_TERMINAL_PROMPT="0", GIT_EDITOR="true")
    words = _command_words(args)
    if (words[:1] and words[0] in _READS) or words[:2] == ["worktree", "list"]:
        env["GIT_OPTIONAL_LOCKS"] = "0"  # a read must not take index.lock from a git the user runs meanwhile
    return env


def _command_words(args: Sequence[str]) -> list[str]:
    """args without the global options before the subcommand (-c key=value, --literal-pathspecs)."""
    words: list[str] = []
    rest = iter(args)
    for arg in rest:
        if arg == "-c":
            next(rest, None)
        elif not (arg.startswith("-") and not words):
            words.append(arg)
    return words


def _short(args: Sequence[str]) -> str:
    return "git " + " ".join(word[:40] for word in _command_words(args)[:2])


def _summary(text: str) -> str:
    """One or two lines of git's message: its errors first, without hints."""
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("hint:")]
    errors = [line for line in lines if line.startswith(("fatal:", "error:", "CONFLICT"))]
    chosen = (errors or lines)[:2]
    if any("index.lock" in line for line in chosen):
        # Someone else's lock is never removed by us: it may belong to a git that is running.
        chosen = [*chosen[:1], "another git process may be running here; if none is, remove the lock file"]
    return "\n".join(chosen)
