"""Escapes: how often a task's daemon outlives its run. The task starts a daemon that leaves its
session and its tree and drops the engine's variables from its environment
(`( setsid env -i bash -c 'exec -a NAME sleep 1000' & ) ; sleep 1000`); the run ends by the task's
timeout or by SIGINT to the engine, N times each (default 30). After each run the daemon is looked
for, counted if it survived, and killed. Bar: no survivor. Not part of `make test`.

The engine is `python -m parallel_executor` as imported here (PYTHONPATH=<tree>/scripts runs another
tree's, e.g. an earlier commit's, for comparison).
Run: python benchmarks/escape.py [--runs N]"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ENGINE, private_home, write_tasks

APPEAR = 10.0  # seconds for the daemon to show up before a run counts as broken


def daemons(name: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        if process.info["status"] != psutil.STATUS_ZOMBIE and (process.info["cmdline"] or [])[:1] == [name]:
            found.append(process)
    return found


def one_run(name: str, ending: str) -> tuple[bool, int]:
    """(did the daemon start, how many survived the engine)."""
    command = ["bash", "-c", f"( setsid env -i bash -c 'exec -a {name} sleep 1000' & ) ; sleep 1000"]
    path = write_tasks([{"id": "daemon", "command": command, "timeout": 1 if ending == "timeout" else 60}])
    engine = subprocess.Popen([*ENGINE, "run", "--quiet", str(path)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    deadline, seen = time.monotonic() + APPEAR, False
    while not seen and engine.poll() is None and time.monotonic() < deadline:
        seen = bool(daemons(name))
        time.sleep(0.02)
    if ending == "SIGINT":
        engine.send_signal(signal.SIGINT)
    try:
        engine.wait(timeout=30)
    except subprocess.TimeoutExpired:
        engine.kill()
        engine.wait()
    survivors = daemons(name)
    for process in survivors:
        process.kill()
    return seen, len(survivors)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    private_home()
    failed = False
    for ending in ("timeout", "SIGINT"):
        started = survived = 0
        for i in range(args.runs):
            seen, survivors = one_run(f"escapee-bench-{os.getpid()}-{ending}-{i}", ending)
            started, survived = started + seen, survived + survivors
        print(f"{ending}: {survived} survivors of {args.runs} runs (daemon started in {started})", flush=True)
        failed = failed or survived > 0 or started < args.runs
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
