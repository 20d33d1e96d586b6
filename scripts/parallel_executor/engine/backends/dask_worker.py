"""What runs inside a Dask worker (§13): an attempt as a subprocess in a session of its own, and the
signals the engine sends to its process tree there.

Dask cannot interrupt a running task, so the engine reaches the tree through `Client.run`, which
calls `signal_attempt` in every worker process (not in a task thread): the worker that runs the
attempt finds its process group in `_RUNNING` and signals the tree. Output goes straight to the
engine's files: the cluster shares the file system (on one machine it is the same disk).
Kept light: a worker imports this module, not the engine.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from parallel_executor.engine.backends import TAIL_BYTES
from parallel_executor.system import procs
from parallel_executor.system.fsutil import open_private, tail_file

KEY_VAR = "PARALLEL_DASK_KEY"  # in the attempt's environment: what a dead worker left is found by it
_RUNNING: dict[str, int] = {}  # attempt key -> the pid (and process group) of its leader
_STOPPED: set[str] = set()  # keys told to stop before they started here
_PAUSED: set[str] = set()  # keys paused (and not continued) before they started here
_LOCK = threading.Lock()


def run_attempt(key: str, payload: bytes) -> dict[str, Any]:
    """Run one attempt to its end. `payload` is `pack()`ed: one opaque argument is what Dask submits
    fastest (it looks for futures inside every list and dict it is given). What the engine needs to
    know is also left beside the output (`end_record`): reading a file costs the engine far less
    than fetching a result through Dask."""
    argv, cwd, env, stdout, stderr, data = pickle.loads(payload)
    end = _run(key, argv, cwd, env, stdout, stderr, data)
    end["stdout"], end["stderr"] = tail_file(stdout, TAIL_BYTES)[0], tail_file(stderr, TAIL_BYTES)[0]
    with contextlib.suppress(OSError):
        path = end_record(stdout, key)
        with open(path + ".tmp", "w") as f:
            json.dump(end, f)
        os.replace(path + ".tmp", path)
    return end


def _run(key: str, argv: Sequence[str], cwd: str, env: Mapping[str, str], stdout: str, stderr: str,
         data: str | None) -> dict[str, Any]:
    with _LOCK:
        if key in _STOPPED:
            return {"code": -signal.SIGTERM, "busy": 0.0, "stopped_early": True}
    try:  # Dask starts a task again when its worker died: that is the engine's to retry, not Dask's
        os.close(os.open(began_marker(stdout, key), os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o600))
    except FileExistsError:
        return {"code": -signal.SIGKILL, "busy": 0.0, "error": "the worker running it died (Dask started it again)"}
    except OSError:
        pass  # no shared results folder here: the output files will say so
    if data is not None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(data)  # an earlier attempt's structured result cannot pass for this one's
    try:
        out, err = open_private(stdout), open_private(stderr)
    except OSError as e:
        return {"code": 126, "busy": 0.0, "error": f"cannot open the output files on the worker: {e.strerror}"}
    started = time.monotonic()
    try:
        proc = subprocess.Popen(list(argv), cwd=cwd, env={**env, KEY_VAR: key}, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=err, start_new_session=True)
    except (OSError, ValueError) as e:
        code, message = procs.spawn_error(e, argv, Path(cwd))
        return {"code": code, "busy": 0.0, "error": f"{message} (on the worker)"}
    finally:
        os.close(out)
        os.close(err)
    with _LOCK:
        _RUNNING[key] = proc.pid
        if key in _PAUSED:  # a pause that came while it was being handed to this worker
            procs.signal_tree(proc.pid, signal.SIGSTOP)
    try:
        code = proc.wait()
    finally:
        with _LOCK:
            _RUNNING.pop(key, None)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # what it left in its group ends with it
    return {"code": code, "busy": time.monotonic() - started, "pid": proc.pid, "worker_pid": os.getpid()}


def pack(argv: Sequence[str], cwd: str, env: Mapping[str, str], stdout: str, stderr: str,
         data: str | None) -> bytes:
    return pickle.dumps((list(argv), cwd, dict(env), stdout, stderr, data), protocol=pickle.HIGHEST_PROTOCOL)


def began_marker(stdout: str, key: str) -> str:
    return os.path.join(os.path.dirname(stdout), f".{key}.began")


def end_record(stdout: str, key: str) -> str:
    return os.path.join(os.path.dirname(stdout), f".{key}.end")


def read_end_record(stdout: str, key: str) -> dict[str, Any] | None:
    """The end the worker recorded beside the attempt's output; None if there is none it can use
    (then, as a last resort, Dask's own result)."""
    try:
        with open(end_record(stdout, key)) as f:
            end = json.load(f)
    except (OSError, ValueError):
        return None
    return end if isinstance(end, dict) and isinstance(end.get("code"), int) else None



def signal_attempt(key: str, signum: int) -> bool:
    """Signal the attempt's whole tree on this worker; False when it does not run here. A stop that
    comes before the attempt started here is remembered, so that it never starts."""
    with _LOCK:
        pid = _RUNNING.get(key)
        if pid is None:  # not started here (yet): remembered, for the worker that starts it
            if signum in (signal.SIGTERM, signal.SIGKILL):
                _STOPPED.add(key)
            elif signum == signal.SIGSTOP:
                _PAUSED.add(key)
            elif signum == signal.SIGCONT:
                _PAUSED.discard(key)
            return False
    procs.signal_tree(pid, signum, procs.descendants(pid))
    if signum == signal.SIGTERM:
        procs.signal_tree(pid, signal.SIGCONT, procs.descendants(pid))  # a stopped tree must see it
    return True
