"""One crontab line per Claude home that runs temp-resource-cleanup.sh daily, managed idempotently.

The line carries the CLAUDE_CONFIG_DIR it was installed for and points at a script that exists:
the installed memory/bin/temp-resource-cleanup.sh, else the checkout's bin/ one. Lines of other
Claude homes are left alone. PARALLEL_EXECUTOR_CRONTAB names a file to use instead of the user's
crontab (for tests, or for a system whose cron reads a file).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import click

from parallel_executor.errors import EXIT_USAGE, UserError
from parallel_executor.system.locations import PACKAGE_DIR, claude_home, memory_dir

MARK = "# parallel-executor temp-resource-cleanup"
SCRIPT_NAME = "temp-resource-cleanup.sh"


def main(action: str) -> int:
    current = _read().splitlines()
    ours = [line for line in current if _ours(line)]
    lines = [line for line in current if not _ours(line)]
    if action == "status":
        click.echo(ours[0] if ours else "not installed")
        return 0
    done = "removed the daily cleanup"
    if action == "install":
        script = cleanup_script()
        home = _cron_quote(str(claude_home().resolve()))
        lines.append(f"17 3 * * * CLAUDE_CONFIG_DIR={home} {_cron_quote(str(script))} {MARK}")
        done = f"installed the daily cleanup ({script})"
    _write("\n".join(lines) + "\n" if lines else "")
    click.echo(f"cron: {done} for {claude_home()}")
    return 0


def cleanup_script() -> Path:
    """The installed script, else the checkout's; an error rather than a line that cannot run."""
    for script in (memory_dir() / "bin" / SCRIPT_NAME, PACKAGE_DIR.parent.parent / "bin" / SCRIPT_NAME):
        if script.is_file() and os.access(script, os.X_OK):
            return script.resolve()
    raise UserError(f"no {SCRIPT_NAME} to schedule: `make install` puts one in {memory_dir() / 'bin'} "
                    "(or run this command from a checkout's bin/parallel-executor)", EXIT_USAGE)


def _ours(line: str) -> bool:
    """Our line for this Claude home, or one of ours that names no home (an older, broken line)."""
    if MARK not in line:
        return False
    home = f"CLAUDE_CONFIG_DIR={_cron_quote(str(claude_home().resolve()))} "
    return home in line or "CLAUDE_CONFIG_DIR=" not in line


def _cron_quote(text: str) -> str:
    return shlex.quote(text).replace("%", "\\%")  # cron turns a bare % into a newline


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
