"""Merging by task type (§9), on outputs of real processes."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from parallel_executor.results import merge

from tests.conftest import py, run_json


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
    code, summary = run_json(tasks_file(tasks), cwd=tmp_path)
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
