"""Steering a run from outside (§5, §15): cancel is SIGTERM to its engine, pause SIGUSR1, unpause SIGUSR2.
The CLI's cancel/pause/unpause and the HTTP API share these checks."""

from __future__ import annotations

import signal
import time
from typing import Any

import psutil

from parallel_executor.engine.journal import LIVE_STATES, read_status
from parallel_executor.errors import UserError
from parallel_executor.system import procs

SIGNALS = {"cancel": signal.SIGTERM, "pause": signal.SIGUSR1, "unpause": signal.SIGUSR2}
WANTED = {"pause": "paused", "unpause": "running"}


class NotLive(UserError):
    """The run has ended, or is stopping and can only be cancelled (the API's 409)."""


def send(run_id: str, action: str) -> tuple[dict[str, Any], psutil.Process | None]:
    """Signal the run's engine; the status it was sent in, and the engine (None: the engine was gone).
    A pause of a paused run (or unpause of a running one) sends nothing."""
    status = read_status(run_id)
    if status["state"] not in LIVE_STATES:
        raise NotLive(f"run {run_id} is not running (it ended: {status['state']})")
    if action != "cancel" and status["state"] == "stopping":
        raise NotLive(f"run {run_id} is stopping; it cannot be {action}d")
    engine = procs.same_process(int(status["pid"]), status.get("pid_started"))
    if status["state"] == WANTED.get(action):
        return status, engine
    try:
        if engine is None:
            raise psutil.NoSuchProcess(int(status["pid"]))
        engine.send_signal(SIGNALS[action])  # psutil refuses a pid reused since it was looked up
    except psutil.NoSuchProcess:
        return status, None
    return status, engine


def wait_for(run_id: str, wanted: str, within: float) -> dict[str, Any]:
    """status.json once it says `wanted`, or has ended or is stopping, or `within` seconds have passed."""
    deadline = time.monotonic() + within
    while (now := read_status(run_id))["state"] != wanted and time.monotonic() < deadline:
        if now["state"] not in LIVE_STATES or now["state"] == "stopping":
            break
        time.sleep(0.05)
    return now
