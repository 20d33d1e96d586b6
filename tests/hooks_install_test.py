"""`hooks install|remove|status` on a private $CLAUDE_CONFIG_DIR/settings.json, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import engine

USER_SETTINGS = {
    "model": "opus", "permissions": {"allow": ["Bash(ls:*)"]}, "env": {"A": "1"},
    "hooks": {"Stop": [{"hooks": [{"type": "command", "command": "notify-send done"}]}],
              "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "audit.sh"}]}]},
}


def settings(home: Path) -> Any:
    return json.loads((home / "settings.json").read_text())


def ours(doc: Any) -> list[dict[str, str]]:
    return [entry for group in doc.get("hooks", {}).get("Stop", []) for entry in group["hooks"]
            if entry["command"].endswith("hook check-parallel")]


def test_install_twice_adds_the_hook_once_and_keeps_the_rest(home: Path) -> None:
    (home / "settings.json").write_text(json.dumps(USER_SETTINGS, indent=4))
    assert engine("hooks", "install").returncode == 0
    backups = list(home.glob("settings.json.bak-*"))
    assert len(backups) == 1 and json.loads(backups[0].read_text()) == USER_SETTINGS
    second = engine("hooks", "install")
    assert second.returncode == 0 and "nothing to do" in second.stdout
    doc = settings(home)
    assert len(ours(doc)) == 1 and ours(doc)[0]["type"] == "command"
    assert "parallel-executor" in ours(doc)[0]["command"] or "-m parallel_executor" in ours(doc)[0]["command"]
    assert doc["hooks"]["Stop"][0] == USER_SETTINGS["hooks"]["Stop"][0]  # type: ignore[index]
    assert {key: value for key, value in doc.items() if key != "hooks"} == \
        {key: value for key, value in USER_SETTINGS.items() if key != "hooks"}
    assert doc["hooks"]["PreToolUse"] == USER_SETTINGS["hooks"]["PreToolUse"]  # type: ignore[index]


def test_remove_takes_only_ours_out(home: Path) -> None:
    (home / "settings.json").write_text(json.dumps(USER_SETTINGS))
    engine("hooks", "install")
    assert engine("hooks", "remove").returncode == 0
    assert settings(home) == USER_SETTINGS
    assert engine("hooks", "remove").returncode == 0 and settings(home) == USER_SETTINGS


def test_remove_keeps_other_hooks_of_a_shared_group(home: Path) -> None:
    mine = {"type": "command", "command": "/old/place/parallel-executor hook check-parallel"}
    shared = {"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "say done"}, mine]}]}}
    (home / "settings.json").write_text(json.dumps(shared))
    engine("hooks", "install")  # an install from elsewhere is pointed here, not doubled
    assert len(ours(settings(home))) == 1 and ours(settings(home))[0]["command"] != mine["command"]
    engine("hooks", "remove")
    assert settings(home) == {"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "say done"}]}]}}


def test_install_without_settings_creates_them_and_status_reports(home: Path) -> None:
    assert "not installed" in engine("hooks", "status").stdout
    assert engine("hooks", "install").returncode == 0
    assert not list(home.glob("settings.json.bak-*"))  # nothing to back up
    status = json.loads(engine("hooks", "status", "--json").stdout)
    assert status["installed"] and status["current"] and status["commands"] == [ours(settings(home))[0]["command"]]
    assert "installed in" in engine("hooks", "status").stdout
    engine("hooks", "remove")
    assert settings(home) == {} and not json.loads(engine("hooks", "status", "--json").stdout)["installed"]


def test_settings_that_are_not_json_are_refused_and_left_alone(home: Path) -> None:
    (home / "settings.json").write_text('{"model": "opus",}')
    for action in ("install", "remove", "status"):
        done = engine("hooks", action)
        assert done.returncode == 2 and "not valid JSON" in done.stderr and "Traceback" not in done.stderr
    (home / "settings.json").write_text('{"hooks": {"Stop": {"not": "a list"}}}')
    assert engine("hooks", "install").returncode == 2
    assert (home / "settings.json").read_text() == '{"hooks": {"Stop": {"not": "a list"}}}'
    assert not list(home.glob("settings.json.bak-*"))


def test_a_linked_settings_file_stays_a_link(home: Path, tmp_path: Path) -> None:
    target = tmp_path / "dotfiles-settings.json"
    target.write_text(json.dumps({"model": "opus"}))
    (home / "settings.json").symlink_to(target)
    assert engine("hooks", "install").returncode == 0
    assert (home / "settings.json").is_symlink() and len(ours(json.loads(target.read_text()))) == 1
