"""run --backend dask (PRODUCT §13) against a real cluster: a `dask scheduler` and two `dask worker`
processes started apart from the engine, as a user starts them (on 127.0.0.1, so the file system is
shared and psutil sees the workers' processes). `dask_cluster` is also what backend_test runs its
contract suite on."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import (
    ENGINE,
    engine,
    helper,
    processes_with_marker,
    py,
    run_json,
    start_engine,
    tasks_running,
    wait_for,
)
from tests.executor_test import intervals, max_overlap

DASK = Path(sys.executable).parent / "dask"
needs_dask = pytest.mark.skipif(find_spec("distributed") is None, reason="the dask extra (distributed) is missing")
pytestmark = [needs_dask, pytest.mark.timeout(60)]


@dataclass
class Cluster:
    """A scheduler and its workers, each a process group of its own (a worker's nanny starts the
    worker process in its group)."""

    address: str
    root: Path
    scheduler: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def add_worker(self) -> None:
        log = (self.root / f"worker-{len(self.workers)}.log").open("wb")
        self.workers.append(subprocess.Popen(
            [str(DASK), "worker", self.address, "--nworkers", "1", "--nthreads", "2", "--no-dashboard",
             "--host", "127.0.0.1", "--local-directory", str(self.root / "scratch")],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.root))
        log.close()

    def wait_for_workers(self, n: int = 2, timeout: float = 30) -> None:
        from distributed import Client

        with Client(self.address, timeout=timeout) as client:
            client.wait_for_workers(n, timeout=timeout)
            deadline = time.monotonic() + timeout  # a dead worker may still be listed for a moment
            while len(client.scheduler_info(n_workers=-1)["workers"]) != n:
                assert time.monotonic() < deadline, f"the scheduler does not see {n} workers"
                time.sleep(0.1)

    def worker_processes(self) -> list[psutil.Process]:
        """The live `dask worker` processes and what they started (the worker process under its nanny)."""
        found = []
        for proc in self.workers:
            with contextlib.suppress(psutil.NoSuchProcess):
                top = psutil.Process(proc.pid)
                found += [top, *top.children(recursive=True)]
        return found

    def processes(self) -> list[psutil.Process]:
        found = self.worker_processes()
        with contextlib.suppress(psutil.NoSuchProcess):
            top = psutil.Process(self.scheduler.pid)
            found += [top, *top.children(recursive=True)]
        return found

    def close(self) -> None:
        tree = self.processes()
        for proc in [*self.workers, self.scheduler]:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for survivor in tree:  # one that left its group
            with contextlib.suppress(psutil.NoSuchProcess):
                survivor.kill()
        # Ended ones may stay zombies for a while: those under init wait for it to reap them (>1 s in some containers).
        deadline = time.monotonic() + 10
        while alive := [p for p in tree if not ended(p)]:
            assert time.monotonic() < deadline, f"cluster processes left: {alive}"
            time.sleep(0.02)


def ended(proc: psutil.Process) -> bool:
    """proc is gone, or a zombie: it ended and awaits its reaper (init may take a while)."""
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@contextlib.contextmanager
def dask_cluster_running(root: Path, workers: int = 2) -> Iterator[Cluster]:
    """A scheduler on a free port of 127.0.0.1 and `workers` workers of 2 threads, torn down at the end."""
    root.mkdir(parents=True, exist_ok=True)
    info = root / "scheduler.json"
    log = (root / "scheduler.log").open("wb")
    with socket.socket() as probe:  # a free port, so that the workers start with the scheduler, not after it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    scheduler = subprocess.Popen([str(DASK), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard",
                                  "--scheduler-file", str(info)],
                                 stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=root)
    log.close()
    cluster = Cluster(f"tcp://127.0.0.1:{port}", root, scheduler)
    try:
        for _ in range(workers):  # each tries to reach the scheduler until it is up
            cluster.add_worker()
        deadline = time.monotonic() + 30
        while not info.exists() or not info.read_text().strip():
            assert scheduler.poll() is None, (root / "scheduler.log").read_text()
            assert time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.05)
        time.sleep(0.05)  # the file is written at once, but give a half-written one a moment
        assert json.loads(info.read_text())["address"] == cluster.address
        cluster.wait_for_workers(workers)
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with dask_cluster_running(tmp_path_factory.mktemp("dask-cluster")) as cluster:
        yield cluster


def on_dask(cluster: Cluster, path: Path, *args: str | Path, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    return run_json(path, "--backend", "dask", "--scheduler", cluster.address, *args, **kwargs)


def ancestry(out: Path) -> list[str]:
    """A command task that writes its own pid and its ancestors' pids, nearest first, to out."""
    return py(f"import json, os, psutil; json.dump([os.getpid()] + [p.pid for p in psutil.Process().parents()], "
              f"open({str(out)!r}, 'w'))")


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE  # ended, awaiting its reaper
    except psutil.NoSuchProcess:
        return True


def test_tasks_run_in_a_worker_not_in_the_engine(home: Path, tasks_file: Callable[..., Path], tmp_path: Path,
                                                 dask_cluster: Cluster) -> None:
    chain = tmp_path / "chain.json"
    proc = start_engine(tasks_file([{"id": "where", "command": ancestry(chain)}]),
                        "--backend", "dask", "--scheduler", dask_cluster.address)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    _, parent, *above = json.loads(chain.read_text())
    workers = {p.pid: " ".join(p.cmdline()) for p in dask_cluster.worker_processes()}
    assert parent in workers, f"the task's parent {parent} is not a worker's process"
    assert any("dask" in workers.get(pid, "") and "worker" in workers.get(pid, "") for pid in [parent, *above])
    assert proc.pid not in [parent, *above]


def test_tasks_overlap_up_to_j_on_the_workers(home: Path, tasks_file: Callable[..., Path], tmp_path: Path,
                                              dask_cluster: Cluster) -> None:
    out = tmp_path / "out"
    out.mkdir()
    path = tasks_file([{"id": f"t{i}", "command": helper("interval.py", str(out), f"t{i}", "1")} for i in range(4)])
    code, summary = on_dask(dask_cluster, path, "-j", "4")
    assert code == 0, summary
    spans = intervals(out)
    assert max_overlap(spans) == 4  # 2 workers x 2 threads
    assert max(e for _, e in spans.values()) - min(s for s, _ in spans.values()) < 2.5  # one round, not four


def test_a_dependency_chain_keeps_its_order(home: Path, tasks_file: Callable[..., Path], tmp_path: Path,
                                            dask_cluster: Cluster) -> None:
    out = tmp_path / "out"
    out.mkdir()
    path = tasks_file([
        {"id": "a", "command": helper("interval.py", str(out), "a", "0.3")},
        {"id": "b", "command": helper("interval.py", str(out), "b", "0.1"), "blockedBy": ["a"]},
        {"id": "c", "command": helper("interval.py", str(out), "c", "0.1"), "blockedBy": ["b"]},
    ])
    code, summary = on_dask(dask_cluster, path, "-j", "4")
    assert code == 0, summary
    s = intervals(out)
    assert s["b"][0] >= s["a"][1] and s["c"][0] >= s["b"][1]


def test_a_timeout_ends_the_whole_tree_on_the_worker(home: Path, tasks_file: Callable[..., Path], tmp_path: Path,
                                                     dask_cluster: Cluster) -> None:
    pids = tmp_path / "pids"
    hang = py(f"import os, subprocess, time; child = subprocess.Popen(['sleep', '60']); "
              f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}'); time.sleep(60)")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"kill_grace_seconds": 0.5}))
    path = tasks_file({"defaults": {"retries": 0}, "tasks": [{"id": "hang", "command": hang, "timeout": 1.0}]})
    started = time.monotonic()
    code, summary = on_dask(dask_cluster, path, "--config", config)
    assert code == 1 and time.monotonic() - started < 15
    assert summary["tasks"]["hang"]["status"] == "timeout"
    task, child = map(int, pids.read_text().split())
    wait_for(lambda: gone(task) and gone(child), timeout=3)


def test_ctrl_c_ends_the_trees_on_the_workers(home: Path, tasks_file: Callable[..., Path],
                                              dask_cluster: Cluster) -> None:
    marker = f"dask-sigint-{os.getpid()}-{time.time_ns()}"
    path = tasks_file([
        {"id": "a", "command": helper("tree.py", marker)},
        {"id": "b", "command": helper("tree.py", marker)},
        {"id": "c", "command": ["true"], "blockedBy": ["a"]},
    ])
    proc = start_engine(path, "--json", "--backend", "dask", "--scheduler", dask_cluster.address)
    try:
        wait_for(lambda: tasks_running(home, 2), timeout=20)
        wait_for(lambda: len(processes_with_marker(marker)) == 6, timeout=20)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert {t: v["status"] for t, v in json.loads(out)["tasks"].items()} == {
        "a": "cancelled", "b": "cancelled", "c": "cancelled"}
    wait_for(lambda: processes_with_marker(marker) == [], timeout=3)


def test_a_failed_attempt_is_retried(home: Path, tasks_file: Callable[..., Path], tmp_path: Path,
                                     dask_cluster: Cluster) -> None:
    log = tmp_path / "attempts"
    flaky = py(f"import pathlib, sys; log = pathlib.Path({str(log)!r}); first = not log.exists(); "
               "log.open('a').write('attempt\\n'); sys.exit(3 if first else 0)")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"retry_backoff_seconds": 0.1}))
    code, summary = on_dask(dask_cluster, tasks_file([{"id": "flaky", "command": flaky, "retries": 1}]),
                            "--config", config)
    assert code == 0, summary
    assert summary["tasks"]["flaky"]["status"] == "success" and summary["tasks"]["flaky"]["attempts"] == 2
    assert log.read_text().split() == ["attempt", "attempt"]


def test_the_run_files_are_those_of_the_local_backend(home: Path, tasks_file: Callable[..., Path],
                                                      dask_cluster: Cluster) -> None:
    path = tasks_file({"defaults": {"retries": 0}, "tasks": [
        {"id": "a", "command": "echo hi; echo warn >&2"},
        {"id": "b", "blockedBy": ["a"], "command": py(
            "import json, os; json.dump({'task': os.environ['PARALLEL_TASK_ID']}, "
            "open(os.environ['PARALLEL_RESULT_FILE'], 'w'))")},
        {"id": "c", "command": ["false"]},
    ]})
    runs = {}
    for backend in ("local", "dask"):
        extra = ("--scheduler", dask_cluster.address) if backend == "dask" else ()
        code, summary = run_json(path, "--backend", backend, *extra)
        assert code == 1, summary
        results = Path(summary["results_dir"])
        runs[backend] = {f.name: sorted(json.loads(f.read_text())) if f.suffix == ".json" else None
                         for f in results.iterdir()}
        assert json.loads((results / "a.json").read_text())["output"] == "hi\n"
        assert json.loads((results / "b.json").read_text())["data"] == {"task": "b"}
    assert runs["dask"] == runs["local"]


def test_an_embedded_local_cluster_without_a_scheduler(home: Path, tasks_file: Callable[..., Path],
                                                       tmp_path: Path) -> None:
    chain = tmp_path / "chain.json"
    mark = f"embedded-{os.getpid()}-{time.time_ns()}"
    proc = subprocess.Popen([*ENGINE, "run", str(tasks_file([{"id": "where", "command": ancestry(chain)}])),
                             "--backend", "dask", "-j", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, env={**os.environ, "DASK_TEST_MARK": mark})
    _, err = proc.communicate(timeout=50)
    assert proc.returncode == 0, err
    _, parent, *above = json.loads(chain.read_text())
    assert parent != proc.pid and proc.pid in above  # in a worker process the engine started
    wait_for(lambda: not _marked(mark), timeout=5)  # the cluster went with the engine


def _marked(mark: str) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if p.environ().get("DASK_TEST_MARK") == mark and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p)
    return found


def test_an_unreachable_scheduler_is_a_clear_error(home: Path, tasks_file: Callable[..., Path]) -> None:
    started = time.monotonic()
    done = engine("run", tasks_file([{"id": "a", "command": ["true"]}]), "--backend", "dask",
                  "--scheduler", "tcp://127.0.0.1:9", timeout=30)
    assert done.returncode == 2 and time.monotonic() - started < 10
    assert "tcp://127.0.0.1:9" in done.stderr and "Traceback" not in done.stderr
    done = engine("run", tasks_file([{"id": "a", "command": ["true"]}]), "--backend", "dask",
                  "--scheduler", "no-port-here", timeout=30)  # malformed: a half-made Client printed a traceback
    assert done.returncode == 2 and "not a scheduler address" in done.stderr and "Traceback" not in done.stderr
    for other in ("tls://127.0.0.1:9", "ucx://127.0.0.1:9"):  # Dask raised TypeError for these: a traceback
        done = engine("run", tasks_file([{"id": "a", "command": ["true"]}]), "--backend", "dask",
                      "--scheduler", other, timeout=30)
        assert done.returncode == 2 and "tcp://" in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_without_distributed_the_dask_extra_is_named(home: Path, tasks_file: Callable[..., Path],
                                                     tmp_path: Path) -> None:
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    for name in ("dask", "distributed"):  # as if neither were installed
        (hidden / f"{name}.py").write_text(f"raise ModuleNotFoundError(\"No module named '{name}'\", name={name!r})\n")
    done = engine("run", tasks_file([{"id": "a", "command": ["true"]}]), "--backend", "dask",
                  env={"PYTHONPATH": os.pathsep.join(filter(None, [str(hidden), os.environ.get("PYTHONPATH")]))})
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "[dask]" in done.stderr or "dask extra" in done.stderr, done.stderr


def _kill_the_worker_of(attempt: Path, cluster: Cluster) -> tuple[int, int]:
    """Once the attempt wrote its ancestry to attempt, SIGKILL the worker process running it (its nanny
    starts another); the pids of the attempt and of the worker."""
    wait_for(lambda: attempt.exists() and attempt.stat().st_size > 0, timeout=20)
    task, *above = json.loads(attempt.read_text())
    nannies = {w.pid for w in cluster.workers}
    worker = next(pid for pid in above if pid in nannies or psutil.Process(pid).ppid() in nannies)
    os.kill(worker, signal.SIGKILL)
    return task, worker


def _run_killing_a_worker(tasks: Path, attempt: Path, cluster: Cluster,
                          *args: str) -> tuple[int, dict[str, Any], str, int, int]:
    """Run `tasks` on the cluster and kill the worker of the attempt that writes `attempt`: the run's
    exit code, summary and stderr, and the pids of that attempt and worker."""
    proc = start_engine(tasks, "--json", "--backend", "dask", "--scheduler", cluster.address, *args)
    try:
        task, worker = _kill_the_worker_of(attempt, cluster)
        out, err = proc.communicate(timeout=40)
    finally:
        proc.kill()
        cluster.wait_for_workers(2)
    return proc.returncode, json.loads(out) if out else {}, err, task, worker


# These two come last in the file: each kills a worker process, and waits for its nanny's new one.
def test_a_worker_that_dies_mid_task_is_a_failed_attempt_and_retried(
        home: Path, tasks_file: Callable[..., Path], tmp_path: Path, dask_cluster: Cluster) -> None:
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    doomed = py(f"import json, os, pathlib, psutil, time; first = pathlib.Path({str(first)!r}); "
                f"out = first if not first.exists() else pathlib.Path({str(second)!r}); "
                "json.dump([os.getpid()] + [p.pid for p in psutil.Process().parents()], out.open('w')); "
                "out == first and time.sleep(30)")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"retry_backoff_seconds": 0.1}))
    code, summary, err, _, worker = _run_killing_a_worker(
        tasks_file([{"id": "doomed", "command": doomed, "retries": 1}]), first, dask_cluster, "--config", str(config))
    assert code == 0, err
    result = summary["tasks"]["doomed"]
    assert result["status"] == "success" and result["attempts"] == 2
    assert worker not in json.loads(second.read_text())


def test_dask_does_not_rerun_the_attempt_of_a_dead_worker_nor_leave_it_running(
        home: Path, tasks_file: Callable[..., Path], tmp_path: Path, dask_cluster: Cluster) -> None:
    runs = tmp_path / "runs"
    doomed = py(f"import json, os, psutil, time; out = open({str(runs)!r}, 'a'); "
                "json.dump([os.getpid()] + [p.pid for p in psutil.Process().parents()], out); out.close(); "
                "time.sleep(30)")
    code, summary, err, task, _ = _run_killing_a_worker(
        tasks_file([{"id": "doomed", "command": doomed, "retries": 0}]), runs, dask_cluster)
    assert code == 1, err
    result = summary["tasks"]["doomed"]
    assert result["status"] == "failed" and result["attempts"] == 1, result  # retries: 0, whatever Dask does
    assert runs.read_text().count("[") == 1
    wait_for(lambda: gone(task), timeout=5)  # the run's task process does not outlive the run


def test_real_agent_captures_end_right_on_the_workers(home: Path, tmp_path: Path, dask_cluster: Cluster) -> None:
    """The real CLIs' captures (tests/captures, from ../shared/agent-cli-captures) replayed by the fake
    CLIs on the workers: a success, API errors on stdout, failures told on stderr only."""
    from tests.agents_e2e_test import CASES
    from tests.agents_e2e_test import run as run_agents

    chosen = {"claude-mock-ok-stream", "claude-mock-e429", "codex-nokey-nogit", "gemini-mock-e503",
              "aider-mock-e529"}
    tasks = [{"id": c, "prompt": "say hi", "runner": runner, "env": {"FAKE_AGENT_MODE": f"capture:{c}"}}
             for c, runner, *_ in CASES if c in chosen]
    code, summary, err = run_agents(tmp_path, tasks, "--backend", "dask", "--scheduler", dask_cluster.address)
    assert code == 1, err
    for capture, _, status, error, attempts, error_class in (c for c in CASES if c[0] in chosen):
        task = summary["tasks"][capture]
        assert (task["status"], task["attempts"], task["error_class"]) == (status, attempts, error_class), capture
        assert task["error"] is None if error is None else error in task["error"], capture
