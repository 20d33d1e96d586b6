"""Temporary skills and agents (§10): created as real Claude Code files, recorded in a registry.

The registry (memory/temp/temp-skills-registry.json) is shared by concurrent runs: every change
is a read-modify-write under a file lock, written atomically with fsync, so no update is lost.
On disk it has the seed's shape, `{"temporary_skills": [entry, ...], "temporary_agents": [...]}`;
in memory it is a dict by kind and name. A registry in this project's old shape
(`{"skill": {name: entry}, "agent": {...}}`) is read and rewritten in the seed's, under the lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from filelock import FileLock

from parallel_executor.plan import schemas
from parallel_executor.plan.model import TaskSpec
from parallel_executor.system import procs
from parallel_executor.system.fsutil import private_dir, write_atomic, write_json_atomic
from parallel_executor.system.jsonfile import read_state
from parallel_executor.system.locations import claude_home, temp_dir

Registry = dict[str, dict[str, dict[str, Any]]]  # kind ("skill"/"agent") -> name -> entry
KINDS = ("skill", "agent")
LISTS = {"skill": "temporary_skills", "agent": "temporary_agents"}  # the file's keys (the seed's)
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}\Z")


def registry_path() -> Path:
    return temp_dir() / "temp-skills-registry.json"


@contextlib.contextmanager
def locked() -> Iterator[Registry]:
    """The registry, to read and change; written back (in the seed's shape) when the block ends without error."""
    path = registry_path()
    private_dir(path.parent)
    with FileLock(str(path) + ".lock", timeout=60):
        doc = _load(path)
        data = from_doc(doc)
        yield data
        write_json_atomic(path, to_doc(data, doc), fsync=True)


def read(rewrite_old: bool = True) -> Registry:
    """The registry as it is; one in the old shape is rewritten in the seed's (unless rewrite_old is False)."""
    doc = _load(registry_path())
    if rewrite_old and is_old_shape(doc):
        with locked() as data:  # read again under the lock: another process may have changed it
            return data
    return from_doc(doc)


def is_old_shape(doc: dict[str, Any]) -> bool:
    return any(kind in doc for kind in KINDS)


def from_doc(doc: dict[str, Any]) -> Registry:
    """Entries by kind and name, from either shape (the schema has checked it)."""
    data: Registry = {kind: {} for kind in KINDS}
    for kind in KINDS:
        entries = list(doc.get(kind, {}).values()) if is_old_shape(doc) else doc.get(LISTS[kind], [])
        for entry in entries:
            entry.setdefault("type", kind)
            if "path" not in entry and _NAME.match(entry["name"]):  # an entry the seed's scripts wrote
                entry["path"] = str(resource_file(kind, entry["name"]))
            data[kind][entry["name"]] = entry
    return data


def to_doc(data: Registry, old: dict[str, Any] | None = None) -> dict[str, Any]:
    """The seed's shape; other top-level keys of the file read are kept."""
    rest = {k: v for k, v in (old or {}).items() if k not in KINDS and k not in LISTS.values()}
    return {**rest, **{LISTS[kind]: list(data[kind].values()) for kind in KINDS}}


def _load(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = read_state(path, lambda doc: schemas.is_valid("registry", doc), dict)
    return doc


def resource_file(kind: str, name: str) -> Path:
    home = claude_home()
    return home / "skills" / name / "SKILL.md" if kind == "skill" else home / "agents" / f"{name}.md"


def _content(kind: str, name: str, task: TaskSpec) -> str:
    if kind == "skill":
        description = task.skill_description or f"Temporary skill {name}, created for task {task.id}"
        body = "\n".join(f"- {c}" for c in task.skill_capabilities) or f"- {description}"
        return f"---\nname: {name}\ndescription: {_yaml(description)}\n---\n\n# {name}\n\n## Capabilities\n{body}\n"
    description = task.agent_description or f"Temporary agent {name}, created for task {task.id}"
    tools = ", ".join(task.agent_tools)
    front = f"---\nname: {name}\ndescription: {_yaml(description)}\n" + (f"tools: {tools}\n" if tools else "")
    return front + f"---\n\nYou are {name}. {description}\n"


def _yaml(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def needed(tasks: Sequence[TaskSpec]) -> list[tuple[str, str, TaskSpec]]:
    """(kind, name, first task naming it) for every resource the tasks require."""
    found: dict[tuple[str, str], TaskSpec] = {}
    for task in tasks:
        for kind, name in (("skill", task.required_skill), ("agent", task.required_agent)):
            if name:
                found.setdefault((kind, name), task)
    return [(kind, name, task) for (kind, name), task in found.items()]


def prepare(tasks: Sequence[TaskSpec], run_id: str) -> list[str]:
    """Create missing resources, count one use per task, mark them in use by this run.

    An existing skill or agent that is not a live temporary one of ours is used as it is, never
    overwritten. Returns a line per resource created.
    """
    created = []
    now = datetime.now().astimezone().isoformat(timespec="seconds")
    with locked() as data:
        for kind, name, first in needed(tasks):
            path = resource_file(kind, name)
            entry = data[kind].get(name)
            ours = entry is not None and entry.get("status") == "active" and digest(path) == entry.get("sha256")
            if not path.exists():
                private_dir(path.parent)
                write_atomic(path, _content(kind, name, first).encode())
                os.chmod(path, 0o644)  # Claude Code reads it; it holds no secret
                entry = data[kind][name] = {
                    "name": name, "type": kind, "path": str(path), "created": now, "created_by": f"{run_id}/{first.id}",
                    "usage_count": 0, "last_used": None, "status": "active", "keep_reason": None,
                    "delete_reason": None, "user_marked_useful": False, "sha256": digest(path), "in_use_by": {},
                }
                created.append(f"created temporary {kind} '{name}' at {path}")
            elif not ours:
                continue  # a hand-made one (or one changed by hand): used, never recorded or touched
            assert entry is not None
            uses = sum(1 for t in tasks if (t.required_skill if kind == "skill" else t.required_agent) == name)
            entry["usage_count"] += uses
            entry["last_used"] = now
            entry.setdefault("in_use_by", {})[run_id] = os.getpid()
    return created


def release(run_id: str) -> None:
    with locked() as data:
        for entries in data.values():
            for entry in entries.values():
                entry.get("in_use_by", {}).pop(run_id, None)


def live_users(entry: dict[str, Any]) -> list[str]:
    """Runs using the resource whose engine is still alive."""
    return [run for run, pid in entry.get("in_use_by", {}).items() if procs.alive(int(pid), None)]
