"""`pause [RUN_ID]` / `unpause [RUN_ID]`: SIGUSR1 / SIGUSR2 to the run's engine, which stops starting
tasks and suspends the running trees (their timeouts stop counting), or carries on (§5)."""

from __future__ import annotations

import click

from parallel_executor.engine import control
from parallel_executor.engine.journal import LIVE_STATES, latest_run
from parallel_executor.errors import EXIT_OK, UserError

ANSWER_WITHIN = 5.0  # seconds for the engine to say, in status.json, that it acted


def main(run_id: str | None, paused: bool) -> int:
    run_id = run_id or latest_run(running=True)
    verb = "pause" if paused else "unpause"
    wanted = control.WANTED[verb]
    try:
        status, engine = control.send(run_id, verb)
    except control.NotLive as e:
        raise UserError(f"{e}; nothing to {verb}") from None
    if status["state"] == wanted:
        click.echo(f"run {run_id} is {wanted} already")
        return EXIT_OK
    if engine is None:
        raise UserError(f"run {run_id}: its engine (pid {status['pid']}) is gone; `cancel` ends what it left")
    now = control.wait_for(run_id, wanted, ANSWER_WITHIN)
    if now["state"] not in LIVE_STATES and not paused:
        click.echo(f"run {run_id} carried on and has ended: {now['state']}")
        return EXIT_OK
    if now["state"] != wanted and (now["state"] not in LIVE_STATES or now["state"] == "stopping"):
        raise UserError(f"run {run_id} is {now['state']} now; it was not {verb}d")
    if now["state"] != wanted:
        raise UserError(f"run {run_id}: the engine (pid {status['pid']}) did not {verb} within {ANSWER_WITHIN:g}s")
    running = sum(t["status"] in ("running", "paused") for t in now["tasks"])
    click.echo(f"run {run_id} paused: {running} running task trees stopped, nothing new starts; "
               f"`parallel-executor unpause {run_id}` carries on" if paused else f"run {run_id} carries on")
    return EXIT_OK
