"""cpu_per_agent (§7): holding agent trees to their share while the machine is saturated. A fake
clock, a fake backend and a scripted machine load; then real CPU-bound processes on a saturated
machine, held by SIGSTOP/SIGCONT slicing and freed after."""

from __future__ import annotations

import heapq
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from parallel_executor.engine.cpushare import CpuShare, MachineLoad
from parallel_executor.engine.loop import Loop
from parallel_executor.errors import UserError
from parallel_executor.plan.config import load_config

pytestmark = pytest.mark.timeout(5)
TICK = 0.5


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.timers: list[tuple[float, int, Callable[[], None]]] = []
        self.seq = itertools.count()

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    def call_later(self, delay: float, action: Callable[[], None]) -> None:
        heapq.heappush(self.timers, (self.now + delay, next(self.seq), action))

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while self.timers and self.timers[0][0] <= end:
            due, _, action = heapq.heappop(self.timers)
            self.now = max(self.now, due)
            action()
        self.now = end


class FakeBackend:
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.calls: list[tuple[float, str, str]] = []  # (time, "suspend" | "resume", task id)

    def suspend(self, task_id: str, why: str) -> None:
        self.calls.append((self.clock.now, "suspend", task_id))

    def resume(self, task_id: str, why: str) -> None:
        self.calls.append((self.clock.now, "resume", task_id))

    def of(self, task_id: str, since: float = 0.0) -> list[str]:
        return [what for at, what, tid in self.calls if tid == task_id and at >= since]

    def stopped_time(self, task_id: str, start: float, end: float) -> float:
        """Seconds of [start, end) the task spent suspended."""
        stopped, since = 0.0, None
        for at, what, tid in self.calls:
            if tid != task_id:
                continue
            if what == "suspend" and since is None:
                since = at
            elif what == "resume" and since is not None:
                stopped += max(0.0, min(at, end) - max(since, start))
                since = None
        if since is not None:
            stopped += max(0.0, end - max(since, start))
        return stopped


class Machine:
    """A scripted machine: `load` is the fraction of all cores busy; each task's tree uses `rates[tid]` cores."""

    def __init__(self, share: float = 0.2, cores: int = 2, load: float = 1.0) -> None:
        self.clock = FakeClock()
        self.backend = FakeBackend(self.clock)
        self.load, self.cpu, self.rates = load, dict[str, float](), dict[str, float]()
        self.measured = self.clock.now
        self.cpushare = CpuShare(share, self.clock, self.backend, load=lambda: self.load, cores=cores)

    def run(self, ticks: int = 1, exempt: set[str] | frozenset[str] = frozenset(), **rates: float) -> None:
        """`ticks` measuring ticks, the trees using `rates` cores since the last one (held or not:
        the fake does not slice)."""
        self.rates.update(rates)
        for _ in range(ticks):
            self.clock.advance(TICK)
            for tid, rate in self.rates.items():
                self.cpu[tid] = self.cpu.get(tid, 0.0) + rate * (self.clock.now - self.measured)
            self.measured = self.clock.now
            self.cpushare.tick(self.cpu, TICK, exempt)


def test_holds_only_the_trees_over_their_share_on_a_saturated_machine() -> None:
    m = Machine()
    m.run(busy=1.0, quiet=0.1)  # the first tick only learns where each tree's CPU time stands
    assert m.cpushare.held == set()
    m.run()
    assert m.cpushare.held == {"busy"}
    assert m.backend.of("busy")[:1] == ["suspend"]  # it had more than its share already: a pause first
    assert m.backend.of("quiet") == []


def test_nothing_is_held_while_the_machine_has_cpu_to_spare() -> None:
    m = Machine(load=0.6)
    m.run(3, busy=1.0, other=1.0)
    assert m.cpushare.held == set()
    assert m.backend.calls == []


def test_a_held_tree_runs_its_share_of_every_period() -> None:
    m = Machine()
    m.run(2, busy=1.0)
    start = m.clock.now
    m.clock.advance(1.0)
    stopped = m.backend.stopped_time("busy", start, m.clock.now)
    assert stopped == pytest.approx(0.8, abs=0.01)  # ran 20 ms of every 100 ms
    assert m.backend.of("busy", start).count("suspend") == 10


def test_a_tree_busy_on_two_cores_gets_half_the_time_and_the_duty_follows_what_it_used() -> None:
    m = Machine()
    m.run(2, multi=2.0)
    start = m.clock.now
    m.clock.advance(0.4)
    assert m.backend.stopped_time("multi", start, m.clock.now) == pytest.approx(0.36, abs=0.01)  # 10% duty
    m.run(multi=0.1)  # it could not use its slices (waiting, or others ran): longer ones, at most 1.5 times
    start = m.clock.now
    m.clock.advance(0.4)
    assert m.backend.stopped_time("multi", start, m.clock.now) == pytest.approx(0.34, abs=0.01)  # 15%
    m.run(multi=0.4)  # it used twice its share: half the duty
    start = m.clock.now
    m.clock.advance(0.4)
    assert m.backend.stopped_time("multi", start, m.clock.now) == pytest.approx(0.37, abs=0.01)  # 7.5%


def test_held_trees_are_freed_when_the_pressure_is_gone_not_when_holding_them_made_room() -> None:
    m = Machine(cores=1)
    m.run(2, busy=1.0)
    assert m.cpushare.held == {"busy"}
    # Held, it uses its share and the machine looks idle: as if it ran free, it would saturate it again.
    m.run(4, busy=0.2)
    m.load = 0.2
    m.run(4)
    assert m.cpushare.held == {"busy"}
    # It wants no more than its share now (it waits on something): the pressure is gone after two calm ticks.
    m.run(busy=0.05)
    assert m.cpushare.held == {"busy"}
    m.run()
    assert m.cpushare.held == set()
    assert m.backend.of("busy")[-1] == "resume"
    done = len(m.backend.calls)
    m.clock.advance(1.0)
    assert len(m.backend.calls) == done  # no slicing after the release


def test_the_load_of_others_going_away_frees_the_held_trees_after_two_ticks() -> None:
    m = Machine(cores=4)
    m.run(2, a=1.0, b=1.0)  # and others saturate the machine
    assert m.cpushare.held == {"a", "b"}
    m.run(a=0.2, b=0.2)
    m.load = 0.1  # others stopped: with a and b running free it would be 2 cores of 4
    m.run(a=0.2, b=0.2)
    assert m.cpushare.held == {"a", "b"}
    m.run()
    assert m.cpushare.held == set()
    m.load = 0.5
    m.run(3, a=1.0, b=1.0)  # free again, and not saturating the machine: not held
    assert m.cpushare.held == set()


def test_a_load_hovering_between_the_thresholds_keeps_them_held() -> None:
    m = Machine(cores=4)
    m.run(2, a=1.0)
    m.load = 0.6  # below saturation (3.2 cores of 4 with a running free), not calm: no hold and release on every tick
    m.run(5, a=0.2)
    assert m.cpushare.held == {"a"}


def test_a_task_suspended_for_another_reason_is_never_held_or_continued() -> None:
    m = Machine()
    m.run(2, busy=1.0, low_memory=1.0, exempt={"low_memory"})
    assert m.cpushare.held == {"busy"}
    assert m.backend.of("low_memory") == []
    m.run(exempt={"busy", "low_memory"})  # busy is suspended for memory now: slicing must not continue it
    assert m.cpushare.held == set()
    since = m.clock.now
    m.clock.advance(1.0)
    assert m.backend.of("busy", since) == []


def test_a_forgotten_task_is_never_signalled_again() -> None:
    m = Machine()
    m.run(2, busy=1.0)
    m.clock.advance(0.01)  # inside its pause
    m.cpushare.forget("busy")
    since = m.clock.now
    m.clock.advance(1.0)
    del m.rates["busy"], m.cpu["busy"]
    m.run()
    assert m.backend.of("busy", since) == []
    assert m.cpushare.held == set()


def test_a_held_task_that_is_no_longer_measured_is_released() -> None:
    m = Machine()
    m.run(2, busy=1.0)
    m.clock.advance(0.01)
    del m.rates["busy"], m.cpu["busy"]
    m.run()
    assert m.cpushare.held == set()
    assert m.backend.of("busy")[-1] == "resume"


def test_release_all_continues_every_held_tree_and_ends_the_slicing() -> None:
    m = Machine()
    m.run(2, a=1.0, b=1.0)
    m.clock.advance(0.05)
    m.cpushare.release_all()
    assert m.cpushare.held == set()
    assert [m.backend.of(t)[-1] for t in ("a", "b")] == ["resume", "resume"]
    done = len(m.backend.calls)
    m.clock.advance(1.0)
    assert len(m.backend.calls) == done


def test_cpu_per_agent_is_a_percentage_of_one_core(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    for value, share in (("20%", 0.2), (20, 0.2), (" 20 % ", 0.2), ("150%", 1.5), (None, None)):
        config.write_text(json.dumps({"cpu_per_agent": value}))
        assert load_config(config).cpu_per_agent == share
    for bad in ("0.2", 0.2, "0%", "-5%", "fast", "nan%", True, [20]):
        config.write_text(json.dumps({"cpu_per_agent": bad}))
        with pytest.raises(UserError, match="cpu_per_agent"):
            load_config(config)


def test_machine_load_is_a_fraction_of_all_cores() -> None:
    load = MachineLoad()
    load()
    time.sleep(0.05)
    assert 0.0 <= load() <= 1.0


# ---- real processes ---------------------------------------------------------------------------------

SHARE = 0.2
SPIN = "import os, sys\nif len(sys.argv) > 1: os.sched_setaffinity(0, {int(sys.argv[1])})\nwhile True: pass\n"


class Slicer:
    """A minimal backend: each task is a process group, stopped and continued whole."""

    def __init__(self, groups: dict[str, int]) -> None:
        self.groups = groups

    def suspend(self, task_id: str, why: str) -> None:
        os.killpg(self.groups[task_id], signal.SIGSTOP)

    def resume(self, task_id: str, why: str) -> None:
        os.killpg(self.groups[task_id], signal.SIGCONT)


def _spin(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", SPIN, *args], start_new_session=True)


def _cpu(proc: subprocess.Popen[bytes]) -> float:
    times = psutil.Process(proc.pid).cpu_times()
    return times.user + times.system


class OwnLoad:
    """The machine's load as far as this test's processes make it: the share of all cores they
    used since the previous call; all of them while `saturating` (a busy loop per core) run. Other
    work on a shared machine would otherwise saturate it, or not, at random (it may even keep this
    test's loops from using every core); MachineLoad is the real figure."""

    def __init__(self, procs: list[subprocess.Popen[bytes]], saturating: list[subprocess.Popen[bytes]]) -> None:
        self.procs, self.saturating, self.last = [*procs, *saturating], saturating, time.monotonic()
        self.seen = {p.pid: _cpu(p) for p in self.procs}

    def __call__(self) -> float:
        now, used = time.monotonic(), 0.0
        for proc in self.procs:
            if proc.returncode is None:
                cpu = _cpu(proc)
                used, self.seen[proc.pid] = used + cpu - self.seen[proc.pid], cpu
        elapsed, self.last = now - self.last, now
        if any(proc.returncode is None for proc in self.saturating):
            return 1.0
        return min(1.0, used / (elapsed * len(os.sched_getaffinity(0))))


@pytest.mark.timeout(60)
@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="pins the agents to one core of several")
def test_cpu_bound_trees_on_a_saturated_machine_are_held_to_their_share_and_freed_after() -> None:
    """Two CPU-bound agents pinned to one core (so that alone they do not saturate the machine)
    and a busy loop on every other core: once held, each agent uses at most 1.5 times its share
    over 5 s (free, each would have half a core); when the other load ends, they run free again,
    as fast as an unmanaged loop (the control) started on their core then."""
    core = min(os.sched_getaffinity(0))
    agents = {tid: _spin(str(core)) for tid in ("a", "b")}
    control = _spin(str(core))
    os.killpg(control.pid, signal.SIGSTOP)  # until the agents run free (it would keep the load up)
    others = [_spin(str(other)) for other in sorted(os.sched_getaffinity(0) - {core})]
    loop = Loop()
    slicer = Slicer({tid: p.pid for tid, p in agents.items()})
    cpushare = CpuShare(SHARE, loop, slicer, load=OwnLoad([*agents.values(), control], others))
    held_at_a_tick: set[str] = set()

    def tick() -> None:
        cpushare.tick({tid: _cpu(p) for tid, p in agents.items()}, TICK)
        held_at_a_tick.update(cpushare.held)
        loop.call_later(TICK, tick)

    def run_for(seconds: float, until: Callable[[], bool] = lambda: False) -> bool:
        end = time.monotonic() + seconds
        loop.run_until(lambda: until() or time.monotonic() >= end, lambda: None)
        return until()

    def used_over(seconds: float) -> dict[str, float]:
        procs = {**agents, "control": control}  # the control is stopped while the agents are held
        before = {tid: _cpu(p) for tid, p in procs.items()}
        held_at_a_tick.clear()
        run_for(seconds)
        return {tid: round(_cpu(p) - before[tid], 2) for tid, p in procs.items()}

    try:
        tick()
        assert run_for(10, lambda: cpushare.held == {"a", "b"}), f"not held: {cpushare.held}"
        held = used_over(5.0)
        assert held_at_a_tick == cpushare.held == {"a", "b"}
        for other in others:
            other.kill()
            other.wait()
        assert run_for(10, lambda: not cpushare.held), "still held after the other load ended"
        os.killpg(control.pid, signal.SIGCONT)
        free = used_over(2.0)
        print(f"CPU seconds held over 5 s: {held}; free over 2 s: {free}")
        assert all(held[tid] <= 1.5 * SHARE * 5.0 for tid in agents), held
        assert not held_at_a_tick
        assert all(free[tid] >= 0.8 * free["control"] for tid in agents), free  # a third of a core each
    finally:
        cpushare.release_all()
        for proc in [*agents.values(), control, *others]:
            proc.kill()  # a stopped process dies of SIGKILL too
            proc.wait()
        loop.close()
