"""Apply the keep/delete policy to the registry (§10), under its lock so no run can start using a
resource between the decision and the deletion."""

from __future__ import annotations

import contextlib
import re
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from parallel_executor.agents import registry
from parallel_executor.agents.policy import Decision, decide
from parallel_executor.plan.config import Config
from parallel_executor.system.locations import claude_home

_DESCRIPTION = re.compile(r"^description:\s*(.*)$", re.MULTILINE)


class Verdict(NamedTuple):
    name: str
    type: str
    decision: str
    reason: str


def run_cleanup(config: Config, dry_run: bool, now: datetime | None = None) -> list[Verdict]:
    now = now or datetime.now().astimezone()
    verdicts = []
    # A dry run reads the registry and changes nothing; a real one holds its lock throughout.
    with contextlib.nullcontext(registry.read(rewrite_old=False)) if dry_run else registry.locked() as data:
        for kind, entries in data.items():
            for name, entry in entries.items():
                if entry.get("status") != "active":
                    continue
                decision = _judge(kind, entry, now, config, data)
                verdicts.append(Verdict(name, kind, *decision))
                if dry_run:
                    continue
                if decision.decision == "delete":
                    _delete(Path(entry["path"]))
                    entry.update(status="deleted", delete_reason=decision.reason, deleted=now.isoformat())
                else:
                    entry["keep_reason"] = decision.reason
    return verdicts


def _judge(kind: str, entry: dict[str, Any], now: datetime, config: Config, data: registry.Registry) -> Decision:
    users = registry.live_users(entry)
    if users:
        return Decision("keep", f"in use by run {', '.join(users)}")
    if not entry.get("path"):
        return Decision("keep", "no file recorded for it")
    path = Path(entry["path"])
    if registry.digest(path) != entry.get("sha256"):
        return Decision("keep", "changed or removed by hand: no longer treated as temporary")
    return decide(entry, now, config.temp_resources, _redundant_with(kind, entry["name"], path, data))


def _redundant_with(kind: str, name: str, path: Path, data: registry.Registry) -> str | None:
    """A hand-made skill/agent with the same description makes this temporary one redundant."""
    mine = _description_of(path)
    home = claude_home()
    others = home.glob("skills/*/SKILL.md") if kind == "skill" else home.glob("agents/*.md")
    temporary = {Path(e["path"]) for e in data[kind].values() if e.get("status") == "active" and e.get("path")}
    for other in others:
        if other != path and other not in temporary and mine and _description_of(other) == mine:
            return f"{kind} '{other.parent.name if kind == 'skill' else other.stem}'"
    return None


def _description_of(path: Path) -> str | None:
    try:
        match = _DESCRIPTION.search(path.read_text(encoding="utf-8"))
    except OSError:
        return None
    return match.group(1).strip().strip('"') if match else None


def _delete(path: Path) -> None:
    path.unlink(missing_ok=True)
    if path.name == "SKILL.md":
        with contextlib.suppress(OSError):  # files the user added beside it keep the folder
            path.parent.rmdir()
