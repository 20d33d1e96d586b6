from __future__ import annotations

import json
from pathlib import Path

import click

from parallel_executor.agents.cleanup import run_cleanup
from parallel_executor.plan.config import load_config


def main(dry_run: bool, as_json: bool, config_path: Path | None) -> int:
    verdicts = run_cleanup(load_config(config_path), dry_run)
    if as_json:
        click.echo(json.dumps([v._asdict() for v in verdicts], indent=2))
    elif not verdicts:
        click.echo("no temporary skills or agents")
    else:
        from tabulate import tabulate

        click.echo(tabulate([tuple(v) for v in verdicts], headers=["name", "type", "decision", "reason"]))
        if dry_run:
            click.echo("(dry run: nothing deleted)")
    return 0
