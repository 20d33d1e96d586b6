from __future__ import annotations

import json
from pathlib import Path

import click
from tabulate import tabulate

from parallel_executor.plan.analyzer import Analysis, analyze
from parallel_executor.plan.config import load_config
from parallel_executor.plan.taskfile import load_task_file
from parallel_executor.results.history import load_durations


def main(file: Path, fmt: str, slots: int | None, config_path: Path | None) -> int:
    config = load_config(config_path)
    tasks = load_task_file(file, config, Path.cwd()).tasks
    result = analyze(tasks, slots or config.max_concurrent, load_durations())
    phases = {p.name: [t.id for t in tasks if t.phase == p.name] for p in config.phases}
    phases = {name: ids for name, ids in phases.items() if ids}
    if fmt == "json":
        click.echo(json.dumps({**as_json(result), "phases": phases}, indent=2))
    else:
        serial = {p.name for p in config.phases if not p.parallel}
        lines = [f"phase {name}{' (serial)' if name in serial else ''}: {_shorten(', '.join(ids))}"
                 for name, ids in phases.items()]
        click.echo(as_table(result) + ("\n\n" + "\n".join(lines) if lines else ""))
    return 0


def as_json(a: Analysis) -> dict[str, object]:
    return {
        "waves": a.waves,
        "critical_path": a.critical_path,
        "critical_path_length": round(a.critical_length, 3),
        "total_work": round(a.total_work, 3),
        "slots": a.slots,
        "estimated_makespan": round(a.makespan, 3),
        "estimated_speedup": round(a.speedup, 3),
        "recommendation": a.recommendation,
        "reason": a.reason,
    }


def as_table(a: Analysis) -> str:
    rows = [(k, len(ids), _shorten(", ".join(ids))) for k, ids in enumerate(a.waves)]
    totals = [
        ("critical path", f"{' -> '.join(a.critical_path)}  ({a.critical_length:g}s)"),
        ("total work", f"{a.total_work:g}s"),
        (f"makespan on {a.slots} slots", f"{a.makespan:g}s (estimated)"),
        ("speedup", f"{a.speedup:.2f}x (estimated)"),
        ("recommendation", f"{a.recommendation}: {a.reason}"),
    ]
    return tabulate(rows, headers=["wave", "tasks", "ids"]) + "\n\n" + tabulate(totals, tablefmt="plain")


def _shorten(text: str, width: int = 80) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."
