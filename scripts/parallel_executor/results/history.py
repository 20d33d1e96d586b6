"""Past task durations, so the scheduler can rank tasks that carry no `estimate` (§6)."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from filelock import FileLock

from parallel_executor.plan import schemas
from parallel_executor.system.fsutil import private_dir, write_json_atomic
from parallel_executor.system.jsonfile import read_state
from parallel_executor.system.locations import durations_file

KEEP = 20  # recent durations kept per type
KEEP_RUNS = 5  # recent [seconds, contention] kept per task: the least contended of them is its serial time
KEYS = 5000  # keys kept in all, the most recently used, so the file cannot grow without end


def load_durations() -> dict[str, float]:
    """Median past duration per "id:<task id>" (from its "ran:" entries, or an older file's "id:") and
    per "type:<task type>". An entry of the other kind (the schema allows both) is left out."""
    data = _load(durations_file())
    seconds: dict[str, list[float]] = {}
    for key, values in data.items():
        if key.startswith("ran:"):
            seconds[f"id:{key[4:]}"] = [v[0] for v in values if _pair(v)]
        else:
            seconds.setdefault(key, []).extend(v for v in values if isinstance(v, (int, float)) and v >= 0)
    return {key: statistics.median(values) for key, values in seconds.items() if values}


def record_durations(finished: Iterable[tuple[str, str | None, float, float]],
                     ran: Iterable[str] = ()) -> dict[str, list[list[float]]]:
    """Add (task id, type, seconds, contention) of successful tasks; concurrent runs lose nothing (file
    lock). Returns, for each task id in `ran`, the [seconds, contention] of its earlier runs (for the
    serial estimate), read in the same pass."""
    path = durations_file()
    private_dir(path.parent)
    with FileLock(str(path) + ".lock"):
        data = _load(path)
        past = {tid: [pair for pair in data.get(f"ran:{tid}", ()) if _pair(pair)] for tid in ran}
        for task_id, task_type, seconds, load in finished:
            data.pop(f"id:{task_id}", None)  # an older file's: its "ran:" entries say the same now
            for key, value in ((f"ran:{task_id}", [round(seconds, 3), load]),
                               (f"type:{task_type}" if task_type else "", round(seconds, 3))):
                if key:
                    keep = KEEP_RUNS if key.startswith("ran:") else KEEP
                    data[key] = [*data.pop(key, []), value][-keep:]  # re-inserted: newest last
        write_json_atomic(path, dict(list(data.items())[-KEYS:]))
    return past


def _load(path: Path) -> dict[str, list[Any]]:
    data: dict[str, list[Any]] = read_state(path, lambda doc: schemas.is_valid("durations", doc), dict)
    return data


def _pair(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(isinstance(x, (int, float)) and x >= 0 for x in value)
