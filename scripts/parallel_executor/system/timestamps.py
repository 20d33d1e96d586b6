"""Time stamps as the engine writes them (local ISO 8601 with milliseconds) and reads them back."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

_LOCAL = datetime.now().astimezone().tzinfo  # looked up once: time stamps are on the hot path


def iso(timestamp: float | None) -> str | None:
    """Local ISO 8601 time with milliseconds; formatting is done once per second (hot path)."""
    if timestamp is None:
        return None
    whole = int(timestamp)
    seconds, zone = _iso_second(whole)
    return f"{seconds}.{int((timestamp - whole) * 1000):03d}{zone}"


def epoch(stamp: str) -> float:
    """The time stamp iso() wrote, back as seconds since the epoch."""
    return datetime.fromisoformat(stamp).timestamp()


@lru_cache(maxsize=256)
def _iso_second(whole: int) -> tuple[str, str]:
    text = datetime.fromtimestamp(whole, _LOCAL).isoformat()
    return text[:19], text[19:]
