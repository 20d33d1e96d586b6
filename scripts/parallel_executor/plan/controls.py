"""Agent controls and prompt placeholders of a task file (§3.1, §4), checked before anything runs.

A control the task's runner cannot express (a permission mode it has no entry for, `max_turns` on
a CLI without a turn limit) is a warning naming the runner, never a refusal: the task still runs,
without it. The config's default permission mode applies only where the runner can express it.
A `{{result:ID}}` or `{{data:ID}}` placeholder must name one of the task's dependencies.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from parallel_executor.plan.config import Config, RunnerConfig

PLACEHOLDER = re.compile(r"\{\{(result|data):([A-Za-z0-9][A-Za-z0-9._-]{0,127})\}\}")
_GROUP_OF = {"tools": "tools_args", "allowed_tools": "allowed_tools_args", "max_turns": "max_turns_args",
             "budget_usd": "budget_args"}


def placeholder_problems(tasks: list[dict[str, Any]]) -> list[str]:
    problems = []
    for t in tasks:
        deps = set(t.get("blockedBy", ()))
        for kind, tid in PLACEHOLDER.findall(t.get("prompt") or ""):
            if tid not in deps:
                problems.append(f"task '{t['id']}', field 'prompt': {{{{{kind}:{tid}}}}} names '{tid}', which is "
                                f"not in its blockedBy (a placeholder is filled from a dependency's result)")
    return problems


def apply_agent_defaults(tasks: list[dict[str, Any]], config: Config) -> list[str]:
    """Fill each prompt task's permission mode and fail_on_denials from the config; return the
    warnings about controls its runner cannot express (those are then left out of its argv)."""
    warnings = []
    for t in tasks:
        if "prompt" not in t or t["runner"] not in config.runners:
            continue
        runner = config.runners[t["runner"]]
        modes = runner.permission_modes
        if "permission_mode" in t:
            if modes is None or t["permission_mode"] not in modes:
                known = f"it knows {', '.join(sorted(modes))}" if modes else "it has no permission flag"
                warnings.append(_warning(t, "permission_mode", runner, f"{t['permission_mode']!r} ({known})"))
                del t["permission_mode"]
        elif modes is not None and config.permission_mode in modes:
            t["permission_mode"] = config.permission_mode
        t.setdefault("fail_on_denials", config.fail_on_denials)
        for key, group in _GROUP_OF.items():
            if key in t and not getattr(runner, group):
                warnings.append(_warning(t, key, runner, f"{t[key]!r}"))
                del t[key]
        if t.get("permission_mode") == "bypassPermissions" and t["runner"] == "claude" and _root(t):
            warnings.append(f"task '{t['id']}': Claude Code refuses bypassPermissions as root unless "
                            "IS_SANDBOX=1 is in its environment; the task would fail at start")
    return warnings


def _warning(t: Mapping[str, Any], key: str, runner: RunnerConfig, value: str) -> str:
    return (f"task '{t['id']}', field '{key}': runner '{runner.name}' cannot express {value}; "
            "it runs without it")


def _root(t: Mapping[str, Any]) -> bool:
    env = t.get("env") or {}
    return os.geteuid() == 0 and env.get("IS_SANDBOX", os.environ.get("IS_SANDBOX")) != "1"
