"""The local backend (§7): each attempt is a child of this engine, in a session of its own.

posix_spawn where it can (half the cost of Popen), a pidfd per child on the loop (a finished
child wakes it at once; without pidfds, a 20 ms poll), signals to the whole tree (its process
group and every descendant found in /proc, even one that left the group), a timeout that
escalates SIGTERM -> SIGKILL after the grace period, and SIGSTOP/SIGCONT to suspend and resume.
A tree is held for up to three reasons at once (holds.py): a pause, low memory, its CPU share.

On Linux the engine is the child subreaper of its tasks (system/reaper.py): what a task leaves
running outside its tree comes back to the engine, which ends it when its task's attempt ends (if its
environment names the task) or at the latest when the backend closes, and reaps it by pid. Elsewhere
close() ends what still carries the run's PARALLEL_RUN_ID in its environment.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass, field

import psutil

from parallel_executor.engine.backends import TAIL_BYTES, AttemptEnd, AttemptSpec, Reporter, StartFailed
from parallel_executor.engine.backends.holds import Holds
from parallel_executor.engine.loop import Loop
from parallel_executor.engine.records import RunOptions
from parallel_executor.plan.model import Status
from parallel_executor.system import procs
from parallel_executor.system.fsutil import open_private, tail_of
from parallel_executor.system.reaper import Reaper

REAP_AFTER = 0.05  # seconds after orphans were killed at an attempt's end: reap them


@dataclass
class _Child:
    attempt: AttemptSpec
    proc: procs.Child
    pidfd: int
    out: int  # our descriptors of its stdout/stderr files, to read their tails at exit
    err: int
    started: float
    holds: Holds
    stopped: Status | None = None
    error: str | None = None
    tree: list[psutil.Process] = field(default_factory=list)


class Backend:
    def __init__(self, loop: Loop, options: RunOptions, reporter: Reporter) -> None:
        self.loop, self.grace, self.reporter = loop, options.kill_grace, reporter
        self.running: dict[str, _Child] = {}
        self.leaders: set[int] = set()  # the running attempts' pids: children the reaper leaves alone
        self.reaper = Reaper.adopt(self.leaders)  # before the first task starts, or its orphans go to init
        self.run_ids: set[str] = set()  # for the environment sweep where there is no reaper
        self.at_once = False  # a second Ctrl-C: the orphans get no grace period either
        procs.keep_inherited_fds_from_children()

    def start(self, attempt: AttemptSpec) -> int:
        files = attempt.files
        if attempt.clear_data:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(files.data)
        out = _open_output(files.stdout)
        try:
            err = _open_output(files.stderr)
        except StartFailed:
            os.close(out)
            raise
        try:
            proc = procs.spawn(attempt.argv, attempt.cwd, attempt.env, out, err)
        except (OSError, ValueError) as e:  # ValueError: a NUL or a lone surrogate validation let through
            os.close(out)
            os.close(err)
            raise StartFailed(*procs.spawn_error(e, attempt.argv, attempt.cwd)) from None
        now = time.monotonic()
        child = _Child(attempt, proc, _pidfd(proc.pid), out, err, now, Holds(now + attempt.timeout))
        self.running[attempt.task_id] = child
        self.leaders.add(proc.pid)
        self.run_ids.add(attempt.env.get(procs.RUN_ID_VAR, ""))
        if child.pidfd >= 0:
            self.loop.add_reader(child.pidfd, lambda: self._exited(child))
        else:
            self._poll(child)
        self.loop.call_later(attempt.timeout, lambda: self._deadline(child))
        return proc.pid

    def stop(self, task_id: str, why: Status, error: str | None = None) -> None:
        if task_id in self.running:
            self._terminate(self.running[task_id], why, error)

    def kill(self, task_id: str) -> None:
        self.at_once = True
        if task_id in self.running:
            self._kill(self.running[task_id])

    def suspend(self, task_id: str, why: str) -> None:
        child = self.running.get(task_id)
        if child is not None and not child.stopped and child.holds.add(why, time.monotonic()):
            self._signal(task_id, signal.SIGSTOP)  # (a tree being stopped must go on to see its SIGTERM)

    def resume(self, task_id: str, why: str) -> None:
        child = self.running.get(task_id)
        if child is None:
            return
        now = time.monotonic()
        go_on, moved = child.holds.lift(why, now)
        if moved:
            self.loop.call_later(child.holds.deadline - now, lambda: self._deadline(child))
        if go_on:
            self._signal(task_id, signal.SIGCONT)

    def measure(self) -> dict[str, tuple[int, float]]:
        self._reap()  # on every tick, so that a long run does not gather orphans' zombies
        return {tid: procs.tree_usage(child.proc.pid) for tid, child in self.running.items()}

    def close(self) -> None:
        for child in list(self.running.values()):
            procs.signal_tree(child.proc.pid, signal.SIGKILL, procs.descendants(child.proc.pid))
            child.proc.wait()
            for fd in (child.pidfd, child.out, child.err):
                if fd >= 0:
                    os.close(fd)
        self.running.clear()
        self.leaders.clear()
        if self.reaper:  # whatever the tasks left running, wherever it went
            self.reaper.end_all(0.0 if self.at_once else self.grace)
            self.reaper.release()
            self.reaper = None
        else:  # no subreaper: what a task started outside its tree is found by its environment
            for run_id in self.run_ids - {""}:
                procs.sweep(run_id)
        self.run_ids.clear()

    def _signal(self, task_id: str, sig: int) -> None:
        if task_id in self.running:
            pid = self.running[task_id].proc.pid
            procs.signal_tree(pid, sig, procs.descendants(pid))

    def _deadline(self, child: _Child) -> None:
        """Its timeout, unless time spent frozen moved the deadline on (a later timer is armed then)."""
        if self.running.get(child.attempt.task_id) is child and child.holds.due(time.monotonic()):
            self._terminate(child, Status.TIMEOUT)  # (frozen, it is not due: resume() arms the timer again)

    def _terminate(self, child: _Child, why: Status, error: str | None = None) -> None:
        """SIGTERM to the whole tree now, SIGKILL after the grace period."""
        if self.running.get(child.attempt.task_id) is not child or child.stopped:
            return  # this attempt ended already, or is being stopped
        child.stopped, child.error = why, error
        child.tree = procs.descendants(child.proc.pid)
        procs.signal_tree(child.proc.pid, signal.SIGTERM, child.tree)
        procs.signal_tree(child.proc.pid, signal.SIGCONT, child.tree)  # a suspended tree must see it
        self.reporter.attempt_stopping(child.attempt.task_id, why)
        self.loop.call_later(self.grace, lambda: self._kill(child))

    def _kill(self, child: _Child) -> None:
        if self.running.get(child.attempt.task_id) is child:
            procs.signal_tree(child.proc.pid, signal.SIGKILL, child.tree + procs.descendants(child.proc.pid))

    def _poll(self, child: _Child) -> None:
        """Without pidfds (not Linux): look for the child's exit every 20 ms."""
        if child.proc.poll() is None:
            self.loop.call_later(0.02, lambda: self._poll(child))
        else:
            self._exited(child)

    def _exited(self, child: _Child) -> None:
        if child.pidfd >= 0:
            self.loop.remove_reader(child.pidfd)
            os.close(child.pidfd)
        # The leader is a zombie until reaped, so its group id cannot have been reused: whatever
        # the task left running in its group dies with it.
        procs.signal_tree(child.proc.pid, signal.SIGKILL, child.tree)
        code = child.proc.wait()
        del self.running[child.attempt.task_id]
        self.leaders.discard(child.proc.pid)
        if self.reaper and self.reaper.end_orphans_of(child.attempt.task_id):
            self.loop.call_later(REAP_AFTER, self._reap)
        stdout, stderr = tail_of(child.out, TAIL_BYTES), tail_of(child.err, TAIL_BYTES)
        os.close(child.out)
        os.close(child.err)
        now = time.monotonic()
        busy = now - child.started - child.holds.frozen_for(now)  # the time it could run
        self.reporter.attempt_ended(AttemptEnd(child.attempt.task_id, code, time.time(), busy, stdout, stderr,
                                               child.stopped, child.error))

    def _reap(self) -> None:
        if self.reaper:
            self.reaper.strays()


def _open_output(path: str) -> int:
    """An output file, owner-only; one that cannot be opened (a symbolic link is never followed)
    fails the attempt, not the engine."""
    try:
        return open_private(path)
    except OSError as e:
        raise StartFailed(126, f"cannot open {path}: {e.strerror} (a symbolic link is not followed)") from None


def _pidfd(pid: int) -> int:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return -1
