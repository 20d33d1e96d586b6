"""Phases, compatibility rules and the emergency boost, with real short tasks (§6)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import engine, helper, run_json
from tests.executor_test import intervals, max_overlap


def timed_task(out: Path, tid: str, seconds: float = 0.3, **extra: Any) -> dict[str, Any]:
    return {"id": tid, "command": helper("interval.py", str(out), tid, str(seconds)), **extra}


def overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def test_phase_barriers_and_serial_phases(home: Path, tasks_file: Callable[..., Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    tasks = [timed_task(out, "impl-1", phase="implementation"), timed_task(out, "impl-2", phase="implementation"),
             timed_task(out, "arch-1", phase="architecture"), timed_task(out, "arch-2", phase="architecture"),
             timed_task(out, "check-1", phase="validation"), timed_task(out, "check-2", phase="validation"),
             timed_task(out, "free", 0.2)]
    code, _ = run_json(tasks_file(tasks), "-j", "4")
    assert code == 0
    s = intervals(out)
    assert not overlap(s["arch-1"], s["arch-2"])  # architecture is serial
    assert min(s["impl-1"][0], s["impl-2"][0]) >= max(s["arch-1"][1], s["arch-2"][1])  # barrier
    assert overlap(s["impl-1"], s["impl-2"])  # implementation is parallel
    assert min(s["check-1"][0], s["check-2"][0]) >= max(s["impl-1"][1], s["impl-2"][1])
    assert not overlap(s["check-1"], s["check-2"])
    assert s["free"][0] < s["arch-1"][1] or s["free"][0] < s["arch-2"][1]  # no phase: not held back


def test_compatibility_rules(home: Path, tasks_file: Callable[..., Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"exclusive_subagents": ["db-migrator"],
                                  "never_together": [["frontend", "backend"], ["deployer", "*"]]}))
    tasks = [timed_task(out, "mig-1", subagent="db-migrator"), timed_task(out, "mig-2", subagent="db-migrator"),
             timed_task(out, "fe", subagent="frontend"), timed_task(out, "be", subagent="backend"),
             timed_task(out, "deploy", subagent="deployer"), timed_task(out, "other", subagent="writer")]
    code, _ = run_json(tasks_file(tasks), "-j", "6", "--config", config)
    assert code == 0
    s = intervals(out)
    assert not overlap(s["mig-1"], s["mig-2"]) and not overlap(s["fe"], s["be"])
    assert not any(overlap(s["deploy"], s[t]) for t in s if t != "deploy")
    assert overlap(s["mig-1"], s["fe"]) or overlap(s["mig-1"], s["be"])  # unrelated types do overlap


def test_critical_tasks_use_extra_slots(home: Path, tasks_file: Callable[..., Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"emergency_boost": 3}))
    tasks = [timed_task(out, f"n{i}", 0.4) for i in range(4)] + [
        timed_task(out, f"c{i}", 0.6, priority="critical") for i in range(2)]
    code, _ = run_json(tasks_file(tasks), "-j", "1", "--config", config)
    assert code == 0
    s = intervals(out)
    ordinary = {k: v for k, v in s.items() if k.startswith("n")}
    assert max_overlap(ordinary) == 1  # -j 1 for ordinary tasks
    assert max_overlap(s) == 3  # critical ones ride in the boost slots, 3 in all
    assert overlap(s["c0"], s["c1"])


def test_analyze_shows_phases(home: Path, tasks_file: Callable[..., Path]) -> None:
    path = tasks_file([{"id": "a", "command": "x", "phase": "architecture"},
                       {"id": "b", "command": "x", "phase": "implementation"}, {"id": "c", "command": "x"}])
    result = json.loads(engine("analyze", path, "--format", "json").stdout)
    assert result["phases"] == {"architecture": ["a"], "implementation": ["b"]}
    assert "phase architecture (serial)" in engine("analyze", path).stdout
