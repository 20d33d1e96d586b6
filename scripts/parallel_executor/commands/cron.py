"""One crontab line that runs bin/temp-resource-cleanup.sh daily, managed idempotently.

PARALLEL_EXECUTOR_CRONTAB names a file to use instead of the user's crontab (for tests, or for
a system whose cron reads a file).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import click

from parallel_executor.errors import UserError
from parallel_executor.system.locations import PACKAGE_DIR

MARK = "# parallel-executor temp-resource-cleanup"
SCRIPT = PACKAGE_DIR.parent.parent / "bin" / "temp-resource-cleanup.sh"


def main(action: str) -> int:
    current = _read().splitlines()
    lines = [line for line in current if MARK not in line]
    ours = [line for line in current if MARK in line]
    if action == "status":
        click.echo(ours[0] if ours else "not installed")
        return 0
    if action == "install":
        lines.append(f"17 3 * * * {SCRIPT} {MARK}")
    _write("\n".join(lines) + "\n" if lines else "")
    click.echo(f"cron: {'installed' if action == 'install' else 'removed'} the daily cleanup"
               + (f" ({SCRIPT})" if action == "install" else ""))
    return 0


def _read() -> str:
    file = os.environ.get("PARALLEL_EXECUTOR_CRONTAB")
    if file:
        return Path(file).read_text() if Path(file).exists() else ""
    done = subprocess.run([_crontab(), "-l"], capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else ""  # "no crontab for user" is an empty one


def _write(text: str) -> None:
    file = os.environ.get("PARALLEL_EXECUTOR_CRONTAB")
    if file:
        Path(file).write_text(text)
        return
    done = subprocess.run([_crontab(), "-"], input=text, capture_output=True, text=True)
    if done.returncode:
        raise UserError(f"crontab refused the change: {done.stderr.strip()}")


def _crontab() -> str:
    found = shutil.which("crontab")
    if not found:
        raise UserError("cron is not available on this machine (no `crontab` command): install cron, "
                        "or run bin/temp-resource-cleanup.sh from your own scheduler")
    return found
