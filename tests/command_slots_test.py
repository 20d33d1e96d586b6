"""Command tasks are held to the CPUs this process may use unless -j or max_concurrent_commands says
otherwise (§6); agent tasks, which wait on a network, keep max_concurrent."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from parallel_executor.system.cpus import usable_cpus

from tests.conftest import engine, helper
from tests.executor_test import intervals, max_overlap

pytestmark = pytest.mark.timeout(60)
FAKES = Path(__file__).resolve().parent / "fakes"


def commands(out: Path, n: int) -> list[dict[str, object]]:
    return [{"id": f"c{i}", "command": helper("interval.py", str(out), f"c{i}", "0.6")} for i in range(n)]


def test_without_j_commands_use_the_cpus_and_agents_keep_max_concurrent(
        home: Path, tasks_file: Callable[..., Path], tmp_path: Path) -> None:
    cpus = usable_cpus()
    out = tmp_path / "out"
    out.mkdir()
    done = engine("run", "-q", tasks_file(commands(out, cpus + 1)))  # one more than the cap
    assert done.returncode == 0 and max_overlap(intervals(out)) == cpus
    log = tmp_path / "log"
    log.mkdir()
    agents = [{"id": f"a{i}", "prompt": "hi"} for i in range(cpus + 2)]
    env = {"PATH": f"{FAKES}:{os.environ['PATH']}", "FAKE_AGENT_SLEEP": "0.8", "FAKE_AGENT_LOG": str(log)}
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"max_concurrent": cpus + 2}))
    done = engine("run", "-q", "--config", config, tasks_file(agents, "agents.json"), env=env)
    calls = [json.loads(f.read_text()) for f in log.iterdir()]
    assert done.returncode == 0 and max_overlap({str(i): (c["start"], c["end"]) for i, c in enumerate(calls)}) \
        == cpus + 2


def test_j_above_the_cpus_runs_that_many_with_a_note_and_the_config_can_say_otherwise(
        home: Path, tasks_file: Callable[..., Path], tmp_path: Path) -> None:
    cpus = usable_cpus()
    out = tmp_path / "out"
    out.mkdir()
    done = engine("run", "-j", str(cpus + 2), tasks_file(commands(out, cpus + 2)))
    assert done.returncode == 0 and max_overlap(intervals(out)) == cpus + 2
    assert f"-j {cpus + 2} is above the {cpus} CPUs this process may use" in done.stderr
    for f in out.iterdir():
        f.unlink()
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"max_concurrent_commands": 1}))
    done = engine("run", "-q", "-j", "4", "--config", config, tasks_file(commands(out, 2)))  # one at a time
    assert done.returncode == 0 and max_overlap(intervals(out)) == 1
