"""Configuration: shipped defaults <- installed config <- --config FILE (PRODUCT §3.1)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parallel_executor.errors import UserError
from parallel_executor.plan import checks, schemas
from parallel_executor.plan.model import WorktreePrep
from parallel_executor.system import jsonfile
from parallel_executor.system.locations import SHIPPED_CONFIG_DIR, installed_config

DEFAULT_CONFIG = SHIPPED_CONFIG_DIR / "parallel-execution-config.json"
_SIZE = re.compile(r"^\s*([0-9]{1,1000}(?:\.[0-9]{1,1000})?)\s*([kmgt]i?)?b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12,
          "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}


def parse_size(value: int | float | str) -> int:
    """Bytes from a number or a string such as "256MB" or "2GiB"."""
    if isinstance(value, (int, float)):
        return int(value)
    match = _SIZE.match(value)
    if not match:
        raise ValueError(f"not a size: {value!r}")
    whole, _, fraction = match.group(1).partition(".")  # exact: no float to overflow or round
    scale: int = 10 ** len(fraction)
    return int(whole + fraction) * _UNITS[(match.group(2) or "").lower()] // scale


def parse_share(value: int | float | str | None) -> float | None:
    """A CPU share as a fraction of one core: "20%" and 20 are both a fifth of a core."""
    if value is None:
        return None
    number = float(value.strip().rstrip("%")) if isinstance(value, str) else float(value)
    return number / 100 if number > 0 else None


@dataclass(frozen=True)
class Phase:
    name: str
    parallel: bool


@dataclass(frozen=True)
class RunnerConfig:
    """An agent CLI as an argv template (§3.1): `command`, the option groups that apply, `prompt_args` last."""

    name: str
    command: tuple[str, ...]
    output: str
    prompt_args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    model_args: tuple[str, ...] = ()
    subagent_args: tuple[str, ...] = ()
    permission_modes: Mapping[str, tuple[str, ...]] | None = None  # None: the CLI has no permission flag
    tools_args: tuple[str, ...] = ()
    allowed_tools_args: tuple[str, ...] = ()
    max_turns_args: tuple[str, ...] = ()
    budget_args: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, name: str, r: Mapping[str, Any]) -> RunnerConfig:
        groups = {k: tuple(r.get(k, ())) for k in _GROUPS}
        if any("{prompt}" in arg for arg in r["command"]):
            groups["prompt_args"] = ()  # an older config's command holds the prompt itself
        modes = r.get("permission_modes")
        return cls(name=name, command=tuple(r["command"]), output=r.get("output", "text"), env=dict(r.get("env", {})),
                   permission_modes=None if modes is None else {m: tuple(a) for m, a in modes.items()}, **groups)


_GROUPS = ("prompt_args", "model_args", "subagent_args", "tools_args", "allowed_tools_args", "max_turns_args",
           "budget_args")


@dataclass(frozen=True)
class Config:
    max_concurrent: int
    max_parallel_tasks: int
    max_concurrent_commands: int | None
    emergency_boost: int
    task_timeout: float
    kill_grace: float
    retries: int
    retry_backoff: float
    transient_retries: int
    adaptive_concurrency: bool
    budget_usd: float | None
    cpu_per_agent: float | None  # a fraction of one core
    permission_mode: str | None  # agent_defaults
    fail_on_denials: bool
    memory_per_agent: int
    memory_reserve: int
    memory_limit_per_agent: int | None
    lock_timeout: float
    phases: tuple[Phase, ...]
    exclusive_subagents: tuple[str, ...]
    never_together: tuple[tuple[str, str], ...]
    runners: dict[str, RunnerConfig]
    merge_strategies: dict[str, str]
    temp_resources: dict[str, float]
    runs_retention_days: float  # 0: runs are kept forever
    refresh_interval: float
    worktrees_root: Path  # where worktrees are made (§3): absolute, never under a folder named .claude
    worktree_prep: WorktreePrep  # setup and copy for each new worktree, unless the task file says otherwise
    worktree_merge: str  # merge, squash or none: for a worktree task that sets no `merge`


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Maps merge key by key (a partial `runners` adds a runner); anything else is replaced."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read(path: Path) -> dict[str, Any]:
    try:
        data = jsonfile.read_json(path)
    except (OSError, jsonfile.BadJSON) as e:
        raise UserError(jsonfile.unreadable(f"config {path}", e, "config file")) from None
    if schemas.is_valid("config", data):
        problems = []
    else:
        errors = sorted(schemas.validator("config").iter_errors(data), key=lambda e: list(map(str, e.path)))
        problems = [(".".join(map(str, e.absolute_path)) or "(top)", schemas.describe(e)) for e in errors]
        problems = problems or [("(top)", "does not match the config schema (config/schemas/config.schema.json)")]
    problems += checks.text_problems(data)  # a config is small: always walked
    worktrees = data.get("worktrees") if isinstance(data, dict) else None
    if isinstance(worktrees, dict):
        problems += checks.copy_problems(worktrees.get("copy"), "worktrees.copy")
    if problems:
        raise UserError([f"config {path}: key {schemas.short_repr(key)}: {why}" for key, why in problems])
    assert isinstance(data, dict)
    return data


def load_config(path: Path | None = None) -> Config:
    files = [DEFAULT_CONFIG, *([installed_config()] if installed_config().is_file() else []),
             *([path] if path is not None else [])]
    raw: dict[str, Any] = {}
    source: dict[str, Path] = {}  # which file set each key last, for the message of a check below
    for file in files:
        layer = _read(file)
        raw = _merge(raw, layer)
        source.update(dict.fromkeys(layer, file))
        if "root" in layer.get("worktrees", {}):
            source["worktrees.root"] = file
    config = _build(raw, worktrees_root(raw["worktrees"]["root"], source.get("worktrees.root", DEFAULT_CONFIG)))
    _check_memory(config, raw, source)
    return config


def _check_memory(config: Config, raw: dict[str, Any], source: dict[str, Path]) -> None:
    """A task starts only while memory_per_agent + memory_reserve is available: more than the
    machine has would make every task wait forever."""
    total = total_memory()
    if config.memory_per_agent + config.memory_reserve <= total:
        return
    key = "memory_reserve" if config.memory_reserve > total or source["memory_per_agent"] == DEFAULT_CONFIG \
        else "memory_per_agent"
    other = "memory_per_agent" if key == "memory_reserve" else "memory_reserve"
    raise UserError(
        f"config {source[key]}: key '{key}': {schemas.short_repr(raw[key], 40)} plus {other} "
        f"{schemas.short_repr(raw[other], 40)} is more than this machine's memory ({total / 2**30:.1f} GiB): "
        "no task could ever start")


def worktrees_root(value: str | None, file: Path) -> Path:
    """The config's `worktrees.root` (None: the XDG state dir's), checked: Claude Code refuses to edit
    any path with a `.claude` part, even with acceptEdits (§3), so an agent could do nothing there."""
    if value is None:
        state = os.environ.get("XDG_STATE_HOME", "")
        # the XDG spec ignores a relative value
        root = Path(state if os.path.isabs(state) else Path.home() / ".local" / "state") / "parallel-executor" \
            / "worktrees"
        shown = f"null (the default, {root})"
    else:
        root = Path(os.path.expanduser(value))
        shown = schemas.short_repr(value, 80)
        if not root.is_absolute():  # it would depend on the directory the engine happens to start in
            raise UserError(f"config {file}: key 'worktrees.root': {shown} must be an absolute path or start with ~")
    root = Path(os.path.normpath(root))
    if ".claude" in root.parts or ".claude" in root.resolve().parts:
        raise UserError(f"config {file}: key 'worktrees.root': {shown} is inside a folder named '.claude', where "
                        "Claude Code refuses to edit any file (even with acceptEdits): choose a root outside it")
    return root


def worktree_prep(raw: Mapping[str, Any]) -> WorktreePrep:
    """A `worktrees` config entry or a task file's `defaults.worktree`, as validated by its schema."""
    return WorktreePrep(setup=tuple(c if isinstance(c, str) else tuple(c) for c in raw.get("setup", ())),
                        copy=tuple(raw.get("copy", ())))


def total_memory() -> int:
    """Bytes of physical memory (what psutil.virtual_memory().total says, without importing it)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        import psutil

        return int(psutil.virtual_memory().total)


def _build(raw: dict[str, Any], root: Path) -> Config:
    limit = raw["memory_limit_per_agent"]
    return Config(
        max_concurrent=int(raw["max_concurrent"]),  # the schema's integers may be written 2.0
        max_parallel_tasks=int(raw["max_parallel_tasks"]),
        max_concurrent_commands=None if raw["max_concurrent_commands"] is None else int(raw["max_concurrent_commands"]),
        emergency_boost=int(raw["emergency_boost"]),
        task_timeout=float(raw["task_timeout_seconds"]),
        kill_grace=float(raw["kill_grace_seconds"]),
        retries=int(raw["retries"]),
        retry_backoff=float(raw["retry_backoff_seconds"]),
        transient_retries=int(raw["transient_retries"]),
        adaptive_concurrency=bool(raw["adaptive_concurrency"]),
        budget_usd=None if raw["budget_usd"] is None else float(raw["budget_usd"]),
        cpu_per_agent=parse_share(raw["cpu_per_agent"]),
        permission_mode=raw["agent_defaults"].get("permission_mode"),
        fail_on_denials=bool(raw["agent_defaults"].get("fail_on_denials", False)),
        memory_per_agent=parse_size(raw["memory_per_agent"]),
        memory_reserve=parse_size(raw["memory_reserve"]),
        memory_limit_per_agent=None if limit is None else parse_size(limit),
        lock_timeout=float(raw["lock_timeout_seconds"]),
        phases=tuple(Phase(p["name"], p.get("parallel", True)) for p in raw["phases"]),
        exclusive_subagents=tuple(raw["exclusive_subagents"]),
        never_together=tuple((a, b) for a, b in raw["never_together"]),
        runners={name: RunnerConfig.from_dict(name, r) for name, r in raw["runners"].items()},
        merge_strategies=dict(raw["merge_strategies"]),
        temp_resources=dict(raw["temp_resources"]),
        runs_retention_days=float(raw["runs_retention_days"]),
        refresh_interval=float(raw["monitoring"]["refresh_interval"]),
        worktrees_root=root,
        worktree_prep=worktree_prep(raw["worktrees"]),
        worktree_merge=raw["worktrees"]["merge"],
    )
