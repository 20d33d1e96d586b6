"""Where attempts run: the interface every backend implements, and how one is chosen by name.

A backend starts an attempt (argv, cwd, env, output files, timeout), tells its Reporter when the
attempt ended (exit code, timings, output tails), stops it on request (graceful, then forced
after the grace period; a timeout is a stop it makes itself), suspends and resumes it, and
measures the running attempts' memory and CPU. It calls its Reporter on the loop's thread: a
backend whose completions arrive on another thread hands them over with
`Loop.call_soon_threadsafe`. The scheduler never knows which backend it drives; a new place to
run tasks is one new module here, `backends/<name>.py`, with a class `Backend`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from parallel_executor.engine.records import RunOptions, TaskFiles
from parallel_executor.plan.model import Status

if TYPE_CHECKING:
    from parallel_executor.engine.loop import Loop

TAIL_BYTES = 64 * 1024  # of each output stream, kept in the result: gigabytes of output cost nothing


@dataclass(frozen=True)
class AttemptSpec:
    task_id: str
    number: int
    argv: list[str]
    cwd: Path
    env: Mapping[str, str]
    files: TaskFiles  # stdout and stderr go to files.stdout/stderr; files.data is PARALLEL_RESULT_FILE
    timeout: float
    clear_data: bool  # remove a structured result an earlier attempt left, so it cannot pass for this one


@dataclass(frozen=True)
class AttemptEnd:
    task_id: str
    exit_code: int  # negative: killed by that signal
    end: float  # wall clock
    busy: float  # seconds the attempt ran
    stdout: str  # the last TAIL_BYTES of each stream
    stderr: str
    stopped: Status | None = None  # the backend ended it: TIMEOUT, FAILED (error says why) or CANCELLED
    error: str | None = None


class StartFailed(Exception):
    """The attempt could not start (missing program or directory): the exit code a shell would give."""

    def __init__(self, exit_code: int, message: str) -> None:
        super().__init__(message)
        self.exit_code, self.message = exit_code, message


class Reporter(Protocol):
    def attempt_ended(self, end: AttemptEnd) -> None: ...

    def attempt_stopping(self, task_id: str, why: Status) -> None:
        """The backend began to stop the attempt (for the journal)."""


class Backend(Protocol):
    def start(self, attempt: AttemptSpec) -> int | None:
        """Start it; return its pid where it has one on this machine. Raises StartFailed."""

    def stop(self, task_id: str, why: Status, error: str | None = None) -> None:
        """End the running attempt gracefully, then by force after the grace period."""

    def kill(self, task_id: str) -> None:
        """End it by force now (a second Ctrl-C)."""

    def suspend(self, task_id: str, why: str) -> None:
        """Stop the attempt's tree for `why` (pause, memory or cpu); a pause or memory also stops
        its timeout from counting."""

    def resume(self, task_id: str, why: str) -> None:
        """Lift `why`; the tree continues when no other reason holds it."""

    def measure(self) -> dict[str, tuple[int, float]]:
        """Resident bytes and CPU seconds of each running attempt's tree, oldest attempt first."""

    def close(self) -> None:
        """End whatever still runs (only a bug or a crash of the engine leaves anything here)."""


def make_backend(name: str, loop: Loop, options: RunOptions, reporter: Reporter) -> Backend:
    backend: Backend = import_module(f"{__name__}.{name}").Backend(loop, options, reporter)
    return backend
