from __future__ import annotations

import json
from typing import Any

import click

from parallel_executor.agents import registry
from parallel_executor.errors import UserError


def main(action: str, name: str | None, as_json: bool) -> int:
    if action == "list":
        entries = [e for entries in registry.read().values() for e in entries.values()]
        if as_json:
            click.echo(json.dumps(entries, indent=2))
        else:
            from tabulate import tabulate

            rows = [(e["name"], e["type"], e["status"], e["usage_count"], e.get("last_used") or "-",
                     e.get("created_by") or "-") for e in entries]
            click.echo(tabulate(rows, headers=["name", "type", "status", "uses", "last used", "created by"])
                       if rows else "no temporary skills or agents")
        return 0
    if not name:
        raise UserError(f"registry {action} needs a NAME")
    if action == "show":
        found = _find(registry.read(), name)
        click.echo(json.dumps(found if as_json else found[0] if len(found) == 1 else found, indent=2))
        return 0
    with registry.locked() as data:
        for entry in _find(data, name):
            entry["user_marked_useful"] = True
    click.echo(f"marked '{name}' useful: cleanup keeps it")
    return 0


def _find(data: registry.Registry, name: str) -> list[dict[str, Any]]:
    found = [entries[name] for entries in data.values() if name in entries]
    if not found:
        raise UserError(f"no temporary skill or agent named '{name}' (see `parallel-executor registry list`)")
    return found
