"""The backend contract (engine/backends/__init__.py), run against every backend with real processes
on a real loop; and the loop itself: timers, signals by name, wake-ups from other threads."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from parallel_executor.engine.backends import AttemptEnd, AttemptSpec, StartFailed, make_backend
from parallel_executor.engine.loop import Loop
from parallel_executor.engine.records import RunOptions, TaskFiles
from parallel_executor.plan.model import Status

from tests.dask_test import dask_cluster_running, ended, needs_dask

pytestmark = pytest.mark.timeout(20)
BACKENDS = ["local", pytest.param("dask", marks=needs_dask)]  # dask: on a scheduler and 2 workers of this module


class Reports:
    def __init__(self) -> None:
        self.ends: dict[str, AttemptEnd] = {}
        self.stopping: list[tuple[str, Status]] = []

    def attempt_ended(self, end: AttemptEnd) -> None:
        self.ends[end.task_id] = end

    def attempt_stopping(self, task_id: str, why: Status) -> None:
        self.stopping.append((task_id, why))


class Bench:
    def __init__(self, name: str, tmp: Path, grace: float = 0.3, scheduler: str | None = None) -> None:
        self.name, self.loop, self.reports, self.tmp = name, Loop(), Reports(), tmp
        options = RunOptions(slots=4, kill_grace=grace, scheduler=scheduler)
        self.backend = make_backend(name, self.loop, options, self.reports)
        self.pids: dict[str, int] = {}

    def start(self, tid: str, argv: list[str], timeout: float = 30.0) -> int | None:
        files = TaskFiles(*(str(self.tmp / f"{tid}.{x}") for x in ("json", "stdout", "stderr", "data.json")))
        env = {"PATH": os.environ["PATH"], "PARALLEL_TASK_ID": tid, "BENCH_DIR": str(self.tmp)}
        pid = self.backend.start(AttemptSpec(tid, 1, argv, self.tmp, env, files, timeout, clear_data=False))
        self.turn()  # a backend may hand what one turn of the loop started to its cluster at once
        if pid is not None:
            self.pids[tid] = pid
        return pid

    def turn(self) -> None:
        """Turn the loop until the timers due now have fired (the engine's loop always turns)."""
        fired = [False]
        self.loop.call_later(0.0, lambda: fired.__setitem__(0, True))
        self.loop.run_until(lambda: fired[0], lambda: None)

    def pid(self, tid: str) -> int:
        """The attempt's pid: the one start returned or, where the backend runs it in another process
        (on this machine in these tests), its tree's top process, found by its environment."""
        deadline = time.monotonic() + 10
        while tid not in self.pids:
            tree = {}
            for p in psutil.process_iter():
                with contextlib.suppress(psutil.Error):
                    env = p.environ()
                    if env.get("BENCH_DIR") == str(self.tmp) and env.get("PARALLEL_TASK_ID") == tid:
                        tree[p.pid] = p.ppid()
            tops = [pid for pid, parent in tree.items() if parent not in tree]
            if len(tops) == 1:
                self.pids[tid] = tops[0]
            else:
                assert time.monotonic() < deadline, f"attempt {tid} did not start"
                time.sleep(0.01)
        return self.pids[tid]

    def wait(self, *tids: str, limit: float = 10) -> None:
        deadline = time.monotonic() + limit
        self.loop.call_later(limit, lambda: None)  # the loop must not sleep past the deadline
        self.loop.run_until(lambda: all(t in self.reports.ends for t in tids) or time.monotonic() > deadline,
                            lambda: None)
        assert all(t in self.reports.ends for t in tids), "attempt did not end in time"

    def close(self) -> None:
        self.backend.close()
        self.loop.close()


@pytest.fixture(scope="module")
def dask_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with dask_cluster_running(tmp_path_factory.mktemp("dask-cluster")) as cluster:
        yield cluster.address


@pytest.fixture(params=BACKENDS)
def bench(request: pytest.FixtureRequest, tmp_path: Path) -> Bench:
    scheduler = request.getfixturevalue("dask_address") if request.param == "dask" else None
    made = Bench(request.param, tmp_path, scheduler=scheduler)
    request.addfinalizer(made.close)
    return made


def py(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_an_attempt_reports_its_exit_code_and_output_tails(bench: Bench) -> None:
    bench.start("a", ["sh", "-c", "echo out; echo err >&2; exit 3"])
    bench.wait("a")
    end = bench.reports.ends["a"]
    assert (end.exit_code, end.stdout, end.stderr, end.stopped) == (3, "out\n", "err\n", None)
    assert end.busy > 0 and abs(end.end - time.time()) < 5
    assert os.stat(bench.tmp / "a.stdout").st_mode & 0o777 == 0o600


def test_a_missing_program_cannot_start(bench: Bench) -> None:
    try:
        bench.start("a", ["no-such-program-xyz"])
    except StartFailed as failed:
        code, message = failed.exit_code, failed.message
    else:  # a backend that starts it elsewhere (dask: on a worker) learns it there, as the attempt's end
        bench.wait("a")
        code, message = bench.reports.ends["a"].exit_code, bench.reports.ends["a"].error or ""
    assert code == 127 and "no-such-program-xyz" in message


def test_a_timeout_stops_the_whole_tree(bench: Bench) -> None:
    bench.start("a", ["sh", "-c", "sleep 30 & sleep 30; wait"], timeout=0.2)
    bench.wait("a")
    end = bench.reports.ends["a"]
    assert end.stopped is Status.TIMEOUT and end.exit_code < 0 and end.busy < 3
    assert bench.reports.stopping == [("a", Status.TIMEOUT)]


def test_stop_escalates_to_sigkill_after_the_grace(bench: Bench, tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    bench.start("a", py(f"import signal, time, pathlib; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                        f"pathlib.Path({str(ready)!r}).touch(); time.sleep(30)"))
    deadline = time.monotonic() + 10
    while not ready.exists():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    bench.backend.stop("a", Status.FAILED, "memory limit 1 MB exceeded")
    bench.wait("a")
    end = bench.reports.ends["a"]
    assert end.exit_code == -signal.SIGKILL and end.stopped is Status.FAILED
    assert end.error == "memory limit 1 MB exceeded"


def _state(pid: int, stopped: bool) -> None:
    deadline = time.monotonic() + 5  # signals are delivered asynchronously
    while (psutil.Process(pid).status() == psutil.STATUS_STOPPED) != stopped:
        assert time.monotonic() < deadline, f"the attempt was {'not ' if stopped else ''}stopped"
        time.sleep(0.01)


def test_each_reason_to_suspend_is_lifted_on_its_own_and_a_pause_freezes_the_timeout(bench: Bench) -> None:
    bench.start("a", [sys.executable, "-c", "import time\nfor _ in range(8): time.sleep(0.05)"], timeout=0.6)
    bench.backend.suspend("a", "memory")
    bench.backend.suspend("a", "pause")
    bench.backend.suspend("a", "cpu")
    pid = bench.pid("a")
    _state(pid, stopped=True)
    for why in ("memory", "cpu"):  # the pause still holds it
        bench.backend.resume("a", why)
        time.sleep(0.1)
        _state(pid, stopped=True)
    bench.loop.call_later(1.0, lambda: bench.backend.resume("a", "pause"))  # paused past its 0.6 s timeout
    bench.wait("a")
    end = bench.reports.ends["a"]
    assert end.stopped is None and end.exit_code == 0  # not a timeout: paused time does not count
    assert 0.3 < end.busy < 0.9  # nor is it in its duration


def test_a_cpu_hold_alone_does_not_freeze_the_timeout(bench: Bench) -> None:
    bench.start("a", ["sleep", "5"], timeout=0.4)
    bench.backend.suspend("a", "cpu")
    bench.wait("a")
    assert bench.reports.ends["a"].stopped is Status.TIMEOUT


def test_suspend_resume_and_measure(bench: Bench) -> None:
    bench.start("a", ["sleep", "0.5"])
    bench.backend.suspend("a", "pause")
    _state(bench.pid("a"), stopped=True)
    if bench.name == "dask":  # the workers' processes are not the engine's machine's to measure
        assert bench.backend.measure() == {}
    else:
        rss, cpu = bench.backend.measure()["a"]
        assert rss > 0 and cpu >= 0
    time.sleep(0.6)  # longer than it would have slept: stopped, it cannot have ended
    assert "a" not in bench.reports.ends
    bench.backend.resume("a", "pause")
    bench.wait("a")
    assert bench.reports.ends["a"].exit_code == 0


def test_close_ends_what_still_runs(bench: Bench) -> None:
    bench.start("a", ["sh", "-c", "sleep 30 & sleep 30"])
    top = psutil.Process(bench.pid("a"))
    deadline = time.monotonic() + 5
    while len(top.children()) < 2:  # both sleeps started
        assert time.monotonic() < deadline, "the tree did not start"
        time.sleep(0.01)
    tree = [top, *top.children(recursive=True)]
    bench.backend.close()
    deadline = time.monotonic() + 5
    while alive := [p for p in tree if not ended(p)]:  # not psutil.wait_procs: it waits for init to reap them
        assert time.monotonic() < deadline, alive
        time.sleep(0.02)


def test_a_completion_from_another_thread_wakes_the_loop() -> None:
    loop, got = Loop(), list[float]()
    try:
        threading.Timer(0.1, lambda: loop.call_soon_threadsafe(lambda: got.append(time.monotonic()))).start()
        started = time.monotonic()
        loop.run_until(lambda: bool(got), lambda: None)  # no timer, no descriptor: only the wake-up pipe
        assert got and got[0] - started < 2
    finally:
        loop.close()


def test_signals_reach_the_handler_by_name_and_handlers_are_restored() -> None:
    loop, names = Loop(), list[str]()
    before = signal.getsignal(signal.SIGTERM)
    try:
        loop.catch_signals(names.append)
        loop.call_later(0.05, lambda: os.kill(os.getpid(), signal.SIGTERM))
        loop.run_until(lambda: bool(names), lambda: None)
        assert names == ["SIGTERM"]
    finally:
        loop.close()
    assert signal.getsignal(signal.SIGTERM) is before
