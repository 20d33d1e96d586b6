"""Processes that escape their task (a new session, re-parented away from the task's tree, without
PARALLEL_RUN_ID in their environment) end with the run however it ends, and a long run gathers no
zombies of them (system/reaper.py; Linux: the engine is their child subreaper)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import processes_with_marker, start_engine, tasks_running, wait_for

pytestmark = [pytest.mark.timeout(30),
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the child subreaper is Linux's")]

Start = Callable[..., "subprocess.Popen[str]"]


def escaping(marker: str, then: str = "sleep 1000", keep_env: bool = False) -> list[str]:
    """A task whose daemon leaves its session and its tree, named `marker`; `env -i` drops the
    engine's variables from its environment unless keep_env."""
    env = "" if keep_env else "env -i "
    return ["bash", "-c", f"( setsid {env}bash -c 'exec -a {marker} sleep 1000' & ) ; {then}"]


def daemons(marker: str) -> list[psutil.Process]:
    """The live daemons themselves (the shells that started them hold the marker in their command lines too)."""
    found = []
    for p in processes_with_marker(marker):
        with contextlib.suppress(psutil.Error):  # it may end (a zombie, then gone) between the listing and here
            if p.cmdline()[:1] == [marker]:
                found.append(p)
    return found


def zombies_of(pid: int) -> int:
    count = 0
    for child in psutil.Process(pid).children():
        with contextlib.suppress(psutil.Error):
            count += child.status() == psutil.STATUS_ZOMBIE
    return count


@pytest.fixture
def marker() -> Iterator[str]:
    name = f"escapee-{os.getpid()}-{time.time_ns()}"
    yield name
    for process in processes_with_marker(name):  # a failed test leaves nothing behind
        with contextlib.suppress(psutil.Error):
            process.kill()


@pytest.fixture
def start() -> Iterator[Start]:
    engines: list[subprocess.Popen[str]] = []

    def start(path: Path, *args: str) -> subprocess.Popen[str]:
        engines.append(start_engine(path, "--json", *args))
        return engines[-1]

    yield start
    for proc in engines:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def ended(proc: subprocess.Popen[str], code: int) -> dict[str, Any]:
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == code, err
    return json.loads(out)  # type: ignore[no-any-return]


def test_timeout(home: Path, tasks_file: Callable[..., Path], marker: str, start: Start) -> None:
    proc = start(tasks_file([{"id": "d", "command": escaping(marker), "timeout": 1, "retries": 0}]))
    wait_for(lambda: bool(daemons(marker)))
    assert ended(proc, 1)["tasks"]["d"]["status"] == "timeout"
    assert processes_with_marker(marker) == []


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal(home: Path, tasks_file: Callable[..., Path], marker: str, start: Start, sig: int,
                code: int) -> None:
    proc = start(tasks_file([{"id": "d", "command": escaping(marker)}]))
    wait_for(lambda: bool(daemons(marker)) and tasks_running(home, 1))
    proc.send_signal(sig)
    assert ended(proc, code)["tasks"]["d"]["status"] == "cancelled"
    assert processes_with_marker(marker) == []


def test_halt_now(home: Path, tasks_file: Callable[..., Path], marker: str, start: Start) -> None:
    proc = start(tasks_file({"defaults": {"retries": 0}, "tasks": [
        {"id": "d", "command": escaping(marker)},
        {"id": "fails", "command": ["bash", "-c", "sleep 0.5; exit 1"]},
    ]}), "--halt", "now")
    wait_for(lambda: bool(daemons(marker)))
    tasks = ended(proc, 1)["tasks"]
    assert (tasks["d"]["status"], tasks["fails"]["status"]) == ("cancelled", "failed")
    assert processes_with_marker(marker) == []


def test_task_ends_while_its_daemon_runs(home: Path, tasks_file: Callable[..., Path], marker: str,
                                         start: Start) -> None:
    proc = start(tasks_file([{"id": "d", "command": escaping(marker, then="sleep 0.3")}]))
    wait_for(lambda: bool(daemons(marker)))
    assert ended(proc, 0)["tasks"]["d"]["status"] == "success"
    assert processes_with_marker(marker) == []


def test_one_that_ignores_sigterm_is_killed_after_the_grace(home: Path, tasks_file: Callable[..., Path], marker: str,
                                                            start: Start, tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"kill_grace_seconds": 0.3}))
    stubborn = ["bash", "-c", f"( setsid env -i bash -c 'trap \"\" TERM; exec -a {marker} sleep 1000' & ) ; sleep 0.2"]
    proc = start(tasks_file([{"id": "d", "command": stubborn}]), "--config", str(config))
    wait_for(lambda: bool(daemons(marker)))
    assert ended(proc, 0)["tasks"]["d"]["status"] == "success"
    assert processes_with_marker(marker) == []


def test_an_orphan_ends_with_its_attempt_not_the_run(home: Path, tasks_file: Callable[..., Path], marker: str,
                                                     start: Start) -> None:
    """One that still names its task in its environment goes when the attempt ends, while the run goes on."""
    proc = start(tasks_file([
        {"id": "d", "command": escaping(marker, then="sleep 0.3", keep_env=True)},
        {"id": "long", "command": ["sleep", "30"]},
    ]), "-j", "2")
    wait_for(lambda: bool(daemons(marker)))
    wait_for(lambda: not daemons(marker), timeout=5)
    assert proc.poll() is None  # the run goes on
    proc.send_signal(signal.SIGTERM)
    assert ended(proc, 143)["tasks"]["d"]["status"] == "success"


def test_a_long_run_gathers_no_zombies(home: Path, tasks_file: Callable[..., Path], marker: str, start: Start,
                                       tmp_path: Path) -> None:
    done = tmp_path / "burst-done"
    burst = f"for i in $(seq 30); do ( setsid sleep 0.01 & ); sleep 0.03; done; touch {done}; sleep 30"
    proc = start(tasks_file([{"id": "d", "command": escaping(marker, then=burst)}]))
    wait_for(lambda: bool(daemons(marker)))
    assert daemons(marker)[0].ppid() == proc.pid  # adopted by the engine, not by init
    wait_for(done.exists)
    wait_for(lambda: zombies_of(proc.pid) == 0, timeout=3)  # each tick reaps what exited since
    proc.send_signal(signal.SIGTERM)
    ended(proc, 143)
    assert processes_with_marker(marker) == []
