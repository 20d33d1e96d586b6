"""What the scheduler needs from the rest of the engine, as small interfaces: a clock with timers
(the loop), an observer of its decisions (journal, documents, views), the translation of a task
into an attempt and of an attempt's output into an outcome, and the memory watch. The backend's
interface is in backends/__init__.py."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from parallel_executor.agents.outcome import Outcome
from parallel_executor.engine.backends import AttemptSpec
from parallel_executor.engine.records import Actions, TaskRun, Usage


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def time(self) -> float: ...

    def call_later(self, delay: float, action: Callable[[], None]) -> None: ...


class Timers:
    """Timers on a clock, counted: with none armed, nothing running and nothing ready, a run has stalled."""

    def __init__(self, clock: Clock) -> None:
        self.clock, self.armed = clock, 0

    def later(self, delay: float, action: Callable[[], None]) -> None:
        self.armed += 1

        def fire() -> None:
            self.armed -= 1
            action()

        self.clock.call_later(delay, fire)


class Observer(Protocol):
    def event(self, kind: str, **fields: Any) -> None:
        """A journal line that is not a task's change of state (a signal, a stop)."""

    def changed(self, kind: str, task: TaskRun, **fields: Any) -> None: ...

    def touched(self, task: TaskRun) -> None:
        """Something shown of `task` changed (its latest message), with nothing to journal."""

    def settled(self, task: TaskRun) -> None:
        """`task` reached its final state; called before any dependent can start."""


class Attempts(Protocol):
    def prepare(self, task: TaskRun) -> AttemptSpec: ...

    def outcome(self, task: TaskRun, exit_code: int) -> Outcome: ...

    def live(self, task: TaskRun) -> tuple[str | None, str | None]:
        """A running agent's latest message, and why its attempt must end now (or None)."""


class Watch(Protocol):
    """The memory watch: measured every `interval` seconds while tasks run."""

    interval: float
    free: int

    @property
    def usage(self) -> Mapping[str, Usage]: ...

    def tick(self, running: Mapping[str, tuple[int, float]]) -> Actions: ...
