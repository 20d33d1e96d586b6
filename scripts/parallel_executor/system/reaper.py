"""Orphans of tasks (§7, Linux): the engine is the child subreaper of everything it starts.

A process that leaves its task's tree (`( setsid daemon & )`, a double fork) is re-parented to its
nearest subreaper ancestor instead of init: the engine, which therefore still finds it among its own
children, even when it left the process group and dropped PARALLEL_RUN_ID from its environment
(`env -i`). An orphan is told from a running attempt's leader by its pid, from the engine's own
children by its session (every attempt starts a session of its own) or by having been there before
the first task; its task by the PARALLEL_TASK_ID its environment still holds. Adopted orphans that
exit are the engine's zombies until reaped: each is reaped by its own pid, never by waitpid(-1),
which would take the exit status of a running attempt's leader from the backend that waits for it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Collection, Iterable

import psutil

from parallel_executor.system import procs

TASK_ID_VAR = "PARALLEL_TASK_ID"
PR_SET_CHILD_SUBREAPER = 36
SETTLE_POLL = 0.01  # while waiting for orphans to exit at the end of a run
KILL_WAIT = 2.0  # seconds for SIGKILLed orphans to exit
KILL_ROUNDS = 3  # a dying tree may fork, or leave its children to the engine: look again up to this often
_LIST_BYTES = 4096


def _set_subreaper(on: bool) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes  # only here: ~2 ms to import, and only Linux has prctl

        libc = ctypes.CDLL(None, use_errno=True)
        arg = ctypes.c_ulong
        return int(libc.prctl(ctypes.c_int(PR_SET_CHILD_SUBREAPER), arg(int(on)), arg(0), arg(0), arg(0))) == 0
    except (OSError, AttributeError):
        return False


class Reaper:
    """The engine's adopted orphans: listed from /proc, attributed to tasks, ended, and reaped by pid."""

    def __init__(self, leaders: Collection[int]) -> None:
        self.leaders = leaders  # the running attempts' pids, kept by the backend
        self.session = os.getsid(0)
        # Orphans go to the engine's first live thread (the main one), attempts' leaders to the thread
        # that spawns them: their children lists, kept open, cost a few microseconds to read.
        self._lists = [os.open(f"/proc/self/task/{tid}/children", os.O_RDONLY | os.O_CLOEXEC)
                       for tid in sorted({os.getpid(), threading.get_native_id()})]
        self.own = set(self.children())  # the engine's children before its first task: not a task's
        self.owner: dict[int, str | None] = {}  # orphan pid -> its task ("" unknown; None: not a task's)

    @classmethod
    def adopt(cls, leaders: Collection[int]) -> Reaper | None:
        """Become the subreaper of every process started from now on; None where that cannot be
        (not Linux, no prctl, no /proc children lists): then only the environment sweep is left."""
        try:
            reaper = cls(leaders)
        except OSError:
            return None
        if not _set_subreaper(True):
            reaper.release()
            return None
        return reaper

    def release(self) -> None:
        """Orphans made after the run go to init again."""
        if self._lists:
            _set_subreaper(False)
        for fd in self._lists:
            os.close(fd)
        self._lists = []

    def children(self) -> list[int]:
        """The engine's children, zombies included."""
        found: list[int] = []
        try:
            for fd in self._lists:
                found.extend(map(int, _read_all(fd).split()))
        except OSError:  # the spawning thread is gone: every thread's list, the slow way
            found = [pid for tid in os.listdir("/proc/self/task") for pid in _children_of_thread(tid)]
        return found

    def strays(self) -> dict[int, str]:
        """The living children that tasks left (not an attempt's leader), each with the task its
        environment names ("" if none); those that exited are reaped on the way. As cheap as a read
        of the children lists while there are none."""
        return self._look()[0]

    def _look(self) -> tuple[dict[int, str], int]:
        """The strays, and how many exited ones were reaped."""
        living, reaped, children = {}, 0, self.children()
        if self.own:  # one reaped by whoever started it: its number may come back as an orphan's
            self.own.intersection_update(children)
        for pid in children:
            if pid in self.leaders or pid in self.own:
                continue
            if _reap(pid):
                self.owner.pop(pid, None)
                reaped += 1
                continue
            if pid not in self.owner:
                self.owner[pid] = self._task_of(pid)
            owner = self.owner[pid]
            if owner is None:
                self.own.add(pid)
            else:
                living[pid] = owner
        return living, reaped

    def end_orphans_of(self, task_id: str) -> int:
        """SIGKILL to the whole tree of every orphan of task_id (its attempt has ended); how many."""
        killed = 0
        for _ in range(KILL_ROUNDS):
            strays, reaped = self._look()
            doomed = [pid for pid, owner in strays.items() if owner == task_id]
            _signal_trees(doomed, signal.SIGKILL)
            killed += len(doomed)
            if not reaped:
                break  # else look again: a process reaped on the way left its children to the engine
        return killed

    def end_all(self, grace: float) -> int:
        """At the end of the run (no attempt left): SIGTERM to every orphan's whole tree, SIGKILL to
        what is left after `grace` seconds, and everything reaped. Returns how many trees there were."""
        found = self.strays()
        if not found:
            return 0
        _signal_trees(found, signal.SIGTERM)
        _signal_trees(found, signal.SIGCONT)  # a stopped process must see it
        self._settle(grace)
        for _ in range(KILL_ROUNDS):
            left = self.strays()
            if not left:
                break
            _signal_trees(left, signal.SIGKILL)
            self._settle(KILL_WAIT)
        return len(found)

    def _settle(self, seconds: float) -> None:
        """Reap orphans as they exit, until none is left or the time is up."""
        deadline = time.monotonic() + seconds
        while self.strays() and time.monotonic() < deadline:
            time.sleep(SETTLE_POLL)

    def _task_of(self, pid: int) -> str | None:
        try:
            if os.getsid(pid) == self.session:
                return None
            return str(psutil.Process(pid).environ().get(TASK_ID_VAR, ""))
        except (OSError, psutil.Error):
            return ""


def _read_all(fd: int) -> bytes:
    """The whole list: the kernel hands it out a page at a time, whole numbers only."""
    data = chunk = os.pread(fd, _LIST_BYTES, 0)
    while chunk:
        chunk = os.pread(fd, _LIST_BYTES, len(data))
        data += chunk
    return data


def _children_of_thread(tid: str) -> list[int]:
    try:
        with open(f"/proc/self/task/{tid}/children", "rb") as f:
            return list(map(int, f.read().split()))
    except OSError:
        return []


def _reap(pid: int) -> bool:
    """Reap the child pid if it has exited; True if it is gone."""
    try:
        return os.waitpid(pid, os.WNOHANG)[0] == pid
    except ChildProcessError:
        return True  # not a child: a number from a list that changed between two reads of it


def _signal_trees(pids: Iterable[int], sig: int) -> None:
    """Each pid is an unreaped child of the engine, so its number (and a process group of that number)
    cannot have been reused; psutil checks that each descendant is still the process it found."""
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            procs.signal_tree(pid, sig, [psutil.Process(pid), *procs.descendants(pid)])
