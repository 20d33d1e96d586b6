"""Path locks (§7): a task's `paths` are exclusive, its `reads` shared; conflicts wait.

Two lock sets conflict when a written path of one equals, contains or lies inside a written or
read path of the other. A glob locks its fixed prefix (`src/**/*.py` locks `src`). Locks are
taken all at once or not at all, so there is no deadlock. They are also recorded in
memory/temp/resource-locks.json under a file lock, so concurrent engines respect each other;
entries of a dead engine are reclaimed.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from typing import Any

from filelock import FileLock

from parallel_executor.engine.admission import NeverAdmitted
from parallel_executor.plan import schemas
from parallel_executor.plan.model import TaskSpec
from parallel_executor.plan.pathlocks import LockSet, lock_set
from parallel_executor.system import procs
from parallel_executor.system.fsutil import private_dir, write_json_atomic
from parallel_executor.system.jsonfile import read_state
from parallel_executor.system.locations import temp_dir
from parallel_executor.system.procs import engine_identity
from parallel_executor.system.timestamps import iso


class LockTimeout(NeverAdmitted):
    """A task waited longer than lock_timeout_seconds; the message names the holder."""


class PathLocks:
    """The admission check. It must come last among the checks: admitting a task takes its locks."""

    def __init__(self, tasks: list[TaskSpec], run_id: str, timeout: float) -> None:
        self.sets = {t.id: lock_set(t) for t in tasks if t.paths or t.reads}
        self.run_id, self.timeout = run_id, timeout
        self.held: dict[str, LockSet] = {}
        self.released: set[str] = set()  # freed here, still to be removed from the shared file
        self.waiting_since: dict[str, float] = {}
        self.pid_started = engine_identity()[1]
        self.shared = SharedLocks()

    def blocked(self, task: TaskSpec) -> str | None:
        mine = self.sets.get(task.id)
        if mine is None or task.id in self.held:
            return None  # no locks, or a retry: a task keeps its locks until it settles
        holder = next((f"task '{tid}'" for tid, held in self.held.items() if held.conflicts(mine)), None)
        holder = holder or self._take_shared(task.id, mine)
        if holder is None:
            self.held[task.id] = mine
            self.waiting_since.pop(task.id, None)
            return None
        since = self.waiting_since.setdefault(task.id, time.monotonic())
        if time.monotonic() - since > self.timeout:
            raise LockTimeout(f"lock timeout after {self.timeout:g}s: paths held by {holder}")
        return f"waiting for path lock held by {holder}"

    def started(self, task: TaskSpec) -> None:
        pass

    def settled(self, task: TaskSpec) -> None:
        # Free for this run at once; the shared file learns it with the next admission or flush(), so
        # a task costs one locked write of that file instead of two.
        if self.held.pop(task.id, None) is not None:
            self.released.add(task.id)

    def flush(self) -> None:
        """Tell other engines about the locks released since the last write (called ~10 times a second)."""
        if self.released:
            with self.shared.entries() as entries:
                self._drop_released(entries)

    def _drop_released(self, entries: list[dict[str, Any]]) -> None:
        entries[:] = [e for e in entries if not (e["run_id"] == self.run_id and e["task"] in self.released)]
        self.released.clear()

    def _take_shared(self, task_id: str, mine: LockSet) -> str | None:
        """Across engines: the holder that blocks, or None after recording our locks."""
        with self.shared.entries() as entries:
            self._drop_released(entries)
            for entry in entries:
                theirs = LockSet(tuple(entry["locked_paths"]), ()) if entry["mode"] == "write" \
                    else LockSet((), tuple(entry["locked_paths"]))
                if entry["run_id"] != self.run_id and theirs.conflicts(mine):
                    return f"task '{entry['task']}' of run {entry['run_id']} (pid {entry['pid']})"
            now = iso(time.time())
            for mode, paths in (("write", mine.writes), ("read", mine.reads)):
                if paths:
                    entries.append({"agent_id": task_id, "task": task_id, "run_id": self.run_id, "pid": os.getpid(),
                                    "pid_started": self.pid_started, "locked_paths": list(paths), "mode": mode,
                                    "lock_time": now})
        return None

    def release_all(self) -> None:
        """Whatever happened, this run holds nothing once it ends."""
        with self.shared.entries() as entries:
            entries[:] = [e for e in entries if e["run_id"] != self.run_id]
        self.held.clear()
        self.released.clear()


class SharedLocks:
    """memory/temp/resource-locks.json: the locks of every engine on this machine."""

    def __init__(self) -> None:
        private_dir(temp_dir())
        self.path = temp_dir() / "resource-locks.json"
        self.lock = FileLock(f"{self.path}.lock", timeout=30)  # made once: a task's admission is a hot path

    @contextlib.contextmanager
    def entries(self) -> Iterator[list[dict[str, Any]]]:
        """The entries, to read and change under the file lock; written back when the block ends."""
        with self.lock:
            doc: dict[str, Any] = read_state(self.path, lambda d: schemas.is_valid("locks", d), lambda: {"locks": []})
            entries: list[dict[str, Any]] = doc["locks"]
            owners = {(e["pid"], e.get("pid_started")) for e in entries}
            live = {owner for owner in owners if owner[0] == os.getpid() or procs.alive(int(owner[0]), owner[1])}
            entries = [e for e in entries if (e["pid"], e.get("pid_started")) in live]  # a dead owner's are free
            yield entries
            write_json_atomic(self.path, {"locks": entries})
