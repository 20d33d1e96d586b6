"""The scheduler alone (§6, §7): a fake backend and a fake clock, no process, each test in milliseconds."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from parallel_executor.agents.readers import Outcome
from parallel_executor.engine.admission import NeverAdmitted
from parallel_executor.engine.backends import AttemptEnd, AttemptSpec, StartFailed
from parallel_executor.engine.records import Actions, RunOptions, TaskFiles, TaskRun, Usage
from parallel_executor.engine.scheduler import Scheduler
from parallel_executor.engine.supervision import Supervision
from parallel_executor.plan.model import Priority, Status, TaskSpec

pytestmark = pytest.mark.timeout(5)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.timers: list[tuple[float, int, Callable[[], None]]] = []

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    def call_later(self, delay: float, action: Callable[[], None]) -> None:
        heapq.heappush(self.timers, (self.now + delay, len(self.timers) + id(action) % 1000, action))

    def advance(self, seconds: float) -> int:
        """Fire the timers due within `seconds`; how many fired."""
        end, fired = self.now + seconds, 0
        while self.timers and self.timers[0][0] <= end:
            due, _, action = heapq.heappop(self.timers)
            self.now = max(self.now, due)
            action()
            fired += 1
        self.now = end
        return fired


class FakeBackend:
    def __init__(self, fail_to_start: set[str] | None = None) -> None:
        self.running: dict[str, AttemptSpec] = {}
        self.started: list[str] = []
        self.calls: list[tuple[str, str]] = []  # (what, task id)
        self.fail_to_start = fail_to_start or set()

    def start(self, attempt: AttemptSpec) -> int:
        if attempt.task_id in self.fail_to_start:
            raise StartFailed(127, f"command not found: {attempt.argv[0]}")
        self.running[attempt.task_id] = attempt
        self.started.append(attempt.task_id)
        return 4242

    def stop(self, task_id: str, why: Status, error: str | None = None) -> None:
        self.calls.append((f"stop {why.value}", task_id))

    def kill(self, task_id: str) -> None:
        self.calls.append(("kill", task_id))

    def suspend(self, task_id: str, why: str) -> None:
        self.calls.append((f"suspend {why}", task_id))

    def resume(self, task_id: str, why: str) -> None:
        self.calls.append((f"resume {why}", task_id))

    def measure(self) -> dict[str, tuple[int, float]]:
        return {tid: (100 << 20, 1.0) for tid in self.running}

    def close(self) -> None:
        pass


class FakeAttempts:
    def prepare(self, task: TaskRun) -> AttemptSpec:
        return AttemptSpec(task.spec.id, task.attempts, ["true"], Path("/"), {}, task.files, task.spec.timeout, False)

    def outcome(self, task: TaskRun, exit_code: int) -> Outcome:
        error = None if exit_code == 0 else f"exit code {exit_code}"
        return Outcome(ok=exit_code == 0, result=task.stdout, error=error)

    def live(self, task: TaskRun) -> tuple[str | None, str | None]:
        return None, None


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []  # (kind, task id or "")
        self.results: list[str] = []

    def event(self, kind: str, **fields: Any) -> None:
        self.events.append((kind, str(fields.get("task", ""))))

    def changed(self, kind: str, task: TaskRun, **fields: Any) -> None:
        self.events.append((kind, task.spec.id))

    def settled(self, task: TaskRun) -> None:
        self.results.append(task.spec.id)

    def touched(self, task: TaskRun) -> None: ...


class Gate:
    """An admission check that holds one task until opened."""

    def __init__(self, held: str | None) -> None:
        self.held = held

    def blocked(self, task: TaskSpec) -> str | None:
        return "waiting for the gate" if task.id == self.held else None

    def started(self, task: TaskSpec) -> None: ...

    def settled(self, task: TaskSpec) -> None: ...


def spec(tid: str, index: int = 0, after: tuple[str, ...] = (), retries: int = 0,
         priority: Priority = Priority.NORMAL, estimate: float | None = None) -> TaskSpec:
    return TaskSpec(id=tid, index=index, subject=tid, prompt=None, command=("true",), runner=None, subagent=None,
                    model=None, type=None, blocked_by=after, phase=None, paths=(), reads=(), artifacts=(),
                    cwd=Path("/"), env={}, timeout=10.0, retries=retries, priority=priority, estimate=estimate)


class Harness:
    def __init__(self, specs: list[TaskSpec], slots: int = 2, **kwargs: Any) -> None:
        self.clock, self.observer = FakeClock(), Recorder()
        self.backend = FakeBackend(kwargs.pop("fail_to_start", None))
        own = ("halt", "schedule", "boost", "transient_retries")
        options = RunOptions(slots=slots, **{k: kwargs.pop(k) for k in own if k in kwargs})
        tasks = [TaskRun(s, TaskFiles(*(f"/r/{s.id}.{x}" for x in ("json", "out", "err", "data")))) for s in specs]
        estimates = {s.id: s.estimate or 1.0 for s in specs}
        attempts = kwargs.pop("attempts", FakeAttempts())
        if "memory" in kwargs:
            kwargs["supervision"] = Supervision(kwargs.pop("memory"), self.backend, attempts, self.observer,
                                                paused=lambda: self.s.paused)
        self.s = Scheduler(tasks, options, estimates, attempts=attempts, backend=self.backend,
                           clock=self.clock, observer=self.observer, **kwargs)
        self.s.begin()
        self.s.pump()

    def end(self, tid: str, code: int = 0, stopped: Status | None = None) -> None:
        del self.backend.running[tid]
        self.s.attempt_ended(AttemptEnd(tid, code, self.clock.now, 0.5, "out", "", stopped))
        self.s.pump()

    def advance(self, seconds: float) -> None:
        if self.clock.advance(seconds):  # like the loop: only an event (here a timer) wakes the scheduler
            self.s.pump()

    def status(self, tid: str) -> Status:
        return self.s.tasks[tid].status


def test_slots_are_filled_and_a_dependent_starts_as_soon_as_its_dependency_ends() -> None:
    h = Harness([spec("slow", 0, estimate=5), spec("quick", 1), spec("after-quick", 2, ("quick",)), spec("other", 3)],
                slots=2)
    assert h.backend.started == ["slow", "quick"]
    h.end("quick")
    assert h.backend.started[-1] == "after-quick"  # no barrier: it starts while "slow" runs, before "other"
    assert set(h.backend.running) == {"slow", "after-quick"}
    assert h.s.tasks["after-quick"].status is Status.RUNNING and not h.s.done


def test_ready_order_priority_then_remaining_path_then_file_order() -> None:
    h = Harness([spec("a", 0), spec("b", 1, estimate=5), spec("c", 2, priority=Priority.HIGH), spec("d", 3)], slots=1)
    for expected in ("c", "b", "a", "d"):
        assert h.backend.started[-1] == expected
        h.end(expected)
    assert h.s.done and h.s.final_state() == "success"


def test_critical_tasks_get_extra_slots_up_to_the_boost() -> None:
    specs = [spec("n1", 0), spec("n2", 1), spec("c1", 2, priority=Priority.CRITICAL),
             spec("c2", 3, priority=Priority.CRITICAL)]
    h = Harness(specs, slots=1, boost=2)
    assert h.backend.started == ["c1", "c2"]  # critical first, two at most in all
    h.end("c1")
    assert h.backend.started == ["c1", "c2", "n1"]


def test_a_critical_task_starts_while_ordinary_tasks_fill_every_slot() -> None:
    gate = Gate("c")
    h = Harness([spec("c", 0, priority=Priority.CRITICAL), spec("n1", 1), spec("n2", 2)], slots=1, boost=3,
                admissions=[gate])
    assert h.backend.started == ["n1"]
    gate.held = None
    h.advance(0.3)
    assert h.backend.started == ["n1", "c"]  # n2 still waits for the one ordinary slot


def test_a_failure_is_retried_with_doubling_backoff_then_skips_its_dependents() -> None:
    h = Harness([spec("flaky", 0, retries=2), spec("child", 1, ("flaky",)), spec("grandchild", 2, ("child",)),
                 spec("free", 3)], slots=2)
    h.end("flaky", code=1)
    assert h.status("flaky") is Status.PENDING and "retrying in 2s" in h.s.tasks["flaky"].reason
    h.advance(1.9)
    assert h.backend.started.count("flaky") == 1
    h.advance(0.2)
    assert h.backend.started.count("flaky") == 2
    h.end("flaky", code=1)
    assert "retrying in 4s" in h.s.tasks["flaky"].reason
    h.advance(4.0)
    h.end("flaky", code=1)
    assert h.status("flaky") is Status.FAILED and h.s.tasks["flaky"].attempts == 3
    assert h.status("child") is Status.SKIPPED and h.s.tasks["child"].reason == "dependency 'flaky' failed"
    assert h.status("grandchild") is Status.SKIPPED and h.s.tasks["grandchild"].reason == "dependency 'flaky' failed"
    h.end("free")
    assert h.s.done and h.s.final_state() == "partial"
    assert h.observer.results.index("flaky") < h.observer.events.index(("failed", "flaky"))


def test_a_timeout_counts_as_a_failed_attempt() -> None:
    h = Harness([spec("t", 0, retries=1)], slots=1)
    h.end("t", code=-15, stopped=Status.TIMEOUT)
    assert h.status("t") is Status.PENDING
    h.advance(2)
    h.end("t", code=-15, stopped=Status.TIMEOUT)
    assert h.status("t") is Status.TIMEOUT and h.s.tasks["t"].error == "timed out after 10s"


def test_a_program_that_cannot_start_fails_without_retries() -> None:
    h = Harness([spec("missing", 0, retries=3), spec("next", 1, ("missing",))], slots=1, fail_to_start={"missing"})
    assert h.status("missing") is Status.FAILED and h.s.tasks["missing"].exit_code == 127
    assert h.status("next") is Status.SKIPPED and h.s.done


@pytest.mark.parametrize("halt", ["soon", "now"])
def test_halt_after_the_first_failure(halt: str) -> None:
    h = Harness([spec("bad", 0), spec("long", 1), spec("later", 2)], slots=2, halt=halt)
    h.end("bad", code=1)
    assert h.status("later") is Status.SKIPPED
    assert h.s.tasks["later"].reason == "not started: --halt " + halt + " after 'bad' failed"
    assert (("stop cancelled", "long") in h.backend.calls) is (halt == "now")
    h.end("long", stopped=Status.CANCELLED if halt == "now" else None)
    assert h.status("long") is (Status.CANCELLED if halt == "now" else Status.SUCCESS)
    assert h.s.done


def test_admission_holds_a_task_and_rechecks_it() -> None:
    gate = Gate("b")
    h = Harness([spec("a", 0), spec("b", 1)], slots=2, admissions=[gate])
    assert h.backend.started == ["a"]
    assert h.status("b") is Status.WAITING and h.s.tasks["b"].reason == "waiting for the gate"
    gate.held = None
    h.advance(0.3)  # the recheck timer wakes the loop even if nothing in this run changed
    assert h.backend.started == ["a", "b"]


def test_an_admission_that_can_never_hold_fails_the_task() -> None:
    class Never:
        def blocked(self, task: TaskSpec) -> str | None:
            raise NeverAdmitted("lock timeout after 1s: paths held by task 'x'")

        def started(self, task: TaskSpec) -> None: ...

        def settled(self, task: TaskSpec) -> None: ...

    h = Harness([spec("a", 0)], slots=1, admissions=[Never()])
    assert h.status("a") is Status.FAILED and h.s.tasks["a"].error.startswith("lock timeout")  # type: ignore[union-attr]


def test_waves_schedule_waits_for_the_whole_earlier_wave() -> None:
    h = Harness([spec("slow", 0), spec("quick", 1), spec("after-quick", 2, ("quick",))], slots=3, schedule="waves")
    h.end("quick")
    assert "after-quick" not in h.backend.started and h.status("after-quick") is Status.WAITING
    h.end("slow")
    assert h.backend.started[-1] == "after-quick"


def test_first_signal_cancels_second_sigint_kills() -> None:
    h = Harness([spec("a", 0), spec("b", 1), spec("c", 2)], slots=2)
    h.s.interrupt("SIGINT")
    assert h.status("c") is Status.CANCELLED and ("stop cancelled", "a") in h.backend.calls
    h.s.interrupt("SIGINT")
    assert ("kill", "a") in h.backend.calls and ("kill", "b") in h.backend.calls
    h.end("a", code=-9, stopped=Status.CANCELLED)
    h.end("b", code=-9, stopped=Status.CANCELLED)
    assert h.s.done and h.s.final_state() == "cancelled" and h.s.signal == "SIGINT"
    assert h.s.tasks["a"].error == "interrupted by SIGINT"


def test_memory_pressure_suspends_and_resumes_and_a_limit_stops() -> None:
    class Watch:
        interval, free = 0.5, 64 << 20

        def __init__(self) -> None:
            self.usage: dict[str, Usage] = {}
            self.plans = [Actions(suspend=["b"]), Actions(resume=["b"]), Actions(kill={"a": "memory limit"})]

        def tick(self, running: Mapping[str, tuple[int, float]]) -> Actions:
            for tid, (rss, cpu) in running.items():
                self.usage[tid] = Usage(rss, cpu)
            return self.plans.pop(0) if self.plans else Actions()

        def blocked(self, task: TaskSpec) -> str | None:
            return None

        def started(self, task: TaskSpec) -> None: ...

        def settled(self, task: TaskSpec) -> None: ...

    watch = Watch()
    h = Harness([spec("a", 0), spec("b", 1)], slots=2, admissions=[watch], memory=watch)
    h.advance(0.5)
    b = h.s.tasks["b"]
    assert ("suspend memory", "b") in h.backend.calls and b.reason == "suspended: low memory (64 MB available)"
    assert b.status is Status.PAUSED
    assert h.s.pause(True) and not h.s.pause(True)  # `pause` on top of it; a second one changes nothing
    assert b.reason == "paused; suspended: low memory (64 MB available)"
    assert h.backend.calls[-2:] == [("suspend pause", "a"), ("suspend pause", "b")]
    h.advance(0.5)  # memory recovers while paused: the tree stays stopped for the pause
    assert ("resume memory", "b") in h.backend.calls and (b.status, b.reason) == (Status.PAUSED, "paused")
    assert h.s.live_state() == "paused" and h.s.pause(False)
    assert (b.status, b.reason) == (Status.RUNNING, "") and h.backend.calls[-1] == ("resume pause", "b")
    h.advance(0.5)
    assert ("stop failed", "a") in h.backend.calls and h.s.tasks["a"].peak_rss == 100 << 20


def test_a_resumed_run_reuses_what_succeeded() -> None:
    reused = {"a": {"attempts": 1, "exit_code": 0, "duration": 2.0, "output": "done"}}
    h = Harness([spec("a", 0), spec("b", 1, ("a",))], slots=1, reused=reused)
    assert h.backend.started == ["b"] and h.s.tasks["a"].reused and h.status("a") is Status.SUCCESS
