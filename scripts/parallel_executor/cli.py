"""The command line: a thin click layer; each command lives in commands/<name>.py.

Only click is imported here so that `--help` starts fast; a command imports what it needs.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib import import_module
from pathlib import Path
from typing import Any

import click

from parallel_executor import __version__
from parallel_executor.errors import EXIT_SIGINT, EXIT_USAGE, UserError, describe_os_error

RUNTIME_DEPS = {"psutil", "jsonschema", "referencing", "tabulate", "filelock"}
FILE = click.Path(path_type=Path, dir_okay=False)
CONFIG = click.option("--config", "config_path", type=FILE, help="Config file; overrides the installed one.")


def _call(command: str, **kwargs: Any) -> int:
    result: int = import_module(f"parallel_executor.commands.{command}").main(**kwargs)
    return result


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="parallel-executor")
def cli() -> None:
    """Run AI coding subagents and shell tasks truly in parallel.

    \b
    Write a task file (JSON), check it, see how it would run, then run it:
      parallel-executor validate tasks.json
      parallel-executor analyze tasks.json -j 4
      parallel-executor run tasks.json -j 4      (same as bin/parallel-executor.sh tasks.json -j 4)
    and, from another terminal, follow it, stop it, or look back:
      parallel-executor status --watch
      parallel-executor pause / unpause
      parallel-executor cancel
      parallel-executor timeline --html run.html
      parallel-executor history

    \b
    Exit codes: 0 all tasks succeeded, 1 a task failed, timed out or was skipped,
    2 bad input, config or usage (nothing ran), 130 interrupted, 143 terminated.
    """


@cli.command()
@click.argument("file", type=FILE)
@CONFIG
def validate(file: Path, config_path: Path | None) -> int:
    """Check FILE against the schema and its dependency graph; run nothing."""
    return _call("validate", file=file, config_path=config_path)


@cli.command()
@click.argument("file", type=FILE)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("-j", "--max-parallel", "slots", type=click.IntRange(min=1), help="Slots to plan for [config].")
@CONFIG
def analyze(file: Path, fmt: str, slots: int | None, config_path: Path | None) -> int:
    """Show FILE's waves, critical path, estimated makespan and speedup, and whether to parallelize."""
    return _call("analyze", file=file, fmt=fmt, slots=slots, config_path=config_path)


@cli.command()
@click.argument("file", type=FILE)
@click.option("-j", "--max-parallel", "slots", type=click.IntRange(min=1),
              help="Tasks at once [config max_concurrent]; agent (prompt) tasks are also capped by "
                   "config max_parallel_tasks.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True),
              help="Seconds per attempt, for tasks that set none.")
@click.option("--retries", type=click.IntRange(min=0), help="Extra attempts, for tasks that set none.")
@click.option("--halt", type=click.Choice(["never", "soon", "now"]), default="never", show_default=True,
              help="After a failure: go on, start nothing new, or also stop running tasks.")
@click.option("--dry-run", is_flag=True, help="Print the plan and each task's command line; run nothing.")
@click.option("--resume", "resume", is_flag=False, flag_value="latest", default=None, metavar="[RUN_ID]",
              help="Rerun what did not succeed in RUN_ID (default: the latest run of FILE), every task "
                   "whose definition changed since, and what depends on them.")
@click.option("--results-dir", type=click.Path(path_type=Path, file_okay=False), help="Where results go.")
@click.option("--json", "as_json", is_flag=True, help="Print only the final JSON summary on stdout.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the final report.")
@click.option("--base-dir", type=click.Path(path_type=Path, file_okay=False, exists=True),
              help="Resolve the tasks' relative cwd against DIR [the task file's directory].")
@click.option("--output", type=click.Choice(["failed", "all", "none"]), default="failed", show_default=True,
              help="Print a failed task's last 20 lines as it fails; all: every task's whole output when it "
                   "ends, grouped; none.")
@click.option("--budget", type=click.FloatRange(min=0), metavar="USD",
              help="Start no agent task once the run's measured cost reaches USD [config budget_usd].")
@click.option("--schedule", type=click.Choice(["dynamic", "waves"]), default="dynamic", show_default=True,
              help="Start tasks as soon as they are ready, or wave by wave (for comparison).")
@click.option("--backend", type=click.Choice(["local", "dask"]), default="local", show_default=True,
              help="Where tasks run: this machine, or a Dask cluster (pip install 'parallel-executor[dask]').")
@click.option("--scheduler", metavar="ADDRESS",
              help="The Dask scheduler, e.g. tcp://host:8786 [--backend dask: an embedded LocalCluster sized from -j].")
@click.option("--run-id", hidden=True)  # `serve` names the run it starts (§15)
@CONFIG
def run(**options: Any) -> int:
    """Run the tasks of FILE in parallel.

    A task starts as soon as the tasks it is blockedBy have settled as its trigger needs
    (default: all succeeded) and a slot is free; command tasks are held to the CPUs unless -j
    says otherwise. A failed task's last lines are printed as it fails; the report ends with
    each type's merged summary, the parallelism and a speedup estimate. Ctrl-C stops starting
    tasks and ends the running ones (a second Ctrl-C kills at once); results so far are kept
    and `--resume` picks up from there.
    """
    return _call("run", **options)


RUN_ID = click.argument("run_id", required=False)


@cli.command()
@RUN_ID
@click.option("--json", "as_json", is_flag=True, help="Print status.json, plus whether its engine is alive.")
@click.option("--watch", is_flag=True, help="Redraw every monitoring.refresh_interval seconds until the run ends.")
@CONFIG
def status(run_id: str | None, as_json: bool, watch: bool, config_path: Path | None) -> int:
    """Show the tasks of RUN_ID (default: the latest run): state, attempts, elapsed, reason."""
    return _call("status", run_id=run_id, as_json=as_json, watch=watch, config_path=config_path)


@cli.command()
@RUN_ID
@CONFIG
def cancel(run_id: str | None, config_path: Path | None) -> int:
    """Stop RUN_ID (default: the latest running run) as Ctrl-C would.

    Sends SIGTERM to the run's engine (after checking the pid still belongs to it) and waits:
    the engine ends every task's process tree, records them cancelled and exits 143.
    """
    return _call("cancel", run_id=run_id, config_path=config_path)


@cli.command()
@RUN_ID
def pause(run_id: str | None) -> int:
    """Pause RUN_ID (default: the latest running run): start nothing new and stop the running tasks.

    The running tasks' whole process trees are suspended (SIGSTOP) and their timeouts stop
    counting; `unpause` carries on where they were. A paused run can still be cancelled.
    """
    return _call("pause", run_id=run_id, paused=True)


@cli.command()
@RUN_ID
def unpause(run_id: str | None) -> int:
    """Carry on with a paused RUN_ID (default: the latest running run)."""
    return _call("pause", run_id=run_id, paused=False)


@cli.command()
@RUN_ID
@click.option("--html", "html", type=FILE, help="Write a self-contained HTML page (no network needed) to FILE.")
def timeline(run_id: str | None, html: Path | None) -> int:
    """Show when each task of RUN_ID (default: the latest run) ran, as a Gantt chart: its attempts as
    bars in time (failures marked), then the slots in use; overlapping bars ran in parallel. `--html
    FILE` draws a page with hover details (command or prompt, attempts, exit code, duration, cost)."""
    return _call("timeline", run_id=run_id, html=html)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.option("--limit", "-n", type=click.IntRange(min=1), default=20, show_default=True, help="Runs to list.")
def history(as_json: bool, limit: int) -> int:
    """List recent runs: id, state, file, started, wall time, tasks, failures, speedup, cost."""
    return _call("history", as_json=as_json, limit=limit)


@cli.command()
@click.argument("task_id")
@click.option("--run", "run_id", help="The run [default: the latest run that has TASK_ID].")
@click.option("--stderr", is_flag=True, help="Its stderr instead of its stdout.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing what it writes until it ends.")
@click.option("--raw", is_flag=True, help="An agent's stream-json lines as they are, not as its messages.")
def logs(task_id: str, run_id: str | None, stderr: bool, follow: bool, raw: bool) -> int:
    """Print TASK_ID's whole output (its last attempt), or follow it while it runs.

    An agent's streamed output is shown as its messages and tool calls, one per line."""
    return _call("logs", task_id=task_id, run_id=run_id, stderr=stderr, follow=follow, raw=raw)


@cli.command("registry")
@click.argument("action", type=click.Choice(["list", "show", "mark-useful"]))
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def registry_command(action: str, name: str | None, as_json: bool) -> int:
    """Temporary skills and agents the engine created: list, show NAME, mark-useful NAME.

    A resource marked useful is kept by cleanup whatever its usage.
    """
    return _call("registry", action=action, name=name, as_json=as_json)


@cli.command()
@click.option("--dry-run", is_flag=True, help="Only say what would be deleted, and how much it would free.")
@click.option("--json", "as_json", is_flag=True, help="Print {resources, runs, worktrees, freed_bytes, dry_run}.")
@CONFIG
def cleanup(dry_run: bool, as_json: bool, config_path: Path | None) -> int:
    """Delete temporary skills and agents by policy, and runs past retention.

    \b
    Skills and agents (config temp_resources), first rule that applies:
    used 3+ times -> keep; used in the last 7 days -> keep; marked useful -> keep;
    unused 30+ days -> delete; used once and unused 7+ days -> delete;
    redundant with a hand-made skill/agent of the same description -> delete; else keep.
    Never deletes what a running run uses, nor a file changed by hand.

    \b
    Runs (config runs_retention_days, default 30; 0 keeps every run): the state
    (memory/temp/runs/RUN_ID) and results (memory/temp/parallel-results/RUN_ID) of runs
    that ended more than that many days ago. A running or paused run is never removed;
    a results folder chosen with --results-dir is kept; links are removed, never followed.
    Logs and the stats dashboard stay. Reports each run's size and the total freed.
    """
    return _call("cleanup", dry_run=dry_run, as_json=as_json, config_path=config_path)


@cli.command()
@click.argument("action", type=click.Choice(["list", "clean"]))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--dry-run", is_flag=True, help="clean: only say what would be removed.")
@CONFIG
def worktrees(action: str, as_json: bool, dry_run: bool, config_path: Path | None) -> int:
    """The git worktrees of "isolation": "worktree" tasks: `list` each kept worktree and branch (run,
    epic or task, state, whether it holds unmerged work); `clean` removes those of finished runs that
    hold nothing unmerged, never one that does."""
    return _call("worktrees", action=action, as_json=as_json, dry_run=dry_run, config_path=config_path)


@cli.command()
@click.argument("action", type=click.Choice(["install", "remove", "status"]))
def cron(action: str) -> int:
    """Install, remove or show the daily crontab line that runs the cleanup (idempotent)."""
    return _call("cron", action=action)


@cli.command("hook")
@click.argument("check", type=click.Choice(["check-parallel"]))
def hook_command(check: str) -> int:
    """A Claude Code Stop hook: exit 2 with feedback when the last turn claimed parallel work that ran serially.

    Reads the hook's JSON on stdin; anything it cannot read is exit 0, silently.
    """
    return _call("hook", check=check)


@cli.command()
@click.argument("action", type=click.Choice(["install", "remove", "status"]))
@click.option("--json", "as_json", is_flag=True, help="status: print JSON.")
def hooks(action: str, as_json: bool) -> int:
    """Add, take out or show the `hook check-parallel` Stop hook in $CLAUDE_CONFIG_DIR/settings.json."""
    return _call("hooks", action=action, as_json=as_json)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to bind.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="0: a free port.")
@click.option("--allow-remote", is_flag=True, help="Let --host be other than loopback (tokens then travel in clear).")
@click.option("--allow-host", "allow_hosts", multiple=True, metavar="NAME", help="Another Host to answer (repeatable).")
def serve(host: str, port: int, allow_remote: bool, allow_hosts: tuple[str, ...]) -> int:
    """The HTTP API and live dashboard (pip install 'parallel-executor[server]'): start, watch, pause and
    cancel runs from a browser or a script. The first line is `dashboard: http://HOST:PORT/#token=TOKEN`;
    every /api/ request needs `Authorization: Bearer TOKEN` (kept in memory/config/api-token)."""
    return _call("serve", host=host, port=port, allow_remote=allow_remote, allow_hosts=allow_hosts)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, dispatch, and turn every user error into one message and its exit code."""
    try:
        code = cli.main(args=argv, prog_name="parallel-executor", standalone_mode=False)
        return code if isinstance(code, int) else 0
    except UserError as e:
        for line in e.lines:
            click.echo(f"parallel-executor: {line}", err=True)
        return e.exit_code
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.ClickException as e:
        e.show()
        return EXIT_USAGE
    except OSError as e:  # the environment: a home that is a file, a folder not writable, a full disk
        click.echo(f"parallel-executor: {describe_os_error(e)}", err=True)
        return EXIT_USAGE
    except (KeyboardInterrupt, click.exceptions.Abort):
        click.echo("parallel-executor: interrupted", err=True)
        return EXIT_SIGINT
    except ModuleNotFoundError as e:
        if e.name not in RUNTIME_DEPS:
            raise
        click.echo(f"parallel-executor: missing dependency '{e.name}' for {sys.executable}: "
                   "run `make install`, or `pip install -e .` in this checkout", err=True)
        return EXIT_USAGE

