"""State files read defensively (PRODUCT §3): a file the engine cannot use is moved aside, never
silently replaced; a run never fails after its tasks ran because of a bookkeeping file; run ids
and the paths the engine writes stay where they belong."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import engine, run_json

pytestmark = pytest.mark.timeout(60)
RUN_ID = "20240101-000000.000-abcd"


def aside(path: Path) -> list[Path]:
    return sorted(path.parent.glob(path.name + ".corrupt-*"))


def clean(done: object) -> str:
    stderr = str(getattr(done, "stderr", ""))
    assert "Traceback" not in stderr, stderr
    return stderr


def test_a_stats_file_of_the_wrong_shape_is_kept_and_the_run_succeeds(home: Path, tasks_file: Callable[..., Path]
                                                                       ) -> None:
    stats = home / "memory" / "logs" / "parallel-execution-stats.json"
    stats.parent.mkdir(parents=True)
    stats.write_text("[]")
    done = engine("run", tasks_file([{"id": "a", "command": ["true"]}]), "-q")
    assert done.returncode == 0, done.stderr
    assert "moved aside" in clean(done)
    assert [p.read_text() for p in aside(stats)] == ["[]"]
    assert json.loads(stats.read_text())["total_parallel_executions"] == 1


def test_a_truncated_registry_is_moved_aside_not_reset(home: Path, tasks_file: Callable[..., Path]) -> None:
    registry = home / "memory" / "temp" / "temp-skills-registry.json"
    registry.parent.mkdir(parents=True)
    registry.write_text('{"skill": {"x": {"name": "x", "us')
    done = engine("run", tasks_file([{"id": "a", "command": ["true"], "required_skill": "lint-rules"}]), "-q")
    assert done.returncode == 0 and "moved aside" in clean(done)
    assert [p.read_text() for p in aside(registry)] == ['{"skill": {"x": {"name": "x", "us']
    assert [e["name"] for e in json.loads(registry.read_text())["temporary_skills"]] == ["lint-rules"]


@pytest.mark.parametrize("content", ["{}", '{"run_id": "x", "pid": -1, "task_file": "t", "started": null, '
                                           '"state": "running", "tasks": []}', "{\"torn"])
def test_an_unusable_status_file_is_set_aside_by_every_reader(home: Path, content: str) -> None:
    status = home / "memory" / "temp" / "runs" / RUN_ID / "status.json"
    status.parent.mkdir(parents=True)
    status.write_text(content)
    done = engine("status", RUN_ID)
    assert done.returncode == 2 and f"no run '{RUN_ID}'" in clean(done)
    assert [p.read_text() for p in aside(status)] == [content]
    for command in (["history", "--json"], ["cancel"], ["status"]):
        done = engine(*command)
        clean(done)
        assert done.returncode in (0, 2)


def test_run_ids_are_matched_in_full(home: Path, tasks_file: Callable[..., Path]) -> None:
    for command in (["status", "../../outside"], ["cancel", "../x"],
                    ["run", tasks_file([{"id": "a", "command": ["true"]}]), "--resume", "../../outside"]):
        done = engine(*command)
        assert done.returncode == 2 and "is not a run id" in clean(done)


def test_a_torn_multibyte_last_event_does_not_stop_a_resume(home: Path, tasks_file: Callable[..., Path]) -> None:
    path = tasks_file([{"id": "a", "command": ["true"]}, {"id": "b", "command": ["false"], "retries": 0}])
    code, first = run_json(path)
    assert code == 1
    events = home / "memory" / "temp" / "runs" / first["run_id"] / "events.jsonl"
    with open(events, "ab") as f:
        f.write('{"event": "started", "task": "b", "reason": "é'.encode()[:-1])  # cut inside "é"
    code, again = run_json(path, "--resume", first["run_id"])
    assert code == 1 and again["tasks"]["a"]["status"] == "success" and again["tasks"]["b"]["attempts"] == 1


def test_a_directory_in_place_of_a_run_marker_does_not_stop_later_runs(home: Path,
                                                                        tasks_file: Callable[..., Path]) -> None:
    marker = home / "memory" / "temp" / "runs" / "active" / RUN_ID
    marker.mkdir(parents=True)
    (marker / "keep.txt").write_text("mine")
    done = engine("run", tasks_file([{"id": "a", "command": ["true"]}]), "-q")
    assert done.returncode == 0 and "moved aside" in clean(done)
    assert (aside(marker)[0] / "keep.txt").read_text() == "mine"


def test_a_claude_home_that_is_a_file_is_a_clear_error(tmp_path: Path, tasks_file: Callable[..., Path]) -> None:
    home = tmp_path / "home-file"
    home.write_text("not a directory")
    for command in (["run", tasks_file([{"id": "a", "command": ["true"]}]), "-q"], ["registry", "list"],
                    ["cleanup", "--dry-run"], ["status"]):
        done = engine(*command, env={"CLAUDE_CONFIG_DIR": str(home)})
        assert done.returncode == 2, (command, done.stderr)
        assert clean(done).startswith("parallel-executor: ")
    assert home.read_text() == "not a directory"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_a_claude_home_that_is_not_writable_is_a_clear_error(tmp_path: Path, tasks_file: Callable[..., Path]) -> None:
    home = tmp_path / "locked"
    home.mkdir(mode=0o500)
    done = engine("run", tasks_file([{"id": "a", "command": ["true"]}]), "-q", env={"CLAUDE_CONFIG_DIR": str(home)})
    assert done.returncode == 2 and "must be a directory you can write" in clean(done)


def test_a_symlink_in_the_results_dir_is_not_followed(home: Path, tasks_file: Callable[..., Path],
                                                      tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    victim.chmod(0o644)
    results = tmp_path / "res"
    results.mkdir()
    (results / "a.stdout").symlink_to(victim)
    code, summary = run_json(tasks_file([{"id": "a", "command": ["echo", "x"]}]), "--results-dir", results)
    assert code == 1 and "symbolic link is not followed" in summary["tasks"]["a"]["error"]
    assert victim.read_text() == "precious" and victim.stat().st_mode & 0o777 == 0o644


def test_a_structured_result_that_is_too_deep_or_a_link_is_an_error_not_a_crash(
        home: Path, tasks_file: Callable[..., Path], tmp_path: Path) -> None:
    secret = tmp_path / "secret.json"
    secret.write_text('{"secret": 1}')
    deep = "import os; open(os.environ['PARALLEL_RESULT_FILE'], 'w').write('[' * 5000 + ']' * 5000)"
    link = f"import os; os.symlink({str(secret)!r}, os.environ['PARALLEL_RESULT_FILE'])"
    code, summary = run_json(tasks_file([{"id": "deep", "command": ["python3", "-c", deep]},
                                         {"id": "link", "command": ["python3", "-c", link]}]))
    assert code == 0
    results = Path(summary["results_dir"])
    assert "not valid JSON" in json.loads((results / "deep.json").read_text())["data"]["error"]
    assert "cannot be read" in json.loads((results / "link.json").read_text())["data"]["error"]
