"""Our Stop hook in Claude Code's settings.json, added and taken out without touching anything else.

Claude Code's shape: `{"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "…"}]}]}}`,
`Stop` being a list of matcher groups each with its own `hooks` list. An entry whose command ends
in `hook check-parallel` is ours, wherever it was installed from.
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

from filelock import FileLock

from parallel_executor.errors import UserError
from parallel_executor.system.fsutil import free_name, private_dir, write_atomic
from parallel_executor.system.jsonfile import BadJSON, parse, read_text
from parallel_executor.system.locations import claude_home

OURS = "hook check-parallel"
EVENT = "Stop"


def settings_file() -> Path:
    path = claude_home() / "settings.json"
    return path.resolve() if path.is_symlink() else path  # a dotfiles link stays a link: write its target


def hook_command() -> str:
    """The installed console script beside this interpreter, else this interpreter running the package."""
    script = Path(sys.executable).parent / "parallel-executor"
    if script.is_file():
        return f"{shlex.quote(str(script))} {OURS}"
    return f"{shlex.quote(sys.executable)} -m parallel_executor {OURS}"


def is_ours(entry: Any) -> bool:
    return isinstance(entry, dict) and str(entry.get("command", "")).rstrip().endswith(OURS)


def load(path: Path) -> dict[str, Any]:
    """The settings, {} when there are none; a file we cannot safely rewrite is refused, never overwritten."""
    if not path.exists():
        return {}
    try:
        doc = parse(read_text(path))
    except BadJSON as e:
        raise UserError(f"{path} is not valid JSON ({e.message}{' at ' + e.where if e.where else ''}): "
                        "fix it by hand; it was left unchanged") from None
    except UnicodeDecodeError:
        raise UserError(f"{path} is not UTF-8 text: fix it by hand; it was left unchanged") from None
    groups = doc.get("hooks", {}).get(EVENT, []) if isinstance(doc, dict) and isinstance(doc.get("hooks", {}), dict) \
        else None
    if not isinstance(groups, list) or not all(isinstance(g, dict) and isinstance(g.get("hooks", []), list)
                                               for g in groups):
        raise UserError(f"{path}: expected an object whose hooks.{EVENT} is a list of groups, each with a "
                        "`hooks` list (Claude Code's format): fix it by hand; it was left unchanged")
    return dict(doc)


def installed(doc: dict[str, Any]) -> list[str]:
    """The commands of our entries."""
    groups = doc.get("hooks", {}).get(EVENT, [])
    return [str(entry["command"]) for group in groups for entry in group.get("hooks", []) if is_ours(entry)]


def with_hook(doc: dict[str, Any], command: str) -> dict[str, Any]:
    """doc with our entry (once, with this command) under hooks.Stop."""
    groups = doc.setdefault("hooks", {}).setdefault(EVENT, [])
    found = False
    for group in groups:
        for entry in group.get("hooks", []):
            if is_ours(entry):
                entry["command"], found = command, True  # installed from elsewhere before: point it here
    if not found:
        groups.append({"hooks": [{"type": "command", "command": command}]})
    return dict(doc)


def without_hook(doc: dict[str, Any]) -> dict[str, Any]:
    """doc without our entries, and without the groups, list and object that only they filled."""
    hooks = doc.get("hooks")
    if not isinstance(hooks, dict) or EVENT not in hooks:
        return doc
    kept = []
    for group in hooks[EVENT]:
        entries = group.get("hooks", [])
        others = [entry for entry in entries if not is_ours(entry)]
        if len(others) != len(entries) and not others:
            continue
        kept.append({**group, "hooks": others} if len(others) != len(entries) else group)
    if kept or not hooks[EVENT]:
        hooks[EVENT] = kept
    else:
        del hooks[EVENT]
        if not hooks:
            del doc["hooks"]
    return dict(doc)


def change(install: bool) -> tuple[bool, Path, Path | None]:
    """Install or remove our hook; returns (changed, settings file, backup made)."""
    path = settings_file()
    private_dir(path.parent)
    with FileLock(str(path.parent / ".settings.json.parallel-executor.lock"), timeout=30):
        doc = load(path)
        before = json.dumps(doc, sort_keys=True)
        doc = with_hook(doc, hook_command()) if install else without_hook(doc)
        if json.dumps(doc, sort_keys=True) == before:
            return False, path, None
        backup = None
        if path.exists():
            backup = free_name(path, "bak")
            shutil.copy2(path, backup)
        write_atomic(path, (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode())
        return True, path, backup
