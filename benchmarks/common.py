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


def private_home() -> Path:
    """A Claude home of the benchmark's own. Also compiles the package to bytecode, as an install
    does: a checkout run with PYTHONDONTWRITEBYTECODE would otherwise recompile it on every start."""
    compileall.compile_dir(str(Path(__file__).resolve().parent.parent / "scripts"), quiet=1)
    home = Path(tempfile.mkdtemp(prefix="pe-bench-"))
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
