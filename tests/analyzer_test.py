"""The pure planner: waves, critical path, simulated makespan, recommendation, graph checks."""

from __future__ import annotations

from pathlib import Path

from parallel_executor.plan.analyzer import Graph, analyze, critical_path, estimates, recommend, simulate, waves
from parallel_executor.plan.graph import graph_problems
from parallel_executor.plan.model import Priority, TaskSpec


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

    history.record_durations((f"old{i}", None, 1.0) for i in range(history.KEYS))
    history.record_durations([("new", "testing", 2.0), ("new", "testing", 4.0)])
    durations = history.load_durations()
    assert len(durations) == history.KEYS
    assert durations["id:new"] == 3.0 and durations["type:testing"] == 3.0
    assert "id:old0" not in durations and f"id:old{history.KEYS - 1}" in durations
