"""How a task becomes an argv, and how its output becomes a result (§7).

Command tasks run their argv (a string goes through /bin/sh -c: the user's explicit choice).
Prompt tasks go through a runner from the config: an argv template where the prompt is always
exactly one argv element, never shell text, and an output reader.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping

from parallel_executor.errors import UserError
from parallel_executor.plan.config import RunnerConfig
from parallel_executor.plan.model import TaskSpec

_PLACEHOLDER = re.compile(r"\{(prompt|model|subagent|permission_mode|tools|allowed_tools|max_turns|budget_usd)\}")


def argv_for(task: TaskSpec, runners: Mapping[str, RunnerConfig], prompt: str | None = None) -> list[str]:
    """The attempt's argv. For a prompt task (§3.1): the runner's command, the groups that apply,
    then its prompt_args last, so that a prompt starting with '-' is never read as an option and
    no variadic option (--allowedTools) swallows it. `prompt`: the prompt with placeholders filled."""
    if task.command is not None:
        return ["/bin/sh", "-c", task.command] if isinstance(task.command, str) else list(task.command)
    assert task.prompt is not None and task.runner is not None
    runner = runners[task.runner]
    agent = task.agent
    values = {"prompt": task.prompt if prompt is None else prompt, "model": task.model, "subagent": agent,
              "permission_mode": task.permission_mode, "tools": task.tools, "allowed_tools": task.allowed_tools,
              "max_turns": None if task.max_turns is None else str(task.max_turns),
              "budget_usd": None if task.budget_usd is None else f"{task.budget_usd:g}"}
    template = list(runner.command)
    if task.model:
        template += runner.model_args
    if agent and agent != "general-purpose":
        template += runner.subagent_args
    if task.permission_mode and runner.permission_modes:
        template += runner.permission_modes.get(task.permission_mode, ())
    for key, group in (("tools", runner.tools_args), ("allowed_tools", runner.allowed_tools_args),
                       ("max_turns", runner.max_turns_args), ("budget_usd", runner.budget_args)):
        if values[key] is not None:
            template += group
    template += runner.prompt_args
    # One pass per element: text substituted in (a prompt holding "{model}") is not scanned again.
    return [_PLACEHOLDER.sub(lambda m: values[m.group(1)] or "", arg) for arg in template]


def preflight(tasks: list[TaskSpec], runners: Mapping[str, RunnerConfig]) -> None:
    """Every runner the file needs must have a reader and an executable, before anything starts."""
    problems = []
    for name in sorted({t.runner for t in tasks if t.runner is not None}):
        runner = runners[name]
        if shutil.which(runner.command[0]) is None:
            problems.append(f"runner '{name}': executable '{runner.command[0]}' not found on PATH; install it, "
                            f"or set runners.{name}.command in the config to its full path")
    if problems:
        raise UserError(problems)
