"""Agent tasks in the scheduler (§6, §7), with the fake backend and clock of scheduler_test: transient
retries beside `retries`, an authentication failure that stops its runner, cost over every attempt,
the budget, the agent cap, and the agents-at-once level that rate limits lower and successes raise."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from parallel_executor.agents.readers import Outcome
from parallel_executor.engine.agentgate import AgentGate, SharedLevels
from parallel_executor.engine.records import TaskRun
from parallel_executor.plan.model import Status, TaskSpec

from tests.scheduler_test import FakeAttempts, Harness, spec

pytestmark = pytest.mark.timeout(10)

OK = Outcome(ok=True, result="done", cost_usd=0.02, usage={"input_tokens": 10, "output_tokens": 5})
RATE_LIMITED = Outcome(ok=False, result="", error="API Error: Request rejected (429)", cost_usd=0.02,
                       usage={"input_tokens": 10, "output_tokens": 0}, error_class="transient")
BAD_KEY = Outcome(ok=False, result="", error="Invalid API key · Fix external API key", error_class="permanent",
                  auth_failed=True)
DENIED = Outcome(ok=False, result="", error="error_max_turns", cost_usd=0.02, error_class="permanent")


class ScriptedAttempts(FakeAttempts):
    """Each task's attempts end with the next outcome of its script (the last one repeats)."""

    def __init__(self, scripts: dict[str, list[Outcome]]) -> None:
        self.scripts = scripts

    def outcome(self, task: TaskRun, exit_code: int) -> Outcome:
        script = self.scripts.get(task.spec.id, [OK])
        return script.pop(0) if len(script) > 1 else script[0]


def agent(tid: str, index: int = 0, runner: str = "claude", retries: int = 0,
          after: tuple[str, ...] = ()) -> TaskSpec:
    return dataclasses.replace(spec(tid, index, after, retries), prompt="do it", command=None, runner=runner)


def harness(specs: list[TaskSpec], scripts: dict[str, list[Outcome]], slots: int = 4, cap: int = 10,
            budget: float | None = None, levels: SharedLevels | None = None, **kwargs: object) -> Harness:
    gate = AgentGate(cap, budget, levels)
    return Harness(specs, slots=slots, attempts=ScriptedAttempts(scripts), admissions=[gate], agents=gate,
                   **kwargs)


def test_a_transient_failure_is_retried_without_using_up_retries_and_cost_counts_every_attempt() -> None:
    h = harness([agent("a", retries=0)], {"a": [RATE_LIMITED, RATE_LIMITED, OK]})
    h.end("a", code=1)
    assert h.status("a") is Status.PENDING and "transient error" in h.s.tasks["a"].reason
    h.advance(2.0)  # retry_backoff 2 s, then 4 s: the engine's backoff
    h.end("a", code=1)
    h.advance(4.0)
    h.end("a")
    task = h.s.tasks["a"]
    assert (task.status, task.attempts, task.transient) == (Status.SUCCESS, 3, 2)
    assert task.cost == pytest.approx(0.06) and task.tokens == {"input_tokens": 30, "output_tokens": 5}


def test_transient_retries_have_a_limit_and_a_permanent_failure_is_not_retried_by_them() -> None:
    h = harness([agent("a"), agent("b", 1)], {"a": [RATE_LIMITED], "b": [DENIED]}, transient_retries=2)
    h.end("b", code=1)
    assert h.status("b") is Status.FAILED and h.s.tasks["b"].error_class == "permanent"
    for delay in (2.0, 4.0):
        h.end("a", code=1)
        h.advance(delay)
    h.end("a", code=1)
    assert h.status("a") is Status.FAILED and h.s.tasks["a"].attempts == 3
    assert h.s.tasks["a"].error_class == "transient"


def test_an_authentication_failure_stops_the_runner_but_not_the_others() -> None:
    specs = [agent("a"), agent("b", 1), agent("c", 2, runner="codex"), agent("d", 3)]
    h = harness(specs, {"a": [BAD_KEY]}, slots=2)
    h.end("a", code=1)  # not retried; b runs on, the codex task c starts
    assert h.status("a") is Status.FAILED and h.s.tasks["a"].attempts == 1
    assert h.status("c") is Status.RUNNING
    h.end("c")  # a slot: d, the next claude task, must not start
    assert h.status("d") is Status.SKIPPED and "runner 'claude' failed to authenticate" in h.s.tasks["d"].reason
    h.end("b")
    assert h.s.done and h.status("b") is Status.SUCCESS


def test_the_budget_skips_agent_tasks_once_reached_and_running_ones_finish() -> None:
    specs = [agent("a"), agent("b", 1), agent("c", 2), agent("d", 3, after=("c",))]
    h = harness(specs, {}, slots=2, budget=0.03)
    h.end("a")  # spent 0.02: c starts
    h.end("b")  # spent 0.04 >= 0.03
    assert h.status("c") is Status.RUNNING
    h.end("c")
    assert h.status("d") is Status.SKIPPED and h.s.tasks["d"].reason.startswith("budget reached")
    assert h.s.done


def test_the_agent_cap_holds_agents_not_commands() -> None:
    specs = [agent(f"a{i}", i) for i in range(4)] + [spec(f"c{i}", 4 + i) for i in range(4)]
    h = harness(specs, {}, slots=8, cap=2)
    running = set(h.s.running)
    assert running == {"a0", "a1", "c0", "c1", "c2", "c3"}
    assert h.s.tasks["a2"].reason == "waiting for an agent slot (agents 2/2)"


def test_rate_limits_halve_the_level_once_per_burst_and_successes_raise_it(tmp_path: Path) -> None:
    levels = SharedLevels(tmp_path / "agent-levels.json")
    specs = [agent(f"a{i}", i) for i in range(8)]
    h = harness(specs, {"a0": [RATE_LIMITED, OK], "a1": [RATE_LIMITED, OK]}, slots=8, levels=levels)
    assert len(h.s.running) == 8
    h.end("a0", code=1)  # 8 in flight: at most 4 at once
    assert levels.level("claude") == 4
    h.end("a1", code=1)  # the same burst (started before the decrease): counted once
    assert levels.level("claude") == 4
    h.end("a2")  # a success: one more
    assert levels.level("claude") == 5
    other_run = SharedLevels(tmp_path / "agent-levels.json")  # a concurrent run sees the same level
    assert other_run.level("claude") == 5


def test_the_monitor_header_says_when_agents_are_rate_limited() -> None:
    from parallel_executor.results.report import agents_line

    assert agents_line({"running": 3, "cap": 10, "rate_limited": {}, "budget_usd": None}) == "agents 3/10"
    assert agents_line({"running": 3, "cap": 10, "rate_limited": {"claude": 5}, "budget_usd": 2, "spent_usd": 0.5}) \
        == "agents 3/5: rate limited · $0.50 of $2"
    assert agents_line(None) == ""


def test_a_resumed_run_counts_what_it_spent_before_in_its_cost_tokens_and_budget() -> None:
    reused = {"a": {"attempts": 2, "exit_code": 0, "duration": 1.0, "output": "x", "cost_usd": 0.05,
                    "usage": {"input_tokens": 7, "output_tokens": "bad"}}}
    h = harness([agent("a"), agent("b", 1)], {}, budget=0.04, reused=reused)
    assert h.s.tasks["a"].cost == 0.05 and h.s.tasks["a"].tokens == {"input_tokens": 7, "output_tokens": 0}
    assert h.status("b") is Status.SKIPPED and h.s.tasks["b"].reason.startswith("budget reached")
