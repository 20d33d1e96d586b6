"""Child processes: spawn in their own process group, signal whole trees, sweep leftovers (§7)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import psutil

RUN_ID_VAR = "PARALLEL_RUN_ID"
PID_MAX = 2**22  # the kernel's ceiling for pid_max: a larger number names no process


class Child(Protocol):
    pid: int

    def poll(self) -> int | None: ...

    def wait(self) -> int: ...


class SpawnedChild:
    """A child started with posix_spawn: the parts of Popen the engine uses."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self) -> int:
        if self.returncode is None:
            self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        return self.returncode


def keep_inherited_fds_from_children() -> None:
    """posix_spawn has no close_fds: descriptors the engine inherited must not reach its tasks."""
    fds = os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else []
    for fd in map(int, fds):
        if fd > 2:
            with contextlib.suppress(OSError):
                os.set_inheritable(fd, False)


@lru_cache(maxsize=1)
def _engine_cwd() -> str:
    return os.getcwd()  # the engine never changes directory


@lru_cache(maxsize=1)
def _devnull() -> int:
    return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)


def spawn(argv: Sequence[str], cwd: Path, env: Mapping[str, str], stdout: int, stderr: int) -> Child:
    """Start a child in a new session (so its group can be signalled as one), stdin from /dev/null.

    posix_spawn costs the engine half of what Popen does, but cannot change directory and
    searches the engine's own PATH: it is used when the task needs neither.
    """
    if str(cwd) == _engine_cwd() and env.get("PATH") == os.environ.get("PATH"):
        actions = [(os.POSIX_SPAWN_DUP2, _devnull(), 0), (os.POSIX_SPAWN_DUP2, stdout, 1),
                   (os.POSIX_SPAWN_DUP2, stderr, 2)]
        return SpawnedChild(os.posix_spawnp(argv[0], list(argv), env, file_actions=actions, setsid=True))
    return subprocess.Popen(
        argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
        start_new_session=True, close_fds=True,
    )


def spawn_error(error: OSError | ValueError, argv: Sequence[str], cwd: Path) -> tuple[int, str]:
    """Exit code and message for a child that could not start, as a shell would report it."""
    if isinstance(error, ValueError):
        return 126, f"cannot start {argv[0]!r}: {error}"
    if not cwd.is_dir():
        return 127, f"working directory {cwd} does not exist"
    if isinstance(error, FileNotFoundError):
        return 127, f"command not found: {argv[0]}"
    if isinstance(error, PermissionError):
        return 126, f"permission denied: {argv[0]}"
    return 126, f"cannot start {argv[0]}: {error.strerror}"


def tree_pids(pid: int) -> list[int]:
    """pid and all its descendants, including children that left its process group. Linux lists
    each thread's children in /proc, so a tree costs a few reads per member instead of a pass over
    every process of the machine (what psutil's children() does, used where there is no such list)."""
    if not _CHILDREN_LISTED:
        try:
            return [pid, *(child.pid for child in psutil.Process(pid).children(recursive=True))]
        except psutil.Error:
            return [pid]
    found, stack = [], [pid]
    while stack:
        member = stack.pop()
        found.append(member)
        try:
            threads = os.listdir(f"/proc/{member}/task")
        except OSError:
            continue
        for thread in threads:
            try:
                with open(f"/proc/{member}/task/{thread}/children", "rb") as f:
                    stack.extend(map(int, f.read().split()))
            except OSError:
                continue
    return found


_CHILDREN_LISTED = os.path.exists(f"/proc/self/task/{os.getpid()}/children")


def tree_usage(pid: int) -> tuple[int, float]:
    """Resident memory (bytes) and CPU seconds of pid's whole tree."""
    rss, cpu = 0, 0.0
    for member in tree_pids(pid):
        try:
            process = psutil.Process(member)
            with process.oneshot():
                times = process.cpu_times()
                rss, cpu = rss + process.memory_info().rss, cpu + times.user + times.system
        except psutil.Error:
            continue
    return rss, cpu


def descendants(pid: int) -> list[psutil.Process]:
    """The whole tree below pid, as processes to signal."""
    tree = []
    for member in tree_pids(pid)[1:]:
        with contextlib.suppress(psutil.Error):
            tree.append(psutil.Process(member))
    return tree


def signal_tree(pgid: int, sig: int, members: Iterable[psutil.Process] = ()) -> None:
    """Signal the process group and every known descendant; ones already gone are ignored."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
    for process in members:
        with contextlib.suppress(psutil.Error):
            process.send_signal(sig)  # psutil checks the pid was not reused


def sweep(run_id: str, var: str = RUN_ID_VAR) -> int:
    """Kill every process started for run_id (found by `var` in its environment); return how many."""
    killed = []
    me = os.getpid()
    for process in psutil.process_iter():
        if process.pid == me:
            continue
        try:
            if process.environ().get(var) == run_id:
                process.kill()
                killed.append(process)
        except psutil.Error:
            continue
    wait_ended(killed, 2.0)
    return len(killed)


def wait_ended(processes: list[psutil.Process], timeout: float) -> bool:
    """Until each is gone or a zombie (True), or timeout: processes that are not our children are
    reaped by their parent (or init, which may take a second), and a zombie holds nothing any more."""
    deadline = time.monotonic() + timeout
    while (processes := [p for p in processes if _running(p)]) and time.monotonic() < deadline:
        time.sleep(0.01)
    return not processes


def _running(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def alive(pid: int, started: float | None) -> bool:
    """Is pid the same process that started at `started` (not a reuse of its number)?"""
    return same_process(pid, started) is not None


def same_process(pid: int, started: float | None) -> psutil.Process | None:
    """The process pid if it is the one that started at `started`, else None."""
    if not 0 < pid <= PID_MAX:
        return None
    try:
        process = psutil.Process(pid)
        return process if started is None or abs(process.create_time() - started) < 1.0 else None
    except psutil.Error:
        return None


def signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def engine_identity() -> tuple[int, float]:
    """This process's pid and start time: together they name it even after its pid is reused."""
    me = psutil.Process()
    return me.pid, me.create_time()
