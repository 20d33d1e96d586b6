"""`worktrees list|clean [--json] [--dry-run]` (§11): the worktrees and branches of tasks with
"isolation": "worktree" that still exist, and removing those of finished runs that hold nothing unmerged.

`list --json` prints a list of worktrees (results/worktrees.Worktree's fields); `clean --json` prints
{"worktrees": [verdict, ...], "freed_bytes": N, "dry_run": bool}. The list's table fits the terminal
like `history`'s: the path keeps its tail, then the least needed columns go."""

from __future__ import annotations

import json
from pathlib import Path

import click

from parallel_executor.commands.history import tail, terminal_width
from parallel_executor.errors import EXIT_OK
from parallel_executor.plan.config import load_config
from parallel_executor.results.retention import human_size
from parallel_executor.results.worktrees import Cleaned, Worktree, clean, find


def main(action: str, as_json: bool, dry_run: bool, config_path: Path | None) -> int:
    config = load_config(config_path)
    if action == "list":
        found = find(config.worktrees_root, config.worktree_prep.copy)
        if as_json:
            click.echo(json.dumps([w._asdict() for w in found], indent=2))
        else:
            show_list(found)
        return EXIT_OK
    verdicts = clean(config.worktrees_root, config.worktree_prep.copy, dry_run)
    freed = sum(v.bytes for v in verdicts if v.removed)
    if as_json:
        click.echo(json.dumps({"worktrees": [v._asdict() for v in verdicts], "freed_bytes": freed,
                               "dry_run": dry_run}, indent=2))
    else:
        show_clean(verdicts, dry_run)
    return EXIT_OK


HEADERS = ("run", "key", "state", "run state", "unmerged", "branch", "path")
DROP_ORDER = ("branch", "run state", "path")  # least needed first, once the path is cut to its tail
PATH = HEADERS.index("path")
PATH_MIN = 16  # narrower than this, a path says too little: a column goes instead


def show_list(found: list[Worktree]) -> None:
    if not found:
        click.echo("no worktrees")
        return
    from tabulate import tabulate

    rows: list[tuple[str, ...]] = [(w.run_id, w.key, w.state, w.run_state, w.why or "no", w.branch or "-",
             w.path + ("" if w.exists else " (gone)") if w.path else "-") for w in found]
    headers, fitted = fit(rows, terminal_width())
    click.echo(tabulate(fitted, headers=headers))


def fit(rows: list[tuple[str, ...]], width: int | None) -> tuple[list[str], list[tuple[str, ...]]]:
    """The headers and rows within width: the path cut to its tail, else the least needed columns gone."""
    from tabulate import tabulate

    if width is None:
        return list(HEADERS), rows
    longest = max(len(row[PATH]) for row in rows)
    for dropped in range(len(DROP_ORDER)):
        keep = [n for n, h in enumerate(HEADERS) if h not in DROP_ORDER[:dropped] and n != PATH]
        table = tabulate([tuple(row[n] for n in keep) for row in rows], headers=[HEADERS[n] for n in keep])
        room = width - max(map(len, table.splitlines())) - 2  # tabulate puts two spaces between columns
        if room >= min(longest, PATH_MIN):
            return [*(HEADERS[n] for n in keep), "path"], [(*(row[n] for n in keep), tail(row[PATH], room))
                                                           for row in rows]
    return [HEADERS[n] for n in keep], [tuple(row[n] for n in keep) for row in rows]


def show_clean(verdicts: list[Cleaned], dry_run: bool) -> None:
    """What was removed and what was kept, saying why and how to finish it by hand; then the space freed."""
    if not verdicts:
        click.echo("no worktrees")
        return
    from tabulate import tabulate


    removed = "would remove" if dry_run else "removed"
    click.echo(tabulate([(v.run_id, v.key, human_size(v.bytes), removed if v.removed else "kept", v.reason)
                         for v in verdicts], headers=["run", "key", "size", "decision", "reason"]))
    for v in verdicts:
        if v.finish:
            click.echo(f"to finish {v.key} of run {v.run_id} by hand, then clean again:")
            click.echo("".join(f"  {step}\n" for step in v.finish), nl=False)
    click.echo(summary(verdicts, dry_run))


def summary(verdicts: list[Cleaned], dry_run: bool) -> str:

    gone = [v for v in verdicts if v.removed]
    freed = human_size(sum(v.bytes for v in gone))
    kept = len(verdicts) - len(gone)
    return (f"{'would remove' if dry_run else 'removed'} {len(gone)} worktree{'' if len(gone) == 1 else 's'}: "
            f"{freed} {'would be ' if dry_run else ''}freed" + (f"; {kept} kept" if kept else ""))
