"""How a task becomes an argv, and how its output becomes a result (§7).

Command tasks run their argv (a string goes through /bin/sh -c: the user's explicit choice).
Prompt tasks go through a runner from the config: an argv template where the prompt is always
exactly one argv element, never shell text, and an output reader.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping

from parallel_executor.agents.readers import READERS, Reader
from parallel_executor.errors import UserError
from parallel_executor.plan.config import RunnerConfig
from parallel_executor.plan.model import TaskSpec

_PLACEHOLDER = re.compile(r"\{(prompt|model|subagent)\}")


def argv_for(task: TaskSpec, runners: Mapping[str, RunnerConfig]) -> list[str]:
    if task.command is not None:
        return ["/bin/sh", "-c", task.command] if isinstance(task.command, str) else list(task.command)
    assert task.prompt is not None and task.runner is not None
    runner = runners[task.runner]
    values = {"prompt": task.prompt, "model": task.model or "", "subagent": task.subagent or ""}
    template = list(runner.command)
    if task.model:
        template += runner.model_args
    if task.subagent and task.subagent != "general-purpose":
        template += runner.subagent_args
    # One pass per element: text substituted in (a prompt holding "{model}") is not scanned again.
    return [_PLACEHOLDER.sub(lambda m: values[m.group(1)], arg) for arg in template]


def reader_for(task: TaskSpec, runners: Mapping[str, RunnerConfig]) -> Reader:
    return READERS["text" if task.runner is None else runners[task.runner].output]


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
