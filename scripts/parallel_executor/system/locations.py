"""Where files live (PRODUCT §3): everything under $CLAUDE_CONFIG_DIR or a --results-dir."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent
SHIPPED_CONFIG_DIR = PACKAGE_DIR / "config"


def claude_home() -> Path:
    return Path(os.environ.get("CLAUDE_CONFIG_DIR") or Path.home() / ".claude").expanduser()


def memory_dir() -> Path:
    return claude_home() / "memory"


def installed_config() -> Path:
    return memory_dir() / "config" / "parallel-execution-config.json"


def temp_dir() -> Path:
    return memory_dir() / "temp"


def runs_dir() -> Path:
    return temp_dir() / "runs"


def results_root() -> Path:
    return temp_dir() / "parallel-results"


def logs_dir() -> Path:
    return memory_dir() / "logs"


def durations_file() -> Path:
    return logs_dir() / "task-durations.json"
