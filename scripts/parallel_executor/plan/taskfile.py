"""Loading a task file (PRODUCT §4): every problem of the file reported at once, one per line."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from parallel_executor.errors import UserError
from parallel_executor.plan import advice, checks, controls, schemas
from parallel_executor.plan.config import Config, worktree_prep
from parallel_executor.plan.graph import epic_problems, graph_problems, phase_problems
from parallel_executor.plan.model import Priority, TaskFile, TaskSpec, WorktreePrep
from parallel_executor.system import jsonfile


def load_task_file(
    path: Path, config: Config, base_dir: Path, overrides: Mapping[str, Any] | None = None
) -> TaskFile:
    """Parse and validate; `overrides` (from the command line) replace config and file defaults."""
    options = checks.option_problems(overrides or {})
    try:
        text = jsonfile.read_text(path)
        doc = jsonfile.parse(text)
    except (OSError, jsonfile.BadJSON) as e:
        raise UserError([*options, jsonfile.unreadable(str(path), e, "task file")]) from None
    explain = not schemas.is_valid("tasks", doc)  # the slow, detailed validation only when needed
    problems: list[str] = []
    defaults: dict[str, Any] = {}
    if isinstance(doc, list):
        items: list[Any] = doc
    elif isinstance(doc, dict):
        extra = sorted(set(doc) - {"tasks", "defaults"})
        if extra:
            problems.append("unknown top-level field " + ", ".join(map(schemas.short_repr, extra)))
        items = doc.get("tasks", [])
        if not isinstance(items, list):
            problems.append("'tasks' must be a list of tasks")
            items = []
        elif "tasks" not in doc:
            problems.append("'tasks' is required")
        defaults = _valid_defaults(doc.get("defaults", {}), problems, explain)
    else:
        problems.append("must be a JSON object with 'tasks', or a list of tasks")
        items = []
    if not items and not problems:
        problems.append("holds no tasks")

    task_validator = schemas.validator("tasks", "task") if explain else None
    seen: dict[str, int] = {}
    valid: list[dict[str, Any]] = []
    for number, item in enumerate(items, 1):
        name = _name(item, number)
        if name[0] != "#" and item["id"] in seen:
            problems.append(f"duplicate task id {name} (tasks #{seen[item['id']]} and #{number})")
            continue
        if name[0] != "#":
            seen[item["id"]] = number
        errors = sorted(task_validator.iter_errors(item), key=lambda e: list(map(str, e.absolute_path))) \
            if task_validator else []
        for error in errors:
            why = schemas.describe(error)
            field = "" if why == schemas.NEEDS_ONE_RUNNABLE else ".".join(map(str, error.absolute_path))
            problems.append(f"task {name}{_field(field)}: {why}")
        if not errors:
            valid.append(item)
    if explain and not problems:  # the two validators disagree: never run what the fast one refused
        problems.append("does not match the task file schema (config/schemas/tasks.schema.json)")

    problems += _cannot_run(valid, defaults, jsonfile.may_hold_bad_text(text))
    prep = defaults.pop("worktree", {})  # not a task field: what each new worktree gets
    # A task's own field wins, then the command line, then the file's defaults, then the config.
    fallback = {"timeout": config.task_timeout, "retries": config.retries, "runner": "claude",
                "priority": "normal", **defaults, **(overrides or {})}
    merged = [{**fallback, **t} for t in valid]
    deps = {t["id"]: t.get("blockedBy", []) for t in merged}
    cycles = graph_problems(deps, also_known=_ids(items))
    problems += cycles
    problems += _config_problems(merged, config)
    problems += controls.placeholder_problems(merged)
    epics = {t["id"]: t["epic"] for t in merged if t.get("isolation") == "worktree" and "epic" in t}
    problems += _epic_conflicts(merged, epics, config.worktree_merge)
    if not problems and any("phase" in t for t in merged):
        order = {p.name: i for i, p in enumerate(config.phases)}
        problems += phase_problems(deps, {t["id"]: t.get("phase") for t in merged}, order)
    if not cycles and epics:
        problems += epic_problems(deps, epics)
    if problems or options:
        raise UserError([*options, *(f"{path}: {p}" for p in problems)])
    warnings = controls.apply_agent_defaults(merged, config) + _unused_worktree_fields(valid, merged, defaults)
    resolved: dict[str, Path] = {}  # resolving costs syscalls; tasks mostly share a cwd
    for t in merged:
        cwd = t.get("cwd", ".")
        if cwd not in resolved:
            resolved[cwd] = (base_dir / cwd).resolve()
        t["cwd"] = resolved[cwd]
    programs = {name: runner.command[0] for name, runner in config.runners.items()}
    warnings += advice.task_warnings(merged, config.merge_strategies, programs)
    tasks = tuple(_build(i, t) for i, t in enumerate(merged))
    given = worktree_prep(prep)  # each key the file gives replaces the config's as a whole
    worktree = WorktreePrep(setup=given.setup if "setup" in prep else config.worktree_prep.setup,
                            copy=given.copy if "copy" in prep else config.worktree_prep.copy)
    return TaskFile(path=path.resolve(), tasks=tasks, warnings=tuple(warnings), worktree=worktree)


def _name(item: Any, number: int) -> str:
    """How messages name a task: 'ID' when it has a usable one, else #N (its place in the file)."""
    if isinstance(item, dict) and isinstance(item.get("id"), str):
        return schemas.short_repr(item["id"], 140)
    return f"#{number}"


def _field(field: str) -> str:
    return f", field {schemas.short_repr(field)}" if field else ""


def _valid_defaults(defaults: Any, problems: list[str], explain: bool) -> dict[str, Any]:
    """The file's defaults that passed validation: a bad one is reported, and applied to no task."""
    if not isinstance(defaults, dict):
        problems.append(f"'defaults' must be an object, not {schemas.short_repr(defaults)}")
        return {}
    bad: set[str] = set()
    for e in schemas.validator("tasks", "defaults").iter_errors(defaults) if explain else ():
        field = ".".join(map(str, e.absolute_path))
        problems.append(f"defaults{_field(field)}: {schemas.describe(e)}")
        if e.absolute_path:
            bad.add(str(e.absolute_path[0]))
    known = schemas.load_schema("tasks")["$defs"]["defaults"]["properties"]
    return {k: v for k, v in defaults.items() if k in known and k not in bad}


def _cannot_run(tasks: list[dict[str, Any]], defaults: dict[str, Any], suspect_text: bool) -> list[str]:
    """What passes the schema but could not run: reserved ids, impossible env names, and (only when
    the file has a \\u escape that could make one) NUL characters and lone surrogates."""
    problems = [f"defaults{_field(f)}: {why}" for f, why in checks.env_problems(defaults.get("env"))]
    prep = defaults.get("worktree")
    if isinstance(prep, dict):
        copy = prep.get("copy")
        problems += [f"defaults{_field(f)}: {why}" for f, why in checks.copy_problems(copy, "worktree.copy")]
    if suspect_text:
        problems += [f"defaults{_field(f)}: {why}" for f, why in checks.text_problems(defaults)]
    for t in tasks:
        found = [("id", checks.RESERVED_ID)] if checks.reserved_id(t["id"]) else []
        if "env" in t:
            found += checks.env_problems(t["env"])
        if suspect_text:
            found += checks.text_problems(t)
        problems += [f"task {_name(t, 0)}{_field(f)}: {why}" for f, why in found]
    return problems


def _ids(items: list[Any]) -> set[str]:
    """Ids of every item, valid or not, so a broken task does not also read as an unknown id."""
    return {i["id"] for i in items if isinstance(i, dict) and isinstance(i.get("id"), str)}


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


def _epic_conflicts(tasks: list[dict[str, Any]], epics: Mapping[str, str], default_merge: str) -> list[str]:
    """The tasks of an epic share one branch: one `base` to start it from, one way to `merge` it back."""
    problems = []
    first: dict[str, dict[str, Any]] = {}
    reported: set[tuple[str, str]] = set()
    for t in tasks:
        if t["id"] not in epics:
            continue
        epic = epics[t["id"]]
        lead = first.setdefault(epic, t)
        for key, default in (("base", None), ("merge", default_merge)):
            mine, theirs = t.get(key, default), lead.get(key, default)
            if mine != theirs and (epic, key) not in reported:
                reported.add((epic, key))
                shown = [repr(v) if v is not None else "the current HEAD" for v in (theirs, mine)]
                problems.append(f"epic '{epic}': tasks '{lead['id']}' and '{t['id']}' have a different '{key}' "
                                f"({shown[0]} and {shown[1]}); the tasks of an epic share one branch")
    return problems


def _unused_worktree_fields(tasks: list[dict[str, Any]], merged: list[dict[str, Any]],
                            defaults: Mapping[str, Any]) -> list[str]:
    """`epic`, `base` and `merge` only mean something to a task with isolation 'worktree': said, not refused."""
    unused: dict[str, list[str]] = {}
    for own, t in zip(tasks, merged, strict=True):
        if t.get("isolation") != "worktree":
            for key in ("epic", "base", "merge"):
                if key in own:
                    unused.setdefault(key, []).append(own["id"])
    lines = []
    for key, ids in unused.items():
        shown = ", ".join(map(repr, ids[:3])) + (", ..." if len(ids) > 3 else "")
        lines.append(f"task{'s' * (len(ids) > 1)} {shown}, field '{key}': has no effect without "
                     f"\"isolation\": \"worktree\"{f' ({len(ids):,} tasks)' if len(ids) > 1 else ''}")
    if not any(t.get("isolation") == "worktree" for t in merged):
        lines += [f"defaults, field '{key}': has no effect, since no task has \"isolation\": \"worktree\""
                  for key in ("epic", "base", "merge") if key in defaults]
    return lines


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
        permission_mode=t.get("permission_mode"),
        tools=_tool_list(t.get("tools")),
        allowed_tools=_tool_list(t.get("allowed_tools")),
        max_turns=t.get("max_turns"),
        budget_usd=t.get("budget_usd"),
        fail_on_denials=bool(t.get("fail_on_denials")),
        trigger=t.get("trigger", "all_success"),
        base=t.get("base"),
        merge=t.get("merge"),
    )


def _tool_list(value: str | list[str] | None) -> str | None:
    return ",".join(value) if isinstance(value, list) else value
