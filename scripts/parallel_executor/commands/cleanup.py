"""`cleanup [--dry-run] [--json]` (§10): temporary skills and agents by policy, then runs past retention.

`--json` prints {"resources": [verdict, ...], "runs": [run verdict, ...], "freed_bytes": N, "dry_run": bool}."""

from __future__ import annotations

import json
from pathlib import Path

import click

from parallel_executor.agents.cleanup import Verdict, run_cleanup
from parallel_executor.errors import EXIT_OK
from parallel_executor.plan.config import load_config
from parallel_executor.results.retention import RunVerdict, retain


def main(dry_run: bool, as_json: bool, config_path: Path | None) -> int:
    config = load_config(config_path)
    verdicts = run_cleanup(config, dry_run)
    runs = retain(config.runs_retention_days, dry_run)
    freed = sum(r.bytes for r in runs if r.removed)
    if as_json:
        click.echo(json.dumps({"resources": [v._asdict() for v in verdicts], "runs": [r._asdict() for r in runs],
                               "freed_bytes": freed, "dry_run": dry_run}, indent=2))
        return EXIT_OK
    _resources(verdicts)
    _runs(runs, config.runs_retention_days, freed, dry_run)
    if dry_run:
        click.echo("(dry run: nothing deleted)")
    return EXIT_OK


def _resources(verdicts: list[Verdict]) -> None:
    if not verdicts:
        click.echo("no temporary skills or agents")
        return
    from tabulate import tabulate

    click.echo(tabulate([tuple(v) for v in verdicts], headers=["name", "type", "decision", "reason"]))


def _runs(runs: list[RunVerdict], days: float, freed: int, dry_run: bool) -> None:
    """The runs due for removal in a table (removed, or kept saying why); the others only in the count."""
    shown = [r for r in runs if r.due]
    if shown:
        from tabulate import tabulate

        click.echo()
        click.echo(tabulate([(r.run_id, (r.ended or "-")[:19].replace("T", " "), human_size(r.bytes),
                              ("would remove" if dry_run else "removed") if r.removed else "kept", r.reason)
                             for r in shown], headers=["run", "ended", "size", "decision", "reason"]))
    removed = sum(r.removed for r in runs)
    if days <= 0:
        click.echo(f"runs are kept forever (runs_retention_days is 0): {len(runs)} kept")
        return
    verb = "would remove" if dry_run else "removed"
    click.echo(f"{verb} {removed} run{'' if removed == 1 else 's'} older than {days:g} days: "
               f"{human_size(freed)} {'would be ' if dry_run else ''}freed"
               + (f"; {len(runs) - removed} kept" if len(runs) > removed else ""))


def human_size(size: int) -> str:
    """Bytes as du -h would round them, in decimal units: 0 B, 812 B, 41.2 MB."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")
