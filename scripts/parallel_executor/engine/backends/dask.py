"""The Dask backend (§13): each attempt runs on a worker of a Dask cluster; everything else (order,
admission, retries, budget, the journal, documents) stays the engine's.

An attempt is a task submitted with `pure=False` (identical commands must both run) and `retries=0`:
the engine's retries apply, not Dask's. On the worker it is a subprocess in a session of its own
(dask_worker.py) writing straight to the engine's files, so the cluster must share the file system.
Dask cannot interrupt a running task: a stop, a kill, a pause and a timeout reach the tree through
`Client.run` in every worker process, off the loop's thread (it blocks). A worker that dies mid-task
is a failed attempt: an embedded cluster lets no task be retried by Dask, and on any scheduler a
second start of the same attempt (Dask rescheduling it) finds the marker the first one left and
ends at once as failed. Memory and CPU are not measured here: the engine's machine is not the
workers', so memory admission and suspension and the CPU share do not apply on dask.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from parallel_executor.engine.backends import TAIL_BYTES, AttemptEnd, AttemptSpec, Reporter
from parallel_executor.engine.backends.dask_worker import (
    KEY_VAR,
    began_marker,
    end_record,
    pack,
    read_end_record,
    run_attempt,
    signal_attempt,
)
from parallel_executor.engine.backends.holds import Holds
from parallel_executor.engine.loop import Loop
from parallel_executor.engine.records import RunOptions
from parallel_executor.errors import UserError
from parallel_executor.plan.model import Status
from parallel_executor.system import procs
from parallel_executor.system.cpus import usable_cpus
from parallel_executor.system.fsutil import tail_file
from parallel_executor.system.inotify import moved_in

CONNECT_TIMEOUT = 3.0  # seconds to reach a scheduler before saying it cannot be reached
_CLIENTS: dict[tuple[str | None, int], Any] = {}  # one connection per process, made before the run starts


def connect(address: str | None, slots: int) -> Any:
    """A client of the scheduler at `address`, or of an embedded LocalCluster sized from -j. Raises
    UserError (exit 2) when dask is not installed or the scheduler cannot be reached."""
    if (address, slots) in _CLIENTS:
        return _CLIENTS[address, slots]
    logging.getLogger("distributed").setLevel(logging.ERROR)  # its chatter is not the run's output
    try:
        import dask
        import distributed
    except ImportError:
        raise UserError("--backend dask needs dask.distributed: pip install 'parallel-executor[dask]' "
                        "(make install and make test install it)") from None
    if address:
        try:  # a malformed one must be told before a Client is half made (its __del__ prints a traceback)
            from distributed.comm.addressing import parse_address, parse_host_port

            scheme, location = parse_address(address)
            if scheme != "tcp":  # tls:// would need certificates the engine has no way to be given
                raise ValueError(f"the engine speaks tcp:// to a scheduler, not {scheme}://")
            parse_host_port(location)
        except ValueError as e:
            raise UserError(f"--scheduler {address!r} is not a scheduler address, like tcp://HOST:8786 ({e})") from None
        try:
            client = distributed.Client(  # type: ignore[no-untyped-call]
                address, timeout=CONNECT_TIMEOUT, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as e:
            raise UserError(f"cannot reach the Dask scheduler at {address} within {CONNECT_TIMEOUT:g}s "
                            f"({type(e).__name__}: {e})") from None
    else:
        workers = max(1, min(slots, usable_cpus()))
        with dask.config.set({"distributed.scheduler.allowed-failures": 0}):  # a dead worker fails the attempt
            cluster = distributed.LocalCluster(  # type: ignore[no-untyped-call]
                n_workers=workers, threads_per_worker=-(-slots // workers), processes=True, host="127.0.0.1",
                dashboard_address=None, silence_logs=logging.ERROR)
        client = distributed.Client(cluster, set_as_default=False)  # type: ignore[no-untyped-call]
        _quicken(cluster.scheduler)
        with contextlib.suppress(Exception):
            client.run(_quicken_worker)
    # The client batches what it sends for 10 ms: a dependent that is ready at once would wait that long
    # at every step of a chain (Dask's own latency, ~10 ms a task, was all of it). 1 ms is plenty to batch.
    comm = getattr(client, "scheduler_comm", None)
    if comm is not None and hasattr(comm, "interval"):
        comm.interval = 0.001
    _CLIENTS[address, slots] = client
    return client


def missing_programs(client: Any, programs: list[tuple[str, str]]) -> list[str]:
    """Which of the (program, PATH) pairs a worker does not find (§13: machine checks are made there),
    with the PATH the attempt will carry there: the engine's environment travels with each attempt."""
    import shutil

    found = client.submit(lambda pairs: [n for n, path in pairs if shutil.which(n, path=path) is None],
                          programs, pure=False)
    try:
        return list(found.result(timeout=30))
    except TimeoutError:
        raise UserError("no Dask worker answered within 30 s: does the scheduler have workers?") from None


@dataclass
class _Attempt:
    spec: AttemptSpec
    key: str
    future: Any
    started: float
    holds: Holds
    stopped: Status | None = None
    error: str | None = None


class Backend:
    def __init__(self, loop: Loop, options: RunOptions, reporter: Reporter) -> None:
        self.loop, self.grace, self.reporter = loop, options.kill_grace, reporter
        self.client = connect(options.scheduler, options.slots)
        self.embedded = options.scheduler is None
        self.running: dict[str, _Attempt] = {}
        self._signals = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dask-signals")
        self.run_ids: set[str] = set()
        self._batch: list[_Attempt] = []
        self._by_key: dict[str, _Attempt] = {}
        # Where the kernel is shared, an attempt's end is seen as its record lands, ~2 ms before Dask says.
        self._watch = moved_in()
        if self._watch is not None:
            self.loop.add_reader(self._watch.fd, self._moved_in)

    def start(self, attempt: AttemptSpec) -> None:
        now = time.monotonic()
        run = _Attempt(attempt, f"pe-{attempt.task_id}-{attempt.number}-{secrets.token_hex(4)}", None, now,
                       Holds(now + attempt.timeout))
        self.running[attempt.task_id] = run
        self._by_key[run.key] = run
        self.run_ids.add(attempt.env.get(procs.RUN_ID_VAR, ""))
        if self._watch is not None:
            with contextlib.suppress(OSError):
                self._watch.watch(os.path.dirname(attempt.files.stdout))
        if not self._batch:  # the attempts started in this turn of the loop go to Dask as one graph
            self.loop.call_later(0.0, self._submit)
        self._batch.append(run)
        self.loop.call_later(attempt.timeout, lambda: self._deadline(run))

    def _submit(self) -> None:
        batch, self._batch = self._batch, []
        payloads = [pack(r.spec.argv, str(r.spec.cwd), r.spec.env, r.spec.files.stdout, r.spec.files.stderr,
                         r.spec.files.data if r.spec.clear_data else None) for r in batch]
        keys = [r.key for r in batch]
        for run, future in zip(batch, self.client.map(run_attempt, keys, payloads, key=keys, pure=False, retries=0),
                               strict=True):
            run.future = future  # (stopped meanwhile: the workers know its key, and it ends as it begins)
            future.add_done_callback(lambda _, run=run: self.loop.call_soon_threadsafe(lambda: self._ended(run)))

    def stop(self, task_id: str, why: Status, error: str | None = None) -> None:
        run = self.running.get(task_id)
        if run is None or run.stopped:
            return
        run.stopped, run.error = why, error
        self._send(run, signal.SIGTERM)
        self.reporter.attempt_stopping(task_id, why)
        self.loop.call_later(self.grace, lambda: self._send(run, signal.SIGKILL) if self._live(run) else None)

    def kill(self, task_id: str) -> None:
        if (run := self.running.get(task_id)) is not None:
            self._send(run, signal.SIGKILL)

    def suspend(self, task_id: str, why: str) -> None:
        run = self.running.get(task_id)
        if run is not None and not run.stopped and run.holds.add(why, time.monotonic()):
            self._send(run, signal.SIGSTOP)

    def resume(self, task_id: str, why: str) -> None:
        run = self.running.get(task_id)
        if run is None:
            return
        now = time.monotonic()
        go_on, moved = run.holds.lift(why, now)
        if moved:
            self.loop.call_later(run.holds.deadline - now, lambda: self._deadline(run))
        if go_on:
            self._send(run, signal.SIGCONT)

    def measure(self) -> dict[str, tuple[int, float]]:
        return {}  # the workers' processes are not this machine's to measure

    def close(self) -> None:
        """End what still runs (a crash or a bug), then the connection and an embedded cluster."""
        for run in list(self.running.values()):
            self._signal_now(run.key, signal.SIGKILL)
        for run in list(self.running.values()):
            with contextlib.suppress(Exception):
                if run.future is not None:
                    run.future.result(timeout=self.grace + 5)
        self.running.clear()
        if self._watch is not None:  # (close may come twice: at a crash, then at the end)
            self.loop.remove_reader(self._watch.fd)
            self._watch.close()
            self._watch = None
        self._signals.shutdown(wait=True)
        for run_id in self.run_ids - {""}:  # what tasks left running on this machine, whatever worker had them
            procs.sweep(run_id)
        for address_slots, client in list(_CLIENTS.items()):
            if client is self.client:
                del _CLIENTS[address_slots]
        cluster = self.client.cluster if self.embedded else None
        with contextlib.suppress(Exception):
            self.client.close(timeout=10)
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close(timeout=10)

    # ---- inside ---------------------------------------------------------------------------------

    def _moved_in(self) -> None:
        assert self._watch is not None
        for name in self._watch.names():
            if name.startswith(".pe-") and name.endswith(".end") and (run := self._by_key.get(name[1:-4])):
                self._ended(run)

    def _live(self, run: _Attempt) -> bool:
        return self.running.get(run.spec.task_id) is run

    def _deadline(self, run: _Attempt) -> None:
        if self._live(run) and run.holds.due(time.monotonic()):
            self.stop(run.spec.task_id, Status.TIMEOUT)

    def _send(self, run: _Attempt, signum: int) -> None:
        self._signals.submit(self._signal_now, run.key, signum)  # Client.run blocks: never on the loop

    def _signal_now(self, key: str, signum: int) -> None:
        with contextlib.suppress(Exception):  # a worker gone meanwhile: its tree went with it
            self.client.run(signal_attempt, key, signum, wait=True, on_error="ignore")

    def _ended(self, run: _Attempt) -> None:
        if not self._live(run):
            return
        del self.running[run.spec.task_id]
        self._by_key.pop(run.key, None)
        files, now, future = run.spec.files, time.monotonic(), run.future
        error: str | None = None
        result = read_end_record(files.stdout, run.key)
        if result is None and future.status == "finished":
            with contextlib.suppress(Exception):  # a worker of another version, or no shared folder: ask Dask
                result = future.result(timeout=30)
        if result is not None:
            code, busy, error = int(result["code"]), float(result["busy"]), result.get("error")
        else:  # the worker died (or the cluster went away) while it ran
            code, busy = -signal.SIGKILL, now - run.started
            # Its tree outlived it; on this machine (a LocalCluster, workers beside the engine) it is ended.
            self._signals.submit(procs.sweep, run.key, KEY_VAR)
            with contextlib.suppress(Exception):
                error = f"the worker running it died ({type(future.exception()).__name__})"
            error = error or "the worker running it died"
        stopped = run.stopped or (Status.FAILED if error else None)
        with contextlib.suppress(Exception):
            future.release()
        self._signals.submit(_remove, began_marker(files.stdout, run.key), end_record(files.stdout, run.key))
        if result is not None and isinstance(result.get("stdout"), str) and isinstance(result.get("stderr"), str):
            out, err = result["stdout"], result["stderr"]  # the worker read them: one file for the engine
        else:
            out, err = tail_file(files.stdout, TAIL_BYTES)[0], tail_file(files.stderr, TAIL_BYTES)[0]
        self.reporter.attempt_ended(AttemptEnd(
            run.spec.task_id, code, time.time(), max(0.0, busy - run.holds.frozen_for(now)),
            out, err,
            stopped, run.error or error))



def _remove(*paths: str) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _quicken(scheduler: Any) -> None:
    """Our embedded scheduler batches what it sends to each worker for 5 ms: with tasks ending often on
    a worker, a task to start there waits that long behind the last message. 1 ms still batches."""
    streams = getattr(scheduler, "stream_comms", None)
    for stream in streams.values() if isinstance(streams, dict) else ():
        stream.interval = 0.001


def _quicken_worker(dask_worker: Any) -> None:
    """The same for what a worker of our embedded cluster sends back (2 ms): that a thread is free."""
    dask_worker.batched_stream.interval = 0.001
