"""The four kinds of fuzz example — a strategy and the check of one drawn case each — shared by
tests/fuzz_test.py and the survey (tests/fuzzing/survey.py).

Every check runs the command in a fresh sandbox and holds the engine to PRODUCT.md: an exit code
of 0, 1 or 2 (0 or 2 where no task runs) with a message on stderr for 2, no exception escaping
`main`, no hang, JSON where JSON is asked for, the user's input files untouched, and, for state
files, nothing the user had lost.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable, Collection
from typing import Any, NamedTuple

import psutil
from hypothesis import strategies as st

from tests.fuzzing.configs import ConfigFile, config_files
from tests.fuzzing.harness import Example, Outcome, Planted, Sandbox, expect, invoke
from tests.fuzzing.state import (
    MEMORY,
    SAFE_PID,
    StateScenario,
    holds_pids,
    lost,
    set_aside,
    state_scenarios,
    stats_after,
    task_results,
)
from tests.fuzzing.taskfiles import TaskFile, task_files

COUNTS: Counter[str] = Counter()  # examples that ran to the end, per generator and per command or exit code
SECONDS: Counter[str] = Counter()
STATIC = {"validate": ["validate", "tasks.json"], "analyze": ["analyze", "tasks.json", "--format", "json"],
          "dry-run": ["run", "tasks.json", "--dry-run"]}


def strict_json(text: str) -> Any:
    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def check_common(example: Example, outcome: Outcome, codes: Collection[int] = (0, 1, 2)) -> None:
    expect(outcome.code in codes, "exit-code", f"exit {outcome.code}, expected one of {sorted(codes)}", example,
           outcome)
    if outcome.code == 2:
        expect(outcome.stderr.strip(), "exit-2-without-message", "exit 2 but nothing on stderr", example, outcome)
    if outcome.code == 0 and ("--json" in example.argv or "json" in example.argv):
        try:
            strict_json(outcome.stdout)
        except ValueError as e:
            expect(False, "invalid-json-output", f"stdout is not JSON ({e})", example, outcome)


def check_unchanged(box: Sandbox, example: Example, outcome: Outcome, *paths: str) -> None:
    for planted in example.files:
        if planted.path in paths:
            try:
                now = box.path(planted.path).read_bytes()
            except OSError:
                now = None
            expect(now == planted.content, "input-file-changed", f"{planted.path} was changed or removed", example,
                   outcome)


def leftover_children() -> list[psutil.Process]:
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def _counted(generator: str, detail: str, started: float) -> None:
    COUNTS[generator] += 1
    COUNTS[f"{generator}: {detail}"] += 1
    SECONDS[generator] += time.monotonic() - started


# ---- 1. task files -------------------------------------------------------------------------------

TASK_FILE_CASES = st.tuples(st.sampled_from(["validate", "analyze", "dry-run"]), task_files())


def check_task_file(case: tuple[str, TaskFile]) -> None:
    """validate, analyze or run --dry-run: exit 0 or 2, the same as validate's, the file untouched."""
    command, file = case
    started = time.monotonic()
    example = Example([Planted("tasks.json", file.data, label="task file")], STATIC[command], notes=[file.how])
    with Sandbox() as box:
        box.plant(example)
        outcome = invoke(example)
        check_common(example, outcome, {0, 2})
        check_unchanged(box, example, outcome, "tasks.json")
        if command != "validate":
            validated = invoke(example, STATIC["validate"])
            expect(validated.code == outcome.code, "commands-disagree",
                   f"`validate` exits {validated.code} but `{command}` exits {outcome.code} on the same file",
                   example, outcome)
    _counted("task files", command, started)


RUNNABLE_CASES = task_files(runnable=True)


def check_real_run(file: TaskFile) -> None:
    """A real run of trivial command tasks: no traceback, nothing left running, stats written."""
    started = time.monotonic()
    example = Example([Planted("tasks.json", file.data, label="task file")],
                      ["run", "tasks.json", "-q", "--timeout", "5"], notes=[file.how])
    with Sandbox() as box:
        box.plant(example)
        validated = invoke(example, STATIC["validate"])
        outcome = invoke(example)
        leftovers = leftover_children()
        for child in leftovers:
            child.kill()
        check_common(example, outcome)
        check_unchanged(box, example, outcome, "tasks.json")
        expect(validated.code != 2 or outcome.code == 2, "commands-disagree",
               f"`validate` rejects the file (exit 2) but `run` exits {outcome.code}", example, outcome)
        expect(not leftovers, "leftover-process", f"processes left running: {[p.pid for p in leftovers]}", example,
               outcome)
        if outcome.code in (0, 1):
            expect(isinstance(stats_after(box.root), dict), "stats-not-updated",
                   "the run ended but the stats file is missing or bad", example, outcome)
    _counted("task files run", f"exit {outcome.code}", started)


# ---- 2. configs ----------------------------------------------------------------------------------

CONFIG_COMMANDS = {"validate": ["validate", "small.json"], "analyze": ["analyze", "small.json", "--format", "json"],
                   "dry-run": ["run", "small.json", "--dry-run"]}
CONFIG_TASKS = json.dumps({"tasks": [
    {"id": "a", "command": ["true"]},
    {"id": "b", "command": "exit 0", "blockedBy": ["a"], "paths": ["src"], "phase": "implementation",
     "priority": "critical", "estimate": 2},
    {"id": "p", "prompt": "hi", "model": "m", "subagent": "reviewer", "blockedBy": ["a"], "phase": "implementation"},
]}).encode()
CONFIG_CASES = st.tuples(st.sampled_from(["validate", "analyze", "validate", "dry-run", "validate"]),
                         st.sampled_from(["--config", "installed", "--config", "--config"]), config_files())


def check_config(case: tuple[str, str, ConfigFile]) -> None:
    """A config given with --config or installed: accepted or a clear exit 2; any shipped subset accepted."""
    command, placement, config = case
    started = time.monotonic()
    installed = placement == "installed"
    where = f"{MEMORY}/config/parallel-execution-config.json" if installed else "config.json"
    argv = CONFIG_COMMANDS[command] + ([] if installed else ["--config", "config.json"])
    example = Example([Planted("small.json", CONFIG_TASKS, label="task file"),
                       Planted(where, config.data, label="config")], argv, notes=[config.how])
    with Sandbox() as box:
        box.plant(example)
        outcome = invoke(example)
        check_common(example, outcome, {0, 2})
        check_unchanged(box, example, outcome, "small.json", where)
        if config.surely_valid:
            expect(outcome.code == 0, "valid-config-rejected",
                   "a config of shipped keys and values (any subset is allowed) was rejected", example, outcome)
    _counted("configs", f"exit {outcome.code}", started)


# ---- 3. state files ------------------------------------------------------------------------------

STATE_CASES = state_scenarios()


def no_live_pid(example: Example) -> None:
    """Belt and braces: `cancel` signals the pid a status names; no planted one may be a live process."""
    def walk(doc: Any, under: bool) -> None:
        if isinstance(doc, dict):
            for k, v in doc.items():
                walk(v, under or holds_pids(k))
        elif isinstance(doc, list):
            for v in doc:
                walk(v, under)
        elif under and not isinstance(doc, bool):
            try:
                pid = int(doc)
            except (TypeError, ValueError, OverflowError):
                return
            if 0 <= pid < 2**31 and pid != SAFE_PID and psutil.pid_exists(pid):
                raise RuntimeError(f"the generator planted the live pid {pid}: fix tests/fuzzing/state.py")

    for planted in example.files:
        try:
            walk(json.loads(planted.content), False)
        except (ValueError, RecursionError):
            continue


def check_state(scenario: StateScenario) -> None:
    """Any command on broken state files: nothing planted is lost, a file set aside is said, runs still record."""
    started = time.monotonic()
    example = scenario.example
    no_live_pid(example)
    with Sandbox() as box:
        box.plant(example)
        before = set_aside(box.root)
        outcome = invoke(example)
        check_common(example, outcome)
        for item in lost(box.root, example.files):
            expect(False, f"lost-state:{item.label.split(' (')[0]}",
                   f"{item.path} ({item.label}) is gone: neither in place nor moved aside", example, outcome)
        for path in sorted(set_aside(box.root) - before):
            name = os.path.basename(path).split(".corrupt-")[0]
            expect(name in outcome.stderr, "set-aside-silently", f"{path} was moved aside without a warning",
                   example, outcome)
        if scenario.command in ("run", "resume"):
            _check_run(box, scenario, outcome)
    _counted("state files", scenario.command, started)


def _check_run(box: Sandbox, scenario: StateScenario, outcome: Outcome) -> None:
    """A run of one `true` task: it succeeds, or nothing ran (exit 2); bookkeeping never fails it."""
    example = scenario.example
    results = task_results(box.root)
    expect(outcome.code != 1, "run-failed-by-bookkeeping", "a run of one `true` task exited 1", example, outcome)
    if outcome.code == 2:
        expect(not results, "ran-then-exit-2", f"exit 2 (nothing ran) after writing {results[:1]}", example, outcome)
    if outcome.code == 0:
        expect(results, "no-results", "the run succeeded but wrote no result for its task", example, outcome)
        run_id = results[0].parent.name if results else None
        stats = stats_after(box.root)
        if not isinstance(stats, dict):
            updated = False
        elif "last_run" in stats:  # names the run that updated it last
            updated = isinstance(stats["last_run"], dict) and stats["last_run"].get("run_id") == run_id
        else:
            updated = bool(stats.get("total_parallel_executions"))
        expect(updated, "stats-not-updated", f"the run {run_id} succeeded but the stats do not count it", example,
               outcome)


class Kind(NamedTuple):
    name: str  # the generator's name in COUNTS
    strategy: st.SearchStrategy[Any]
    check: Callable[[Any], None]


KINDS = [Kind("task files", TASK_FILE_CASES, check_task_file), Kind("task files run", RUNNABLE_CASES, check_real_run),
         Kind("configs", CONFIG_CASES, check_config), Kind("state files", STATE_CASES, check_state)]
