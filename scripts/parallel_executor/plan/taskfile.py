"""Loading a task file (PRODUCT §4): every problem of the file reported at once, one per line."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from parallel_executor.errors import UserError
from parallel_executor.plan import schemas
from parallel_executor.plan.config import Config
from parallel_executor.plan.graph import graph_problems
from parallel_executor.plan.model import Priority, TaskFile, TaskSpec


def load_task_file(
    path: Path, config: Config, base_dir: Path, overrides: Mapping[str, Any] | None = None
) -> TaskFile:
    """Parse and validate; `overrides` (from the command line) replace config and file defaults."""
    doc = _parse(path)
    explain = not schemas.is_valid("tasks", doc)  # the slow, detailed validation only when needed
    problems: list[str] = []
    defaults: dict[str, Any] = {}
    if isinstance(doc, list):
        items: list[Any] = doc
    elif isinstance(doc, dict):
        extra = sorted(set(doc) - {"tasks", "defaults"})
        if extra:
            problems.append("unknown top-level field " + ", ".join(map(repr, extra)))
        items = doc.get("tasks", [])
        if not isinstance(items, list):
            problems.append("'tasks' must be a list of tasks")
            items = []
        elif "tasks" not in doc:
            problems.append("'tasks' is required")
        defaults = doc.get("defaults", {})
        for e in schemas.validator("tasks", "defaults").iter_errors(defaults) if explain else ():
            field = ".".join(map(str, e.absolute_path))
            problems.append(f"defaults{', field ' + repr(field) if field else ''}: {schemas.describe(e)}")
    else:
        problems.append("must be a JSON object with 'tasks', or a list of tasks")
        items = []
    if not items and not problems:
        problems.append("holds no tasks")

    task_validator = schemas.validator("tasks", "task") if explain else None
    seen: dict[str, int] = {}
    valid: list[dict[str, Any]] = []
    for number, item in enumerate(items, 1):
        name = repr(item["id"]) if isinstance(item, dict) and isinstance(item.get("id"), str) else f"#{number}"
        if name[0] != "#" and item["id"] in seen:
            problems.append(f"duplicate task id {name} (tasks #{seen[item['id']]} and #{number})")
            continue
        if name[0] != "#":
            seen[item["id"]] = number
        errors = sorted(task_validator.iter_errors(item), key=lambda e: list(map(str, e.absolute_path))) \
            if task_validator else []
        for e in errors:
            text = schemas.describe(e)
            field = "" if text == schemas.NEEDS_ONE_RUNNABLE else ".".join(map(str, e.absolute_path))
            problems.append(f"task {name}{', field ' + repr(field) if field else ''}: {text}")
        if not errors:
            valid.append(item)

    # A task's own field wins, then the command line, then the file's defaults, then the config.
    fallback = {"timeout": config.task_timeout, "retries": config.retries, "runner": "claude",
                "priority": "normal", **(defaults if isinstance(defaults, dict) else {}), **(overrides or {})}
    merged = [{**fallback, **t} for t in valid]
    problems += graph_problems({t["id"]: t.get("blockedBy", []) for t in merged}, also_known=_ids(items))
    problems += _config_problems(merged, config)
    if problems:
        raise UserError([f"{path}: {p}" for p in problems])
    resolved: dict[str, Path] = {}  # resolving costs syscalls; tasks mostly share a cwd
    for t in merged:
        cwd = t.get("cwd", ".")
        if cwd not in resolved:
            resolved[cwd] = (base_dir / cwd).resolve()
        t["cwd"] = resolved[cwd]
    tasks = tuple(_build(i, t) for i, t in enumerate(merged))
    return TaskFile(path=path.resolve(), tasks=tasks)


def _ids(items: list[Any]) -> set[str]:
    """Ids of every item, valid or not, so a broken task does not also read as an unknown id."""
    return {i["id"] for i in items if isinstance(i, dict) and isinstance(i.get("id"), str)}


def _parse(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, not a task file") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text") from None
    except OSError as e:
        raise UserError(f"{path}: {e.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"{path}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}") from None


def _config_problems(tasks: list[dict[str, Any]], config: Config) -> list[str]:
    problems = []
    phases = {p.name for p in config.phases}
    for t in tasks:
        runner = t["runner"]
        if "prompt" in t and runner not in config.runners:
            known = ", ".join(sorted(config.runners))
            problems.append(f"task '{t['id']}', field 'runner': unknown runner {runner!r} (known: {known})")
        if "phase" in t and t["phase"] not in phases:
            known = ", ".join(p.name for p in config.phases)
            problems.append(f"task '{t['id']}', field 'phase': unknown phase {t['phase']!r} (known: {known})")
    return problems


def _build(index: int, t: dict[str, Any]) -> TaskSpec:
    command = t.get("command")
    return TaskSpec(
        id=t["id"],
        index=index,
        subject=t.get("subject", ""),
        prompt=t.get("prompt"),
        command=tuple(command) if isinstance(command, list) else command,
        runner=t["runner"] if "prompt" in t else None,
        subagent=t.get("subagent"),
        model=t.get("model"),
        type=t.get("type"),
        blocked_by=tuple(t.get("blockedBy", ())),
        phase=t.get("phase"),
        paths=tuple(t.get("paths", ())),
        reads=tuple(t.get("reads", ())),
        artifacts=tuple(t.get("artifacts", ())),
        cwd=t["cwd"],
        env=dict(t.get("env", {})),
        timeout=float(t["timeout"]),
        retries=int(t["retries"]),
        priority=Priority[t["priority"].upper()],
        estimate=t.get("estimate"),
        required_skill=t.get("required_skill"),
        required_agent=t.get("required_agent"),
        skill_description=t.get("skill_description"),
        skill_capabilities=tuple(t.get("skill_capabilities", ())),
        agent_description=t.get("agent_description"),
        agent_tools=tuple(t.get("agent_tools", ())),
        isolation=t.get("isolation", "none"),
        epic=t.get("epic"),
    )
