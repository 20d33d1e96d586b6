"""Git worktree isolation end to end (§11): real repositories in temp dirs, the real engine, tasks that
edit the repository in parallel; their work comes back merged, conflicts are left resolvable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import engine, running_status, start_engine, wait_for

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def repo(tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository on `main` with two files, and a git of no global config."""
    empty = tmp_path / "gitconfig"
    empty.write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(empty))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", "Test")
    git(path, "config", "user.email", "test@example.com")
    (path / "a.txt").write_text("a\n")
    (path / "b.txt").write_text("b\n")
    (path / ".gitignore").write_text("node_modules/\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "first")
    return path


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def tasks(repo: Path, items: list[dict[str, Any]], **defaults: Any) -> Path:
    path = repo.parent / "tasks.json"
    for item in items:
        item.setdefault("isolation", "worktree")
        item.setdefault("cwd", str(repo))
    path.write_text(json.dumps({"tasks": items, **({"defaults": defaults} if defaults else {})}))
    return path


def run(path: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    done = engine("run", "--json", str(path), *args, timeout=60)
    try:
        return done.returncode, json.loads(done.stdout), done.stderr
    except ValueError:
        raise AssertionError(f"exit {done.returncode}\n{done.stdout}\n{done.stderr}") from None


def consistent(repo: Path) -> None:
    """The user's checkout as a person would want it after anything: clean, no merge half done."""
    assert git(repo, "status", "--porcelain", "--untracked-files=no") == ""
    assert not (repo / ".git" / "MERGE_HEAD").exists() and not (repo / ".git" / "index.lock").exists()
    subprocess.run(["git", "-C", str(repo), "fsck", "--no-progress"], check=True, capture_output=True)


def test_parallel_edits_of_different_files_are_both_merged(repo: Path, tmp_path: Path) -> None:
    code, summary, err = run(tasks(repo, [{"id": "edit-a", "command": "sleep 0.3; echo A >> a.txt"},
                                          {"id": "edit-b", "command": "sleep 0.3; echo B >> b.txt; echo new > c.txt"}]))
    assert code == 0, err
    assert (repo / "a.txt").read_text() == "a\nA\n" and (repo / "b.txt").read_text() == "b\nB\n"
    assert (repo / "c.txt").read_text() == "new\n"
    consistent(repo)
    assert git(repo, "branch", "--list", "parallel/*") == ""
    assert len(git(repo, "worktree", "list").splitlines()) == 1  # the checkout alone
    assert {w["state"] for w in summary["worktrees"]} == {"merged"}
    starts = sorted(summary["tasks"][t]["start_time"] for t in ("edit-a", "edit-b"))
    ends = sorted(summary["tasks"][t]["end_time"] for t in ("edit-a", "edit-b"))
    assert starts[1] < ends[0]  # they ran at the same time, each in its own checkout
    assert not list((tmp_path / "state" / "parallel-executor" / "worktrees").rglob("*.txt"))


def test_a_conflict_fails_one_task_and_keeps_its_worktree(repo: Path) -> None:
    code, summary, _err = run(tasks(repo, [{"id": "first", "command": "echo one > a.txt"},
                                          {"id": "second", "command": "sleep 0.5; echo two > a.txt"}]))
    assert code == 1
    assert summary["tasks"]["first"]["status"] == "success"
    second = summary["tasks"]["second"]
    assert second["status"] == "failed" and "merge conflict in a.txt" in second["error"]
    assert (repo / "a.txt").read_text() == "one\n" and "<<<<<<<" not in (repo / "a.txt").read_text()
    consistent(repo)
    kept = next(w for w in summary["worktrees"] if w["key"] == "second")
    assert kept["state"] == "conflict" and Path(kept["path"]).is_dir()
    assert kept["branch"] in git(repo, "branch", "--list", "parallel/*")
    assert "git merge " + kept["branch"] in second["error"]  # how to finish by hand
    cleaned = engine("worktrees", "clean")
    assert cleaned.returncode == 0 and Path(kept["path"]).is_dir()  # it holds unmerged work: kept


def test_a_dirty_checkout_is_refused_before_anything_runs(repo: Path) -> None:
    (repo / "a.txt").write_text("changed by hand\n")
    (repo / "untracked.txt").write_text("does not count\n")
    marker = repo.parent / "ran"
    done = engine("run", str(tasks(repo, [{"id": "t", "command": f"touch {marker}"}])))
    assert done.returncode == 2 and "uncommitted changes to tracked files (a.txt)" in done.stderr
    assert not marker.exists() and (repo / "a.txt").read_text() == "changed by hand\n"


def test_not_a_repository_and_a_missing_base_are_refused(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "plain"
    outside.mkdir()
    done = engine("run", str(tasks(repo, [{"id": "t", "command": "true", "cwd": str(outside)}])))
    assert done.returncode == 2 and "is not in one" in done.stderr
    done = engine("run", str(tasks(repo, [{"id": "t", "command": "true", "base": "no-such-branch"}])))
    assert done.returncode == 2 and "base 'no-such-branch' does not exist" in done.stderr


def test_copy_and_setup_are_seen_by_the_task_and_never_committed(repo: Path) -> None:
    (repo / ".env").write_text("SECRET=1\n")  # untracked, as such files are
    path = tasks(repo, [{"id": "t", "command": "cat .env > seen.txt; cat setup.txt >> seen.txt"}],
                 worktree={"copy": [".env"], "setup": ["echo from-setup > setup.txt", ["mkdir", "node_modules"]]})
    code, _summary, err = run(path)
    assert code == 0, err
    assert (repo / "seen.txt").read_text() == "SECRET=1\nfrom-setup\n"
    files = git(repo, "ls-files").split()
    assert "seen.txt" in files and ".env" not in files and "setup.txt" not in files


def test_a_failing_setup_fails_the_tasks_and_keeps_the_worktree(repo: Path) -> None:
    path = tasks(repo, [{"id": "t", "command": "true"}], worktree={"setup": ["echo npm says no; exit 7"]})
    code, summary, _err = run(path)
    assert code == 1
    error = summary["tasks"]["t"]["error"]
    assert "exit code 7" in error and "npm says no" in error
    tree = summary["worktrees"][0]
    assert tree["state"] == "failed" and Path(tree["path"]).is_dir()
    consistent(repo)


def test_an_epic_shares_one_worktree_and_outside_dependents_see_the_merge(repo: Path) -> None:
    path = tasks(repo, [
        {"id": "write", "command": "echo draft > notes.txt", "epic": "docs"},
        {"id": "extend", "command": "cat notes.txt > copy.txt; echo more >> notes.txt", "epic": "docs",
         "blockedBy": ["write"]},
        {"id": "after", "command": f"cat {repo}/notes.txt > {repo.parent}/after.txt", "isolation": "none",
         "blockedBy": ["extend"]},
    ])
    code, summary, err = run(path)
    assert code == 0, err
    assert [w["key"] for w in summary["worktrees"]] == ["docs"]
    assert (repo / "copy.txt").read_text() == "draft\n"  # extend saw write's work in the same worktree
    assert (repo.parent / "after.txt").read_text() == "draft\nmore\n"  # after ran once the epic was merged
    log = git(repo, "log", "--format=%s", "main").splitlines()
    assert log[0].startswith("Merge parallel/") and {"extend", "write"} <= set(log)  # a commit per task


def test_merge_none_keeps_the_branch_squash_makes_one_commit_and_base_is_honoured(repo: Path) -> None:
    git(repo, "branch", "old")
    (repo / "a.txt").write_text("a2\n")
    git(repo, "commit", "-q", "-am", "second")
    code, summary, err = run(tasks(repo, [{"id": "kept", "command": "echo k > k.txt", "merge": "none"},
                                          {"id": "squashed", "command": "echo s > s.txt; echo s2 > s2.txt",
                                           "merge": "squash"},
                                          {"id": "from-old", "command": "cat a.txt > seen-base.txt", "base": "old",
                                           "merge": "none"}]))
    assert code == 0, err
    states = {w["key"]: w["state"] for w in summary["worktrees"]}
    assert states == {"kept": "kept", "squashed": "merged", "from-old": "kept"}
    branch = next(w["branch"] for w in summary["worktrees"] if w["key"] == "kept")
    assert not (repo / "k.txt").exists() and git(repo, "show", f"{branch}:k.txt") == "k\n"
    old = next(w["branch"] for w in summary["worktrees"] if w["key"] == "from-old")
    assert git(repo, "show", f"{old}:seen-base.txt") == "a\n"  # made from `old`, not HEAD
    assert (repo / "s.txt").exists()
    subjects = git(repo, "log", "--format=%s %p", "-1")
    assert len(subjects.split()[-1:]) == 1 and len(git(repo, "log", "-1", "--format=%p").split()) == 1
    consistent(repo)


@pytest.mark.parametrize("when", ["setup", "merge"])
def test_ctrl_c_during_setup_or_merge_leaves_the_repository_consistent(repo: Path, home: Path, when: str) -> None:
    if when == "setup":
        path = tasks(repo, [{"id": "t", "command": "true"}], worktree={"setup": ["sleep 20"]})
    else:  # a big merge: many files, so that the signal lands while it runs
        path = tasks(repo, [{"id": "t", "command": "for i in $(seq 3000); do echo $i > f$i.txt; done"}])
    proc = start_engine(path)
    if when == "setup":
        wait_for(lambda: bool((doc := running_status(home)) and doc.get("worktrees")
                              and doc["worktrees"][0]["state"] == "preparing"))  # type: ignore[index]
        time.sleep(0.3)
    else:
        wait_for(lambda: bool((doc := running_status(home)) and doc.get("worktrees")
                              and doc["worktrees"][0]["state"] == "merging"), timeout=30)  # type: ignore[index]
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    consistent(repo)
    if when == "setup":
        assert git(repo, "branch", "--list", "parallel/*") == ""
        assert len(git(repo, "worktree", "list").splitlines()) == 1
    else:  # the merge in flight was let finish: the work is in
        assert proc.returncode in (0, 130) and (repo / "f3000.txt").exists()


def test_path_locks_are_per_checkout(repo: Path) -> None:
    _code, summary, _err = run(tasks(repo, [{"id": "x", "command": "sleep 0.5; echo x > x.txt", "paths": ["x.txt"]},
                                          {"id": "y", "command": "sleep 0.5; echo y > y.txt", "paths": ["x.txt"]}]))
    starts = sorted(summary["tasks"][t]["start_time"] for t in ("x", "y"))
    ends = sorted(summary["tasks"][t]["end_time"] for t in ("x", "y"))
    assert starts[1] < ends[0], "the same relative path in two worktrees must not serialize the tasks"


def test_after_a_kill_9_during_setup_the_next_run_removes_the_half_made_worktree(repo: Path, home: Path) -> None:
    proc = start_engine(tasks(repo, [{"id": "t", "command": "true"}], worktree={"setup": ["sleep 30"]}))
    wait_for(lambda: bool((doc := running_status(home)) and doc.get("worktrees")
                          and doc["worktrees"][0]["state"] == "preparing"))  # type: ignore[index]
    time.sleep(0.3)
    proc.kill()
    proc.communicate(timeout=10)
    assert git(repo, "branch", "--list", "parallel/*") != ""  # left behind by the dead engine
    done = engine("run", str(tasks(repo, [{"id": "other", "command": "true", "isolation": "none"}])))
    assert done.returncode == 0, done.stderr
    assert git(repo, "branch", "--list", "parallel/*") == ""
    assert len(git(repo, "worktree", "list").splitlines()) == 1
    consistent(repo)


def test_the_worked_example_merges_five_worktrees_and_keeps_the_conflict(tmp_path: Path, home: Path) -> None:
    script = Path(__file__).resolve().parent.parent / "examples" / "worktrees" / "run.sh"
    command = str(Path(sys.executable).parent / "parallel-executor")
    done = subprocess.run([str(script), str(tmp_path / "example")], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PARALLEL_EXECUTOR": command, "GIT_CONFIG_GLOBAL": os.devnull})
    assert done.returncode == 0, done.stderr
    shop = tmp_path / "example" / "shop"
    consistent(shop)
    assert "def with_tax" in (shop / "src" / "prices.py").read_text()
    assert "def discounted" in (shop / "src" / "cart.py").read_text()
    assert (shop / "README.md").read_text() == "# Shop\n"  # title-short merged; title-long kept apart
    assert "title-long  conflict" in done.stdout and "merge conflict in README.md" in done.stdout
    assert ".env" not in git(shop, "ls-files")


def test_resume_carries_on_in_the_kept_worktree(repo: Path, home: Path) -> None:
    counter = repo.parent / "setups"
    items = [{"id": "one", "command": "echo 1 > one.txt", "epic": "e"},
             {"id": "two", "command": "sleep 30", "epic": "e", "blockedBy": ["one"]}]
    proc = start_engine(tasks(repo, items, worktree={"setup": [f"echo x >> {counter}"]}))
    wait_for(lambda: bool((doc := running_status(home)) and doc["tasks"][1]["status"] == "running"))  # type: ignore
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    tree = running_status(home)["worktrees"][0]  # type: ignore[index]
    assert tree["state"] == "kept" and Path(tree["path"]).is_dir()
    items[1]["command"] = "cat one.txt > two.txt"  # changed: it reruns, in the same worktree
    code, summary, err = run(tasks(repo, items), "--resume")
    assert code == 0, err
    assert (repo / "one.txt").read_text() == "1\n" and (repo / "two.txt").read_text() == "1\n"
    assert counter.read_text() == "x\n"  # made once: the resumed run reused it
    assert summary["worktrees"][0]["state"] == "merged" and not Path(tree["path"]).exists()
    consistent(repo)


def test_validate_and_dry_run_warn_of_what_run_refuses(repo: Path) -> None:
    (repo / "a.txt").write_text("changed by hand\n")
    path = tasks(repo, [{"id": "t", "command": "true"}])
    for args in (["validate", str(path)], ["run", "--dry-run", str(path)]):
        done = engine(*args)
        assert done.returncode == 0 and "uncommitted changes to tracked files (a.txt)" in done.stderr, args


def test_a_file_a_failed_task_left_is_committed_when_it_reruns(repo: Path) -> None:
    flag = repo.parent / "flag"
    items = [{"id": "a", "command": "echo a > first.txt", "epic": "e"},
             {"id": "b", "command": f"echo work > new.txt; test -e {flag}", "epic": "e", "blockedBy": ["a"]}]
    assert run(tasks(repo, items))[0] == 1
    flag.touch()
    code, summary, err = run(tasks(repo, items), "--resume")
    assert code == 0 and summary["worktrees"][0]["state"] == "merged", err
    assert (repo / "new.txt").read_text() == "work\n"  # it was left untracked, then excluded and lost


def test_a_worktree_that_cannot_be_made_fails_its_tasks_and_never_hangs(repo: Path) -> None:
    code, summary, _ = run(tasks(repo, [{"id": "t", "command": "true"}], worktree={"copy": ["a**"]}))
    assert code == 1 and summary["tasks"]["t"]["status"] != "success"  # Path.glob raised ValueError: it hung


def test_a_git_error_while_planning_is_one_line(repo: Path) -> None:
    (repo / ".git" / "index").write_bytes(b"DIRC")  # a corrupt index: git status fails
    done = engine("run", str(tasks(repo, [{"id": "t", "command": "true"}])), timeout=60)
    assert done.returncode == 2 and "index" in done.stderr and "Traceback" not in done.stderr, done.stderr
