"""Typed records of a run: its options, each task's files and what happened to it, and the
figures a resource watch measures. The scheduler keeps them; documents and views read them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from parallel_executor.agents.outcome import Outcome
from parallel_executor.plan.model import Status, TaskSpec


@dataclass(frozen=True)
class RunOptions:
    slots: int
    halt: str = "never"
    schedule: str = "dynamic"
    kill_grace: float = 5.0
    retry_backoff: float = 2.0
    lock_timeout: float = 300.0
    boost: int = 0  # critical tasks may use extra slots, up to this many tasks in all
    transient_retries: int = 5  # more attempts for an agent's transient failures, beside a task's retries
    command_slots: int | None = None  # command tasks at once, when fewer than `slots` (§6: the CPUs)
    scheduler: str | None = None  # --backend dask: the scheduler's address (None: an embedded cluster)


class TaskFiles(NamedTuple):
    """A task's files in the results directory; `data` is its PARALLEL_RESULT_FILE."""

    result: str
    stdout: str
    stderr: str
    data: str


@dataclass(slots=True)
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
    peak_rss: int | None = None  # measured by the memory watch, when there is one
    cpu_seconds: float | None = None
    attempt_start: float = 0.0  # wall clock, of the last attempt
    transient: int = 0  # attempts that ended in a transient failure and were retried for it
    error_class: str | None = None  # of the last attempt: transient, permanent or None
    cost: float = 0.0  # over every attempt (§8)
    tokens_in: int = 0  # over every attempt, like the cost
    tokens_out: int = 0
    live: str | None = None  # a running agent's latest message
    throttled: bool = False  # held to its CPU share
    memory_hold: str = ""  # why its tree is suspended for low memory, while it is
    branch: str | None = None  # the git branch of its worktree (§11)

    def show_hold(self, paused: bool) -> None:
        """A running task's status and reason (§8) under a pause of the run and a memory suspension."""
        held = ["paused"] * paused + [self.memory_hold] * bool(self.memory_hold)
        self.status, self.reason = (Status.PAUSED, "; ".join(held)) if held else (Status.RUNNING, "")

    def restore(self, doc: Mapping[str, Any]) -> None:
        """Its success in an earlier session of the run, from its result file (read defensively)."""
        self.status, self.reused = Status.SUCCESS, True
        self.attempts = doc.get("attempts", 1)
        self.exit_code = doc.get("exit_code", 0)
        self.busy = doc.get("duration", 0.0)
        self.outcome = Outcome(ok=True, result=doc.get("output", ""))
        cost, usage = doc.get("cost_usd"), doc.get("usage")
        self.cost = float(cost) if isinstance(cost, (int, float)) else 0.0
        usage = usage if isinstance(usage, dict) else {}
        self.tokens_in, self.tokens_out = (v if isinstance(v := usage.get(k), int) else 0
                                           for k in ("input_tokens", "output_tokens"))
        self.reason = "succeeded in an earlier attempt of this run"

    def count(self, outcome: Outcome) -> None:
        """Add an attempt's cost and tokens to the task's."""
        self.cost += outcome.cost_usd
        self.tokens_in += int(outcome.usage.get("input_tokens", 0))
        self.tokens_out += int(outcome.usage.get("output_tokens", 0))

    @property
    def error_line(self) -> str:
        """The first line of its error, as status rows, the report and failure headers show it."""
        return self.error.strip().split("\n", 1)[0] if self.error else ""

    @property
    def tokens(self) -> dict[str, int]:
        return {"input_tokens": self.tokens_in, "output_tokens": self.tokens_out}


def final_state(tasks: Iterable[TaskRun], signal: str | None, unsettled: int) -> str:
    """How a run ended (§8): cancelled by a signal, or by its tasks' statuses."""
    if signal is not None:
        return "cancelled"
    statuses = [t.status for t in tasks if t.status is not Status.NOT_NEEDED]
    if all(s is Status.SUCCESS for s in statuses):
        return "success"
    if unsettled:
        return "running"
    return "partial" if Status.SUCCESS in statuses else "failed"


@dataclass
class Usage:
    peak_rss: int = 0
    cpu_seconds: float = 0.0


@dataclass
class Actions:
    """What a memory tick asks for."""

    kill: dict[str, str] = field(default_factory=dict)  # task id -> why
    suspend: list[str] = field(default_factory=list)
    resume: list[str] = field(default_factory=list)
