"""Keep or delete a temporary skill/agent (§10): the first rule that applies wins. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple

DAY = 86400.0


class Decision(NamedTuple):
    decision: str  # "keep" or "delete"
    reason: str


def decide(entry: Mapping[str, Any], now: datetime, limits: Mapping[str, float],
           redundant_with: str | None = None) -> Decision:
    uses = int(entry.get("usage_count", 0))
    last = datetime.fromisoformat(entry.get("last_used") or entry["created"])
    idle_days = (now - last).total_seconds() / DAY
    if uses >= limits["keep_min_uses"]:
        return Decision("keep", f"used {uses} times (keep from {limits['keep_min_uses']:g})")
    if idle_days < limits["keep_recent_days"]:
        return Decision("keep", f"used within the last {limits['keep_recent_days']:g} days")
    if entry.get("user_marked_useful"):
        return Decision("keep", "marked useful")
    if idle_days >= limits["delete_unused_days"]:
        return Decision("delete", f"unused for {idle_days:.0f} days (delete from {limits['delete_unused_days']:g})")
    if uses == 1 and idle_days >= limits["delete_one_shot_days"]:
        return Decision("delete", f"used once and unused for {idle_days:.0f} days")
    if redundant_with:
        return Decision("delete", f"redundant with non-temporary {redundant_with}")
    return Decision("keep", "pending further usage data")
