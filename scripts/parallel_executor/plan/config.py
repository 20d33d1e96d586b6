"""Configuration: shipped defaults <- installed config <- --config FILE (PRODUCT §3.1)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parallel_executor.errors import UserError
from parallel_executor.plan import schemas
from parallel_executor.system.locations import SHIPPED_CONFIG_DIR, installed_config

DEFAULT_CONFIG = SHIPPED_CONFIG_DIR / "parallel-execution-config.json"
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgt]i?)?b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12,
          "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}


def parse_size(value: int | str) -> int:
    """Bytes from an int or a string such as "256MB" or "2GiB"."""
    if isinstance(value, int):
        return value
    match = _SIZE.match(value)
    if not match:
        raise ValueError(f"not a size: {value!r}")
    return int(float(match.group(1)) * _UNITS[(match.group(2) or "").lower()])


@dataclass(frozen=True)
class Phase:
    name: str
    parallel: bool


@dataclass(frozen=True)
class RunnerConfig:
    name: str
    command: tuple[str, ...]
    model_args: tuple[str, ...]
    subagent_args: tuple[str, ...]
    output: str


@dataclass(frozen=True)
class Config:
    max_concurrent: int
    max_parallel_tasks: int
    emergency_boost: int
    task_timeout: float
    kill_grace: float
    retries: int
    retry_backoff: float
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
    refresh_interval: float


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
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise UserError(f"config {path}: no such file") from None
    except json.JSONDecodeError as e:
        raise UserError(f"config {path}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}") from None
    except OSError as e:
        raise UserError(f"config {path}: {e.strerror}") from None
    if schemas.is_valid("config", data):
        return data  # type: ignore[no-any-return]
    errors = sorted(schemas.validator("config").iter_errors(data), key=lambda e: list(e.path))
    if errors:
        raise UserError([
            f"config {path}: key '{'.'.join(map(str, e.absolute_path)) or '(top)'}': {schemas.describe(e)}"
            for e in errors
        ])
    assert isinstance(data, dict)
    return data


def load_config(path: Path | None = None) -> Config:
    raw = _read(DEFAULT_CONFIG)
    if installed_config().is_file():
        raw = _merge(raw, _read(installed_config()))
    if path is not None:
        raw = _merge(raw, _read(path))
    return _build(raw)


def _build(raw: dict[str, Any]) -> Config:
    limit = raw["memory_limit_per_agent"]
    return Config(
        max_concurrent=raw["max_concurrent"],
        max_parallel_tasks=raw["max_parallel_tasks"],
        emergency_boost=raw["emergency_boost"],
        task_timeout=float(raw["task_timeout_seconds"]),
        kill_grace=float(raw["kill_grace_seconds"]),
        retries=raw["retries"],
        retry_backoff=float(raw["retry_backoff_seconds"]),
        memory_per_agent=parse_size(raw["memory_per_agent"]),
        memory_reserve=parse_size(raw["memory_reserve"]),
        memory_limit_per_agent=None if limit is None else parse_size(limit),
        lock_timeout=float(raw["lock_timeout_seconds"]),
        phases=tuple(Phase(p["name"], p.get("parallel", True)) for p in raw["phases"]),
        exclusive_subagents=tuple(raw["exclusive_subagents"]),
        never_together=tuple((a, b) for a, b in raw["never_together"]),
        runners={
            name: RunnerConfig(
                name=name,
                command=tuple(r["command"]),
                model_args=tuple(r.get("model_args", ())),
                subagent_args=tuple(r.get("subagent_args", ())),
                output=r.get("output", "text"),
            )
            for name, r in raw["runners"].items()
        },
        merge_strategies=dict(raw["merge_strategies"]),
        temp_resources=dict(raw["temp_resources"]),
        refresh_interval=float(raw["monitoring"]["refresh_interval"]),
    )
