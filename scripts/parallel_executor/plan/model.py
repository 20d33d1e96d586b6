"""Typed records of the engine: tasks as validated, and their states."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
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
    PAUSED = "paused"  # running, its tree stopped: by `pause`, or suspended for low memory
    SUCCESS = "success"
    FAILED = "failed"
    TIMEOUT = "timeout"
    SKIPPED = "skipped"
    NOT_NEEDED = "not needed"  # a one_failed task whose dependencies all succeeded: neither success nor failure
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in FINISHED


FINISHED = frozenset({Status.SUCCESS, Status.FAILED, Status.TIMEOUT, Status.SKIPPED, Status.NOT_NEEDED,
                      Status.CANCELLED})


@dataclass(frozen=True, slots=True)
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
    # Agent controls (§4): None where neither the task, the file's defaults nor the config sets one.
    permission_mode: str | None = None
    tools: str | None = None
    allowed_tools: str | None = None
    max_turns: int | None = None
    budget_usd: float | None = None
    fail_on_denials: bool = False
    trigger: str = "all_success"  # once its blockedBy tasks settled: all_success, all_done or one_failed
    base: str | None = None  # the branch, tag or commit its worktree starts from; None: the current HEAD
    merge: str | None = None  # merge, squash or none; None: the config's worktrees.merge

    @property
    def agent(self) -> str | None:
        """The agent it runs as: its subagent, else its required_agent (§4)."""
        return self.subagent or self.required_agent if self.prompt is not None else None


@dataclass(frozen=True)
class WorktreePrep:
    """What each new worktree gets before its first task (§4 `defaults.worktree`, §3.1 `worktrees`)."""

    setup: tuple[tuple[str, ...] | str, ...] = ()  # run at the worktree's root: argv, or a /bin/sh -c string
    copy: tuple[str, ...] = ()  # files or globs relative to the repository's root


@dataclass(frozen=True)
class TaskFile:
    path: Path
    tasks: tuple[TaskSpec, ...]
    warnings: tuple[str, ...] = ()  # what will not be passed to an agent as asked (validate and run print them)
    worktree: WorktreePrep = field(default_factory=WorktreePrep)  # the file's defaults.worktree, else the config's

    def by_id(self) -> dict[str, TaskSpec]:
        return {t.id: t for t in self.tasks}
