from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

ROOT = Path(__file__).resolve().parent.parent
HELPERS = Path(__file__).resolve().parent / "helpers"
ENGINE = [sys.executable, "-m", "parallel_executor"]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private Claude home for this test: nothing touches the real ~/.claude."""
    claude = tmp_path / "claude"
    claude.mkdir()
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(claude))
    return claude


@pytest.fixture
def tasks_file(tmp_path: Path) -> Callable[..., Path]:
    def write(tasks: Any, name: str = "tasks.json") -> Path:
        path = tmp_path / name
        path.write_text(json.dumps(tasks) if not isinstance(tasks, str) else tasks)
        return path

    return write


def engine(*args: str | Path, cwd: Path | None = None, timeout: float = 60,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real engine as a child process, the way a user does."""
    return subprocess.run([*ENGINE, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def py(code: str) -> list[str]:
    """A command task running Python code."""
    return [sys.executable, "-c", code]


def helper(name: str, *args: str) -> list[str]:
    return [sys.executable, str(HELPERS / name), *args]


def run_json(*args: str | Path, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    done = engine("run", "--json", *args, **kwargs)
    try:
        return done.returncode, json.loads(done.stdout)
    except ValueError:
        raise AssertionError(f"no JSON summary; exit {done.returncode}\n{done.stdout}\n{done.stderr}") from None


def processes_with_marker(marker: str) -> list[psutil.Process]:
    """Live processes whose command line holds marker (zombies awaiting a reaper don't count)."""
    found = []
    for p in psutil.process_iter(["cmdline", "status"]):
        if p.info["status"] != psutil.STATUS_ZOMBIE and marker in " ".join(p.info["cmdline"] or []):
            found.append(p)
    return found


def start_engine(path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*ENGINE, "run", str(path), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def wait_for(predicate: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def running_status(home: Path) -> dict[str, object] | None:
    for path in home.glob("memory/temp/runs/*/status.json"):
        try:
            return json.loads(path.read_text())  # type: ignore[no-any-return]
        except ValueError:
            return None
    return None


def tasks_running(home: Path, n: int) -> bool:
    status = running_status(home)
    return bool(status) and sum(t["status"] == "running" for t in status["tasks"]) == n  # type: ignore
