"""cron install writes a line that works: an existing script, the Claude home it was installed for."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, engine

CHECKOUT_SCRIPT = ROOT / "bin" / "temp-resource-cleanup.sh"


def ours(crontab: Path) -> list[str]:
    return [line for line in crontab.read_text().splitlines() if "temp-resource-cleanup" in line]


def test_the_line_carries_the_home_and_points_at_the_checkout_script(home: Path, tmp_path: Path) -> None:
    crontab = tmp_path / "crontab"
    env = {"PARALLEL_EXECUTOR_CRONTAB": str(crontab)}
    assert engine("cron", "install", env=env).returncode == 0
    [line] = ours(crontab)
    assert f"CLAUDE_CONFIG_DIR={home.resolve()} " in line
    assert str(CHECKOUT_SCRIPT.resolve()) in line


def test_the_line_prefers_the_installed_script_and_runs(home: Path, tmp_path: Path) -> None:
    installed = home / "memory" / "bin"
    installed.mkdir(parents=True)
    for name in ("_python.sh", "temp-resource-cleanup.sh"):
        shutil.copy2(ROOT / "bin" / name, installed / name)
    crontab = tmp_path / "crontab"
    assert engine("cron", "install", env={"PARALLEL_EXECUTOR_CRONTAB": str(crontab)}).returncode == 0
    [line] = ours(crontab)
    assert str((installed / "temp-resource-cleanup.sh").resolve()) in line
    command = line.split(None, 5)[5]  # what cron hands to sh, without the schedule; run with no home set
    env = {k: v for k, v in os.environ.items() if k != "CLAUDE_CONFIG_DIR"}
    env["PARALLEL_EXECUTOR_PYTHON"] = sys.executable  # the installed copy has no venv/ beside it here
    env["PYTHONPATH"] = str(ROOT / "scripts")
    assert subprocess.run(["sh", "-c", command], env=env, timeout=60).returncode == 0
    assert "== exit 0" in (home / "memory" / "logs" / "temp-resource-cleanup.log").read_text()


def test_each_claude_home_has_its_own_line(tmp_path: Path) -> None:
    crontab = tmp_path / "crontab"
    crontab.write_text("0 1 * * * backup.sh\n")
    homes = [tmp_path / "a", tmp_path / "b"]
    for h in homes:
        h.mkdir()
        env = {"PARALLEL_EXECUTOR_CRONTAB": str(crontab), "CLAUDE_CONFIG_DIR": str(h)}
        assert engine("cron", "install", env=env).returncode == 0
        assert engine("cron", "install", env=env).returncode == 0
    assert len(ours(crontab)) == 2
    env = {"PARALLEL_EXECUTOR_CRONTAB": str(crontab), "CLAUDE_CONFIG_DIR": str(homes[0])}
    assert engine("cron", "remove", env=env).returncode == 0
    assert crontab.read_text().splitlines()[0] == "0 1 * * * backup.sh"
    [left] = ours(crontab)
    assert f"CLAUDE_CONFIG_DIR={homes[1].resolve()} " in left
    assert engine("cron", "status", env=env).stdout.strip() == "not installed"


def test_no_script_to_schedule_is_refused(home: Path, tmp_path: Path) -> None:
    copy = tmp_path / "elsewhere" / "parallel_executor"  # the package without a checkout's bin/ around it
    shutil.copytree(ROOT / "scripts" / "parallel_executor", copy, ignore=shutil.ignore_patterns("__pycache__"))
    crontab = tmp_path / "crontab"
    crontab.write_text("0 1 * * * backup.sh\n")
    env = {"PARALLEL_EXECUTOR_CRONTAB": str(crontab), "PYTHONPATH": str(copy.parent)}
    done = engine("cron", "install", env=env)
    assert done.returncode == 2
    assert "no temp-resource-cleanup.sh to schedule" in done.stderr and "make install" in done.stderr
    assert crontab.read_text() == "0 1 * * * backup.sh\n"
