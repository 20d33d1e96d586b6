"""The engine's one event loop: a selector for descriptors (pidfds), a heap of timers, and a
wakeup pipe that signals (`signal.set_wakeup_fd`) and other threads (`call_soon_threadsafe`)
write to. Nothing polls: a finished child, a due timer, a signal or a completion from another
thread wakes the loop at once. It is also the scheduler's clock.
"""

from __future__ import annotations

import collections
import contextlib
import heapq
import os
import selectors
import signal
import time
from collections.abc import Callable
from types import FrameType

Action = Callable[[], None]
CAUGHT = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)
MAX_WAIT = 86400.0  # select() cannot wait ~25 days or more; waking once a day is free


class Loop:
    def __init__(self) -> None:
        self.selector = selectors.DefaultSelector()
        self.timers: list[tuple[float, int, Action]] = []
        self._seq = 0
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.selector.register(self._wake_r, selectors.EVENT_READ, self._drain)
        self._calls: collections.deque[Action] = collections.deque()
        self._signals: list[int] = []
        self._on_signal: Callable[[str], None] | None = None
        self._old_handlers: dict[int, object] = {}
        self._old_wakeup = -1

    # ---- the clock ------------------------------------------------------------------------

    monotonic = staticmethod(time.monotonic)
    time = staticmethod(time.time)

    def call_later(self, delay: float, action: Action) -> None:
        self._seq += 1
        heapq.heappush(self.timers, (time.monotonic() + delay, self._seq, action))

    # ---- sources of events ----------------------------------------------------------------

    def add_reader(self, fd: int, action: Action) -> None:
        self.selector.register(fd, selectors.EVENT_READ, action)

    def remove_reader(self, fd: int) -> None:
        self.selector.unregister(fd)

    def call_soon_threadsafe(self, action: Action) -> None:
        """From any thread: run `action` on the loop's thread, waking it now."""
        self._calls.append(action)  # deque.append is atomic
        with contextlib.suppress(BlockingIOError):  # a full pipe: the loop is awake already
            os.write(self._wake_w, b"\0")

    def catch_signals(self, on_signal: Callable[[str], None]) -> None:
        """SIGINT, SIGTERM and SIGUSR1/2 (`pause`/`unpause`) are handed to `on_signal` (by name) on the
        loop's thread, until close()."""
        self._on_signal = on_signal
        self._old_wakeup = signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        self._old_handlers = {s: signal.signal(s, self._caught) for s in CAUGHT}

    # ---- running --------------------------------------------------------------------------

    def run_until(self, done: Callable[[], bool], each_turn: Action) -> None:
        """Turn until done(): each turn calls each_turn, waits for the next event and handles it."""
        while not done():
            self._dispatch()
            each_turn()
            for key, _ in self.selector.select(self._wait_time()):
                key.data()
            self._dispatch()
            self._fire_timers()

    def run_pending(self) -> None:
        """Run what other threads handed over with call_soon_threadsafe (the loop has stopped turning)."""
        self._dispatch()

    def close(self) -> None:
        if self._on_signal is not None:
            for sig, handler in self._old_handlers.items():
                signal.signal(sig, handler)  # type: ignore[arg-type]
            signal.set_wakeup_fd(self._old_wakeup)
            self._on_signal = None
        self.selector.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _wait_time(self) -> float | None:
        if self._calls or self._signals:
            return 0.0
        return min(MAX_WAIT, max(0.0, self.timers[0][0] - time.monotonic())) if self.timers else None

    def _fire_timers(self) -> None:
        now = time.monotonic()
        while self.timers and self.timers[0][0] <= now:
            heapq.heappop(self.timers)[2]()

    def _dispatch(self) -> None:
        while self._calls:
            self._calls.popleft()()
        while self._signals and self._on_signal is not None:
            self._on_signal(signal.Signals(self._signals.pop(0)).name)

    def _caught(self, signum: int, frame: FrameType | None) -> None:
        self._signals.append(signum)  # acted on by the loop, woken through the wakeup fd

    def _drain(self) -> None:
        try:
            while os.read(self._wake_r, 512):
                pass
        except BlockingIOError:
            pass
