from __future__ import annotations

from pathlib import Path

import click

from parallel_executor.plan.analyzer import Graph, waves
from parallel_executor.plan.config import load_config
from parallel_executor.plan.taskfile import load_task_file


def main(file: Path, config_path: Path | None) -> int:
    taskfile = load_task_file(file, load_config(config_path), file.resolve().parent)
    tasks = taskfile.tasks
    warnings = list(taskfile.warnings)
    if any(t.isolation == "worktree" for t in tasks):  # what `run` would refuse, in the repository as it is now
        from parallel_executor.engine.worktree_plan import plan_trees
        from parallel_executor.errors import UserError

        try:
            plan_trees(taskfile, load_config(config_path), "validate")
        except UserError as e:
            warnings += [f"{line} (`run` refuses to start until then)" for line in e.lines]
    for warning in warnings:
        click.echo(f"warning: {warning}".encode("utf-8", "backslashreplace").decode(), err=True)
    count = len(waves(Graph(tasks)))
    line = f"{file}: OK, {len(tasks)} task{'s' * (len(tasks) != 1)} in {count} wave{'s' * (count != 1)}"
    click.echo(line.encode("utf-8", "backslashreplace").decode())  # a name that is not UTF-8: shown escaped
    return 0
