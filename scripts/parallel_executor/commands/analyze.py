from __future__ import annotations

import json
from pathlib import Path

import click
from tabulate import tabulate

from parallel_executor.plan.analyzer import DEFAULT_ESTIMATE, Analysis, analyze
from parallel_executor.plan.config import load_config
from parallel_executor.plan.taskfile import load_task_file
from parallel_executor.results.history import load_durations


def main(file: Path, fmt: str, slots: int | None, config_path: Path | None) -> int:
    config = load_config(config_path)
    tasks = load_task_file(file, config, file.resolve().parent).tasks
    result = analyze(tasks, slots or config.max_concurrent, load_durations(), config)
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
        "tasks_without_estimate": len(a.without_estimate),  # DEFAULT_ESTIMATE seconds assumed for each
        "without_estimate": a.without_estimate,
    }


def as_table(a: Analysis) -> str:
    rows = [(k, len(ids), _shorten(", ".join(ids))) for k, ids in enumerate(a.waves)]
    count = sum(len(ids) for ids in a.waves)
    totals = [
        ("plan", f"{_plural(count, 'task')} in {_plural(len(a.waves), 'wave')}"),
        ("critical path", f"{' -> '.join(a.critical_path)}  ({duration(a.critical_length)})"),
        ("total work", duration(a.total_work)),
        (f"makespan on {_plural(a.slots, 'slot')}", f"{duration(a.makespan)} (estimated)"),
        ("speedup", f"{a.speedup:.2f}x (estimated)"),
    ]
    if a.without_estimate:
        none = len(a.without_estimate)
        totals.append(("no estimate", _shorten(
            f"{none} of {count} tasks (no estimate, no past run): {DEFAULT_ESTIMATE:g} s assumed for "
            f"{'each' if none > 1 else 'it'}: {', '.join(a.without_estimate)}", 100)))
    totals.append(("recommendation", f"{a.recommendation}: {a.reason}"))
    return tabulate(rows, headers=["wave", "tasks", "ids"]) + "\n\n" + tabulate(totals, tablefmt="plain")


def duration(seconds: float) -> str:
    """For people: `0.25 s`, `30.9 s`, `2 min 05 s`, `1 h 02 min`."""
    if round(seconds, 2) < 1:
        return f"{seconds:.2f} s"
    if round(seconds, 1) < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _shorten(text: str, width: int = 80) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."
