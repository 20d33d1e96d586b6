"""Admission by kind of task (§6, §7): how many agents run at once, the budget, and runners that
failed to authenticate; and how many command tasks run at once (the CPUs, unless -j says more).

- The cap is `max_parallel_tasks`, lowered while an agent's API answers with transient errors (rate
  limits, overload): halved (at least 1) on a transient failure, raised by one after each success.
  Rate limits belong to the account, not the run, so the level of each runner is kept in one file
  that the engine's concurrent runs share (memory/temp/agent-levels.json). A decrease counts once per
  burst: a failure of an attempt that started before the last decrease does not halve again (it was
  sent at the old level), as TCP treats the losses of one window.
- Budget: once the run's measured agent cost reaches it, no further agent task starts.
- After an authentication or login failure, no further task of that runner starts.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

from filelock import FileLock

from parallel_executor.agents.outcome import Outcome
from parallel_executor.engine.admission import NeverAdmitted
from parallel_executor.plan import schemas
from parallel_executor.plan.model import Status, TaskSpec
from parallel_executor.system.fsutil import private_dir, write_json_atomic
from parallel_executor.system.jsonfile import read_state
from parallel_executor.system.locations import temp_dir

FORGET_AFTER = 600.0  # a level not touched for this long is forgotten: the account has recovered


class SharedLevels:
    """Each runner's lowered agents-at-once level, in a file shared by concurrent runs."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or temp_dir() / "agent-levels.json"
        private_dir(self.path.parent)
        self.lock = FileLock(f"{self.path}.lock", timeout=30)
        self._seen: tuple[float, int] | None = None  # (mtime, size) of the file as last read
        self._levels: dict[str, Any] = {}

    def level(self, runner: str) -> int | None:
        """The runner's level, or None when it is not lowered (re-read only when the file changed)."""
        try:
            st = self.path.stat()
            seen = (st.st_mtime, st.st_size)
        except FileNotFoundError:
            seen = None
        if seen != self._seen:
            self._seen, self._levels = seen, self._read()
        entry = self._levels.get(runner)
        if entry is None or time.time() - entry["updated"] > FORGET_AFTER:
            return None
        return int(entry["level"])

    def lower(self, runner: str, current: int, started: float) -> int | None:
        """Halve the level after a transient failure of an attempt that started at `started`;
        returns the new level, or None when the failure belongs to a burst already counted."""
        with self.lock:
            levels = self._read()
            entry = levels.get(runner)
            if entry and time.time() - entry["updated"] <= FORGET_AFTER:
                if started < entry["lowered"]:
                    return None
                current = min(current, int(entry["level"]))
            now = time.time()
            new = max(1, current // 2)
            levels[runner] = {"level": new, "lowered": now, "updated": now}
            self._write(levels)
            return new

    def raise_(self, runner: str, ceiling: int) -> int | None:
        """One more after a success; the entry goes once the level is back at the ceiling."""
        if self.level(runner) is None:
            return None  # not lowered: nothing to write (the common case costs one stat)
        with self.lock:
            levels = self._read()
            entry = levels.get(runner)
            if entry is None:
                return None
            new = int(entry["level"]) + 1
            if new >= ceiling:
                del levels[runner]
            else:
                entry.update(level=new, updated=time.time())
            self._write(levels)
            return new

    def _read(self) -> dict[str, Any]:
        doc: dict[str, Any] = read_state(self.path, lambda d: schemas.is_valid("agent-levels", d),
                                         lambda: {"runners": {}})
        return doc["runners"]  # type: ignore[no-any-return]

    def _write(self, levels: dict[str, Any]) -> None:
        write_json_atomic(self.path, {"runners": levels})
        self._seen = None


class AgentGate:
    def __init__(self, cap: int, budget: float | None, levels: SharedLevels | None,
                 command_cap: int | None = None) -> None:
        self.cap, self.budget, self.levels, self.command_cap = cap, budget, levels, command_cap
        self.commands = 0  # command tasks running now
        self.running: Counter[str] = Counter()  # agents running now, per runner
        self.spent = 0.0
        self.locked_out: dict[str, str] = {}  # runner -> why
        self.lowered: dict[str, int] = {}  # runner -> level, as this run last saw it (for status and views)

    def limit(self, runner: str) -> int:
        level = self.levels.level(runner) if self.levels else None
        if level is None:
            self.lowered.pop(runner, None)
            return self.cap
        self.lowered[runner] = level
        return min(self.cap, level)

    def blocked(self, task: TaskSpec) -> str | None:
        runner = task.runner
        if runner is None:
            if self.command_cap is not None and self.commands >= self.command_cap:
                return f"waiting for a CPU ({self.commands}/{self.command_cap} command tasks at once)"
            return None
        if runner in self.locked_out:
            raise NeverAdmitted(self.locked_out[runner], Status.SKIPPED)
        if self.budget is not None and self.spent >= self.budget:
            raise NeverAdmitted(f"budget reached (${self.spent:.4g} of ${self.budget:g})", Status.SKIPPED)
        if sum(self.running.values()) >= self.cap:
            return f"waiting for an agent slot (agents {sum(self.running.values())}/{self.cap})"
        limit = self.limit(runner)
        if self.running[runner] >= limit:
            return f"waiting for an agent slot (agents {self.running[runner]}/{limit}: rate limited)"
        return None

    def started(self, task: TaskSpec) -> None:
        if task.runner is not None:
            self.running[task.runner] += 1
        else:
            self.commands += 1

    def settled(self, task: TaskSpec) -> None:
        pass  # attempts are counted by attempt_ended: a task waiting to retry holds no agent slot

    def attempt_ended(self, task: TaskSpec, outcome: Outcome | None, error_class: str | None,
                      started: float) -> str | None:
        """Count the attempt's cost and adapt the level; returns a line for the journal when the level moved."""
        runner = task.runner
        if runner is None:
            self.commands -= 1
            return None
        self.running[runner] -= 1
        if outcome is not None:
            self.spent += outcome.cost_usd
            if outcome.auth_failed and runner not in self.locked_out:
                self.locked_out[runner] = f"runner '{runner}' failed to authenticate in task '{task.id}': " \
                                          f"{(outcome.error or '').splitlines()[0][:160] if outcome.error else ''}"
        if not self.levels:
            return None
        if error_class == "transient":
            new = self.levels.lower(runner, self.running[runner] + 1, started)
            if new is not None:
                self.lowered[runner] = new
                return f"agents {runner}: rate limited, at most {new} at once"
        elif outcome is not None and outcome.ok:
            new = self.levels.raise_(runner, self.cap)
            if new is not None:
                self.lowered[runner] = new
                return f"agents {runner}: " + (f"at most {new} at once" if new < self.cap else f"back to {self.cap}")
        return None
