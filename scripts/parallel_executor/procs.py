"""Child processes: spawn in their own process group, signal whole trees, sweep leftovers (§7)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import psutil

RUN_ID_VAR = "PARALLEL_RUN_ID"


def spawn(argv: Sequence[str], cwd: Path, env: Mapping[str, str], stdout: int, stderr: int) -> subprocess.Popen[bytes]:
    """Start a child in a new session (so its group can be signalled as one) with stdin from /dev/null."""
    return subprocess.Popen(
        argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
        start_new_session=True, close_fds=True,
    )


def spawn_error(error: OSError, argv: Sequence[str], cwd: Path) -> tuple[int, str]:
    """Exit code and message for a child that could not start, as a shell would report it."""
    if not cwd.is_dir():
        return 127, f"working directory {cwd} does not exist"
    if isinstance(error, FileNotFoundError):
        return 127, f"command not found: {argv[0]}"
    if isinstance(error, PermissionError):
        return 126, f"permission denied: {argv[0]}"
    return 126, f"cannot start {argv[0]}: {error.strerror}"


def descendants(pid: int) -> list[psutil.Process]:
    """The whole tree below pid, including children that left its process group."""
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def signal_tree(pgid: int, sig: int, members: Iterable[psutil.Process] = ()) -> None:
    """Signal the process group and every known descendant; ones already gone are ignored."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
    for process in members:
        with contextlib.suppress(psutil.Error):
            process.send_signal(sig)  # psutil checks the pid was not reused


def sweep(run_id: str) -> int:
    """Kill every process started for run_id (found by its environment); return how many."""
    killed = []
    me = os.getpid()
    for process in psutil.process_iter():
        if process.pid == me:
            continue
        try:
            if process.environ().get(RUN_ID_VAR) == run_id:
                process.kill()
                killed.append(process)
        except psutil.Error:
            continue
    psutil.wait_procs(killed, timeout=2)
    return len(killed)


def alive(pid: int, started: float | None) -> bool:
    """Is pid the same process that started at `started` (not a reuse of its number)?"""
    try:
        process = psutil.Process(pid)
        return started is None or abs(process.create_time() - started) < 1.0
    except psutil.Error:
        return False


def signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"
