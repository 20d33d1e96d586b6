"""`make install` / `make uninstall` for real: a copy of the checkout, installed, then moved away."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

TWO_TASKS = {"tasks": [{"id": "first", "command": ["sh", "-c", "echo one"]},
                       {"id": "second", "command": ["sh", "-c", "echo two"], "blockedBy": ["first"]}]}


def checkout_copy(target: Path) -> Path:
    """The files git knows, as they are in the working tree (symbolic links kept)."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True)
    for name in filter(None, listed.stdout.split("\0")):
        source, copy = ROOT / name, target / name
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the working tree
        copy.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            copy.symlink_to(os.readlink(source))
        else:
            shutil.copy2(source, copy)
    return target


def make(target: str, checkout: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["make", "--no-print-directory", target], cwd=checkout, capture_output=True, text=True,
                          env=env, timeout=200)
    assert done.returncode == 0, f"make {target}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def installed(home: Path, *args: str, env: dict[str, str], script: str = "parallel-executor.sh",
              cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(home / "memory" / "bin" / script), *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=60)


@pytest.mark.timeout(240)
def test_install_run_without_the_checkout_reinstall_and_uninstall(tmp_path: Path) -> None:
    home, crontab = tmp_path / "claude-home", tmp_path / "crontab"
    crontab.write_text("0 1 * * * backup.sh\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(CLAUDE_CONFIG_DIR=str(home), PARALLEL_EXECUTOR_CRONTAB=str(crontab))
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if not p.startswith(str(ROOT)))
    memory = home / "memory"

    make("install", checkout_copy(tmp_path / "checkout"), env)
    (tmp_path / "checkout").rename(tmp_path / "moved-away")  # the install must not need the checkout
    for part in ("venv", "scripts/parallel_executor", "bin", "config/parallel-execution-config.json", "logs", "temp",
                 "03-execution-system/parallel-execution-policy.md"):
        assert (memory / part).exists(), part
    command = (home / "commands" / "parallel-execute.md").read_text()
    assert "{{" not in command and f"Bash({memory}/bin/parallel-executor.sh:*)" in command

    work = tmp_path / "work"
    work.mkdir()
    (work / "tasks.json").write_text(json.dumps(TWO_TASKS))
    ran = installed(home, "tasks.json", "--quiet", env=env, cwd=work)
    assert ran.returncode == 0, ran.stderr
    assert "first" in installed(home, "status", env=env).stdout
    assert "tasks.json" in installed(home, "history", env=env).stdout
    assert installed(home, "logs", "second", env=env).stdout == "two\n"
    assert installed(home, "cron", "install", env=env, script="parallel-executor").returncode == 0
    [line] = [line for line in crontab.read_text().splitlines() if "temp-resource-cleanup" in line]
    assert f"{memory.resolve()}/bin/temp-resource-cleanup.sh" in line and f"CLAUDE_CONFIG_DIR={home}" in line
    hooks = installed(home, "hooks", "--help", env=env, script="parallel-executor").returncode == 0
    if hooks:
        assert installed(home, "hooks", "install", env=env, script="parallel-executor").returncode == 0

    config = memory / "config" / "parallel-execution-config.json"
    edited = {**json.loads(config.read_text()), "max_concurrent": 3}
    config.write_text(json.dumps(edited))
    fresh = checkout_copy(tmp_path / "fresh")
    shipped = fresh / "config" / "parallel-execution-config.json"
    shipped.write_text(json.dumps({**json.loads(shipped.read_text()), "kill_grace_seconds": 9}))
    again = make("install", fresh, env)
    assert json.loads(config.read_text()) == edited
    assert "kept your edited" in again.stdout and "kill_grace_seconds" in again.stdout
    assert installed(home, "tasks.json", "--quiet", env=env, cwd=work).returncode == 0

    gone = make("uninstall", fresh, env)
    for part in ("venv", "scripts", "bin", "config/schemas", "03-execution-system"):
        assert not (memory / part).exists(), part
    assert not (home / "commands" / "parallel-execute.md").exists()
    assert json.loads(config.read_text()) == edited
    assert list((memory / "temp" / "parallel-results").iterdir())
    assert (memory / "logs" / "parallel-execution.log").exists()
    assert "kept your edited config" in gone.stdout and "kept" in gone.stdout
    assert crontab.read_text() == "0 1 * * * backup.sh\n"
    if hooks:
        assert "check-parallel" not in (home / "settings.json").read_text()


def test_checkout_bin_scripts_pass_every_subcommand_on(home: Path, tmp_path: Path) -> None:
    (tmp_path / "tasks.json").write_text(json.dumps(TWO_TASKS))

    def run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(ROOT / "bin" / script), *args], cwd=tmp_path, capture_output=True, text=True,
                              timeout=60)

    assert run("parallel-executor.sh", "validate", "tasks.json").returncode == 0
    assert run("parallel-executor.sh", "history").stdout.strip().lower() == "no runs yet"
    assert run("parallel-executor.sh", "tasks.json", "--quiet").returncode == 0  # a task file: `run`
    assert "tasks.json" in run("parallel-executor", "history").stdout
    assert "Commands:" in run("parallel-executor.sh").stdout
    assert run("parallel-executor", "registry", "list").returncode == 0
