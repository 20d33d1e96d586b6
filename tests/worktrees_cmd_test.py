"""`worktrees list|clean` and `cleanup` (§10, §11): the worktrees the engine left, on a real git repository.

Planted the way the engine leaves them: real `git worktree add` under the worktrees root, and each
run's status.json naming them."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import engine, run_json
from tests.retention_test import Runs, du

pytestmark = pytest.mark.timeout(60)
DONE, LIVE, CRASHED, OLD = (f"20240101-12000{n}.000-cd2{n}" for n in range(4))


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, check=True).stdout.strip()


def has_branch(repo: Path, branch: str) -> bool:
    return bool(git(repo, "branch", "--list", branch))


class Planted:
    """A repository on main, and runs whose worktrees are in every state that matters."""

    def __init__(self, tmp_path: Path, home: Path) -> None:
        self.repo = tmp_path / "repo"
        self.root = tmp_path / "state" / "parallel-executor" / "worktrees"
        self.runs = Runs(home)
        self.repo.mkdir()
        git(self.repo, "init", "-q", "-b", "main")
        (self.repo / "app.py").write_text("print('v1')\n")
        git(self.repo, "add", "app.py")
        git(self.repo, "commit", "-q", "-m", "v1")

    def path(self, run_id: str, key: str) -> Path:
        return self.root / run_id / key

    def branch(self, run_id: str, key: str) -> str:
        return f"parallel/{run_id}/{key}"

    def worktree(self, run_id: str, key: str) -> Path:
        path = self.path(run_id, key)
        git(self.repo, "worktree", "add", "-q", "-b", self.branch(run_id, key), str(path), "main")
        return path

    def commit(self, path: Path, name: str) -> None:
        (path / name).write_text(f"{name}\n")
        git(path, "add", name)
        git(path, "commit", "-q", "-m", f"add {name}")

    def run(self, run_id: str, states: dict[str, str], more: dict[str, Any] | None = None, **kwargs: Any) -> None:
        """A run's status.json (the shape retention_test writes), naming its worktrees (more: fields by key)."""
        run_dir = self.runs.add(run_id, **kwargs)
        status_path = run_dir / "status.json"
        status = json.loads(status_path.read_text())
        status["worktrees"] = [{"key": key, "repo": str(self.repo), "path": str(self.path(run_id, key)),
                                "branch": self.branch(run_id, key), "base": git(self.repo, "rev-parse", "main"),
                                "target": "main", "merge": "merge", "state": state, "error": None,
                                **(more or {}).get(key, {})}
                               for key, state in states.items()]
        mtime = status_path.stat().st_mtime
        status_path.write_text(json.dumps(status))
        os.utime(status_path, (mtime, mtime))


@pytest.fixture
def planted(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Planted:
    (tmp_path / "gitconfig").write_text("[user]\n\tname = Test\n\temail = test@example.com\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    config = home / "memory" / "config" / "parallel-execution-config.json"  # the installed config
    config.parent.mkdir(parents=True)
    config.write_text(json.dumps({"worktrees": {"copy": [".env", "fixtures/"]}}))
    p = Planted(tmp_path, home)
    # merged: its commit was merged into main by hand (merge "none", then a pull request)
    p.commit(p.worktree(DONE, "merged"), "merged.txt")
    git(p.repo, "merge", "-q", "--no-edit", p.branch(DONE, "merged"))
    p.commit(p.worktree(DONE, "ahead"), "ahead.txt")  # a commit main lacks (a merge conflict left it)
    dirty = p.worktree(DONE, "dirty")
    (dirty / "app.py").write_text("print('half done')\n")  # a failed task's edit, and a new file
    (dirty / "notes.txt").write_text("todo\n")
    p.commit(p.worktree(DONE, "pr"), "pr.txt")  # merge "none": a branch for a pull request
    p.run(DONE, {"merged": "kept", "ahead": "conflict", "dirty": "failed", "pr": "kept"}, ended_days=40,
          more={"pr": {"merge": "none", "target": None}})
    p.worktree(LIVE, "live")  # nothing unmerged, but its engine (this test) is alive
    me = (os.getpid(), psutil.Process().create_time())
    p.run(LIVE, {"live": "ready"}, ended_days=None, state="running", engine=me)
    p.worktree(CRASHED, "lost")  # no status names it: an engine that died before writing one
    only = p.worktree(OLD, "only")  # an old run whose only worktree holds nothing unmerged:
    (only / ".env").write_text("KEY=1\n")  # what the engine copied in is not work
    (only / "fixtures" / "big").mkdir(parents=True)
    (only / "fixtures" / "big" / "data.bin").write_bytes(b"0" * 5000)
    (only / "setup.log").write_text("made by setup\n")  # found untracked once set up: the status says so
    p.run(OLD, {"only": "failed"}, ended_days=40, more={"only": {"copied": [".env", "setup.log"]}})
    return p


def command(*args: str) -> Any:
    done = engine(*args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def by_key(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["key"]: e for e in entries}


REMOVABLE = {"merged", "lost", "only"}
KEPT = {"ahead", "dirty", "pr", "live"}


def test_list_json_names_every_worktree_and_what_is_unmerged(planted: Planted) -> None:
    found = by_key(command("worktrees", "list"))
    assert set(found) == REMOVABLE | KEPT
    assert {k for k, w in found.items() if w["unmerged"]} == {"ahead", "dirty", "pr"}
    assert found["pr"]["why"] == "commits not in main" and found["pr"]["target"] is None
    assert found["ahead"]["why"] == "commits not in main" and found["ahead"]["ahead"] and not found["ahead"]["changes"]
    assert found["dirty"]["why"] == "2 uncommitted changes (app.py, notes.txt)"
    assert found["dirty"]["changes"] == ["app.py", "notes.txt"]
    assert found["live"]["run_state"] == "running" and not found["live"]["finished"]
    assert found["merged"] | {"why": ""} == {
        "run_id": DONE, "key": "merged", "repo": str(planted.repo), "path": str(planted.path(DONE, "merged")),
        "exists": True, "branch": planted.branch(DONE, "merged"), "branch_exists": True, "target": "main",
        "state": "kept", "run_state": "success", "finished": True, "unmerged": False, "why": "", "changes": [],
        "ahead": False}
    lost = found["lost"]  # found as a folder: git names its repository and branch
    assert (lost["run_id"], lost["state"], lost["run_state"]) == (CRASHED, "unknown", "no status") and lost["finished"]
    assert os.path.samefile(lost["repo"], planted.repo) and lost["branch"] == planted.branch(CRASHED, "lost")


def test_a_branch_left_without_its_worktree_is_listed(planted: Planted) -> None:
    git(planted.repo, "worktree", "remove", str(planted.path(DONE, "ahead")))
    ahead = by_key(command("worktrees", "list"))["ahead"]
    assert not ahead["exists"] and ahead["branch_exists"] and ahead["unmerged"]
    git(planted.repo, "branch", "-D", planted.branch(DONE, "ahead"))
    assert "ahead" not in by_key(command("worktrees", "list"))
    git(planted.repo, "worktree", "remove", str(planted.path(CRASHED, "lost")))  # no status, no folder: a branch
    lost = by_key(command("worktrees", "list"))["lost"]
    assert lost["branch"] == planted.branch(CRASHED, "lost") and lost["run_id"] == CRASHED
    assert lost["path"] == "" and not lost["exists"] and not lost["unmerged"]
    assert by_key(command("worktrees", "clean")["worktrees"])["lost"]["removed"]
    assert not has_branch(planted.repo, planted.branch(CRASHED, "lost"))


def test_clean_removes_only_what_holds_nothing_unmerged_of_finished_runs(planted: Planted) -> None:
    run_of = {"merged": DONE, "ahead": DONE, "dirty": DONE, "pr": DONE, "live": LIVE, "lost": CRASHED, "only": OLD}
    every = {k: planted.path(r, k) for k, r in run_of.items()}
    freed = du(*(every[k] for k in REMOVABLE))
    dry = command("worktrees", "clean", "--dry-run")
    assert dry["dry_run"] is True and {k for k, v in by_key(dry["worktrees"]).items() if v["removed"]} == REMOVABLE
    assert all(p.is_dir() for p in every.values()) and dry["freed_bytes"] == freed  # a dry run removes nothing
    assert has_branch(planted.repo, planted.branch(DONE, "merged"))

    done = command("worktrees", "clean")
    verdicts = by_key(done["worktrees"])
    assert {k for k, v in verdicts.items() if v["removed"]} == REMOVABLE and done["freed_bytes"] == freed
    assert {k for k, p in every.items() if p.exists()} == KEPT
    assert {k for k in run_of if has_branch(planted.repo, planted.branch(run_of[k], k))} == KEPT
    assert not (planted.root / CRASHED).exists() and not (planted.root / OLD).exists()  # emptied run folders go
    assert (planted.path(DONE, "dirty") / "app.py").read_text() == "print('half done')\n"
    assert verdicts["live"]["reason"] == "its run is running" and not verdicts["live"]["unmerged"]
    dirty, ahead = verdicts["dirty"], verdicts["ahead"]
    assert dirty["unmerged"] and dirty["reason"] == "holds unmerged work: 2 uncommitted changes (app.py, notes.txt)"
    look = f"cd {planted.path(DONE, 'dirty')} && git status"
    assert dirty["finish"] == [f"{look}   (commit the changes, or discard them)"]
    branch = planted.branch(DONE, "ahead")
    assert ahead["finish"] == [f"cd {planted.repo} && git switch main && git merge {branch}   "
                               f"(or drop it: git branch -D {branch})"]
    pr = planted.branch(DONE, "pr")  # merge "none": merged into what is checked out
    assert verdicts["pr"]["finish"] == [f"cd {planted.repo} && git merge {pr}   (or drop it: git branch -D {pr})"]
    assert git(planted.repo, "worktree", "list", "--porcelain").count("worktree ") == 5  # main and the kept four
    assert set(by_key(command("worktrees", "list"))) == KEPT


def test_a_run_being_resumed_and_folders_git_does_not_know(planted: Planted) -> None:
    planted.runs.marker(OLD, (os.getpid(), psutil.Process().create_time()))  # `run --resume OLD` has just begun
    git(planted.root.parent.parent, "init", "-q")  # the state dir in a repository of its own (dotfiles)
    stray = planted.root / CRASHED / "stray"  # not a worktree: what is in it cannot be told
    stray.mkdir()
    (stray / "notes.txt").write_text("mine\n")
    (planted.root / CRASHED / "empty").mkdir()  # an engine died before git filled it
    verdicts = by_key(command("worktrees", "clean")["worktrees"])
    assert verdicts["only"]["reason"] == "its run is resuming" and planted.path(OLD, "only").is_dir()
    assert verdicts["stray"]["reason"] == "holds unmerged work: cannot tell: not a git worktree"
    assert verdicts["stray"]["finish"][0].startswith(f"ls -la {stray}   (not a git worktree: remove it by hand")
    assert (stray / "notes.txt").is_file()
    assert verdicts["empty"]["removed"] and not (planted.root / CRASHED / "empty").exists()


def test_text_output(planted: Planted) -> None:
    listed = engine("worktrees", "list", env={"COLUMNS": ""}).stdout  # off a terminal: whole rows
    assert "commits not in main" in listed and str(planted.path(DONE, "dirty")) in listed
    narrow = engine("worktrees", "list", env={"COLUMNS": "100"}).stdout
    assert max(map(len, narrow.splitlines())) <= 100 and DONE in narrow
    dry = engine("worktrees", "clean", "--dry-run").stdout
    assert "would remove 3 worktrees: " in dry and "would be freed; 4 kept" in dry
    look = f"cd {planted.path(DONE, 'dirty')} && git status"
    assert f"to finish dirty of run {DONE} by hand, then clean again:\n  {look}" in dry
    assert engine("worktrees", "clean").stdout.splitlines()[-1].startswith("removed 3 worktrees: ")


def test_nothing_to_list(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert engine("worktrees", "list").stdout == "no worktrees\n"
    assert command("worktrees", "list") == []
    assert command("worktrees", "clean") == {"worktrees": [], "freed_bytes": 0, "dry_run": False}


def test_cleanup_cleans_worktrees_and_keeps_the_state_of_a_run_holding_unmerged_work(planted: Planted) -> None:
    report = command("cleanup")
    assert {w["key"] for w in report["worktrees"] if w["removed"]} == REMOVABLE
    runs = {r["run_id"]: r for r in report["runs"]}
    assert runs[OLD]["removed"] and not (planted.runs.runs / OLD).exists()  # its worktree went first
    assert not runs[DONE]["removed"] and runs[DONE]["due"]
    assert runs[DONE]["reason"].endswith(f"holds unmerged work in worktree {planted.path(DONE, 'ahead')}")
    assert (planted.runs.runs / DONE / "status.json").is_file()
    assert report["freed_bytes"] == sum(x["bytes"] for x in report["worktrees"] + report["runs"] if x["removed"])
    assert {w["key"] for w in command("worktrees", "list")} == KEPT  # still explained by its status
    text = engine("cleanup", "--dry-run").stdout
    assert "would remove 0 worktrees: 0 B would be freed; 4 kept" in text


def test_what_a_real_run_leaves_is_listed_and_cleaned_once_finished_by_hand(planted: Planted, tmp_path: Path) -> None:
    """The engine's own status.json: a failed task's edit and a merge-none branch are kept until the user
    has dealt with them; then `worktrees clean` removes them."""
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps({"tasks": [
        {"id": "broken", "command": "echo wip > app.py; exit 3", "isolation": "worktree", "cwd": str(planted.repo)},
        {"id": "for-review", "command": "echo new > review.txt", "isolation": "worktree", "merge": "none",
         "cwd": str(planted.repo)},
        {"id": "fine", "command": "echo ok > fine.txt", "isolation": "worktree", "cwd": str(planted.repo)}]}))
    code, summary = run_json(path)
    assert code == 1
    run_id = summary["run_id"]
    mine = {w["key"]: w for w in command("worktrees", "list") if w["run_id"] == run_id}
    assert set(mine) == {"broken", "for-review"}  # "fine" was merged and removed by the engine
    assert mine["broken"]["state"] == "failed" and mine["broken"]["changes"] == ["app.py"]
    assert mine["for-review"]["state"] == "kept" and mine["for-review"]["ahead"]
    command("worktrees", "clean")
    assert {w["key"] for w in command("worktrees", "list") if w["run_id"] == run_id} == {"broken", "for-review"}
    git(Path(mine["broken"]["path"]), "checkout", "--", "app.py")  # the user discards the failed edit
    git(planted.repo, "merge", "-q", "--no-edit", mine["for-review"]["branch"])  # and merges the branch
    cleaned = by_key(command("worktrees", "clean")["worktrees"])
    assert cleaned["broken"]["removed"] and cleaned["for-review"]["removed"]
    assert not Path(mine["broken"]["path"]).exists() and not (planted.root / run_id).exists()
    assert not has_branch(planted.repo, mine["for-review"]["branch"])
