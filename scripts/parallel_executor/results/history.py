"""Past task durations, so the scheduler can rank tasks that carry no `estimate` (§6)."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from pathlib import Path

from filelock import FileLock

from parallel_executor.plan import schemas
from parallel_executor.system.fsutil import private_dir, write_json_atomic
from parallel_executor.system.jsonfile import read_state
from parallel_executor.system.locations import durations_file

KEEP = 20  # recent durations kept per key
KEYS = 5000  # keys kept in all, the most recently used, so the file cannot grow without end


def load_durations() -> dict[str, float]:
    """Median past duration per "id:<task id>" and per "type:<task type>"."""
    data = _load(durations_file())
    return {key: statistics.median(values) for key, values in data.items() if values}


def record_durations(finished: Iterable[tuple[str, str | None, float]]) -> None:
    """Add (task id, type, seconds) of successful tasks; concurrent runs lose nothing (file lock)."""
    path = durations_file()
    private_dir(path.parent)
    with FileLock(str(path) + ".lock"):
        data = _load(path)
        for task_id, task_type, seconds in finished:
            for key in (f"id:{task_id}", f"type:{task_type}" if task_type else None):
                if key:
                    data[key] = [*data.pop(key, []), round(seconds, 3)][-KEEP:]  # re-inserted: newest last
        write_json_atomic(path, dict(list(data.items())[-KEYS:]))


def _load(path: Path) -> dict[str, list[float]]:
    data: dict[str, list[float]] = read_state(path, lambda doc: schemas.is_valid("durations", doc), dict)
    return data
