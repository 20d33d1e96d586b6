"""`cleanup [--dry-run] [--json]` (§10): temporary skills and agents by policy, the worktrees of finished
runs that hold nothing unmerged (as `worktrees clean`), then runs past retention — except those that
still have a worktree holding unmerged work, so that `worktrees list` can still say whose it is.

`--json` prints {"resources": [verdict, ...], "worktrees": [worktree verdict, ...], "runs": [run verdict, ...],
"freed_bytes": N, "dry_run": bool}; freed_bytes counts the worktrees and the runs removed."""

from __future__ import annotations

import json
from pathlib import Path

import click

from parallel_executor.agents.cleanup import Verdict, run_cleanup
from parallel_executor.commands import worktrees
from parallel_executor.errors import EXIT_OK
from parallel_executor.plan.config import load_config
from parallel_executor.results.retention import RunVerdict, human_size, retain
from parallel_executor.results.worktrees import clean


def main(dry_run: bool, as_json: bool, config_path: Path | None) -> int:
    config = load_config(config_path)
    verdicts = run_cleanup(config, dry_run)
    trees = clean(config.worktrees_root, config.worktree_prep.copy, dry_run)
    held: dict[str, str] = {}
    for t in trees:
        if t.unmerged:
            held.setdefault(t.run_id, t.path or str(t.branch))
    runs = retain(config.runs_retention_days, dry_run, held=held)
    freed = sum(r.bytes for r in runs if r.removed)
    if as_json:
        click.echo(json.dumps({"resources": [v._asdict() for v in verdicts], "worktrees": [t._asdict() for t in trees],
                               "runs": [r._asdict() for r in runs],
                               "freed_bytes": freed + sum(t.bytes for t in trees if t.removed), "dry_run": dry_run},
                              indent=2))
        return EXIT_OK
    _resources(verdicts)
    click.echo()
    worktrees.show_clean(trees, dry_run)
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
