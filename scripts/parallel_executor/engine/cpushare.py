"""cpu_per_agent (§7): while the machine's CPU is saturated, an agent task whose process tree used
more than its share over the last measuring tick is held to that share, until the pressure is gone.

Holding is slicing: in every `period` a held tree runs for `duty * period` and is stopped
(backend.suspend, SIGSTOP to the tree) for the rest, then continued (backend.resume, SIGCONT).
The duty starts at share / (the cores the tree used when it was held), so a tree busy on two cores
gets half the wall time of one busy on one, and each tick corrects it from what the tree used
while held (a tree that cannot use its slice, because it waits or others compete, gets longer
ones, up to never being stopped). Timers are on the engine's clock; a timer of a hold that ended
finds it gone and does nothing, so a forgotten task is never signalled again.

Why no cgroup v2 `cpu.max` path: on the machine this was written on (a Firecracker VM, Linux
6.18, running as root) /sys/fs/cgroup is a cgroup v1 hierarchy (cpu, cpuacct, memory, ... mounted
separately); cgroup v2 is only mounted at /sys/fs/cgroup/unified, with no controller in its
cgroup.controllers (the cpu controller is bound to v1), so there is no `cpu.max` anywhere to
write, and the engine's own cgroup (/proc/self/cgroup: `0::/`) is the root. A cgroup path also
needs each attempt started in a cgroup of its own (delegated, created before the tree forks,
removed after), which is backend work that could not be tested here. Slicing works wherever the
backend can suspend and resume a tree; a cgroup path can be added behind the same `held` later.

Pressure, measured honestly: holding trees frees the CPU they were using, so the machine's load
while tasks are held says little about whether the pressure is gone. The load is therefore
counted as if the held trees ran free: a held tree that uses all its share is assumed to want what
it used before it was held (one that uses less wants no more). The pressure starts when that
load reaches HIGH of all cores and ends only after it stayed below LOW for CALM_TICKS ticks in a
row (hysteresis, so that a load hovering near the threshold does not hold and free on every tick).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Protocol

from parallel_executor.engine.ports import Clock

HIGH = 0.9  # the machine is saturated when this fraction of all its cores is busy...
LOW = 0.75  # ...and the pressure is gone when the load stayed below this fraction
CALM_TICKS = 2  # for this many measuring ticks in a row
MIN_DUTY = 0.02  # of each period a held tree runs at least (2 ms of 100 ms)
WANTS_MORE = 0.8  # a held tree using this much of its share is taken to want more than its share


class Holder(Protocol):
    """What holding needs from the backend."""

    def suspend(self, task_id: str, why: str) -> None: ...

    def resume(self, task_id: str, why: str) -> None: ...


class MachineLoad:
    """The fraction of all the machine's cores that was busy since the previous call (the first
    call: since boot). psutil is imported on the first call, not with this module."""

    def __init__(self) -> None:
        self._last: tuple[float, float] | None = None  # (busy, total) CPU seconds of all cores

    def __call__(self) -> float:
        import psutil  # here, not at the top: the scheduler imports this module and must not load psutil

        times = psutil.cpu_times()
        # As psutil.cpu_percent counts: guest time is in user time already; idle and iowait are not busy.
        total = sum(times) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)
        busy = total - times.idle - getattr(times, "iowait", 0.0)
        last, self._last = self._last or (0.0, 0.0), (busy, total)
        return 0.0 if total <= last[1] else min(1.0, max(0.0, (busy - last[0]) / (total - last[1])))


@dataclass(eq=False)
class _Hold:
    free_rate: float  # cores the tree used over the tick before it was held: what it wants running free
    duty: float  # the fraction of each period it runs
    stopped: bool = False  # stopped by this hold now (only then does releasing it continue it)


class CpuShare:
    def __init__(self, share: float, clock: Clock, backend: Holder, load: Callable[[], float] | None = None,
                 cores: int | None = None, period: float = 0.1) -> None:
        """share: of one core (0.2 for "20%"). load: the fraction of all cores busy since its previous
        call (default: the machine's, from psutil). cores: the machine's (default os.cpu_count())."""
        self.share, self.clock, self.backend, self.period = share, clock, backend, period
        self.load = load if load is not None else MachineLoad()
        self.cores = cores or os.cpu_count() or 1
        self.pressure = False  # the machine is saturated (or was, and has not stayed calm long enough)
        self.demand = 0.0  # the last tick's load in cores, counting held trees as if they ran free
        self._calm = 0  # ticks in a row the load stayed below LOW while under pressure
        self._seen: dict[str, tuple[float, float]] = {}  # task -> (monotonic time, CPU seconds) at the last tick
        self._holds: dict[str, _Hold] = {}

    @property
    def held(self) -> set[str]:
        """The tasks held to their share now ("throttled: cpu")."""
        return set(self._holds)

    def tick(self, cpu_seconds: Mapping[str, float], interval: float, exempt: Collection[str] = ()) -> None:
        """Every measuring tick: the cumulative CPU seconds of each running agent task's tree. Tasks
        in `exempt` are suspended for another reason (memory, pause): never held, never continued.
        A held task missing from `cpu_seconds` is released (the backend ignores one that ended)."""
        now = self.clock.monotonic()
        rates: dict[str, float] = {}  # cores each tree used since the last tick
        for tid, cpu in cpu_seconds.items():
            then = self._seen.get(tid)
            self._seen[tid] = (now, cpu)
            if then is not None:
                rates[tid] = max(0.0, cpu - then[1]) / (now - then[0] if now > then[0] else interval)
        for tid in [t for t in self._seen if t not in cpu_seconds]:
            self._release(tid)
            del self._seen[tid]
        for tid in [t for t in self._holds if t in exempt]:
            del self._holds[tid]  # stop slicing it; whoever suspended it continues it
        self.demand = self.load() * self.cores + sum(
            max(0.0, hold.free_rate - rates.get(tid, 0.0)) for tid, hold in self._holds.items()
            if rates.get(tid, 0.0) >= WANTS_MORE * self.share)
        if self.demand >= HIGH * self.cores:
            self.pressure, self._calm = True, 0
        elif self.pressure and self.demand < LOW * self.cores:
            self._calm += 1
            self.pressure = self._calm < CALM_TICKS
        else:
            self._calm = 0
        if not self.pressure:
            self._calm = 0
            for tid in list(self._holds):
                self._release(tid)
            return
        for tid, rate in rates.items():
            hold = self._holds.get(tid)
            if hold is not None:
                hold.duty = _adjusted(hold.duty, rate, self.share)
            elif tid not in exempt and rate > self.share:
                self._hold(tid, rate)

    def forget(self, task_id: str) -> None:
        """The attempt ended (or was suspended for another reason): stop slicing it, signal it no more."""
        self._holds.pop(task_id, None)
        self._seen.pop(task_id, None)

    def release_all(self) -> None:
        """End of the run: continue every held tree."""
        for tid in list(self._holds):
            self.backend.resume(tid, "cpu")
            del self._holds[tid]
        self.pressure, self._calm = False, 0

    # ---- slicing ---------------------------------------------------------------------------------

    def _hold(self, task_id: str, rate: float) -> None:
        hold = _Hold(rate, min(1.0, max(MIN_DUTY, self.share / rate)))
        self._holds[task_id] = hold
        self._stop(task_id, hold)  # it has had more than its share already: begin with the pause

    def _release(self, task_id: str) -> None:
        hold = self._holds.pop(task_id, None)
        if hold is not None and hold.stopped:
            self.backend.resume(task_id, "cpu")

    def _run(self, task_id: str, hold: _Hold) -> None:
        if self._holds.get(task_id) is not hold:
            return  # released, forgotten or exempted since: a later hold has timers of its own
        if hold.stopped:
            self.backend.resume(task_id, "cpu")
            hold.stopped = False
        self.clock.call_later(hold.duty * self.period, lambda: self._stop(task_id, hold))

    def _stop(self, task_id: str, hold: _Hold) -> None:
        if self._holds.get(task_id) is not hold:
            return
        if hold.duty < 1.0:
            self.backend.suspend(task_id, "cpu")
            hold.stopped = True
        self.clock.call_later((1.0 - hold.duty) * self.period if hold.duty < 1.0 else self.period,
                              lambda: self._run(task_id, hold))


def _adjusted(duty: float, rate: float, share: float) -> float:
    """The duty for the next tick, from the cores a held tree used over the last one: scaled down
    when it used more than its share, up (at most 1.5 times a tick) when it used less."""
    if rate > 1.1 * share:
        duty *= share / rate
    elif rate < 0.9 * share:
        duty *= min(1.5, share / rate) if rate > 0 else 1.5
    return min(1.0, max(MIN_DUTY, duty))
