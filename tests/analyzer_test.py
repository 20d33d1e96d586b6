"""The pure planner: waves, critical path, simulated makespan, recommendation, graph checks."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from parallel_executor.commands.analyze import duration
from parallel_executor.plan.analyzer import (
    Graph,
    analyze,
    critical_path,
    estimates,
    ready_key,
    recommend,
    remaining_paths,
    simulate,
    waves,
    without_estimate,
)
from parallel_executor.plan.config import Config, load_config
from parallel_executor.plan.graph import graph_problems
from parallel_executor.plan.model import Priority, TaskSpec
from parallel_executor.plan.pathlocks import conflicts

from tests.conftest import engine


def task(tid: str, *deps: str, est: float | None = None, index: int = 0, kind: str | None = None,
         priority: Priority = Priority.NORMAL) -> TaskSpec:
    return TaskSpec(id=tid, index=index, subject="", prompt=None, command=("true",), runner=None, subagent=None,
                    model=None, type=kind, blocked_by=deps, phase=None, paths=(), reads=(), artifacts=(),
                    cwd=Path("/"), env={}, timeout=1, retries=0, priority=priority, estimate=est)


def tasks(*specs: tuple[str, tuple[str, ...], float]) -> list[TaskSpec]:
    return [task(tid, *deps, est=est, index=i) for i, (tid, deps, est) in enumerate(specs)]


def test_chain() -> None:
    chain = tasks(("a", (), 1), ("b", ("a",), 2), ("c", ("b",), 3))
    assert waves(Graph(chain)) == [["a"], ["b"], ["c"]]
    assert critical_path(Graph(chain), estimates(chain)) == (["a", "b", "c"], 6)
    result = analyze(chain, 4)
    assert result.makespan == 6 and result.speedup == 1
    assert result.recommendation == "sequential"


def test_fan_out() -> None:
    fan = tasks(("root", (), 1), *((f"t{i}", ("root",), 2) for i in range(4)))
    assert waves(Graph(fan)) == [["root"], ["t0", "t1", "t2", "t3"]]
    assert analyze(fan, 4).makespan == 3
    assert analyze(fan, 2).makespan == 5
    assert analyze(fan, 1).makespan == 9


def test_diamond() -> None:
    diamond = tasks(("a", (), 1), ("b", ("a",), 5), ("c", ("a",), 2), ("d", ("b", "c"), 1))
    assert waves(Graph(diamond)) == [["a"], ["b", "c"], ["d"]]
    assert critical_path(Graph(diamond), estimates(diamond)) == (["a", "b", "d"], 7)
    assert analyze(diamond, 2).makespan == 7


def test_independent_sets() -> None:
    flat = tasks(*((f"t{i}", (), 1) for i in range(6)))
    assert waves(Graph(flat)) == [[f"t{i}" for i in range(6)]]
    result = analyze(flat, 3)
    assert result.makespan == 2 and result.speedup == 3
    assert result.recommendation == "parallel"


def test_makespan_against_hand_computed_schedule() -> None:
    # Two slots. Ready at 0: a(3), b(2), c(1); d(2) needs a, e(4) needs b.
    # Remaining paths: a=5, b=6, c=1 -> start b and a at 0; b ends at 2 -> e(4) runs 2..6
    # (remaining 4 beats c's 1); a ends at 3 -> d runs 3..5; c runs 5..6. Makespan 6.
    plan = tasks(("a", (), 3), ("b", (), 2), ("c", (), 1), ("d", ("a",), 2), ("e", ("b",), 4))
    assert simulate(Graph(plan), 2, estimates(plan)) == 6
    # Critical priority wins over a longer remaining path: c first, then b, then a waits.
    plan[2] = task("c", est=1, index=2, priority=Priority.CRITICAL)
    # c 0..1, b 0..2; a 1..4; e 2..6; d 4..6 -> 6
    assert simulate(Graph(plan), 2, estimates(plan)) == 6
    assert simulate(Graph(plan), 1, estimates(plan)) == 12


def test_default_estimate_and_history() -> None:
    plan = [task("a", kind="testing"), task("b", est=4, index=1)]
    assert estimates(plan) == {"a": 1.0, "b": 4}
    assert estimates(plan, {"type:testing": 7.0}) == {"a": 7.0, "b": 4}
    assert estimates(plan, {"id:a": 3.0, "type:testing": 7.0})["a"] == 3.0


def test_recommendation_rules() -> None:
    assert recommend(2, 5, {None}) == ("sequential", "fewer than 3 tasks (2)")
    assert recommend(5, 1.4, {None})[0] == "sequential"
    assert recommend(5, 1.8, {"a", "b"}) == ("sequential", "mixed task types and estimated speedup 1.80x is below 2x")
    assert recommend(5, 1.8, {"a"})[0] == "parallel"
    assert recommend(5, 2.5, {"a", "b"})[0] == "parallel"


def test_three_cycle() -> None:
    problems = graph_problems({"a": ["c"], "b": ["a"], "c": ["b"], "d": []})
    assert problems == ["dependency cycle: a -> c -> b -> a"]


def test_two_separate_cycles_both_reported() -> None:
    problems = graph_problems({"a": ["b"], "b": ["a"], "c": ["d"], "d": ["c"]})
    assert sorted(problems) == ["dependency cycle: a -> b -> a", "dependency cycle: c -> d -> c"]


def test_self_loop() -> None:
    assert graph_problems({"a": ["a"]}) == ["task 'a': depends on itself"]


def test_long_chain_has_no_recursion_limit() -> None:
    n = 20_000
    deps = {f"t{i}": [f"t{i - 1}"] if i else [] for i in range(n)}
    assert graph_problems(deps) == []
    deps["t0"] = [f"t{n - 1}"]
    assert len(graph_problems(deps)[0].split(" -> ")) == n + 1


def test_duration_history_is_bounded_and_keeps_the_newest(home: Path) -> None:
    from parallel_executor.results import history
    from parallel_executor.system.locations import durations_file

    history.record_durations((f"old{i}", None, 1.0, 1.0) for i in range(history.KEYS))
    history.record_durations([("new", "testing", 2.0, 1.0), ("new", "testing", 4.0, 1.0)])
    durations = history.load_durations()
    assert len(json.loads(durations_file().read_text())) == history.KEYS
    assert durations["id:new"] == 3.0 and durations["type:testing"] == 3.0
    assert "id:old0" not in durations and f"id:old{history.KEYS - 1}" in durations


# ---- what the simulation honours, and what analyze says (the CLI where it matters) ----------------

def analyze_cli(path: Path, *args: str | Path) -> dict[str, Any]:
    done = engine("analyze", path, "--format", "json", *args)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def suites_and_report() -> list[dict[str, Any]]:
    suites = [{"id": f"suite{i}", "command": "x", "type": "testing", "estimate": 10} for i in range(5)]
    return [*suites, {"id": "report", "command": "x", "estimate": 1, "blockedBy": [s["id"] for s in suites]}]


def test_untyped_task_does_not_make_a_file_mixed(home: Path, tasks_file: Callable[..., Path]) -> None:
    # 2 slots: 10+10 | 10+10 | 10, then the report: 31 s for 51 s of work, 1.65x (below 2, above 1.5).
    result = analyze_cli(tasks_file(suites_and_report()), "-j", "2")
    assert result["estimated_makespan"] == 31 and result["estimated_speedup"] == 1.645
    assert result["recommendation"] == "parallel", result["reason"]
    assert recommend(6, 1.645, {"testing", None})[0] == "parallel"
    assert recommend(6, 1.645, {"testing", "docs", None})[0] == "sequential"


def test_tasks_writing_the_same_path_run_one_after_the_other(home: Path, tasks_file: Callable[..., Path]) -> None:
    plan = [{"id": "a", "command": "x", "estimate": 3, "paths": ["out/report.md"]},
            {"id": "b", "command": "x", "estimate": 2, "paths": ["out/report.md"]}]
    result = analyze_cli(tasks_file(plan), "-j", "2")
    assert result["estimated_makespan"] == result["total_work"] == 5 and result["estimated_speedup"] == 1


def test_path_lock_conflict_rule() -> None:
    def at(tid: str, paths: tuple[str, ...] = (), reads: tuple[str, ...] = ()) -> TaskSpec:
        return replace(task(tid), paths=paths, reads=reads, cwd=Path("/repo"))

    assert conflicts(at("a", paths=("src",)), at("b", paths=("src/x.py",)))  # contains
    assert conflicts(at("a", reads=("src/x.py",)), at("b", paths=("src",)))  # write over a read
    assert conflicts(at("a", paths=("src/**/*.py",)), at("b", reads=("src/x.py",)))  # a glob locks its prefix
    assert not conflicts(at("a", reads=("src",)), at("b", reads=("src",)))  # reads are shared
    assert not conflicts(at("a", paths=("src",)), at("b", paths=("srcs",)))
    # A writer of docs, two writers of files in it, a reader of src: docs first, then its two files together.
    plan = [replace(at(f"w{i}", paths=(f"docs/{i}.md",) if i else ("docs",)), estimate=2.0, index=i)
            for i in range(3)] + [replace(at("r", reads=("src",)), estimate=1.0, index=3)]
    assert analyze(plan, 3).makespan == 4 and analyze(plan, 2).makespan == 4


def test_serial_phase_runs_one_task_at_a_time(home: Path, tasks_file: Callable[..., Path]) -> None:
    # Shipped config: architecture (serial) before implementation (parallel). Tasks without a phase are free.
    plan = [*({"id": f"arch{i}", "command": "x", "estimate": 2, "phase": "architecture"} for i in range(2)),
            *({"id": f"impl{i}", "command": "x", "estimate": 3, "phase": "implementation"} for i in range(3)),
            {"id": "free", "command": "x", "estimate": 1}]
    path = tasks_file(plan)
    assert analyze_cli(path, "-j", "4")["estimated_makespan"] == 2 + 2 + 3  # arch0, arch1, then impl0..2
    # 2 slots: arch0 and free, arch1 (arch0 done), impl0 and impl1, impl2.
    assert analyze_cli(path, "-j", "2")["estimated_makespan"] == 2 + 2 + 3 + 3


def test_exclusive_and_never_together_subagents(home: Path, tasks_file: Callable[..., Path], tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"exclusive_subagents": ["deployer"]}))
    plan = [*({"id": f"d{i}", "prompt": "deploy", "subagent": "deployer", "estimate": 4} for i in range(3)),
            {"id": "other", "prompt": "look", "subagent": "reviewer", "estimate": 4}]
    path = tasks_file(plan)
    assert analyze_cli(path, "-j", "4")["estimated_makespan"] == 4
    assert analyze_cli(path, "-j", "4", "--config", config)["estimated_makespan"] == 12
    config.write_text(json.dumps({"never_together": [["reviewer", "*"]]}))
    assert analyze_cli(path, "-j", "4", "--config", config)["estimated_makespan"] == 8


def test_tasks_without_estimate_are_counted(home: Path, tasks_file: Callable[..., Path]) -> None:
    plan = [{"id": "a", "command": "x", "estimate": 5}, {"id": "b", "command": "x"},
            {"id": "c", "command": "x", "type": "testing"}]
    path = tasks_file(plan)
    result = analyze_cli(path)
    assert result["tasks_without_estimate"] == 2 and result["without_estimate"] == ["b", "c"]
    assert "2 of 3 tasks (no estimate, no past run): 1 s assumed for each: b, c" in engine("analyze", path).stdout
    assert without_estimate([task("c", kind="testing")], {"type:testing": 4.0}) == []
    assert without_estimate([task("b")], {"id:b": 4.0}) == []
    assert "no estimate" not in engine("analyze", tasks_file([{"id": "a", "command": "x", "estimate": 1}])).stdout


def test_durations_are_rounded_for_people(home: Path, tasks_file: Callable[..., Path]) -> None:
    assert [duration(s) for s in (0.25, 1, 30.8585, 59.99, 125.4, 3599.6, 3725)] == \
        ["0.25 s", "1.0 s", "30.9 s", "1 min 00 s", "2 min 05 s", "1 h 00 min", "1 h 02 min"]
    path = tasks_file([{"id": "a", "command": "x", "estimate": 30.8585},
                       {"id": "b", "command": "x", "estimate": 125.4}])
    table = engine("analyze", path, "-j", "1").stdout
    assert "b  (2 min 05 s)" in table and "2 min 36 s (estimated)" in table
    assert "30.8585" not in table and "2 tasks in 1 wave\n" in table and "makespan on 1 slot " in table
    result = analyze_cli(path)
    assert result["total_work"] == 156.258 and result["critical_path_length"] == 125.4
    one = tasks_file([{"id": "a", "command": "x", "estimate": 30.8585}], "one.json")
    assert "a  (30.9 s)" in engine("analyze", one).stdout
    chain = tasks_file([{"id": "a", "command": "x"}, {"id": "b", "command": "x", "blockedBy": ["a"]}], "chain.json")
    assert "2 tasks in 2 waves" in engine("analyze", chain).stdout


def engine_rules_reference(plan: list[TaskSpec], slots: int, config: Config) -> float:
    """A plain list scheduler that asks the engine's own admission checks, scanning every ready task."""
    from parallel_executor.engine.admission import Compatibility, PhaseGate
    from parallel_executor.plan.pathlocks import lock_set

    graph, estimate = Graph(plan), estimates(plan)
    remaining = remaining_paths(graph, estimate)
    checks = [PhaseGate(plan, config.phases), Compatibility(config)]
    locks, held = {t.id: lock_set(t) for t in plan}, {}
    unmet = {t.id: len(t.blocked_by) for t in plan}
    ready = [t for t in plan if not t.blocked_by]
    running: list[tuple[float, str]] = []
    now = 0.0
    while ready or running:
        for t in sorted(ready, key=lambda t: ready_key(t, remaining[t.id])):
            if len(running) < slots and not any(c.blocked(t) for c in checks) \
                    and not any(h.conflicts(locks[t.id]) for h in held.values()):
                ready.remove(t)
                for c in checks:
                    c.started(t)
                held[t.id] = locks[t.id]
                running.append((now + estimate[t.id], t.id))
        now = min(end for end, _ in running)
        for end, tid in [r for r in running if r[0] == now]:
            running.remove((end, tid))
            for c in checks:
                c.settled(graph.tasks[tid])
            del held[tid]
            for child in graph.dependents[tid]:
                unmet[child] -= 1
                if not unmet[child]:
                    ready.append(graph.tasks[child])
    return now


def test_simulation_agrees_with_the_engine_admission_checks(home: Path) -> None:
    rng = random.Random(7)
    base = load_config()
    names = [p.name for p in base.phases]
    pool = ["a", "a/b", "a/c", "d", "d/e/f", "g"]
    for case in range(300):
        config = replace(base, exclusive_subagents=tuple(rng.sample(["x", "y"], rng.randint(0, 1))),
                         never_together=(("z", "*"),) if rng.random() < 0.3 else (("x", "y"),) if case % 2 else ())
        plan, level = [], 0
        for i in range(rng.randint(3, 30)):
            level = min(level + (rng.random() < 0.2), len(names) - 1)
            deps = tuple(sorted({f"t{rng.randrange(i)}" for _ in range(rng.randint(0, 2))})) if i else ()
            plan.append(replace(task(f"t{i}", *deps, est=float(rng.randint(1, 5)), index=i,
                                     priority=Priority(rng.choice([1, 1, 2, 3]))),
                                phase=names[level] if rng.random() < 0.4 else None,
                                subagent=rng.choice([None, None, "x", "y", "z"]), cwd=Path("/w"),
                                paths=tuple(rng.sample(pool, rng.choice([0, 0, 1, 2]))),
                                reads=tuple(rng.sample(pool, rng.choice([0, 1])))))
        slots = rng.randint(1, 4)
        expected = engine_rules_reference(plan, slots, config)
        assert analyze(plan, slots, config=config).makespan == expected, (case, slots, plan)
