"""`make install` / `make uninstall` (PRODUCT §12): lay out $CLAUDE_CONFIG_DIR/memory from a checkout.

Standard library only, so that it runs with any python3 before the package's own venv exists:
    PYTHONPATH=scripts python3 -m parallel_executor.claude.install install|uninstall [--home DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

CONFIG_NAME = "parallel-execution-config.json"
SHIPPED_NAME = ".shipped-" + CONFIG_NAME  # the shipped defaults the user's config was last compared with
BIN_FILES = ("_python.sh", "parallel-executor.sh", "temp-resource-cleanup.sh", "parallel-executor")
COMMANDS_DIR = "commands"  # under memory/ in the checkout: Claude Code slash commands, not policy documents
MEMORY_PLACEHOLDER = "{{MEMORY_DIR}}"


def install(source: Path, home: Path, python: str) -> list[str]:
    """Install or upgrade in place; returns what to tell the user."""
    memory = home / "memory"
    notes = [_venv(source, memory / "venv", python)]
    _replace_tree(source / "scripts" / "parallel_executor", memory / "scripts" / "parallel_executor")
    for name in BIN_FILES:
        (memory / "bin").mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / "bin" / name, memory / "bin" / name)
    _replace_tree(source / "config" / "schemas", memory / "config" / "schemas")
    notes.append(_config(source / "config" / CONFIG_NAME, memory / "config"))
    for name in ("logs", "temp"):
        (memory / name).mkdir(parents=True, exist_ok=True)
    for doc in _policy_docs(source):
        target = memory / doc.relative_to(source / "memory")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(doc, target)
    for command in sorted((source / "memory" / COMMANDS_DIR).glob("*.md")):
        (home / "commands").mkdir(parents=True, exist_ok=True)
        (home / "commands" / command.name).write_text(command.read_text().replace(MEMORY_PLACEHOLDER, str(memory)))
    notes += [f"installed into {memory}: venv/, scripts/, bin/, config/, logs/, temp/ and the policy documents",
              f"slash command: {home / 'commands'}/parallel-execute.md (/parallel-execute in Claude Code)",
              f"run: {memory}/bin/parallel-executor.sh tasks.json   (every command: {memory}/bin/parallel-executor)",
              "optional: `make install-hooks` (the Stop hook), "
              f"`{memory}/bin/parallel-executor cron install` (the daily cleanup)"]
    return [note for note in notes if note]


def uninstall(source: Path, home: Path) -> list[str]:
    """Remove what install laid out; keep the user's data and say what was kept."""
    memory = home / "memory"
    notes = _unhook(memory, home)
    for path in [memory / "venv", memory / "scripts", memory / "bin", memory / "config" / "schemas",
                 *(memory / doc.relative_to(source / "memory") for doc in _policy_docs(source)),
                 *(home / "commands" / c.name for c in (source / "memory" / COMMANDS_DIR).glob("*.md"))]:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    config, shipped = memory / "config" / CONFIG_NAME, memory / "config" / SHIPPED_NAME
    if config.exists() and shipped.exists() and _load(config) == _load(shipped):
        config.unlink()
        shipped.unlink()
    elif config.exists():
        notes.append(f"kept your edited config: {config}")
    for folder in [*(memory / d.relative_to(source / "memory") for d in _policy_dirs(source)),
                   memory / "config", memory / "logs", memory / "temp", home / "commands", memory]:
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        elif folder.name in ("logs", "temp") and folder.is_dir():
            notes.append(f"kept {folder} (your {'logs' if folder.name == 'logs' else 'results, registry and state'})")
    return [*notes, f"uninstalled parallel-executor from {memory}"]


def _venv(source: Path, venv: Path, python: str) -> str:
    fresh = not (venv / "bin" / "python").exists()
    if fresh:
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    # not editable, so it works with the checkout gone; pip rebuilds and reinstalls a directory
    # every time, so a second install upgrades in place
    subprocess.run([*pip, str(source)], check=True)
    return "" if fresh else f"upgraded {venv}"


def _replace_tree(source: Path, target: Path) -> None:
    """Copy source over target, following symbolic links (the package's config/ is one)."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def _config(shipped: Path, folder: Path) -> str:
    """Copy the shipped config only if there is none; an edited one is kept, with the defaults that changed."""
    folder.mkdir(parents=True, exist_ok=True)
    config, record = folder / CONFIG_NAME, folder / SHIPPED_NAME
    new = _load(shipped)
    if not config.exists():
        shutil.copy2(shipped, config)
        note = f"config: {config} (from the shipped defaults)"
    elif record.exists() and _load(config) == _load(record):
        shutil.copy2(shipped, config)  # never edited: it follows the shipped defaults
        note = "" if new == _load(record) else f"config: {config} updated to the new shipped defaults (unedited)"
    else:
        old = _load(record) if record.exists() else None
        changed = sorted(_changed(old, new)) if isinstance(old, dict) and isinstance(new, dict) else []
        note = f"config: kept your edited {config}"
        if old is None:
            note += f"; no record of the defaults it was written from; compare with {shipped.name} in the checkout"
        elif changed:
            note += "; shipped defaults changed since it was written: " + ", ".join(changed)
    shutil.copy2(shipped, record)
    return note


def _changed(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose value differs between two configs (nested objects compared key by key)."""
    keys: list[str] = []
    for key in sorted(old.keys() | new.keys()):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            keys += _changed(a, b, f"{prefix}{key}.")
        elif a != b or (key in old) != (key in new):
            keys.append(prefix + key)
    return keys


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _policy_docs(source: Path) -> list[Path]:
    root = source / "memory"
    return sorted(p for p in root.rglob("*") if p.is_file() and p.relative_to(root).parts[0] != COMMANDS_DIR)


def _policy_dirs(source: Path) -> list[Path]:
    root = source / "memory"
    dirs = {d for p in _policy_docs(source) for d in p.relative_to(root).parents if d != Path(".")}
    return sorted((root / d for d in dirs), key=lambda d: -len(d.parts))  # deepest first, to remove when empty


def _unhook(memory: Path, home: Path) -> list[str]:
    """Take our Stop hook and cron line out with the installed engine, where it has those commands."""
    engine, notes = memory / "bin" / "parallel-executor", list[str]()
    if not engine.exists():
        return notes
    env = {**os.environ, "CLAUDE_CONFIG_DIR": str(home)}
    for command in (["hooks", "remove"], ["cron", "remove"]):
        if subprocess.run([str(engine), command[0], "--help"], capture_output=True, env=env).returncode:
            continue  # an installed copy from before that command existed
        done = subprocess.run([str(engine), *command], capture_output=True, text=True, env=env)
        notes.append((done.stdout + done.stderr).strip() or f"{' '.join(command)}: exit {done.returncode}")
    return notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m parallel_executor.claude.install")
    parser.add_argument("action", choices=["install", "uninstall"])
    parser.add_argument("--home", type=Path, help="the Claude home [$CLAUDE_CONFIG_DIR, else ~/.claude]")
    parser.add_argument("--source", type=Path, default=Path(__file__).resolve().parents[3], help="the checkout")
    parser.add_argument("--python", default=sys.executable, help="the Python the venv is made with")
    args = parser.parse_args(argv)
    home = (args.home or Path(os.environ.get("CLAUDE_CONFIG_DIR") or Path.home() / ".claude")).expanduser()
    try:
        notes = (install(args.source, home.resolve(), args.python) if args.action == "install"
                 else uninstall(args.source, home.resolve()))
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"parallel-executor {args.action}: {e}", file=sys.stderr)
        return 2
    print("\n".join(notes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
