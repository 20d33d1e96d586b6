"""Fuzzing the command line in-process: hostile task files, configs and state files (§3, §4, §5, §8, §10).

Every example runs `parallel_executor.cli.main` in this process, in a sandbox of its own (a fresh
working dir and CLAUDE_CONFIG_DIR), and holds the engine to what PRODUCT.md promises whatever
the input: an exit code of 0, 1 or 2 (a message on stderr with 2), no exception escaping
`main`, no hang, JSON where JSON is asked for, and nothing the user had lost — a state file the
engine cannot use is moved aside as `<name>.corrupt-<timestamp>`, never silently replaced.
A failure prints a reproducer: the files and the command. The generators and checks are in
tests/fuzzing/; `python -m tests.fuzzing.survey` lists every distinct failure at once (a test
stops at its first), each shrunk to its smallest reproducer.

Two profiles: the default one (derandomized: the same examples every time) keeps this file to
about 20 s of `make test` yet still draws every command, mutation and damage the generators know
(1,000 task files hold each at least once) and every variant of each state file (600 scenarios);
`PE_FUZZ=long` (`make fuzz`) runs 10,000 task files (500 of them really run), 3,000 state-file and
1,000 config scenarios, new ones each time, and prints how many examples each generator ran.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings

from tests.fuzzing.cases import (
    CONFIG_CASES,
    COUNTS,
    RUNNABLE_CASES,
    SECONDS,
    STATE_CASES,
    TASK_FILE_CASES,
    check_config,
    check_real_run,
    check_state,
    check_task_file,
)
from tests.fuzzing.configs import ConfigFile
from tests.fuzzing.harness import Example, Planted, Sandbox, invoke
from tests.fuzzing.state import StateScenario, small_task_file, stats_after, task_results
from tests.fuzzing.taskfiles import TaskFile

LONG = os.environ.get("PE_FUZZ") == "long"
settings.register_profile("pe-fuzz", deadline=None, database=None, derandomize=True, print_blob=False,
                          suppress_health_check=list(HealthCheck), max_examples=100)
settings.register_profile("pe-fuzz-long", settings.get_profile("pe-fuzz"), derandomize=False, max_examples=1000)
PROFILE = settings.get_profile("pe-fuzz-long" if LONG else "pe-fuzz")
EXAMPLES = {"task files": 10_000, "task files run": 500, "configs": 1000, "state files": 3000} if LONG else \
    {"task files": 1000, "task files run": 150, "configs": 600, "state files": 600}
TEST_TIMEOUT = 4 * 3600 if LONG else 900  # room for Hypothesis to shrink each failure it found


@pytest.fixture(scope="module", autouse=True)
def summary() -> Iterator[None]:
    yield
    lines = [f"  {name}: {COUNTS[name]} examples in {SECONDS[name]:.1f}s" for name in EXAMPLES]
    lines += [f"    {name}: {n}" for name, n in sorted(COUNTS.items()) if name not in EXAMPLES]
    print(f"\nfuzz examples run to the end ({'long' if LONG else 'default'} profile):\n" + "\n".join(lines))


@pytest.mark.timeout(TEST_TIMEOUT)
@settings(PROFILE, max_examples=EXAMPLES["task files"])
@given(case=TASK_FILE_CASES)
def test_task_files(case: tuple[str, TaskFile]) -> None:
    check_task_file(case)


@pytest.mark.timeout(TEST_TIMEOUT)
@settings(PROFILE, max_examples=EXAMPLES["task files run"])
@given(file=RUNNABLE_CASES)
def test_task_files_really_run(file: TaskFile) -> None:
    check_real_run(file)


@pytest.mark.timeout(TEST_TIMEOUT)
@settings(PROFILE, max_examples=EXAMPLES["configs"])
@given(case=CONFIG_CASES)
def test_configs(case: tuple[str, str, ConfigFile]) -> None:
    check_config(case)


@pytest.mark.timeout(TEST_TIMEOUT)
@settings(PROFILE, max_examples=EXAMPLES["state files"])
@given(scenario=STATE_CASES)
def test_state_files(scenario: StateScenario) -> None:
    check_state(scenario)


def test_small_task_file_runs_clean() -> None:
    """The state scenarios' task file runs as is in an empty home: their failures come from the state."""
    example = Example([Planted("small.json", small_task_file(skill=True, paths=True), label="task file")],
                      ["run", "small.json", "-q"])
    with Sandbox() as box:
        box.plant(example)
        outcome = invoke(example)
        assert outcome.code == 0, outcome
        assert task_results(box.root) and isinstance(stats_after(box.root), dict)
