"""One run of a task file: the scheduler on the loop, driving a backend, with the journal
(events.jsonl), status.json and result files kept as it goes.

This is the wiring, and the one place that knows all the parts: views and commands read a run
through it (tasks, running, totals, final state) and never reach into the parts themselves.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any

from parallel_executor.engine.admission import Admission, policy_checks
from parallel_executor.engine.agentgate import AgentGate, SharedLevels
from parallel_executor.engine.attempts import Attempts
from parallel_executor.engine.backends import AttemptEnd, make_backend
from parallel_executor.engine.documents import StatusRows, result_doc, totals
from parallel_executor.engine.journal import RunState
from parallel_executor.engine.locks import PathLocks
from parallel_executor.engine.loop import Loop
from parallel_executor.engine.memory import MemoryWatch
from parallel_executor.engine.records import RunOptions, TaskRun
from parallel_executor.engine.resume import Resume, digests
from parallel_executor.engine.scheduler import Scheduler
from parallel_executor.engine.supervision import Supervision
from parallel_executor.plan.analyzer import waves
from parallel_executor.plan.config import Config
from parallel_executor.plan.model import Status, TaskFile
from parallel_executor.plan.simulate import time_left
from parallel_executor.system.fsutil import write_json_atomic
from parallel_executor.system.procs import engine_identity
from parallel_executor.system.timestamps import iso

STATUS_INTERVAL = 0.1  # status.json is rewritten at most ~10 times a second...
STATUS_SHARE = 0.1  # ...and, for a huge run, takes at most ~10% of the engine's time
ETA_EVERY, ETA_SHARE = 2.0, 0.02  # status.json's ETA (a list scheduling): every 2 s, at most ~2% of the time

if TYPE_CHECKING:
    from parallel_executor.engine.worktree_plan import Tree
    from parallel_executor.engine.worktrees import Worktrees

Listener = Callable[[str, TaskRun], None]
Notice = Callable[[str], None]  # a line for the person watching: "stopping: ...", "paused: ..."


class Run:
    def __init__(self, taskfile: TaskFile, config: Config, state: RunState, options: RunOptions,
                 estimates: Mapping[str, float], listener: Listener,
                 reused: Mapping[str, dict[str, Any]] | None = None, backend: str = "local",
                 budget: float | None = None, resumed: Resume | None = None,
                 notice: Notice = lambda line: None, guessed: Collection[str] = (),
                 trees: Mapping[str, Tree] | None = None) -> None:
        self.taskfile, self.state, self.options, self.listener = taskfile, state, options, listener
        self.estimates, self.guessed = estimates, frozenset(guessed)  # guessed: no past duration
        self.notice = notice
        self.resumed = resumed  # the earlier sessions of this run, when it is resumed
        specs = taskfile.tasks
        tasks = [TaskRun(t, state.files(t.id)) for t in specs]
        self.memory = MemoryWatch(config.memory_per_agent, config.memory_reserve, config.memory_limit_per_agent)
        self.path_locks = PathLocks(list(specs), state.run_id, options.lock_timeout) \
            if any(t.paths or t.reads for t in specs) else None
        levels = SharedLevels() if config.adaptive_concurrency else None
        self.has_agents = any(t.runner for t in specs)
        commands = options.command_slots if options.command_slots is not None and \
            options.command_slots < options.slots and any(t.runner is None for t in specs) else None
        self.agents = AgentGate(config.max_parallel_tasks, budget, levels, commands) \
            if commands is not None or self.has_agents else None
        # Memory is this machine's: on dask the tasks run on the workers' (§13)
        admissions: list[Admission] = [*policy_checks(specs, config), *([self.memory] if backend == "local" else [])]
        admissions += [self.agents] if self.agents else []
        self.loop = Loop()
        self.worktrees: Worktrees | None = None
        if trees:
            from parallel_executor.engine.worktrees import Worktrees  # git and threads: only runs that use them

            self.worktrees = Worktrees(trees, {t.spec.id: t for t in tasks}, taskfile.worktree, state.run_id,
                                       state.results_dir, self.loop.call_soon_threadsafe, state.event,
                                       self._tree_changed)
            admissions.append(self.worktrees)
        admissions += [self.path_locks] if self.path_locks else []  # last: admitting a task takes its locks
        self.backend = make_backend(backend, self.loop, options, self)
        attempts = Attempts(config.runners, state.run_id, os.environ, {t.spec.id: t.files for t in tasks},
                            state.fresh)
        cpu = None
        if config.cpu_per_agent and self.has_agents and backend == "local":
            from parallel_executor.engine.cpushare import CpuShare

            cpu = CpuShare(config.cpu_per_agent, self.loop, self.backend)
        self.supervision = Supervision(self.memory, self.backend, attempts, self, cpu,
                                       paused=lambda: self.scheduler.paused)
        self.scheduler = Scheduler(tasks, options, estimates, attempts=attempts, backend=self.backend,
                                   clock=self.loop, observer=self, admissions=admissions,
                                   supervision=self.supervision, agents=self.agents, reused=reused)
        self.pid, self.pid_started = engine_identity()
        self.rows = StatusRows(self.scheduler.tasks)
        self.waves = waves(self.scheduler.graph)  # the plan's: in the journal (the API's batches), in --json
        self._flush_armed = False
        self._flushed = 0.0
        self._flush_gap = STATUS_INTERVAL
        self._eta: tuple[float, float | None] = (0.0, None)  # when due, seconds left
        self._eta_spent = 0.0  # of the status write in progress (the ETA has a pace of its own)

    # ---- what views and commands read -----------------------------------------------------

    @property
    def tasks(self) -> dict[str, TaskRun]:
        return self.scheduler.tasks

    @property
    def running(self) -> dict[str, TaskRun]:
        return self.scheduler.running

    @property
    def started(self) -> float:
        return self.scheduler.started

    @property
    def signal(self) -> str | None:
        return self.scheduler.signal

    def final_state(self) -> str:
        return self.scheduler.final_state()

    def eta(self) -> float | None:
        """Seconds until the run ends, by the analyzer's list scheduling of what is left (slots and
        dependencies), with each task's past duration, else the mean of its type measured in this
        run; None while paused or stopping. Called from the monitor's thread: it reads, never writes."""
        if self.scheduler.paused or self.scheduler.stopping:
            return None
        tasks = list(self.tasks.values())
        left = {t.spec.id: t.spec for t in tasks if not t.status.finished}
        measured: dict[str | None, list[float]] = {}
        for t in tasks:
            if t.status is Status.SUCCESS and not t.reused:
                measured.setdefault(t.spec.type, []).append(t.busy)
        means = {kind: sum(d) / len(d) for kind, d in measured.items()}
        overall = sum(map(sum, measured.values())) / max(1, sum(map(len, measured.values())))
        guess = {tid: self.estimates[tid] if tid not in self.guessed else
                 means.get(spec.type, overall if measured else self.estimates[tid]) for tid, spec in left.items()}
        now = time.time()
        running = {tid: max(guess[tid] - (now - t.attempt_start), 0.1 * guess[tid])
                   for tid, t in list(self.running.items()) if tid in left}
        unmet = {tid: n for tid, n in dict(self.scheduler.unmet).items() if tid in left}
        slots = self.options.command_slots if self.agents is None and self.options.command_slots else self.options.slots
        return time_left(left, self.scheduler.dependents, self.scheduler.keys, slots, guess, unmet, running)

    def _eta_now(self) -> float | None:
        """The ETA for status.json (the API's dashboard), worked out every ETA_EVERY s, or less often
        when it costs more than ETA_SHARE of the time."""
        now = time.monotonic()
        if now >= self._eta[0]:
            eta = self.eta()
            self._eta_spent = time.monotonic() - now
            self._eta = (now + max(ETA_EVERY, self._eta_spent / ETA_SHARE), None if eta is None else round(eta, 1))
        return self._eta[1]

    def totals(self) -> dict[str, float | int]:
        return totals(self.tasks.values(), self.scheduler.started, self.scheduler.ended)

    def status_doc(self) -> dict[str, Any]:
        ended = self.scheduler.ended
        return {
            "run_id": self.state.run_id,
            "pid": self.pid,
            "pid_started": self.pid_started,
            "task_file": str(self.taskfile.path),
            "results_dir": str(self.state.results_dir),
            "started": self.resumed.started if self.resumed else iso(self.scheduler.started),
            **({"resumed": iso(self.scheduler.started), "previous": self.resumed.previous} if self.resumed else {}),
            "ended": iso(ended),
            "state": self.scheduler.live_state() if ended is None else self.final_state(),
            "slots": self.options.slots,
            **({"agents": agents} if (agents := self.agents_doc()) else {}),
            **({"totals": self.totals()} if ended else {"eta_seconds": self._eta_now()}),
            **({"worktrees": self.worktrees.docs()} if self.worktrees else {}),
            "tasks": self.rows.current(),
        }

    def agents_doc(self) -> dict[str, Any] | None:
        """Agents running, their cap and, per runner, a level lowered by rate limits (§7); None
        when the run has no agent task."""
        if self.agents is None or not self.has_agents:
            return None
        return {"running": sum(self.agents.running.values()), "cap": self.agents.cap,
                "rate_limited": dict(self.agents.lowered), "spent_usd": round(self.agents.spent, 6),
                "budget_usd": self.agents.budget, "locked_out": dict(self.agents.locked_out)}

    # ---- running --------------------------------------------------------------------------

    def run(self) -> None:
        self.state.event("run-started", pid=self.pid, tasks=len(self.tasks), slots=self.options.slots,
                         digests=digests(self.taskfile),  # what each task was, for a later --resume
                         waves=self.waves)  # the API's batches (§15)
        gc.freeze()  # the plan lives as long as the run: keep it out of every collection
        try:
            self.loop.catch_signals(self._signalled)
            self._dirty()
            self.scheduler.begin()
            self.loop.run_until(lambda: self.scheduler.done and not (self.worktrees and self.worktrees.busy),
                                self.scheduler.pump)  # a merge in flight ends before the run does
        finally:
            if self.worktrees:
                self.worktrees.close(self.loop.run_pending)
            self.supervision.close()  # no tree is left stopped by a CPU share
            self.backend.close()  # only a bug leaves anything running here
            if self.path_locks:
                self.path_locks.release_all()
            self.loop.close()
            self.scheduler.finish()
        # status.json first: whoever reads the journal's last line (the API's event stream) finds it final
        self.state.write_status(self.status_doc(), final=True)
        self.state.event("run-finished", state=self.final_state())

    def _signalled(self, name: str) -> None:
        """Ctrl-C or `cancel` stops the run; `pause`/`unpause` (SIGUSR1/SIGUSR2) hold it. Each is
        said at once: the grace period of a stop can be long."""
        if name in ("SIGUSR1", "SIGUSR2"):
            if self.scheduler.pause(name == "SIGUSR1"):
                self.rows.pause(self.scheduler.paused)
                self._dirty()
                self.notice(f"paused: {_tasks(len(self.running))} stopped, nothing new starts; "
                            f"`parallel-executor unpause {self.state.run_id}` carries on"
                            if self.scheduler.paused else "unpaused: carrying on")
            return
        first = self.scheduler.signal is None
        if self.worktrees:
            self.worktrees.stop()
        self.scheduler.interrupt(name)
        ending = _tasks(len(self.running))
        if first:
            self.notice(f"stopping: ending {ending}" + (" (Ctrl-C again to kill now)" if name == "SIGINT" else
                                                         f" ({name})"))
        elif name == "SIGINT":
            self.notice(f"killing {ending} now")

    # ---- the backend's reports, handed to the scheduler -----------------------------------

    def attempt_ended(self, end: AttemptEnd) -> None:
        self.scheduler.attempt_ended(end)

    def attempt_stopping(self, task_id: str, why: Status) -> None:
        self.scheduler.attempt_stopping(task_id, why)

    # ---- the scheduler's observer: journal, documents, listeners --------------------------

    def event(self, kind: str, **fields: Any) -> None:
        self.state.event(kind, **fields)

    def changed(self, kind: str, task: TaskRun, **fields: Any) -> None:
        self.rows.changed(task)
        if task.status.finished:  # its dependents' `blocked by` lists are shorter now
            for child in self.scheduler.dependents[task.spec.id]:
                self.rows.changed(self.tasks[child])
        self._dirty()
        self.state.event(kind, task=task.spec.id, status=task.status.value, attempts=task.attempts,
                         **({"reason": task.reason} if task.reason else {}),
                         **({"error": task.error} if task.error and kind != "started" else {}), **fields)
        self.listener(kind, task)

    def touched(self, task: TaskRun) -> None:
        self.rows.changed(task)
        self._dirty()

    def settled(self, task: TaskRun) -> None:
        # Written here, not by a helper thread: on the loop it costs less than handing the GIL back
        # and forth, and a dependent can rely on the file being there when it starts.
        write_json_atomic(task.files.result, result_doc(task))

    def _tree_changed(self, tree: Tree) -> None:
        """A worktree was made, merged or not: on a conflict its tasks, which had succeeded, fail (§11)."""
        self._dirty()
        for tid in tree.tasks if tree.state == "conflict" else ():
            task = self.tasks[tid]
            if task.status is Status.SUCCESS:
                task.status, task.error, task.error_class = Status.FAILED, tree.error, "permanent"
                self.settled(task)
                self.changed("failed", task)

    def _dirty(self) -> None:
        if not self._flush_armed:
            self._flush_armed = True
            self.loop.call_later(self._flushed + self._flush_gap - self.loop.monotonic(), self._flush)

    def _flush(self) -> None:
        self._flush_armed = False
        now = self.loop.monotonic()
        if self.path_locks:
            self.path_locks.flush()
        self._eta_spent = 0.0
        self.state.write_status(self.status_doc())
        self._flushed = self.loop.monotonic()
        self._flush_gap = max(STATUS_INTERVAL, (self._flushed - now - self._eta_spent) / STATUS_SHARE)


def _tasks(count: int) -> str:
    return f"{count} task{'' if count == 1 else 's'}"
