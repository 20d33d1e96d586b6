"""`pause [RUN_ID]` / `unpause [RUN_ID]`: SIGUSR1 / SIGUSR2 to the run's engine, which stops starting
tasks and suspends the running trees (their timeouts stop counting), or carries on (§5)."""

from __future__ import annotations

import signal
import time

import click
import psutil

from parallel_executor.engine.journal import LIVE_STATES, latest_run, read_status
from parallel_executor.errors import EXIT_OK, UserError
from parallel_executor.system import procs

ANSWER_WITHIN = 5.0  # seconds for the engine to say, in status.json, that it acted


def main(run_id: str | None, paused: bool) -> int:
    run_id = run_id or latest_run(running=True)
    status = read_status(run_id)
    verb = "pause" if paused else "unpause"
    if status["state"] not in LIVE_STATES:
        raise UserError(f"run {run_id} is not running (it ended: {status['state']}); nothing to {verb}")
    if status["state"] == "stopping":
        raise UserError(f"run {run_id} is stopping; it cannot be {verb}d")
    wanted = "paused" if paused else "running"
    if status["state"] == wanted:
        click.echo(f"run {run_id} is {wanted} already")
        return EXIT_OK
    pid = int(status["pid"])
    engine = procs.same_process(pid, status.get("pid_started"))
    try:
        if engine is None:
            raise psutil.NoSuchProcess(pid)
        engine.send_signal(signal.SIGUSR1 if paused else signal.SIGUSR2)  # psutil refuses a reused pid
    except psutil.NoSuchProcess:
        raise UserError(f"run {run_id}: its engine (pid {pid}) is gone; `cancel` ends what it left") from None
    deadline = time.monotonic() + ANSWER_WITHIN
    while (now := read_status(run_id))["state"] != wanted and time.monotonic() < deadline:
        if now["state"] not in LIVE_STATES and not paused:
            click.echo(f"run {run_id} carried on and has ended: {now['state']}")
            return EXIT_OK
        if now["state"] not in LIVE_STATES or now["state"] == "stopping":
            raise UserError(f"run {run_id} is {now['state']} now; it was not {verb}d")
        time.sleep(0.05)
    if now["state"] != wanted:
        raise UserError(f"run {run_id}: the engine (pid {pid}) did not {verb} within {ANSWER_WITHIN:g}s")
    running = sum(t["status"] in ("running", "paused") for t in now["tasks"])
    click.echo(f"run {run_id} paused: {running} running task trees stopped, nothing new starts; "
               f"`parallel-executor unpause {run_id}` carries on" if paused else f"run {run_id} carries on")
    return EXIT_OK
