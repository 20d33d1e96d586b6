"""Typed records of the engine: tasks as validated, and their states."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum, IntEnum
from pathlib import Path


class Priority(IntEnum):
    LOW = 0
    NORMAL = 1
    HIGH = 2
    CRITICAL = 3


class Status(str, Enum):
    PENDING = "pending"
    WAITING = "waiting"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    TIMEOUT = "timeout"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in FINISHED


FINISHED = frozenset({Status.SUCCESS, Status.FAILED, Status.TIMEOUT, Status.SKIPPED, Status.CANCELLED})


@dataclass(frozen=True)
class TaskSpec:
    """One task of a task file, with defaults applied and paths made absolute."""

    id: str
    index: int
    subject: str
    prompt: str | None
    command: tuple[str, ...] | str | None
    runner: str | None
    subagent: str | None
    model: str | None
    type: str | None
    blocked_by: tuple[str, ...]
    phase: str | None
    paths: tuple[str, ...]
    reads: tuple[str, ...]
    artifacts: tuple[str, ...]
    cwd: Path
    env: Mapping[str, str]
    timeout: float
    retries: int
    priority: Priority
    estimate: float | None
    required_skill: str | None = None
    required_agent: str | None = None
    skill_description: str | None = None
    skill_capabilities: tuple[str, ...] = ()
    agent_description: str | None = None
    agent_tools: tuple[str, ...] = ()
    isolation: str = "none"
    epic: str | None = None


@dataclass(frozen=True)
class TaskFile:
    path: Path
    tasks: tuple[TaskSpec, ...]

    def by_id(self) -> dict[str, TaskSpec]:
        return {t.id: t for t in self.tasks}
