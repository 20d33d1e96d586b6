from __future__ import annotations

import json
import os
import shlex
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from parallel_executor.agents import registry
from parallel_executor.agents.runners import argv_for, preflight
from parallel_executor.engine.journal import RunState, check_run_id, new_run_id, recover_dead_runs
from parallel_executor.engine.records import RunOptions, TaskRun
from parallel_executor.engine.resume import plan_resume
from parallel_executor.engine.run import Listener, Run
from parallel_executor.errors import EXIT_OK, EXIT_SIGINT, EXIT_SIGTERM, EXIT_TASK_FAILED, UserError
from parallel_executor.plan.analyzer import Graph, estimates, waves, without_estimate
from parallel_executor.plan.config import Config, load_config
from parallel_executor.plan.model import TaskFile
from parallel_executor.plan.taskfile import load_task_file
from parallel_executor.results.aftermath import bookkeeping, record
from parallel_executor.results.history import load_durations
from parallel_executor.results.report import EventPrinter, summary, table
from parallel_executor.results.runlog import RunLog
from parallel_executor.system.cpus import usable_cpus
from parallel_executor.system.locations import runs_dir
from parallel_executor.system.secrets import masked

if TYPE_CHECKING:
    from parallel_executor.results.monitor import Monitor

T = TypeVar("T")


def main(file: Path, slots: int | None, timeout: float | None, retries: int | None, halt: str, dry_run: bool,
         resume: str | None, results_dir: Path | None, as_json: bool, quiet: bool, schedule: str, backend: str,
         config_path: Path | None, budget: float | None = None, base_dir: Path | None = None,
         output: str = "failed", scheduler: str | None = None, run_id: str | None = None) -> int:
    # `pause`/`unpause` are SIGUSR1/SIGUSR2, acted on while the run's loop turns; outside it (before
    # the first task, after the last) they must not end the engine, whose default action they are.
    for sig in (signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_IGN)
    config = load_config(config_path)
    overrides = {k: v for k, v in {"timeout": timeout, "retries": retries}.items() if v is not None}
    # Relative paths resolve against the task file's directory (§4), so a file runs the same from anywhere.
    taskfile = load_task_file(file, config, (base_dir or file.resolve().parent).resolve(), overrides)
    for line in taskfile.warnings:
        click.echo(f"parallel-executor: warning: {line}", err=True)
    asked, slots = slots, _slots(slots, config, sum(t.runner is not None for t in taskfile.tasks))
    command_slots = _command_slots(asked, config, sum(t.runner is None for t in taskfile.tasks), quiet)
    if not dry_run:
        if backend == "dask":  # reach the cluster now: a bad address is exit 2 before anything starts
            _dask_checks(taskfile, config, scheduler, slots, quiet or as_json)
        else:
            preflight(list(taskfile.tasks), config.runners)
        recover_dead_runs()
    run_id, reused, resumed = _new_run(run_id, resume), {}, None
    if resume:  # what stands and what runs again, and why (§7), in the plan and the journal
        resumed = plan_resume(resume, taskfile, results_dir)
        run_id, results_dir, reused = resumed.run_id, resumed.results_dir, resumed.reused
        for tid, why in resumed.rerun.items() if not (quiet or as_json) else ():
            click.echo(f"parallel-executor: {tid} runs again: {why}", err=True)
    trees = None
    if any(t.isolation == "worktree" for t in taskfile.tasks):  # refused here when it cannot work (§11)
        from parallel_executor.engine.worktree_plan import plan_trees

        try:
            taskfile, trees = plan_trees(taskfile, config, run_id)
        except UserError as e:
            if not dry_run:
                raise
            for line in e.lines:  # a dry run shows the plan all the same, like `validate` (warnings)
                click.echo(f"parallel-executor: warning: {line} (a run refuses to start until then)", err=True)
    if dry_run:
        click.echo(plan(taskfile, config, slots, schedule))
        return EXIT_OK
    uses_resources = bool(registry.needed(taskfile.tasks))
    for line in registry.prepare(taskfile.tasks, run_id) if uses_resources else []:
        if not (quiet or as_json):
            click.echo(f"parallel-executor: {line}", err=True)
    state = RunState.open(run_id, results_dir)
    if resumed:
        state.event("resuming", rerun=resumed.rerun, reused=sorted(reused))
    history = load_durations()
    options = RunOptions(slots=slots, halt=halt, schedule=schedule, kill_grace=config.kill_grace, scheduler=scheduler,
                         retry_backoff=config.retry_backoff, lock_timeout=config.lock_timeout,
                         boost=config.emergency_boost, transient_retries=config.transient_retries,
                         command_slots=command_slots)
    log = RunLog(run_id)
    log.line(f"run-started file={taskfile.path} tasks={len(taskfile.tasks)} slots={slots} pid={os.getpid()}")
    monitor = live_monitor(config) if not (quiet or as_json) else None
    listeners: list[Listener] = [log] if quiet or as_json else [log, monitor or EventPrinter()]
    if output != "none" and not quiet:
        from parallel_executor.results.output import OutputPrinter

        listeners.append(OutputPrinter(output, _output_sink(output, monitor, as_json)))
    executor = Run(taskfile, config, state, options, estimates(taskfile.tasks, history), fan_out(listeners),
                   reused, backend, config.budget_usd if budget is None else budget, resumed,
                   monitor.notice if monitor else _say, without_estimate(taskfile.tasks, history), trees)
    try:
        if monitor:
            from parallel_executor.results.monitor import snapshot_of_run

            monitor.start(lambda: snapshot_of_run(executor))
        executor.run()
    finally:
        if monitor:
            monitor.stop()
        state.close()
        if uses_resources:
            bookkeeping("the registry", lambda: registry.release(run_id), None)
    after = record(executor, config, log)
    if as_json:
        click.echo(json.dumps(summary(executor, executor.waves, after), indent=2))
    else:
        click.echo(table(executor, after))
    if executor.signal is not None:
        return EXIT_SIGINT if executor.signal == "SIGINT" else EXIT_SIGTERM
    return EXIT_OK if executor.final_state() == "success" else EXIT_TASK_FAILED


def _new_run(named: str | None, resume: str | None) -> str:
    """A new run's id; `serve` names it beforehand, to keep inline tasks in the run's folder (§15)."""
    if named is None:
        return new_run_id()
    if resume or (runs_dir() / check_run_id(named) / "status.json").exists():
        raise UserError(f"--run-id {named}: a new run's id, not one that ran already")
    return named


def _dask_checks(taskfile: TaskFile, config: Config, scheduler: str | None, slots: int, quiet: bool) -> None:
    """Connect, and check on a worker that the runners' programs are there (§13)."""
    from parallel_executor.engine.backends.dask import connect, missing_programs

    client = connect(scheduler, slots)
    programs = sorted({(config.runners[t.runner].command[0], t.env.get("PATH", os.environ.get("PATH", "")))
                       for t in taskfile.tasks if t.runner is not None})
    missing = missing_programs(client, programs) if programs else []
    if missing:
        raise UserError([f"program '{p}' not found on a Dask worker's PATH" for p in missing])
    if not quiet:
        _say("on dask, memory admission and suspension and cpu_per_agent do not apply: they read this machine, "
             "and the tasks run on the workers")


def _say(line: str) -> None:
    click.echo(f"parallel-executor: {line}", err=True)


def _output_sink(output: str, monitor: Monitor | None, as_json: bool) -> Callable[[str], None]:
    """Where tasks' output goes: `all` to stdout (like GNU parallel; stderr under --json, whose stdout
    is the summary alone), a failure's last lines to stderr with the event lines; above the live
    monitor when that is where they would land on the same screen."""
    stream = sys.stdout if output == "all" and not as_json else sys.stderr
    if monitor is not None and stream.isatty():
        return monitor.show
    from parallel_executor.results.output import to_stream

    return to_stream(stream)


def live_monitor(config: Config) -> Monitor | None:
    """The live display, on a terminal only: off one (CI, a pipe, a log file) events are plain lines."""
    if not sys.stderr.isatty() or os.environ.get("TERM") == "dumb":
        return None
    from parallel_executor.results.monitor import Monitor  # rich costs ~0.1 s to import; a script never needs it

    return Monitor(config.refresh_interval)


def fan_out(listeners: list[Listener]) -> Listener:
    if len(listeners) == 1:
        return listeners[0]

    def tell_all(kind: str, task: TaskRun) -> None:
        for listener in listeners:
            listener(kind, task)

    return tell_all


def _slots(asked: int | None, config: Config, agents: int) -> int:
    """Tasks at once; agent tasks are held to max_parallel_tasks by the engine (§6), which is said
    here when -j asks for more agents than that."""
    slots = asked or config.max_concurrent
    if min(slots, agents) > config.max_parallel_tasks:
        click.echo(f"parallel-executor: warning: -j {slots} would run up to {min(slots, agents)} agent tasks at once; "
                   f"max_parallel_tasks is {config.max_parallel_tasks}, so at most {config.max_parallel_tasks} "
                   "agents run at once (command tasks use every slot)", err=True)
    return slots


def _command_slots(asked: int | None, config: Config, commands: int, quiet: bool) -> int:
    """Command tasks at once (§6): config max_concurrent_commands, else -j when given, else the CPUs
    this process may use (GNU parallel's default); agents, which wait on a network, are not held to it."""
    if config.max_concurrent_commands:
        return config.max_concurrent_commands
    cpus = usable_cpus()
    if asked is None:
        return cpus
    if asked > cpus and commands > cpus and not quiet:
        click.echo(f"parallel-executor: note: -j {asked} is above the {cpus} CPUs this process may use: up to "
                   f"{min(asked, commands)} command tasks will share them", err=True)
    return asked


def plan(taskfile: TaskFile, config: Config, slots: int, schedule: str) -> str:
    by_id = taskfile.by_id()
    lines = [f"{taskfile.path}: {len(taskfile.tasks)} tasks, {slots} slots, {schedule} schedule (dry run)"]
    for number, wave in enumerate(waves(Graph(taskfile.tasks))):
        lines.append(f"wave {number}:")
        for tid in wave:
            task = by_id[tid]
            after = f"  after {', '.join(task.blocked_by)}" if task.blocked_by else ""
            after += f" ({task.trigger})" if task.blocked_by and task.trigger != "all_success" else ""
            lines.append(f"  {tid}  (cwd {task.cwd}, timeout {task.timeout:g}s, retries {task.retries}{after})")
            for name, value in masked(task.env).items():
                lines.append(f"    env {name}={shlex.quote(value)}")
            for label, paths in (("writes", task.paths), ("reads", task.reads)):
                lines += [f"    {label} {', '.join(paths)}"] if paths else []
            lines.append(f"    $ {shlex.join(argv_for(task, config.runners))}")
    return "\n".join(lines).encode("utf-8", "backslashreplace").decode()  # a lone surrogate: shown escaped
