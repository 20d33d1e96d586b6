"""memory/logs/parallel-execution.log (§9): one line per run and per task event, rotated.

Several engines append to the same log. Each line is a single write() to a file opened with
O_APPEND, so lines of concurrent runs never interleave; only rotation (the rename chain) needs the
file lock. logging's RotatingFileHandler rotates without a lock shared between processes, and two
engines rotating at once would lose a file: hence these few lines instead.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from filelock import FileLock

from parallel_executor.engine.records import TaskRun
from parallel_executor.results.report import describe
from parallel_executor.system.fsutil import open_private, private_dir
from parallel_executor.system.locations import logs_dir

MAX_BYTES = 5 * 2**20
BACKUPS = 3


def log_path() -> Path:
    return logs_dir() / "parallel-execution.log"


class RunLog:
    """A run's lines in the shared log; also an executor listener (one line per task event)."""

    def __init__(self, run_id: str, path: Path | None = None) -> None:
        self.run_id = run_id
        self.path = path or log_path()
        private_dir(self.path.parent)
        rotate_if_full(self.path)
        self.fd = open_private(self.path, os.O_WRONLY | os.O_APPEND)

    def line(self, text: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        os.write(self.fd, f"{stamp} {self.run_id} {text}\n".encode(errors="replace"))

    def __call__(self, kind: str, task: TaskRun) -> None:
        detail = describe(kind, task)
        if detail is not None:
            self.line(f"{kind} {task.spec.id} {detail}".rstrip())

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
            rotate_if_full(self.path)


def rotate_if_full(path: Path, max_bytes: int = MAX_BYTES, backups: int = BACKUPS) -> None:
    """log -> log.1 -> ... -> log.N (the oldest dropped), once the log passes max_bytes."""
    with FileLock(f"{path}.lock", timeout=30):
        try:
            if path.stat().st_size < max_bytes:
                return
        except FileNotFoundError:
            return
        for number in range(backups - 1, 0, -1):
            older = Path(f"{path}.{number}")
            if older.exists():
                older.replace(f"{path}.{number + 1}")
        path.replace(f"{path}.1")
