"""`hooks install|remove|status`: our Stop hook in $CLAUDE_CONFIG_DIR/settings.json (PRODUCT §14)."""

from __future__ import annotations

import json

import click

from parallel_executor.claude import settings


def main(action: str, as_json: bool = False) -> int:
    if action == "status":
        return _status(as_json)
    changed, path, backup = settings.change(install=action == "install")
    verb = "installed" if action == "install" else "removed"
    if not changed:
        click.echo(f"hooks: nothing to do, the Stop hook is {'already' if action == 'install' else 'not'} "
                   f"in {path}")
    else:
        click.echo(f"hooks: {verb} the Stop hook `{settings.hook_command()}` in {path}"
                   if action == "install" else f"hooks: {verb} the Stop hook from {path}")
        if backup is not None:
            click.echo(f"hooks: the previous settings are kept in {backup}")
    return 0


def _status(as_json: bool) -> int:
    path = settings.settings_file()
    commands = settings.installed(settings.load(path))
    current = settings.hook_command()
    if as_json:
        click.echo(json.dumps({"settings": str(path), "installed": bool(commands), "commands": commands,
                               "current": current in commands, "expected_command": current}))
    elif commands:
        click.echo(f"installed in {path}: {commands[0]}"
                   + ("" if current in commands else f" (this install would use `{current}`)"))
    else:
        click.echo(f"not installed in {path}")
    return 0
