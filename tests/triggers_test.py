"""Triggers (§4, §6): when a task starts once its dependencies have settled, and what a skip names."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest
from parallel_executor.plan.model import Status, TaskSpec

from tests.conftest import engine, py, run_json
from tests.scheduler_test import Harness, spec

pytestmark = pytest.mark.timeout(30)


def task(tid: str, index: int, after: tuple[str, ...] = (), trigger: str = "all_success") -> TaskSpec:
    return dataclasses.replace(spec(tid, index, after), trigger=trigger)


def test_all_done_runs_after_a_failure_and_all_success_is_skipped_naming_the_root_cause() -> None:
    h = Harness([task("a", 0), task("b", 1), task("c", 2, ("a",)), task("d", 3, ("c",)),
                 task("report", 4, ("a", "b", "d"), "all_done")], slots=2)
    h.end("a", code=1)
    assert h.status("c") is Status.SKIPPED and h.status("d") is Status.SKIPPED
    assert h.s.tasks["d"].reason == "dependency 'a' failed"  # the cause, not the task in between
    assert h.status("report") is Status.PENDING  # b still runs
    h.end("b")
    assert h.status("report") is Status.RUNNING
    h.end("report")
    assert h.s.done and h.s.final_state() == "partial"


def test_one_failed_runs_only_after_a_failure_else_it_is_not_needed_and_does_not_fail_the_run() -> None:
    h = Harness([task("a", 0), task("notify", 1, ("a",), "one_failed")], slots=2)
    h.end("a")
    assert h.status("notify") is Status.NOT_NEEDED and h.s.tasks["notify"].reason.startswith("not needed")
    assert h.s.done and h.s.final_state() == "success"
    h = Harness([task("a", 0), task("b", 1), task("notify", 2, ("a", "b"), "one_failed")], slots=2)
    h.end("a", code=1)
    assert h.status("notify") is Status.PENDING  # it waits until every dependency has settled
    h.end("b")
    assert h.status("notify") is Status.RUNNING


def test_a_long_chain_of_skips_needs_no_deep_stack() -> None:
    specs = [task("t0", 0)] + [task(f"t{i}", i, (f"t{i - 1}",)) for i in range(1, 5000)]
    h = Harness(specs, slots=1)
    h.end("t0", code=1)
    assert h.s.done and h.status("t4999") is Status.SKIPPED


def test_an_all_done_report_sees_every_result_and_the_exit_code_counts_not_needed(
        home: Path, tasks_file: Callable[..., Path]) -> None:
    show = py("import json, os\nresults = json.loads(os.environ['PARALLEL_DEP_RESULTS'])\n"
              "print(sorted((k, json.load(open(v))['status']) for k, v in results.items()))")
    path = tasks_file([{"id": "good", "command": ["true"]}, {"id": "bad", "command": ["false"]},
                       {"id": "report", "command": show, "blockedBy": ["good", "bad"], "trigger": "all_done"},
                       {"id": "page", "command": ["true"], "blockedBy": ["good"], "trigger": "one_failed"}])
    code, summary = run_json(path)
    assert code == 1 and summary["tasks"]["report"]["status"] == "success"
    assert summary["tasks"]["page"]["status"] == "not needed"
    output = (Path(summary["results_dir"]) / "report.stdout").read_text()
    assert output.strip() == "[('bad', 'failed'), ('good', 'success')]"
    ok = tasks_file([{"id": "good", "command": ["true"]},
                     {"id": "page", "command": ["true"], "blockedBy": ["good"], "trigger": "one_failed"}], "ok.json")
    code, summary = run_json(ok)
    assert code == 0 and summary["status"] == "success"


def test_a_bad_trigger_is_refused(home: Path, tasks_file: Callable[..., Path]) -> None:
    done = engine("validate", tasks_file([{"id": "a", "command": ["true"], "trigger": "always"}]))
    assert done.returncode == 2 and "trigger" in done.stderr and "Traceback" not in done.stderr
