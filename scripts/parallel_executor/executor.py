"""The engine (§6, §7): one event loop that starts ready tasks, supervises them and settles them.

A single thread waits on pidfds (one per running child), a self-pipe for signals and a heap of
timers (timeouts, kill escalations, retry backoffs). Nothing polls: a finished child wakes the
loop at once, and the next ready task starts in the same turn (dynamic list scheduling).
"""

from __future__ import annotations

import contextlib
import gc
import heapq
import json
import os
import selectors
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import psutil

from parallel_executor import procs
from parallel_executor.admission import policy_checks
from parallel_executor.analyzer import Graph, ReadyKey, levels, ready_key, remaining_paths
from parallel_executor.config import Config, RunnerConfig
from parallel_executor.fsutil import PRIVATE_FILE, open_private, read_json, tail_of, write_json_atomic
from parallel_executor.locks import LockTimeout, PathLocks
from parallel_executor.memory import MB, TICK, MemoryWatch
from parallel_executor.model import Priority, Status, TaskFile, TaskSpec
from parallel_executor.readers import Outcome
from parallel_executor.runners import argv_for, reader_for
from parallel_executor.state import RunState, TaskFiles, engine_identity, iso

TAIL_BYTES = 64 * 1024
STATUS_INTERVAL = 0.1  # status.json is rewritten at most ~10 times a second...
STATUS_SHARE = 0.1  # ...and, for a huge run, takes at most ~10% of the engine's time
RECHECK_INTERVAL = 0.25  # how soon a task held back by an admission check is looked at again
MAX_BACKOFF = 60.0


class Admission(Protocol):
    """A constraint consulted before a ready task starts (wave barriers; path locks, phases,
    compatibility rules and memory plug in the same way)."""

    def blocked(self, task: TaskSpec) -> str | None:
        """Why `task` cannot start now, or None."""

    def started(self, task: TaskSpec) -> None: ...

    def settled(self, task: TaskSpec) -> None:
        """`task` reached a final state (whether or not it ever started)."""


@dataclass(frozen=True)
class RunOptions:
    slots: int
    halt: str = "never"
    schedule: str = "dynamic"
    kill_grace: float = 5.0
    retry_backoff: float = 2.0
    lock_timeout: float = 300.0
    boost: int = 0  # critical tasks may use extra slots, up to this many tasks in all


@dataclass
class TaskRun:
    """What happened to one task in this run."""

    spec: TaskSpec
    files: TaskFiles
    status: Status = Status.PENDING
    attempts: int = 0
    exit_code: int | None = None
    start: float | None = None
    end: float | None = None
    busy: float = 0.0  # seconds spent running, over all attempts
    reason: str = ""
    error: str | None = None
    pid: int | None = None
    outcome: Outcome | None = None
    reused: bool = False
    stdout: str = ""  # the last TAIL_BYTES of the last attempt's output
    stderr: str = ""

    @property
    def cost(self) -> float:
        return self.outcome.cost_usd if self.outcome else 0.0


@dataclass
class Attempt:
    task: TaskRun
    proc: procs.Child
    pidfd: int
    out: int  # our descriptors of its stdout/stderr files, to read their tails at exit
    err: int
    started: float
    kill_reason: Status | None = None
    kill_error: str | None = None
    tree: list[psutil.Process] = field(default_factory=list)


Listener = Callable[[str, TaskRun], None]


class WaveBarrier:
    """`--schedule waves`: a task waits until every task of the earlier waves has settled."""

    def __init__(self, graph: Graph) -> None:
        self.level = levels(graph)
        self.left = [0] * (max(self.level.values(), default=0) + 1)
        for wave in self.level.values():
            self.left[wave] += 1
        self.current = 0
        self._advance()

    def blocked(self, task: TaskSpec) -> str | None:
        return f"waiting for wave {self.current} to finish" if self.level[task.id] > self.current else None

    def started(self, task: TaskSpec) -> None:
        pass

    def settled(self, task: TaskSpec) -> None:
        self.left[self.level[task.id]] -= 1
        self._advance()

    def _advance(self) -> None:
        while self.current < len(self.left) - 1 and self.left[self.current] == 0:
            self.current += 1


class Executor:
    def __init__(
        self,
        taskfile: TaskFile,
        runners: Mapping[str, RunnerConfig],
        state: RunState,
        options: RunOptions,
        estimates: Mapping[str, float],
        listener: Listener,
        reused: Mapping[str, dict[str, Any]] | None = None,
        policy: Config | None = None,
    ) -> None:
        self.taskfile = taskfile
        self.runners = runners
        self.state = state
        self.options = options
        self.listener = listener
        specs = taskfile.tasks
        graph = Graph(specs)
        self.tasks = {t.id: TaskRun(t, state.files(t.id)) for t in specs}
        self.dependents = graph.dependents
        remaining = remaining_paths(graph, estimates)
        self.keys: dict[str, ReadyKey] = {t.id: ready_key(t, remaining[t.id]) for t in specs}
        self.unmet = {t.id: len(t.blocked_by) for t in specs}
        self.admissions: list[Admission] = [WaveBarrier(graph)] if options.schedule == "waves" else []
        self.admissions += policy_checks(specs, policy) if policy else []
        self.memory = MemoryWatch(policy.memory_per_agent, policy.memory_reserve, policy.memory_limit_per_agent) \
            if policy else None
        if self.memory:
            self.admissions.append(self.memory)
        self._ticking = False
        self.path_locks = None
        if any(t.paths or t.reads for t in specs):
            self.path_locks = PathLocks(list(specs), state.run_id, options.lock_timeout)
            self.admissions.append(self.path_locks)  # last: admitting a task takes its locks
        self._recheck_armed = False
        self.ready: list[tuple[ReadyKey, str]] = []
        self.running: dict[str, Attempt] = {}
        self.timers: list[tuple[float, int, Callable[[], None]]] = []
        self._timer_seq = 0
        self.unsettled = len(specs)
        self.stopping = False
        self.signal: int | None = None
        self._signals: list[int] = []
        self._dirty = True
        self._flushed = 0.0
        self._flush_gap = STATUS_INTERVAL
        self.started = time.time()
        self.ended: float | None = None
        self.pid, self.pid_started = engine_identity()
        env = {k: v for k, v in os.environ.items() if k != "CLAUDECODE"}
        self.base_env = {**env, "PARALLEL_RUN_ID": state.run_id}
        self.selector = selectors.DefaultSelector()
        for tid, doc in (reused or {}).items():
            self._restore(self.tasks[tid], doc)
        self._rows: dict[str, dict[str, Any]] = {}
        self._stale_rows: set[str] = set()  # rebuilt when status.json is next written, not at every change
        for task in self.tasks.values():
            self._row(task)

    # ---- the loop -------------------------------------------------------------------------

    def run(self) -> None:
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.selector.register(wake_r, selectors.EVENT_READ, lambda: _drain(wake_r))
        old_wakeup = signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        old_handlers = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        self.state.event("run-started", pid=self.pid, tasks=len(self.tasks), slots=self.options.slots)
        gc.freeze()  # the plan lives as long as the run: keep it out of every collection
        procs.keep_inherited_fds_from_children()
        try:
            for tid, count in self.unmet.items():
                if count == 0 and self.tasks[tid].status is Status.PENDING:
                    self._make_ready(self.tasks[tid])
            while self.unsettled:
                assert self.running or self.ready or self.timers, "scheduler stalled"
                self._handle_signals()
                if not self.stopping:
                    self._start_ready()
                for key, _ in self.selector.select(self._wait_time()):
                    key.data()
                self._handle_signals()
                self._fire_timers()
                self._flush_status()
        finally:
            self._kill_all()  # only a bug leaves anything running here
            if self.path_locks:
                self.path_locks.release_all()
            for sig, handler in old_handlers.items():
                signal.signal(sig, handler)
            signal.set_wakeup_fd(old_wakeup)
            self.selector.close()
            os.close(wake_r)
            os.close(wake_w)
            self.ended = time.time()
        self.state.event("run-finished", state=self.final_state())
        self.state.write_status(self.status_doc(), final=True)

    def _wait_time(self) -> float | None:
        due = [self.timers[0][0]] if self.timers else []
        if self._dirty:
            due.append(self._flushed + self._flush_gap)
        return max(0.0, min(due) - time.monotonic()) if due else None

    def _fire_timers(self) -> None:
        now = time.monotonic()
        while self.timers and self.timers[0][0] <= now:
            heapq.heappop(self.timers)[2]()

    def _at(self, delay: float, action: Callable[[], None]) -> None:
        self._timer_seq += 1
        heapq.heappush(self.timers, (time.monotonic() + delay, self._timer_seq, action))

    def _flush_status(self) -> None:
        now = time.monotonic()
        if self._dirty and now - self._flushed >= self._flush_gap:
            if self.path_locks:
                self.path_locks.flush()
            self.state.write_status(self.status_doc())
            self._dirty, self._flushed = False, time.monotonic()
            self._flush_gap = max(STATUS_INTERVAL, (self._flushed - now) / STATUS_SHARE)

    # ---- starting -------------------------------------------------------------------------

    def _make_ready(self, task: TaskRun) -> None:
        heapq.heappush(self.ready, (self.keys[task.spec.id], task.spec.id))

    def _start_ready(self) -> None:
        held = []
        slots, total = self.options.slots, max(self.options.slots, self.options.boost)
        while self.ready and len(self.running) < total:
            item = heapq.heappop(self.ready)
            task = self.tasks[item[1]]
            if task.spec.priority is not Priority.CRITICAL and self._ordinary_running() >= slots:
                heapq.heappush(self.ready, item)  # critical tasks sort first: none is left behind it
                break
            try:
                reason = next((r for a in self.admissions if (r := a.blocked(task.spec))), None)
            except LockTimeout as e:
                task.error = str(e)
                self._settle(task, Status.FAILED)
                continue
            if reason:
                held.append(item)
                self._wait(task, reason)
            else:
                self._launch(task)
        for item in held if not self.stopping else ():
            heapq.heappush(self.ready, item)
        if held and not self._recheck_armed:  # a condition outside this run (another engine) may change
            self._recheck_armed = True
            self._at(RECHECK_INTERVAL, self._disarm_recheck)

    def _tick(self) -> None:
        """Every TICK while tasks run: measure their trees and act on memory pressure."""
        assert self.memory is not None
        actions = self.memory.tick({tid: a.proc.pid for tid, a in self.running.items()})
        for tid, why in actions.kill.items():
            self.running[tid].kill_error = why
            self._terminate(self.running[tid], Status.FAILED)
        for tid, sig, kind in [*((t, signal.SIGSTOP, "suspended") for t in actions.suspend),
                               *((t, signal.SIGCONT, "resumed") for t in actions.resume)]:
            if tid in self.running:
                attempt = self.running[tid]
                procs.signal_tree(attempt.proc.pid, sig, procs.descendants(attempt.proc.pid))
                attempt.task.reason = f"{kind}: {self.memory.free // MB} MB available"
                self._changed(kind, attempt.task)
        self._ticking = bool(self.running)
        if self._ticking:
            self._at(TICK, self._tick)

    def _ordinary_running(self) -> int:
        return sum(a.task.spec.priority is not Priority.CRITICAL for a in self.running.values())

    def _disarm_recheck(self) -> None:
        self._recheck_armed = False

    def _wait(self, task: TaskRun, reason: str) -> None:
        if task.status is not Status.WAITING or task.reason != reason:
            task.status, task.reason = Status.WAITING, reason
            self._changed("waiting", task)

    def _launch(self, task: TaskRun) -> None:
        spec = task.spec
        task.attempts += 1
        argv = argv_for(spec, self.runners)
        files = task.files
        if task.attempts > 1 or not self.state.fresh:  # a stale structured result must not pass for this one
            with contextlib.suppress(FileNotFoundError):
                os.unlink(files.data)
        env = {
            **self.base_env, **spec.env,
            "PARALLEL_RUN_ID": self.state.run_id,
            "PARALLEL_TASK_ID": spec.id,
            "PARALLEL_RESULT_FILE": files.data,
            "PARALLEL_DEP_RESULTS": json.dumps({d: self.tasks[d].files.result for d in spec.blocked_by}),
        }
        env.pop("CLAUDECODE", None)
        out = open_private(files.stdout)
        err = open_private(files.stderr)
        now = time.time()
        task.start = task.start or now
        try:
            proc = procs.spawn(argv, spec.cwd, env, out, err)
        except OSError as e:
            task.exit_code, task.error = procs.spawn_error(e, argv, spec.cwd)
            task.end = now
            os.close(out)
            os.close(err)
            self._settle(task, Status.FAILED)  # retrying cannot make a missing program appear
            return
        attempt = Attempt(task, proc, _pidfd(proc.pid), out, err, time.monotonic())
        self.running[spec.id] = attempt
        if attempt.pidfd >= 0:
            self.selector.register(attempt.pidfd, selectors.EVENT_READ, lambda: self._on_exit(attempt))
        else:
            self._poll_exit(attempt)
        self._at(spec.timeout, lambda: self._terminate(attempt, Status.TIMEOUT))
        if self.memory and not self._ticking:
            self._ticking = True
            self._at(TICK, self._tick)
        task.status, task.pid, task.reason = Status.RUNNING, proc.pid, ""
        for admission in self.admissions:
            admission.started(spec)
        self._changed("started", task, attempt=task.attempts, pid=proc.pid, argv=argv)

    def _poll_exit(self, attempt: Attempt) -> None:
        """Without pidfds (not Linux): look for the child's exit every 20 ms."""
        if attempt.proc.poll() is None:
            self._at(0.02, lambda: self._poll_exit(attempt))
        else:
            self._on_exit(attempt)

    # ---- ending ---------------------------------------------------------------------------

    def _terminate(self, attempt: Attempt, why: Status) -> None:
        """SIGTERM to the whole tree now, SIGKILL after the grace period."""
        if self.running.get(attempt.task.spec.id) is not attempt or attempt.kill_reason:
            return
        attempt.kill_reason = why
        attempt.tree = procs.descendants(attempt.proc.pid)
        procs.signal_tree(attempt.proc.pid, signal.SIGTERM, attempt.tree)
        procs.signal_tree(attempt.proc.pid, signal.SIGCONT, attempt.tree)  # a suspended tree must see it
        self.state.event("terminating", task=attempt.task.spec.id, why=why.value)
        self._at(self.options.kill_grace, lambda: self._kill(attempt))

    def _kill(self, attempt: Attempt) -> None:
        if self.running.get(attempt.task.spec.id) is attempt:
            members = attempt.tree + procs.descendants(attempt.proc.pid)
            procs.signal_tree(attempt.proc.pid, signal.SIGKILL, members)

    def _on_exit(self, attempt: Attempt) -> None:
        task, spec = attempt.task, attempt.task.spec
        if attempt.pidfd >= 0:
            self.selector.unregister(attempt.pidfd)
            os.close(attempt.pidfd)
        # The leader is a zombie until reaped, so its group id cannot have been reused: whatever
        # the task left running in its group dies with it.
        procs.signal_tree(attempt.proc.pid, signal.SIGKILL, attempt.tree)
        code = attempt.proc.wait()
        del self.running[spec.id]
        task.stdout, task.stderr = tail_of(attempt.out, TAIL_BYTES), tail_of(attempt.err, TAIL_BYTES)
        os.close(attempt.out)
        os.close(attempt.err)
        task.end = time.time()
        task.busy += time.monotonic() - attempt.started
        task.exit_code = code
        if attempt.kill_reason is Status.TIMEOUT:
            status, task.error = Status.TIMEOUT, f"timed out after {spec.timeout:g}s"
        elif attempt.kill_reason is Status.FAILED:
            status, task.error = Status.FAILED, attempt.kill_error
        elif attempt.kill_reason:
            status, task.error = attempt.kill_reason, task.reason or "cancelled"
        else:
            task.outcome = reader_for(spec, self.runners)(task.stdout, code)
            status = Status.SUCCESS if task.outcome.ok else Status.FAILED
            task.error = None if task.outcome.ok else task.outcome.error or self._exit_error(task, code)
        if status in (Status.FAILED, Status.TIMEOUT) and task.attempts <= spec.retries and not self.stopping:
            self._retry(task, status)
        else:
            self._settle(task, status)

    def _exit_error(self, task: TaskRun, code: int) -> str:
        how = f"killed by {procs.signal_name(code)}" if code < 0 else f"exit code {code}"
        last = task.stderr.strip().splitlines()
        return f"{how}: {last[-1][:200]}" if last else how

    def _retry(self, task: TaskRun, status: Status) -> None:
        delay = min(MAX_BACKOFF, self.options.retry_backoff * 2 ** (task.attempts - 1))
        task.status = Status.PENDING
        task.reason = f"attempt {task.attempts} {status.value} ({task.error}); retrying in {delay:g}s"
        self._changed("retrying", task, delay=delay)

        def again() -> None:
            if task.status is Status.PENDING and not self.stopping:
                self._make_ready(task)

        self._at(delay, again)

    def _settle(self, task: TaskRun, status: Status) -> None:
        task.status = status
        task.pid = None
        self.unsettled -= 1
        for admission in self.admissions:
            admission.settled(task.spec)
        # Written here, not by a helper thread: on the loop it costs less than handing the GIL back
        # and forth, and a dependent can rely on the file being there when it starts.
        write_json_atomic(task.files.result, self.result_doc(task))
        self._changed(status.value, task)
        if status is Status.SUCCESS:
            for child in self.dependents[task.spec.id]:
                self.unmet[child] -= 1
                if self.unmet[child] == 0 and not self.stopping:
                    self._make_ready(self.tasks[child])
            return
        if status is Status.SKIPPED:
            return  # its dependents are settled by whoever skipped it
        self._skip_dependents(task)
        if self.options.halt != "never" and status in (Status.FAILED, Status.TIMEOUT) and not self.stopping:
            self._stop(Status.SKIPPED, f"not started: --halt {self.options.halt} after '{task.spec.id}' "
                                       f"{status.value}", terminate=self.options.halt == "now")

    def _skip_dependents(self, failed: TaskRun) -> None:
        """Every transitive dependent is skipped, naming the task that did not succeed."""
        reason = f"dependency '{failed.spec.id}' {failed.status.value}"
        stack = list(self.dependents[failed.spec.id])
        while stack:
            task = self.tasks[stack.pop()]
            if not task.status.finished:
                task.reason = task.error = reason
                self._settle(task, Status.SKIPPED)
                stack.extend(self.dependents[task.spec.id])

    def _stop(self, status: Status, reason: str, terminate: bool) -> None:
        """Start nothing more; settle what has not started; optionally end what runs."""
        self.stopping = True
        self.ready.clear()
        for task in self.tasks.values():
            if task.status in (Status.PENDING, Status.WAITING):
                task.reason = task.error = reason
                self._settle(task, status)
        if terminate:
            for attempt in list(self.running.values()):
                attempt.task.reason = reason.replace("not started: ", "stopped: ")
                self._terminate(attempt, Status.CANCELLED)

    def _on_signal(self, signum: int, frame: object) -> None:
        self._signals.append(signum)  # acted on by the loop, woken through the wakeup fd

    def _handle_signals(self) -> None:
        while self._signals:
            signum = self._signals.pop(0)
            if self.signal is None:
                self.signal = signum
                name = signal.Signals(signum).name
                self.state.event("signal", signal=name)
                self._stop(Status.CANCELLED, f"not started: run interrupted by {name}", terminate=True)
                for attempt in self.running.values():
                    attempt.task.reason = f"interrupted by {name}"
            elif signum == signal.SIGINT:
                self.state.event("signal", signal="SIGINT", action="kill now")
                for attempt in list(self.running.values()):
                    self._kill(attempt)

    def _kill_all(self) -> None:
        for attempt in list(self.running.values()):
            procs.signal_tree(attempt.proc.pid, signal.SIGKILL, procs.descendants(attempt.proc.pid))
            attempt.proc.wait()
            for fd in (attempt.pidfd, attempt.out, attempt.err):
                if fd >= 0:
                    os.close(fd)
        self.running.clear()

    def _changed(self, kind: str, task: TaskRun, **fields: Any) -> None:
        self._dirty = True
        self._stale_rows.add(task.spec.id)
        self.state.event(kind, task=task.spec.id, status=task.status.value, attempts=task.attempts,
                         **({"reason": task.reason} if task.reason else {}),
                         **({"error": task.error} if task.error and kind != "started" else {}), **fields)
        self.listener(kind, task)

    # ---- documents ------------------------------------------------------------------------

    def _restore(self, task: TaskRun, doc: dict[str, Any]) -> None:
        """A task that succeeded in the run being resumed: its result stands."""
        task.status, task.reused = Status.SUCCESS, True
        task.attempts = doc.get("attempts", 1)
        task.exit_code = doc.get("exit_code", 0)
        task.busy = doc.get("duration", 0.0)
        task.outcome = Outcome(ok=True, result=doc.get("output", ""), cost_usd=doc.get("cost_usd", 0.0))
        task.reason = "succeeded in an earlier attempt of this run"
        self.unsettled -= 1
        for admission in self.admissions:
            admission.settled(task.spec)
        for child in self.dependents[task.spec.id]:
            self.unmet[child] -= 1

    def final_state(self) -> str:
        if self.signal is not None:
            return "cancelled"
        statuses = [t.status for t in self.tasks.values()]
        if all(s is Status.SUCCESS for s in statuses):
            return "success"
        if self.unsettled:
            return "running"
        return "partial" if Status.SUCCESS in statuses else "failed"

    def totals(self) -> dict[str, float | int]:
        """Measured figures of the run (§8): wall time, sum of task times, speedup, cost, tokens."""
        wall = (self.ended or time.time()) - self.started
        work = sum(t.busy for t in self.tasks.values() if not t.reused)
        tokens = {"input_tokens": 0, "output_tokens": 0}
        for t in self.tasks.values():
            for key in tokens:
                tokens[key] += t.outcome.usage.get(key, 0) if t.outcome else 0
        return {"wall_time": round(wall, 3), "task_time_sum": round(work, 3),
                "speedup": round(work / wall, 3) if wall > 0 else 0.0,
                "cost_usd": round(sum(t.cost for t in self.tasks.values()), 6), **tokens}

    def status_doc(self) -> dict[str, Any]:
        for tid in self._stale_rows:
            self._row(self.tasks[tid])
        self._stale_rows.clear()
        return {
            "run_id": self.state.run_id,
            "pid": self.pid,
            "pid_started": self.pid_started,
            "task_file": str(self.taskfile.path),
            "results_dir": str(self.state.results_dir),
            "started": iso(self.started),
            "ended": iso(self.ended),
            "state": "running" if self.ended is None else self.final_state(),
            "slots": self.options.slots,
            **({"totals": self.totals()} if self.ended else {}),
            "tasks": list(self._rows.values()),
        }

    def _row(self, t: TaskRun) -> None:
        """Refresh one task's entry of status.json (rows are kept, so a rewrite is one dumps)."""
        self._rows[t.spec.id] = {
            "id": t.spec.id, "subject": t.spec.subject, "runner": t.spec.runner,
            "subagent": t.spec.subagent, "status": t.status.value, "attempts": t.attempts,
            "started": iso(t.start), "ended": iso(t.end) if t.status.finished else None,
            "paths": list(t.spec.paths), "reason": t.reason, "pid": t.pid,
        }

    def result_doc(self, task: TaskRun) -> dict[str, Any]:
        spec, outcome, files = task.spec, task.outcome, task.files
        usage = self.memory.usage.get(spec.id) if self.memory else None
        return {
            "id": spec.id, "subject": spec.subject, "type": spec.type, "runner": spec.runner,
            "subagent": spec.subagent, "status": task.status.value, "attempts": task.attempts,
            "exit_code": task.exit_code, "start_time": iso(task.start), "end_time": iso(task.end),
            "duration": round(task.busy, 6), "error": task.error, "reason": task.reason,
            "output": outcome.result if outcome else task.stdout,
            "stderr": task.stderr,
            "stdout_file": files.stdout if task.attempts else None,
            "stderr_file": files.stderr if task.attempts else None,
            "data": self._structured(task),
            "cost_usd": task.cost,
            "usage": dict(outcome.usage) if outcome else {},
            "num_turns": outcome.turns if outcome else None,
            "session_id": outcome.session_id if outcome else None,
            "artifacts": list(spec.artifacts),
            "peak_rss_bytes": usage.peak_rss if usage else None,
            "cpu_seconds": round(usage.cpu_seconds, 3) if usage else None,
        }

    def _structured(self, task: TaskRun) -> Any:
        """What the task wrote to PARALLEL_RESULT_FILE, else what its runner found in its output."""
        path = task.files.data
        if task.attempts and os.path.exists(path):
            try:
                os.chmod(path, PRIVATE_FILE)  # the task wrote it with its own umask
                return read_json(path)
            except (ValueError, OSError) as e:
                return {"error": f"PARALLEL_RESULT_FILE is not valid JSON: {e}"}
        return task.outcome.data if task.outcome else None


def _pidfd(pid: int) -> int:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return -1


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass
