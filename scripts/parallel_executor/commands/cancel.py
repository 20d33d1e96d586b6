"""`cancel [RUN_ID]`: SIGTERM to the run's engine, which ends its tasks and records them cancelled."""

from __future__ import annotations

from pathlib import Path

import click

from parallel_executor.commands.status import tally
from parallel_executor.engine import control
from parallel_executor.engine.journal import latest_run, read_status, recover_dead_runs
from parallel_executor.errors import EXIT_OK, UserError
from parallel_executor.plan.config import load_config
from parallel_executor.system import procs

SETTLE_MARGIN = 30.0  # seconds the engine gets beyond its kill grace to write its final state


def main(run_id: str | None, config_path: Path | None) -> int:
    run_id = run_id or latest_run(running=True)
    status, engine = control.send(run_id, "cancel")
    pid, wait = int(status["pid"]), load_config(config_path).kill_grace + SETTLE_MARGIN
    if engine is None:
        recover_dead_runs()  # what the next run would do: end the dead engine's tasks
        click.echo(f"run {run_id}: its engine (pid {pid}) was already gone; its tasks were ended")
        return EXIT_OK
    if not procs.wait_ended([engine], wait):
        raise UserError(f"run {run_id}: engine pid {pid} did not stop within {wait:g}s")
    final = read_status(run_id)
    click.echo(f"run {run_id} {final['state']}: {tally(final)}")
    return EXIT_OK

