"""The files the memory system's other scripts read, in the seed's shapes (§3, §9): read here as
they read them, with plain json.load and the seed's keys."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import py, run_json

SEED_RESULT_FIELDS = ("task_id", "subagent", "status", "output", "error", "duration", "start_time", "end_time")


def emit(data: dict[str, Any], fail: bool = False) -> list[str]:
    return py(f"import json,os,sys; json.dump({data!r}, open(os.environ['PARALLEL_RESULT_FILE'], 'w'))"
              + ("; sys.exit(1)" if fail else ""))


def load(results_dir: str, name: str) -> Any:
    with open(Path(results_dir) / name, encoding="utf-8") as f:
        return json.load(f)


def test_result_files_hold_the_seeds_fields(home: Path, tasks_file: Callable[..., Path]) -> None:
    code, summary = run_json(tasks_file([{"id": "ok", "command": ["echo", "hi"]},
                                         {"id": "bad", "command": "exit 3", "retries": 0}]))
    assert code == 1
    ok, bad = load(summary["results_dir"], "ok.json"), load(summary["results_dir"], "bad.json")
    for doc, tid in ((ok, "ok"), (bad, "bad")):
        assert all(field in doc for field in SEED_RESULT_FIELDS), doc.keys()
        assert doc["task_id"] == doc["id"] == tid and doc["subagent"] is None
        assert isinstance(doc["duration"], float) and doc["start_time"] <= doc["end_time"]
    assert (ok["status"], ok["output"], ok["error"]) == ("success", "hi\n", None)
    assert bad["status"] == "failed" and bad["error"] == "exit code 3"


def test_merged_json_has_the_seeds_names(home: Path, tasks_file: Callable[..., Path]) -> None:
    tasks = [
        {"id": "t1", "type": "testing", "command": ["echo", "FAILED t.py::test_a - boom\n"
                                                     "== 1 failed, 6 passed, 2 skipped, 1 error, 1 xfailed, "
                                                     "1 xpassed in 0.3s =="]},
        {"id": "t2", "type": "testing", "command": ["sh", "-c", "echo crashed; exit 1"], "retries": 0},
        {"id": "api", "type": "service_creation", "command": emit({"service_name": "api-svc",
                                                                    "files": ["api/app.py"]})},
        {"id": "web", "type": "service_creation", "command": emit({"files": ["web/app.py", "api/app.py"]})},
        {"id": "gone", "type": "service_creation", "command": "exit 2", "retries": 0},
        {"id": "s1", "type": "search", "command": emit({"results": [{"path": "a.py", "score": 0.5, "line": 3},
                                                                     {"path": "b.py", "score": 0.5}]})},
        {"id": "s2", "type": "search", "command": emit({"results": [{"path": "b.py", "score": 0.5}]})},
    ]
    code, summary = run_json(tasks_file(tasks))
    assert code == 1
    merged = load(summary["results_dir"], "merged.json")
    testing = merged["testing"]
    assert testing["strategy"] == "aggregate_results"
    assert [testing[k] for k in ("passed", "failed", "errors", "skipped", "xfailed", "xpassed")] == [6, 1, 1, 2, 1, 1]
    assert testing["total_tests"] == 12  # passed + failed + errors + skipped + xfailed + xpassed
    assert testing["pass_rate"] == round(6 / 8, 4)  # skips do not lower it
    assert testing["status"] != "success"  # a test task that failed with no counts is never a pass
    assert testing["details"]["t1"]["failing_tests"] == ["t.py::test_a"]
    assert testing["details"]["t2"]["status"] == "failed"
    services = merged["service_creation"]
    assert services["status"] == "partial" and services["created_services"] == ["api-svc", "web"]
    assert services["created_files"] == ["api/app.py", "web/app.py"] and services["total_files"] == 2
    assert list(services["errors"]) == ["gone"]
    search = merged["search"]
    assert [(r["path"], r["score"], r["frequency"]) for r in search["results"]] == [("b.py", 0.5, 2),
                                                                                   ("a.py", 0.5, 1)]
    assert search["results"][1]["line"] == 3  # the item's own fields, at the top level
    assert (search["total_found"], search["unique"], search["duplicates_removed"]) == (3, 2, 1)


def test_a_passing_suite_with_only_skips_besides_is_a_full_pass(home: Path, tasks_file: Callable[..., Path]) -> None:
    code, summary = run_json(tasks_file([{"id": "t", "type": "testing", "command": emit({"passed": 3, "skipped": 5})}]))
    assert code == 0
    testing = load(summary["results_dir"], "merged.json")["testing"]
    assert (testing["status"], testing["pass_rate"], testing["total_tests"]) == ("success", 1.0, 8)


def test_the_result_schema_takes_the_seeds_fields(home: Path, tasks_file: Callable[..., Path]) -> None:
    from parallel_executor.plan import schemas

    code, summary = run_json(tasks_file([{"id": "ok", "command": ["true"]}]))
    doc = load(summary["results_dir"], "ok.json")
    assert code == 0 and schemas.is_valid("result", doc)  # what --resume reuses
    assert not schemas.is_valid("result", {**doc, "task_id": 5})
    assert not schemas.is_valid("result", {**doc, "start_time": 1})
