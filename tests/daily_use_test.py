"""Daily use (§5, §8, §9): what a run shows of real test suites without opening a file, a summary
task that runs after a failure, --output, validate's warnings, and an honest speedup figure."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import engine, py, run_json

pytestmark = pytest.mark.timeout(120)
PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--continue-on-collection-errors"]
NO_PLUGINS = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}  # the suites' pytest without this venv's plugins: 1 s less


def suites(tmp_path: Path) -> Path:
    good, bad = tmp_path / "suite-good", tmp_path / "suite-bad"
    good.mkdir()
    bad.mkdir()
    (good / "test_good.py").write_text("def test_one(): pass\ndef test_two(): pass\n")
    (bad / "test_a.py").write_text("import pytest\ndef test_ok(): pass\ndef test_fails(): assert 1 == 2\n"
                                   "@pytest.mark.skip(reason='later')\ndef test_skipped(): pass\n")
    (bad / "test_b.py").write_text("import no_such_module_xyz\n")
    report = py("import json, os\nfor k, v in sorted(json.loads(os.environ['PARALLEL_DEP_RESULTS']).items()):\n"
                "    print(k, json.load(open(v))['status'])")
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps({"tasks": [
        {"id": "test-good", "type": "test", "command": PYTEST, "cwd": "suite-good"},
        {"id": "test-bad", "type": "test", "command": PYTEST, "cwd": "suite-bad"},
        {"id": "report", "command": report, "blockedBy": ["test-good", "test-bad"], "trigger": "all_done"}]}))
    return path


def test_a_failing_suite_shows_its_failing_test_and_counts_and_the_report_runs_after_it(
        home: Path, tmp_path: Path) -> None:
    path = suites(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = engine("run", path, cwd=elsewhere, env=NO_PLUGINS)  # relative cwds follow the task file, not the shell
    shown = done.stdout + done.stderr
    assert done.returncode == 1, shown
    assert "test_a.py::test_fails" in shown  # in the table, and in the failure's last lines
    assert re.search(r"^test +6 tests: 3 passed, 1 failed, 1 error, 1 skipped$", done.stdout, re.MULTILINE)
    assert "1 failed, 1 passed, 1 skipped, 1 error" in done.stderr  # --output failed: pytest's own summary
    run_dir = Path(next(line.split()[-1] for line in done.stdout.splitlines() if line.startswith("results")))
    merged = json.loads((run_dir / "merged.json").read_text())["test"]
    assert (merged["total_tests"], merged["passed"], merged["failed"], merged["errors"], merged["skipped"]) == \
        (6, 3, 1, 1, 1)
    assert merged["pass_rate"] == 0.6
    assert (run_dir / "report.stdout").read_text() == "test-bad failed\ntest-good success\n"


def test_output_all_prints_each_task_whole_and_grouped(home: Path, tasks_file: Callable[..., Path]) -> None:
    chatty = "import sys, time\nfor i in range(5):\n    print('{0}', i, flush=True); time.sleep(0.05)"
    path = tasks_file([{"id": t, "command": py(chatty.format(t))} for t in ("aa", "bb", "cc")])
    done = engine("run", "--output", "all", path)
    lines = [line for line in done.stdout.splitlines() if line[:2] in ("aa", "bb", "cc", "──")]
    blocks = [lines[i:i + 6] for i in range(0, 18, 6)]
    assert done.returncode == 0 and len(lines) >= 18
    for block in blocks:  # a header, then that task's five lines, never another's in between
        name = block[0].split()[1]
        assert block[1:] == [f"{name} {i}" for i in range(5)], lines
    quiet = engine("run", "--output", "none", path)
    assert "── " not in quiet.stdout + quiet.stderr


def test_validate_warns_about_what_would_fail_and_offers_did_you_mean(home: Path,
                                                                        tasks_file: Callable[..., Path]) -> None:
    path = tasks_file([{"id": "a", "command": ["pytets", "-q"], "type": "tset", "cwd": "not-yet"}])
    done = engine("validate", path)
    assert done.returncode == 0
    assert "program 'pytets' not found" in done.stderr and "did you mean 'test'" in done.stderr
    assert "not-yet does not exist yet" in done.stderr
    typo = engine("validate", tasks_file([{"id": "a", "command": ["true"], "blockedby": []}], "typo.json"))
    assert typo.returncode == 2 and "did you mean 'blockedBy'" in typo.stderr


def test_the_speedup_estimate_uses_each_tasks_least_contended_time(home: Path,
                                                                    tasks_file: Callable[..., Path]) -> None:
    burn = py("import time\nend = time.process_time() + 0.2\nwhile time.process_time() < end: pass")
    path = tasks_file([{"id": f"cpu{i}", "command": burn} for i in range(6)])
    first = run_json("-j", "1", path)[1]
    assert first["speedup_estimate"] is None  # no history yet
    alone = run_json("-j", "1", path)[1]
    crowded = run_json("-j", "6", path)[1]
    serial_alone = alone["speedup_estimate"] * alone["wall_time"]
    serial_crowded = crowded["speedup_estimate"] * crowded["wall_time"]
    # Crowded, every task took longer; the estimate still counts each at its time when it ran alone.
    assert abs(serial_crowded - serial_alone) < 0.25 * serial_alone
    if crowded["task_time_sum"] > 1.3 * alone["task_time_sum"]:  # the machine really was oversubscribed
        assert crowded["speedup_estimate"] < crowded["parallelism"]
