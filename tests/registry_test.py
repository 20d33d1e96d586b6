"""Temporary skills/agents: files, registry under concurrency, policy, cleanup and cron (§10)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from parallel_executor.agents.policy import decide

from tests.conftest import ENGINE, engine

LIMITS = {"keep_min_uses": 3, "keep_recent_days": 7, "delete_unused_days": 30, "delete_one_shot_days": 7}
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)


def ago(days: float) -> str:
    return (NOW - timedelta(days=days)).isoformat()


@pytest.mark.parametrize(("entry", "redundant", "expected"), [
    ({"usage_count": 3, "last_used": ago(100)}, "skill 'x'", ("keep", "used 3 times (keep from 3)")),
    ({"usage_count": 1, "last_used": ago(2)}, None, ("keep", "used within the last 7 days")),
    ({"usage_count": 2, "last_used": ago(6.9)}, "skill 'x'", ("keep", "used within the last 7 days")),
    ({"usage_count": 0, "last_used": None, "created": ago(45), "user_marked_useful": True}, None,
     ("keep", "marked useful")),
    ({"usage_count": 2, "last_used": ago(31)}, None, ("delete", "unused for 31 days (delete from 30)")),
    ({"usage_count": 0, "last_used": None, "created": ago(30)}, None,
     ("delete", "unused for 30 days (delete from 30)")),
    ({"usage_count": 1, "last_used": ago(8)}, None, ("delete", "used once and unused for 8 days")),
    ({"usage_count": 2, "last_used": ago(8)}, "skill 'x'", ("delete", "redundant with non-temporary skill 'x'")),
    ({"usage_count": 2, "last_used": ago(8)}, None, ("keep", "pending further usage data")),
])
def test_policy_rules_in_order(entry: dict[str, Any], redundant: str | None, expected: tuple[str, str]) -> None:
    assert tuple(decide({"created": ago(60), **entry}, NOW, LIMITS, redundant)) == expected


def skill_task(tid: str, skill: str = "pdf-tools", **extra: Any) -> dict[str, Any]:
    return {"id": tid, "command": ["true"], "required_skill": skill, "skill_description": "Handle PDF files",
            "skill_capabilities": ["split pages", "extract text"], **extra}


def registry_doc(home: Path) -> dict[str, Any]:
    return json.loads((home / "memory" / "temp" / "temp-skills-registry.json").read_text())  # type: ignore


def entries(home: Path, kind: str = "skill") -> dict[str, dict[str, Any]]:
    """The registry's entries of one kind by name, read as the seed's scripts read it."""
    return {e["name"]: e for e in registry_doc(home)[f"temporary_{kind}s"]}


def test_skill_and_agent_files_are_created_once_and_counted(home: Path, tasks_file: Callable[..., Path]) -> None:
    path = tasks_file([skill_task("a"), skill_task("b"),
                       {"id": "c", "command": ["true"], "required_agent": "reviewer",
                        "agent_description": "Reviews code", "agent_tools": ["Read", "Grep"]}])
    done = engine("run", path)
    assert done.returncode == 0, done.stderr
    assert "created temporary skill 'pdf-tools'" in done.stderr
    skill = (home / "skills" / "pdf-tools" / "SKILL.md").read_text()
    assert skill.startswith('---\nname: pdf-tools\ndescription: "Handle PDF files"\n---')
    assert "- split pages\n- extract text" in skill
    agent = (home / "agents" / "reviewer.md").read_text()
    assert agent.startswith('---\nname: reviewer\ndescription: "Reviews code"\ntools: Read, Grep\n---')
    assert engine("run", path).returncode == 0
    doc = registry_doc(home)
    assert set(doc) == {"temporary_skills", "temporary_agents"}
    skills, agents = entries(home), entries(home, "agent")
    assert skills["pdf-tools"]["usage_count"] == 4 and agents["reviewer"]["usage_count"] == 2
    assert skills["pdf-tools"]["in_use_by"] == {}
    seed_fields = {"name", "created", "created_by", "usage_count", "last_used", "status", "keep_reason",
                   "delete_reason", "user_marked_useful"}
    assert all(seed_fields <= set(e) for e in [*doc["temporary_skills"], *doc["temporary_agents"]])


def test_hand_made_skill_is_used_never_touched(home: Path, tasks_file: Callable[..., Path]) -> None:
    mine = home / "skills" / "pdf-tools" / "SKILL.md"
    mine.parent.mkdir(parents=True)
    mine.write_text("---\nname: pdf-tools\ndescription: mine\n---\nhand made\n")
    assert engine("run", tasks_file([skill_task("a")])).returncode == 0
    assert mine.read_text().endswith("hand made\n")
    assert "pdf-tools" not in entries(home)
    assert engine("cleanup").returncode == 0 and mine.exists()


def test_concurrent_runs_lose_no_update(home: Path, tasks_file: Callable[..., Path]) -> None:
    path = tasks_file([skill_task(f"t{i}") for i in range(5)])
    runs = [subprocess.Popen([*ENGINE, "run", "--quiet", str(path)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE) for _ in range(6)]
    for run in runs:
        assert run.wait(timeout=120) == 0
    assert entries(home)["pdf-tools"]["usage_count"] == 30


def age(home: Path, name: str, days: float, uses: int) -> None:
    path = home / "memory" / "temp" / "temp-skills-registry.json"
    doc = json.loads(path.read_text())
    old = (datetime.now().astimezone() - timedelta(days=days)).isoformat()
    next(e for e in doc["temporary_skills"] if e["name"] == name).update(created=old, last_used=old, usage_count=uses)
    path.write_text(json.dumps(doc))


def test_cleanup_deletes_by_policy_but_never_what_a_live_run_uses(home: Path, tasks_file: Callable[..., Path],
                                                                    tmp_path: Path) -> None:
    assert engine("run", tasks_file([skill_task("a", "old-one"), skill_task("b", "busy-one")])).returncode == 0
    age(home, "old-one", 40, 1)
    age(home, "busy-one", 40, 1)
    gate = tmp_path / "gate"
    busy = subprocess.Popen([*ENGINE, "run", "--quiet", str(tasks_file(
        [skill_task("slow", "busy-one", command=[sys.executable, "-c",
                                                 f"import os,time\nwhile not os.path.exists({str(gate)!r}): "
                                                 "time.sleep(0.05)"])], name="busy.json"))],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not entries(home)["busy-one"].get("in_use_by"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        age(home, "busy-one", 40, 1)  # the live run counted a use: make it look stale again
        dry = json.loads(engine("cleanup", "--dry-run", "--json").stdout)["resources"]
        assert {v["name"]: v["decision"] for v in dry} == {"old-one": "delete", "busy-one": "keep"}
        assert (home / "skills" / "old-one" / "SKILL.md").exists()  # dry run deleted nothing
        done = json.loads(engine("cleanup", "--json").stdout)["resources"]
        verdicts = {v["name"]: v for v in done}
        assert verdicts["busy-one"]["reason"].startswith("in use by run ")
        assert verdicts["old-one"]["reason"] == "unused for 40 days (delete from 30)"
        assert not (home / "skills" / "old-one").exists()
        assert (home / "skills" / "busy-one" / "SKILL.md").exists()
        entry = entries(home)["old-one"]
        assert entry["status"] == "deleted" and entry["delete_reason"].startswith("unused for 40 days")
    finally:
        gate.touch()
        busy.wait(timeout=30)


def test_registry_commands(home: Path, tasks_file: Callable[..., Path]) -> None:
    assert engine("run", tasks_file([skill_task("a")])).returncode == 0
    listed = json.loads(engine("registry", "list", "--json").stdout)
    assert [e["name"] for e in listed] == ["pdf-tools"]
    assert engine("registry", "mark-useful", "pdf-tools").returncode == 0
    assert json.loads(engine("registry", "show", "pdf-tools").stdout)["user_marked_useful"] is True
    missing = engine("registry", "show", "nope")
    assert missing.returncode == 2 and "no temporary skill or agent named 'nope'" in missing.stderr


def test_bad_resource_name_is_a_validation_error(home: Path, tasks_file: Callable[..., Path]) -> None:
    done = engine("run", tasks_file([skill_task("a", "../../etc")]))
    assert done.returncode == 2 and "field 'required_skill'" in done.stderr
    assert not (home / "skills").exists()


def test_cron_install_is_idempotent_and_remove_removes(tmp_path: Path) -> None:
    crontab = tmp_path / "crontab"
    crontab.write_text("0 1 * * * backup.sh\n")
    env = {"PARALLEL_EXECUTOR_CRONTAB": str(crontab)}
    assert engine("cron", "install", env=env).returncode == 0
    assert engine("cron", "install", env=env).returncode == 0
    lines = crontab.read_text().splitlines()
    assert lines[0] == "0 1 * * * backup.sh"
    assert len([line for line in lines if "temp-resource-cleanup.sh" in line]) == 1
    assert "temp-resource-cleanup.sh" in engine("cron", "status", env=env).stdout
    assert engine("cron", "remove", env=env).returncode == 0
    assert crontab.read_text() == "0 1 * * * backup.sh\n"
    assert engine("cron", "status", env=env).stdout.strip() == "not installed"


def test_cleanup_script_logs(home: Path) -> None:
    script = Path(__file__).resolve().parent.parent / "bin" / "temp-resource-cleanup.sh"
    assert subprocess.run([str(script)], timeout=60).returncode == 0
    log = (home / "memory" / "logs" / "temp-resource-cleanup.log").read_text()
    assert "cleanup" in log and "== exit 0" in log


def test_an_old_shape_registry_is_read_and_rewritten_in_the_seeds(home: Path, tasks_file: Callable[..., Path]) -> None:
    assert engine("run", tasks_file([skill_task("a")])).returncode == 0
    path = home / "memory" / "temp" / "temp-skills-registry.json"
    entry = entries(home)["pdf-tools"]
    made_by_hand = {"name": "hand-one", "created": entry["created"], "created_by": "someone", "usage_count": 5,
                    "last_used": None, "status": "active", "keep_reason": None, "delete_reason": None,
                    "user_marked_useful": True}
    path.write_text(json.dumps({"skill": {"pdf-tools": entry}, "agent": {}}))  # this project's old shape
    listed = json.loads(engine("registry", "list", "--json").stdout)
    assert [e["name"] for e in listed] == ["pdf-tools"]
    doc = registry_doc(home)
    assert set(doc) == {"temporary_skills", "temporary_agents"} and doc["temporary_agents"] == []
    assert doc["temporary_skills"] == [entry]
    assert not list(path.parent.glob("*.corrupt-*"))  # migrated, not set aside
    # Concurrent runs on an old-shape registry: one migrates under the lock, none loses a use.
    path.write_text(json.dumps({"skill": {"pdf-tools": entry}}))
    many = tasks_file([skill_task(f"t{i}") for i in range(3)], name="many.json")
    runs = [subprocess.Popen([*ENGINE, "run", "--quiet", str(many)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE) for _ in range(4)]
    assert [run.wait(timeout=120) for run in runs] == [0] * 4
    assert entries(home)["pdf-tools"]["usage_count"] == entry["usage_count"] + 12
    # An entry the seed's scripts wrote (no type, path or sha256) is read and kept.
    doc = registry_doc(home)
    doc["temporary_skills"].append(made_by_hand)
    path.write_text(json.dumps(doc))
    assert engine("cleanup").returncode == 0
    kept = entries(home)["hand-one"]
    assert kept["status"] == "active" and kept["usage_count"] == 5
    assert kept["keep_reason"] == "used 5 times (keep from 3)"
    assert not list(path.parent.glob("*.corrupt-*"))
