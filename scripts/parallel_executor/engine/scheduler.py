"""The scheduler (§6, §7): every decision of a run, and nothing else.

It owns the plan: which tasks are ready and in what order (priority, longest remaining path, file
order), which may start now (slots, the critical boost, admission checks), what an ended attempt
means (success, a retry after backoff, a failure and the triggers of its dependents, a halt), and
when a signal stops or pauses the run. Driven by events (`pump()` once per loop turn,
`attempt_ended()` and `attempt_stopping()` from the backend, its timers, `interrupt()`, `pause()`),
it acts through the backend and
the observer, never on a process, a descriptor or a file: tests drive it with fakes.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from parallel_executor.engine.admission import Admission, NeverAdmitted, WaveBarrier
from parallel_executor.engine.agentgate import AgentGate
from parallel_executor.engine.backends import AttemptEnd, Backend, StartFailed
from parallel_executor.engine.ports import Attempts, Clock, Observer, Timers
from parallel_executor.engine.records import RunOptions, TaskRun, final_state
from parallel_executor.engine.supervision import Supervision
from parallel_executor.plan.analyzer import Graph, ReadyKey, ready_key, remaining_paths
from parallel_executor.plan.model import Priority, Status

RECHECK_INTERVAL = 0.25  # how soon a task held back by an admission check is looked at again
MAX_BACKOFF = 60.0


class Scheduler:
    def __init__(self, tasks: Sequence[TaskRun], options: RunOptions, estimates: Mapping[str, float], *,
                 attempts: Attempts, backend: Backend, clock: Clock, observer: Observer,
                 admissions: Sequence[Admission] = (), supervision: Supervision | None = None,
                 agents: AgentGate | None = None, reused: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.graph = graph = Graph([t.spec for t in tasks])
        self.tasks = {t.spec.id: t for t in tasks}
        self.options, self.attempts, self.backend, self.clock, self.observer = \
            options, attempts, backend, clock, observer
        self.dependents = graph.dependents
        remaining = remaining_paths(graph, estimates)
        self.keys: dict[str, ReadyKey] = {tid: ready_key(t.spec, remaining[tid]) for tid, t in self.tasks.items()}
        self.unmet = {tid: len(t.spec.blocked_by) for tid, t in self.tasks.items()}
        self.failed_deps = dict.fromkeys(self.tasks, 0)  # settled dependencies that did not succeed
        self._released: deque[TaskRun] = deque()
        self._releasing = False
        self.admissions: list[Admission] = [WaveBarrier(graph)] if options.schedule == "waves" else []
        self.admissions += admissions  # path locks come last: admitting a task takes its locks
        self.supervision, self.agents = supervision, agents
        self.ready: list[tuple[ReadyKey, str]] = []
        self.running: dict[str, TaskRun] = {}  # in the order they started
        self.unsettled = len(tasks)
        self.stopping = self.paused = False
        self.signal: str | None = None  # the name of the signal that stopped the run
        self.started = clock.time()
        self.ended: float | None = None
        self.timers = Timers(clock)
        self._ticking = self._recheck_armed = False
        for tid, doc in (reused or {}).items():
            self._restore(self.tasks[tid], doc)

    done = property(lambda self: not self.unsettled)

    def begin(self) -> None:
        for tid, count in self.unmet.items():
            if count == 0 and self.tasks[tid].status is Status.PENDING:
                self._make_ready(self.tasks[tid])

    def pump(self) -> None:
        """Start every ready task that may start now (called once per loop turn)."""
        if not (self.stopping or self.paused):
            self._start_ready()
        if self.unsettled and not (self.running or self.ready or self.timers.armed):
            raise AssertionError(f"scheduler stalled with {self.unsettled} tasks unsettled")

    def finish(self) -> None:
        self.ended = self.clock.time()

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
            except NeverAdmitted as e:
                task.error, task.reason, task.error_class = str(e), str(e), None
                self._settle(task, e.status)
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
            self.timers.later(RECHECK_INTERVAL, lambda: setattr(self, "_recheck_armed", False))

    def _ordinary_running(self) -> int:
        return sum(t.spec.priority is not Priority.CRITICAL for t in self.running.values())

    def _wait(self, task: TaskRun, reason: str) -> None:
        if task.status is not Status.WAITING or task.reason != reason:
            task.status, task.reason = Status.WAITING, reason
            self.observer.changed("waiting", task)

    def _launch(self, task: TaskRun) -> None:
        task.attempts += 1
        attempt = self.attempts.prepare(task)
        now = self.clock.time()
        task.start, task.attempt_start, task.error_class, task.live = task.start or now, now, None, None
        try:
            pid = self.backend.start(attempt)
        except StartFailed as e:
            task.exit_code, task.error, task.end = e.exit_code, e.message, now
            self._settle(task, Status.FAILED)  # retrying cannot make a missing program appear
            return
        self.running[task.spec.id] = task
        if self.supervision and not self._ticking:
            self._ticking = True
            self.timers.later(self.supervision.interval, self._tick)
        task.status, task.pid, task.reason = Status.RUNNING, pid, ""
        for admission in self.admissions:
            admission.started(task.spec)
        self.observer.changed("started", task, attempt=task.attempts, pid=pid, argv=attempt.argv)

    def _tick(self) -> None:
        """Every supervision.interval while tasks run: measure them and act on what it finds."""
        assert self.supervision is not None
        self.supervision.tick(self.running)
        self._ticking = bool(self.running)
        if self._ticking:
            self.timers.later(self.supervision.interval, self._tick)

    # ---- ending ---------------------------------------------------------------------------

    def attempt_stopping(self, task_id: str, why: Status) -> None:
        self.observer.event("terminating", task=task_id, why=why.value)

    def attempt_ended(self, end: AttemptEnd) -> None:
        task = self.running.pop(end.task_id)
        if self.supervision:
            self.supervision.ended(end.task_id)
        spec = task.spec
        task.stdout, task.stderr = end.stdout, end.stderr
        task.end, task.exit_code = end.end, end.exit_code
        task.busy += end.busy
        outcome = None if end.stopped else self.attempts.outcome(task, end.exit_code)
        if outcome is not None:
            task.outcome, task.error_class, task.error = outcome, outcome.error_class, outcome.error
            task.count(outcome)
            status = Status.SUCCESS if outcome.ok else Status.FAILED
        elif end.stopped is Status.TIMEOUT:
            status, task.error = Status.TIMEOUT, f"timed out after {spec.timeout:g}s"
        else:
            status, task.error = end.stopped or Status.CANCELLED, end.error or task.reason or "cancelled"
        if self.agents and (moved := self.agents.attempt_ended(spec, outcome, task.error_class, task.attempt_start)):
            self.observer.event("agents", task=spec.id, level=moved)
        # A transient failure is retried without using up `retries`; after an authentication
        # failure nothing of that runner starts again in this run (§7).
        again = status in (Status.FAILED, Status.TIMEOUT) and not self.stopping
        again = again and not (outcome and outcome.auth_failed)
        transient = task.error_class == "transient" and spec.runner is not None
        if again and transient and task.transient < self.options.transient_retries:
            task.transient += 1
            self._retry(task, status, task.transient)
        elif again and task.attempts - task.transient <= spec.retries:
            self._retry(task, status, task.attempts - task.transient)
        else:
            self._settle(task, status)

    def _retry(self, task: TaskRun, status: Status, nth: int) -> None:
        delay = min(MAX_BACKOFF, self.options.retry_backoff * 2 ** (nth - 1))
        task.status = Status.PENDING
        why = f"{task.error_class} error: " if task.error_class == "transient" else ""
        task.reason = f"attempt {task.attempts} {status.value} ({why}{task.error}); retrying in {delay:g}s"
        self.observer.changed("retrying", task, delay=delay)

        def again() -> None:
            if task.status is Status.PENDING and not self.stopping:
                self._make_ready(task)

        self.timers.later(delay, again)

    def _settle(self, task: TaskRun, status: Status) -> None:
        task.status = status
        task.pid = None
        self.unsettled -= 1
        for admission in self.admissions:
            admission.settled(task.spec)
        self.observer.settled(task)  # its result file exists before a dependent can start
        self.observer.changed(status.value, task)
        self._released.append(task)
        if self._releasing:
            return  # settled while its dependency's dependents are looked at: its turn comes in that loop
        self._releasing = True
        try:  # a loop, not recursion: a chain of 10,000 skipped tasks must not exhaust the stack
            while self._released:
                self._release_dependents(self._released.popleft())
        finally:
            self._releasing = False
        if self.options.halt != "never" and status in (Status.FAILED, Status.TIMEOUT) and not self.stopping:
            self._stop(Status.SKIPPED, f"not started: --halt {self.options.halt} after '{task.spec.id}' "
                                       f"{status.value}", terminate=self.options.halt == "now")

    def _release_dependents(self, dep: TaskRun) -> None:
        """`dep` settled: each dependent whose trigger (§4) can no longer hold is skipped, naming the
        cause; one whose dependencies have all settled starts, or is `not needed`."""
        ok = dep.status in (Status.SUCCESS, Status.NOT_NEEDED)
        cause = dep.reason if dep.status is Status.SKIPPED and dep.reason.startswith("dependency") \
            else f"dependency '{dep.spec.id}' {dep.status.value}"
        for child_id in self.dependents[dep.spec.id]:
            child = self.tasks[child_id]
            if child.status.finished:
                continue
            trigger = child.spec.trigger
            if not ok and trigger == "all_success":
                child.reason = child.error = cause
                self._settle(child, Status.SKIPPED)
                continue
            self.failed_deps[child_id] += not ok
            self.unmet[child_id] -= 1
            if self.unmet[child_id] or self.stopping:
                continue
            if trigger == "one_failed" and not self.failed_deps[child_id]:
                child.reason = "not needed: every dependency succeeded"
                self._settle(child, Status.NOT_NEEDED)
            else:
                self._make_ready(child)

    def _stop(self, status: Status, reason: str, terminate: bool) -> None:
        """Start nothing more; settle what has not started; optionally end what runs."""
        self.stopping = True
        self.ready.clear()
        for task in self.tasks.values():
            if task.status in (Status.PENDING, Status.WAITING):
                task.reason = task.error = reason
                self._settle(task, status)
        if terminate:
            for task in list(self.running.values()):
                task.reason = reason.replace("not started: ", "stopped: ")
                self.backend.stop(task.spec.id, Status.CANCELLED)

    def interrupt(self, signal: str) -> None:
        """SIGINT or SIGTERM: stop the run (a paused one too); a second SIGINT ends the running trees at once."""
        if self.signal is None:
            self.signal, self.paused = signal, False  # stopping ends the trees: _terminate continues them
            self.observer.event("signal", signal=signal)
            self._stop(Status.CANCELLED, f"not started: run interrupted by {signal}", terminate=True)
            for task in self.running.values():
                task.reason = f"interrupted by {signal}"
        elif signal == "SIGINT":
            self.observer.event("signal", signal="SIGINT", action="kill now")
            for tid in list(self.running):
                self.backend.kill(tid)

    def pause(self, paused: bool) -> bool:
        """`pause`: start nothing new and suspend the running trees (their timeouts stop counting);
        `unpause`: carry on. False when there is nothing to change (or the run is stopping)."""
        if paused == self.paused or (paused and (self.stopping or self.done)):
            return False
        self.paused = paused
        self.observer.event("run-paused" if paused else "run-unpaused")
        for task in self.running.values():
            (self.backend.suspend if paused else self.backend.resume)(task.spec.id, "pause")
            task.show_hold(paused)
            self.observer.changed("paused" if paused else "unpaused", task)
        return True

    # ---- the run as a whole ---------------------------------------------------------------

    def _restore(self, task: TaskRun, doc: Mapping[str, Any]) -> None:
        """A task that succeeded in the run being resumed: its result stands."""
        task.restore(doc)
        if self.agents:
            self.agents.spent += task.cost  # the run's cost, and its budget, include what it spent before
        self.unsettled -= 1
        for admission in self.admissions:
            admission.settled(task.spec)
        for child in self.dependents[task.spec.id]:
            self.unmet[child] -= 1

    def live_state(self) -> str:
        return "stopping" if self.stopping else "paused" if self.paused else "running"

    def final_state(self) -> str:
        return final_state(self.tasks.values(), self.signal, self.unsettled)
