"""Why an attempt's tree is stopped (§7, §8), for every backend: a pause, low memory and a CPU share
are separate holds, each lifted on its own, so none can undo another; the tree continues only when
none is left. While it is paused or suspended for memory its timeout does not count."""

from __future__ import annotations

from dataclasses import dataclass, field

FREEZING = frozenset({"pause", "memory"})  # reasons to stop a tree that also stop its clock


@dataclass
class Holds:
    deadline: float  # monotonic; moved on by the time spent frozen
    reasons: set[str] = field(default_factory=set)
    frozen_at: float | None = None  # since when a freezing hold stops its clock
    frozen: float = 0.0  # seconds spent frozen before that

    def add(self, why: str, now: float) -> bool:
        """Hold it for `why`; True when the tree must be stopped now (it was running)."""
        if why in self.reasons:
            return False
        if why in FREEZING and self.frozen_at is None:
            self.frozen_at = now
        self.reasons.add(why)
        return len(self.reasons) == 1

    def lift(self, why: str, now: float) -> tuple[bool, bool]:
        """Lift `why`: whether the tree must be continued now, and whether its deadline moved (the
        timeout timer must be armed again)."""
        if why not in self.reasons:
            return False, False
        self.reasons.discard(why)
        moved = self.frozen_at is not None and not self.reasons & FREEZING
        if moved:
            assert self.frozen_at is not None
            self.frozen, self.deadline = self.frozen_for(now), self.deadline + now - self.frozen_at
            self.frozen_at = None
        return not self.reasons, moved

    def frozen_for(self, now: float) -> float:
        return self.frozen + (now - self.frozen_at if self.frozen_at is not None else 0.0)

    def due(self, now: float) -> bool:
        """The timeout is reached (never while frozen: lifting the hold arms the timer again)."""
        return self.frozen_at is None and now >= self.deadline - 0.001
