"""Merging by task type (§9), on outputs of real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from parallel_executor.results import merge
from parallel_executor.system.timestamps import iso

from tests.conftest import py, run_json

NO_PLUGINS = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}  # real pytest without this venv's plugins: 1 s less a run


def write_suite(folder: Path, failing: int) -> None:
    folder.mkdir()
    tests = [f"def test_ok_{i}(): pass" for i in range(3)] + [f"def test_bad_{i}(): assert 0" for i in range(failing)]
    (folder / "test_x.py").write_text("\n".join(tests) + "\n")
    (folder / "pytest.ini").write_text("[pytest]\n")


def test_testing_results_from_pytest_junit_and_maven(home: Path, tasks_file: Callable[..., Path],
                                                     tmp_path: Path) -> None:
    write_suite(tmp_path / "a", failing=1)
    write_suite(tmp_path / "b", failing=0)
    pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    maven = "[INFO] Tests run: 7, Failures: 1, Errors: 1, Skipped: 2\n[INFO] BUILD FAILURE"
    tasks = [
        {"id": "line", "type": "testing", "command": pytest, "cwd": "a", "retries": 0},
        {"id": "junit", "type": "testing", "command": [*pytest, "--junitxml=reports/out.xml"], "cwd": "b",
         "artifacts": ["reports/*.xml"]},
        {"id": "mvn", "type": "testing", "command": ["echo", maven]},
        {"id": "data", "type": "testing", "command": py(
            "import json,os; json.dump({'passed': 4, 'failed': 0, 'skipped': 1}, "
            "open(os.environ['PARALLEL_RESULT_FILE'], 'w'))")},
    ]
    code, summary = run_json(tasks_file(tasks), cwd=tmp_path, env=NO_PLUGINS)
    assert code == 1  # one suite has a failing test
    testing = summary["merged"]["testing"]
    assert testing["strategy"] == "aggregate_results"
    assert testing["tasks"] == ["line", "junit", "mvn", "data"]
    details = testing["details"]
    assert {k: details[k]["passed"] for k in ("line", "junit", "mvn", "data")} == {
        "line": 3, "junit": 3, "mvn": 3, "data": 4}
    # PRODUCT §9: `failed` does not include `errors`; skips do not lower the pass rate.
    assert details["line"]["failed"] == 1 and (details["mvn"]["failed"], details["mvn"]["errors"]) == (1, 1)
    assert details["line"]["failing_tests"] == ["test_x.py::test_bad_0"]
    assert details["junit"]["failing_tests"] == [] and details["junit"]["total_tests"] == 3
    assert [testing[k] for k in ("total_tests", "passed", "failed", "errors", "skipped")] == [19, 13, 2, 1, 3]
    assert testing["pass_rate"] == round(13 / 16, 4) and testing["status"] == "partial"
    assert testing["all_succeeded"] is False
    on_disk = json.loads((Path(summary["results_dir"]) / "merged.json").read_text())
    assert on_disk == summary["merged"]


def emit(data: dict[str, Any]) -> list[str]:
    return py(f"import json,os; json.dump({data!r}, open(os.environ['PARALLEL_RESULT_FILE'], 'w'))")


def test_search_services_and_default(home: Path, tasks_file: Callable[..., Path], tmp_path: Path) -> None:
    tasks = [
        {"id": "s1", "type": "search", "command": emit({"results": [{"path": "a.py", "score": 0.9},
                                                                     {"path": "b.py", "score": 0.5}]})},
        {"id": "s2", "type": "search", "command": emit({"results": [{"path": "b.py", "score": 0.7},
                                                                     {"path": "c.py", "score": 0.5}]})},
        {"id": "auth", "type": "service_creation", "command": emit({"files": ["auth/app.py", "auth/Dockerfile"]})},
        {"id": "users", "type": "service_creation", "command": emit({"files": ["users/app.py", "auth/Dockerfile"]})},
        {"id": "misc", "command": ["true"]},
    ]
    code, summary = run_json(tasks_file(tasks), cwd=tmp_path)
    assert code == 0
    search = summary["merged"]["search"]
    assert [(r["path"], r["score"], r["found"]) for r in search["results"]] == [
        ("a.py", 0.9, 1), ("b.py", 0.7, 2), ("c.py", 0.5, 1)]
    assert (search["total_found"], search["unique"], search["duplicates_removed"]) == (4, 3, 1)
    services = summary["merged"]["service_creation"]
    assert services["status"] == "success" and services["created_services"] == ["auth", "users"]
    assert services["created_files"] == ["auth/Dockerfile", "auth/app.py", "users/app.py"]
    assert services["total_files"] == 3 and services["errors"] == {}
    assert summary["merged"]["default"] == {"strategy": "default", "tasks": ["misc"], "all_succeeded": True,
                                            "statuses": {"success": 1}, "errors": {}}


def test_a_failing_strategy_keeps_the_individual_results() -> None:
    docs = [{"id": "bad", "type": "search", "status": "success", "output": "raw",
             "data": {"results": [{"score": "x"}]}}]
    merged = merge.merge(docs, {"search": "deduplicate_rank"}, {"bad": "/"})["search"]
    assert merged["merge_error"].startswith("ValueError: could not convert string to float")
    assert merged["results"] == {"bad": {"status": "success", "output": "raw"}}


def test_summary_lines() -> None:
    doc = {"id": "t", "output": "...\n===== 2 failed, 10 passed, 1 skipped, 1 error in 3.2s =====\n"}
    assert merge.test_counts(doc, "/") == {"total_tests": 14, "passed": 10, "failed": 2, "errors": 1, "skipped": 1,
                                           "failing_tests": []}
    assert merge.test_counts({"id": "t", "output": "no summary"}, "/") is None


# Real pytest output: a file with a pass, a failure, a skip, an xfail, an xpass and a fixture error,
# and a second file that cannot be collected (a failing import).
SUITE = '''import pytest
def test_ok(): pass
def test_bad(): assert 1 == 2
@pytest.mark.skip(reason="no")
def test_skip(): pass
@pytest.mark.xfail
def test_xf(): assert 0
@pytest.mark.xfail
def test_xp(): pass
@pytest.fixture
def broken(): raise RuntimeError("fixture")
def test_err(broken): pass
'''


class Suite:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir()
        (folder / "test_a.py").write_text(SUITE)
        (folder / "test_b.py").write_text("import no_such_module_for_this_test\n")
        (folder / "pytest.ini").write_text("[pytest]\n")
        self.started = iso(time.time())
        self.interrupted = self.pytest()  # pytest stops at the collection error: `1 error in 0.6s`
        self.whole = self.pytest("--continue-on-collection-errors", "--junitxml=reports/junit.xml")

    def pytest(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
                              cwd=self.folder, capture_output=True, text=True, timeout=60,
                              env={**os.environ, **NO_PLUGINS})
        assert done.returncode in (1, 2), done.stdout
        return done.stdout

    def doc(self, tid: str, output: str, **more: Any) -> dict[str, Any]:
        return {"id": tid, "type": "testing", "status": "failed", "output": output, "stderr": "",
                "artifacts": [], "start_time": self.started, **more}


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Suite:
    return Suite(tmp_path_factory.mktemp("real") / "suite")


def test_a_collection_error_alone_is_a_failure_never_a_pass(suite: Suite) -> None:
    assert suite.interrupted.splitlines()[-1].startswith("1 error in ")
    doc = suite.doc("t", suite.interrupted)
    merged = merge.merge([doc], {"testing": "aggregate_results"}, {"t": str(suite.folder)})["testing"]
    assert [merged[k] for k in ("total_tests", "passed", "failed", "errors", "skipped")] == [1, 0, 0, 1, 0]
    assert merged["pass_rate"] == 0.0 and merged["status"] == "partial"
    assert merged["details"]["t"]["failing_tests"] == ["test_b.py"]
    assert merge.failing_tests(doc) == ["test_b.py"]
    assert merge.summary_line("testing", merged) == "testing: 1 test: 0 passed, 0 failed, 1 error"


def test_pytest_summary_line_errors_xfailed_xpassed(suite: Suite) -> None:
    doc = suite.doc("t", suite.whole)
    counts = merge.test_counts(doc, str(suite.folder))
    assert counts == {"total_tests": 7, "passed": 1, "failed": 1, "errors": 2, "skipped": 1, "xfailed": 1,
                      "xpassed": 1, "failing_tests": ["test_b.py", "test_a.py::test_bad", "test_a.py::test_err"]}
    merged = merge.aggregate_results([doc], {"t": str(suite.folder)})
    # §9: passed over passed, failed and errors (skips, xfailed and xpassed do not count)
    assert merged["pass_rate"] == 0.25 and (merged["failed"], merged["errors"]) == (1, 2)
    assert merge.summary_line("testing", {"strategy": "aggregate_results", "tasks": ["t"], **merged}) == (
        "testing: 7 tests: 1 passed, 1 failed, 2 errors, 1 skipped, 1 xfailed, 1 xpassed")
    assert merge.failing_tests(doc, limit=2) == ["test_b.py", "test_a.py::test_bad"]
    assert merge.failing_tests({"id": "t", "stdout": suite.whole}) == ["test_b.py", "test_a.py::test_bad",
                                                                         "test_a.py::test_err"]


def test_junit_artifacts_come_before_the_text(suite: Suite) -> None:
    doc = suite.doc("t", "2 passed in 0.1s", artifacts=["reports/*.xml"])
    counts = merge.test_counts(doc, str(suite.folder))
    # JUnit cannot tell an xpass from a pass; an xfail is a skip of type pytest.xfail
    assert counts == {"total_tests": 7, "passed": 2, "failed": 1, "errors": 2, "skipped": 1, "xfailed": 1,
                      "failing_tests": ["test_b.py", "test_a.py::test_bad", "test_a.py::test_err"]}
    assert merge.failing_tests(doc, cwd=str(suite.folder)) == counts["failing_tests"]
    assert merge.failing_tests(doc) == []  # without the task's cwd the report is not found; the text has no ids
    stale = suite.doc("t", suite.whole, artifacts=["reports/*.xml"], start_time=iso(time.time() + 60))
    assert merge.test_counts(stale, str(suite.folder))["xpassed"] == 1  # a report older than the task: its text


def test_thousands_and_the_other_strategies() -> None:
    docs = [{"id": "big", "type": "testing", "status": "failed",
             "output": "FAILED tests/test_x.py::test_p[a - b] - assert 0\n"
                       "==== 1 failed, 3083 passed, 12 skipped, 3 warnings in 20.31s ====\n"},
            {"id": "prose", "type": "testing", "status": "failed", "output": "I found 3 errors and 2 failed checks"},
            {"id": "b1", "type": "build", "status": "success"}, {"id": "b2", "type": "build", "status": "failed"},
            {"id": "d1", "type": "deployment", "status": "success", "data": {"endpoint": "https://x"}},
            {"id": "s1", "type": "search", "status": "success", "data": {"results": ["a", "b", "a"]}},
            {"id": "misc", "status": "success"}]
    strategies = {"testing": "aggregate_results", "build": "check_all", "deployment": "verify_all",
                  "search": "deduplicate_rank"}
    merged = merge.merge(docs, strategies, {d["id"]: "/nonexistent" for d in docs})
    assert merged["testing"]["without_counts"] == ["prose"]
    assert merged["testing"]["details"]["big"]["failing_tests"] == ["tests/test_x.py::test_p[a"]
    lines = {name: merge.summary_line(name, entry) for name, entry in merged.items()}
    assert lines == {
        "testing": "testing: 3,096 tests: 3,083 passed, 1 failed, 12 skipped (no counts from prose)",
        "build": "build: 1 of 2 succeeded",
        "deployment": "deployment: 1 of 1 deployed, 1 endpoint",
        "search": "search: 1 of 1 succeeded, 2 unique results of 3 found",
        "default": None,
    }
    broken = {"strategy": "deduplicate_rank", "tasks": ["x"], "merge_error": "ValueError: bad"}
    assert merge.summary_line("search", broken) == (
        "search: merge failed (ValueError: bad); the individual results are kept")
    nothing = merge.merge([docs[1]], strategies, {"prose": "/"})["testing"]
    assert merge.summary_line("testing", nothing) == "testing: 0 of 1 succeeded; no test counts found"
