"""Shared helpers for the benchmarks: a private Claude home and the engine's command line."""

from __future__ import annotations

import atexit
import compileall
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ENGINE = [sys.executable, "-m", "parallel_executor"]


def private_home(on_disk: bool = False) -> Path:
    """A Claude home of the benchmark's own (removed at exit), on a RAM file system when there is one.

    The benchmarks measure the engine, not the disk: creating a file can cost 10 us or 400 us on
    the same disk depending on its state (an ext4 without a journal, as on some VMs, skips every
    recently deleted inode when it allocates one), and the engine creates three files per task
    where xargs creates none. `on_disk=True` gives a home in the system's temp directory instead.
    Also compiles the package to bytecode, as an install does: a checkout run with
    PYTHONDONTWRITEBYTECODE would otherwise recompile it on every start."""
    compileall.compile_dir(str(Path(__file__).resolve().parent.parent / "scripts"), quiet=1)
    ram = Path("/dev/shm")
    parent = ram if not on_disk and ram.is_dir() and os.access(ram, os.W_OK) else None
    home = Path(tempfile.mkdtemp(prefix="pe-bench-", dir=parent))
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    os.environ["CLAUDE_CONFIG_DIR"] = str(home)
    return home


def write_tasks(tasks: list[dict[str, Any]]) -> Path:
    path = Path(tempfile.mkdtemp(prefix="pe-tasks-")) / "tasks.json"
    path.write_text(json.dumps({"defaults": {"retries": 0}, "tasks": tasks}))
    return path


def timed(argv: list[str], **kwargs: Any) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, **kwargs)
    return time.perf_counter() - start


def ensure_gnu_parallel() -> str | None:
    """GNU parallel, installed with apt when missing and possible; None if it cannot be had."""
    found = shutil.which("parallel")
    if found is None and shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run("apt-get update -qq && apt-get install -y -qq parallel", shell=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        found = shutil.which("parallel")
    return found
