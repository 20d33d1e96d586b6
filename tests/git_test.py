"""system.git against real repositories in temp folders (§11)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from parallel_executor.system import git
from parallel_executor.system.git import GitError

from tests.conftest import wait_for

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(autouse=True)
def no_user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's git config and identity must not matter."""
    empty = tmp_path / "gitconfig"
    empty.write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(empty))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "EMAIL",
                 "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(name, raising=False)


def run(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True, text=True).stdout


def commit(repo: Path, files: dict[str, str], message: str = "change") -> str:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    run(repo, "add", "--", *files)
    run(repo, "commit", "-q", "-m", message)
    return run(repo, "rev-parse", "HEAD").strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    run(tmp_path, "init", "-q", "-b", "main", str(path))
    run(path, "config", "user.name", "Test User")
    run(path, "config", "user.email", "test@example.com")
    commit(path, {"a.txt": "a\n", "b.txt": "b\n", "src/c.py": "c = 1\n"}, "first")
    return path


def merge_head(repo: Path) -> Path:
    return repo / run(repo, "rev-parse", "--git-path", "MERGE_HEAD").strip()


def assert_untouched(repo: Path) -> None:
    """No merge in progress, no conflict markers, no lock, nothing staged or changed."""
    assert run(repo, "status", "--porcelain", "--untracked-files=no") == ""
    assert not merge_head(repo).exists()
    assert not (repo / ".git" / "index.lock").exists()
    assert not any("<<<<<<<" in p.read_text() for p in repo.rglob("*.txt"))


def test_git_runs_in_cwd_and_errors_are_short(repo: Path) -> None:
    assert git.git(repo, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"
    with pytest.raises(GitError) as caught:
        git.git(repo, "rev-parse", "--verify", "no-such-rev")
    assert str(caught.value).startswith("git rev-parse --verify: fatal:")
    assert len(str(caught.value).splitlines()) <= 2 and caught.value.returncode == 128


def test_git_ignores_a_git_dir_set_by_a_hook(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "other"
    run(tmp_path, "init", "-q", "-b", "other", str(other))
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    assert git.head_branch(repo) == "main"


def test_git_timeout_is_a_git_error(repo: Path) -> None:
    start = time.monotonic()
    with pytest.raises(GitError, match="timed out"):
        git.git(repo, "-c", "alias.slow=!sleep 5", "slow", timeout=0.2)
    assert time.monotonic() - start < 2  # git's children were killed with it


def test_stale_index_lock_is_reported_and_kept(repo: Path) -> None:
    lock = repo / ".git" / "index.lock"
    lock.write_text("")
    (repo / "a.txt").write_text("edited\n")
    with pytest.raises(GitError, match=r"index\.lock") as caught:
        git.git(repo, "add", "a.txt")
    assert "another git process" in str(caught.value)
    assert lock.exists()


def test_toplevel(repo: Path, tmp_path: Path) -> None:
    assert git.toplevel(repo / "src") == repo
    assert git.toplevel(repo / "src" / "c.py") == repo
    outside = tmp_path / "plain"
    outside.mkdir()
    assert git.toplevel(outside) is None


def test_head_branch_and_commit_of(repo: Path) -> None:
    head = run(repo, "rev-parse", "HEAD").strip()
    assert git.head_branch(repo) == "main"
    assert git.commit_of(repo, "HEAD") == head
    assert git.commit_of(repo, "no-such-branch") is None
    assert git.commit_of(repo, "--all") is None  # a rev is data, never an option
    run(repo, "tag", "-a", "v1", "-m", "tagged")
    assert git.commit_of(repo, "v1") == head  # an annotated tag names its commit
    run(repo, "checkout", "-q", "--detach")
    assert git.head_branch(repo) is None


def test_dirty_tracked_ignores_untracked(repo: Path) -> None:
    (repo / "new.txt").write_text("untracked\n")
    assert git.dirty_tracked(repo) == []
    (repo / "a.txt").write_text("edited\n")
    (repo / "b.txt").unlink()
    (repo / "src" / "c.py").write_text("c = 2\n")
    run(repo, "add", "src/c.py")
    assert sorted(git.dirty_tracked(repo)) == ["a.txt", "b.txt", "src/c.py"]


def test_untracked_lists_files_not_ignored(repo: Path) -> None:
    commit(repo, {".gitignore": "*.log\n"})
    (repo / "deep" / "er").mkdir(parents=True)
    (repo / "deep" / "er" / "x.txt").write_text("x")
    (repo / "odd name.txt").write_text("x")
    (repo / "debug.log").write_text("x")
    (repo / "a.txt").write_text("tracked, changed\n")
    assert sorted(git.untracked(repo)) == ["deep/er/x.txt", "odd name.txt"]


def test_add_worktree_makes_the_branch_from_base(repo: Path, tmp_path: Path) -> None:
    first = run(repo, "rev-parse", "HEAD").strip()
    path = tmp_path / "trees" / "run1" / "a"
    git.add_worktree(repo, path, "parallel/run1/a", "HEAD")
    assert (path / "a.txt").read_text() == "a\n"
    assert git.commit_of(repo, "parallel/run1/a") == first
    assert git.worktree_branch(repo, path) == "parallel/run1/a"
    assert (path, "parallel/run1/a") in git.worktrees(repo)
    assert git.head_branch(repo) == "main" and git.dirty_tracked(repo) == []


def test_add_worktree_from_a_tag_or_another_branch(repo: Path, tmp_path: Path) -> None:
    first = run(repo, "rev-parse", "HEAD").strip()
    run(repo, "tag", "v1")
    run(repo, "branch", "feature")
    commit(repo, {"a.txt": "later\n"})
    git.add_worktree(repo, tmp_path / "t", "parallel/r/t", "v1")
    git.add_worktree(repo, tmp_path / "f", "parallel/r/f", "feature")
    assert git.commit_of(repo, "parallel/r/t") == first == git.commit_of(repo, "parallel/r/f")
    assert (tmp_path / "f" / "a.txt").read_text() == "a\n"
    assert git.worktree_branch(repo, tmp_path / "elsewhere") is None


def test_add_worktree_failing_after_checkout_leaves_nothing(repo: Path, tmp_path: Path) -> None:
    hook = repo / ".git" / "hooks" / "post-checkout"
    hook.write_text("#!/bin/sh\necho 'setup hook broke' >&2\nexit 1\n")
    hook.chmod(0o755)
    path = tmp_path / "trees" / "run1" / "a"
    with pytest.raises(GitError, match="git worktree add"):
        git.add_worktree(repo, path, "parallel/run1/a", "main")
    assert not (tmp_path / "trees").exists()
    assert git.branches(repo) == []
    assert [p for p, _ in git.worktrees(repo)] == [repo]


def test_add_worktree_refusals_leave_what_was_there(repo: Path, tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    with pytest.raises(GitError, match="already exists"):
        git.add_worktree(repo, taken, "parallel/r/x", "main")
    assert (taken / "keep.txt").read_text() == "mine" and git.branches(repo) == []

    run(repo, "branch", "parallel/r/y")
    with pytest.raises(GitError, match="already exists"):
        git.add_worktree(repo, tmp_path / "new", "parallel/r/y", "main")
    assert git.branches(repo) == ["parallel/r/y"] and not (tmp_path / "new").exists()

    with pytest.raises(GitError, match="not a valid object name"):
        git.add_worktree(repo, tmp_path / "new", "parallel/r/z", "no-such-base")
    assert git.branches(repo) == ["parallel/r/y"] and not (tmp_path / "new").exists()


def test_commit_all_commits_changes_but_not_the_excluded_untracked(repo: Path, tmp_path: Path) -> None:
    path = tmp_path / "wt"
    git.add_worktree(repo, path, "parallel/r/a", "main")
    (path / ".env").write_text("SECRET=1\n")
    (path / "build").mkdir()
    (path / "build" / "out.bin").write_text("generated")
    (path / "cache.pyc").write_text("generated")
    excluded = [".env", "build", "*.pyc"]
    (path / "a.txt").write_text("edited\n")
    (path / "b.txt").unlink()
    (path / "src" / "new.py").write_text("new = 1\n")
    (path / "[odd] *.txt").write_text("literal name\n")
    (path / ":!x.txt").write_text("a name, not a pathspec meaning 'all but x.txt'\n")
    sha = git.commit_all(path, "task a: done", exclude=excluded)
    assert sha is not None and sha == git.commit_of(repo, "parallel/r/a")
    files = run(path, "ls-tree", "-r", "--name-only", "HEAD").split("\n")[:-1]
    assert sorted(files) == [":!x.txt", "[odd] *.txt", "a.txt", "src/c.py", "src/new.py"]
    assert run(path, "log", "-1", "--format=%s|%P").strip() == f"task a: done|{git.commit_of(repo, 'main')}"
    assert sorted(git.untracked(path)) == [".env", "build/out.bin", "cache.pyc"]
    assert git.commit_all(path, "again", exclude=excluded) is None


def test_commit_all_runs_no_hooks_and_has_an_identity(repo: Path, tmp_path: Path) -> None:
    run(repo, "config", "--unset", "user.name")
    run(repo, "config", "--unset", "user.email")
    for name in ("pre-commit", "prepare-commit-msg", "commit-msg"):
        hook = repo / ".git" / "hooks" / name
        hook.write_text("#!/bin/sh\nexit 1\n")
        hook.chmod(0o755)
    path = tmp_path / "wt"
    git.add_worktree(repo, path, "parallel/r/a", "main")
    (path / "a.txt").write_text("edited\n")
    assert git.commit_all(path, "m") is not None
    assert run(path, "log", "-1", "--format=%an <%ae>").strip() == "parallel-executor <parallel-executor@localhost>"
    run(repo, "config", "user.name", "Someone")
    run(repo, "config", "user.email", "someone@example.com")
    (path / "b.txt").write_text("edited\n")
    assert git.commit_all(path, "m") is not None
    assert run(path, "log", "-1", "--format=%an <%ae>").strip() == "Someone <someone@example.com>"


def branch_with(repo: Path, tmp_path: Path, name: str, files: dict[str, str]) -> Path:
    path = tmp_path / name.replace("/", "-")
    git.add_worktree(repo, path, name, "main")
    for file, text in files.items():
        (path / file).write_text(text)
    if files:
        assert git.commit_all(path, f"work on {name}") is not None
    return path


def test_merge_conflicts_without_touching_the_checkout(repo: Path, tmp_path: Path) -> None:
    branch_with(repo, tmp_path, "parallel/r/clash", {"a.txt": "theirs\n", "d.txt": "theirs\n"})
    branch_with(repo, tmp_path, "parallel/r/apart", {"src/c.py": "c = 3\n"})
    commit(repo, {"a.txt": "ours\n", "b.txt": "ours\n"})
    head = run(repo, "rev-parse", "HEAD").strip()
    assert git.merge_conflicts(repo, "parallel/r/clash") == ["a.txt"]
    assert git.merge_conflicts(repo, "parallel/r/apart") == []
    assert git.merge_conflicts(repo, "parallel/r/clash", into="parallel/r/apart") == []
    assert run(repo, "rev-parse", "HEAD").strip() == head
    assert (repo / "a.txt").read_text() == "ours\n"
    assert_untouched(repo)


def test_merge_makes_a_merge_commit(repo: Path, tmp_path: Path) -> None:
    before = run(repo, "rev-parse", "HEAD").strip()
    branch_with(repo, tmp_path, "parallel/r/a", {"src/c.py": "c = 3\n"})  # could fast-forward: must not
    (repo / "untracked.txt").write_text("stays")
    head = git.merge(repo, "parallel/r/a", "merge", "merge task a")
    assert head == run(repo, "rev-parse", "HEAD").strip()
    parents = run(repo, "log", "-1", "--format=%P").split()
    assert parents == [before, git.commit_of(repo, "parallel/r/a")]
    assert run(repo, "log", "-1", "--format=%s").strip() == "merge task a"
    assert (repo / "src" / "c.py").read_text() == "c = 3\n" and (repo / "untracked.txt").exists()
    assert git.is_merged(repo, "parallel/r/a")
    assert_untouched(repo)


def test_squash_makes_exactly_one_plain_commit(repo: Path, tmp_path: Path) -> None:
    path = branch_with(repo, tmp_path, "parallel/r/a", {"src/c.py": "c = 3\n"})
    (path / "b.txt").write_text("second commit\n")
    git.commit_all(path, "more")
    before = commit(repo, {"a.txt": "ours\n"})
    head = git.merge(repo, "parallel/r/a", "squash", "squashed task a")
    assert run(repo, "rev-list", "--count", f"{before}..HEAD").strip() == "1"
    assert run(repo, "log", "-1", "--format=%P|%s").strip() == f"{before}|squashed task a"
    assert head == run(repo, "rev-parse", "HEAD").strip()
    assert (repo / "b.txt").read_text() == "second commit\n"
    assert not (repo / ".git" / "SQUASH_MSG").exists()
    assert not git.is_merged(repo, "parallel/r/a")  # a squash leaves no ancestry
    assert git.merge(repo, "main", "squash", "nothing new") == head
    assert_untouched(repo)


@pytest.mark.parametrize("mode", ["merge", "squash"])
def test_a_failed_merge_is_rolled_back(repo: Path, tmp_path: Path, mode: str) -> None:
    branch_with(repo, tmp_path, "parallel/r/clash", {"a.txt": "theirs\n"})
    head = commit(repo, {"a.txt": "ours\n"})
    with pytest.raises(GitError, match="CONFLICT") as caught:
        git.merge(repo, "parallel/r/clash", mode, "m")
    assert len(str(caught.value).splitlines()) <= 2
    assert run(repo, "rev-parse", "HEAD").strip() == head
    assert (repo / "a.txt").read_text() == "ours\n"
    assert not (repo / ".git" / "SQUASH_MSG").exists()
    assert_untouched(repo)


def test_merge_refuses_tracked_changes_and_keeps_them(repo: Path, tmp_path: Path) -> None:
    branch_with(repo, tmp_path, "parallel/r/a", {"a.txt": "theirs\n"})
    (repo / "a.txt").write_text("work in progress\n")
    run(repo, "add", "a.txt")
    with pytest.raises(GitError, match="uncommitted changes"):
        git.merge(repo, "parallel/r/a", "merge", "m")
    assert (repo / "a.txt").read_text() == "work in progress\n"
    assert git.dirty_tracked(repo) == ["a.txt"] and not merge_head(repo).exists()


def test_merge_stopped_by_an_untracked_file_changes_nothing(repo: Path, tmp_path: Path) -> None:
    path = branch_with(repo, tmp_path, "parallel/r/a", {})
    (path / "new.txt").write_text("from the task\n")
    git.commit_all(path, "adds new.txt")
    (repo / "new.txt").write_text("the user's own\n")
    with pytest.raises(GitError, match="untracked"):
        git.merge(repo, "parallel/r/a", "merge", "m")
    assert (repo / "new.txt").read_text() == "the user's own\n"
    assert_untouched(repo)


def test_is_merged(repo: Path, tmp_path: Path) -> None:
    run(repo, "branch", "parallel/r/same")
    assert git.is_merged(repo, "parallel/r/same")
    branch_with(repo, tmp_path, "parallel/r/a", {"a.txt": "x\n"})
    assert not git.is_merged(repo, "parallel/r/a")
    assert git.is_merged(repo, "main", into="parallel/r/a")
    with pytest.raises(GitError):
        git.is_merged(repo, "no-such-branch")


def test_remove_worktree_and_delete_branch_are_idempotent(repo: Path, tmp_path: Path) -> None:
    path = branch_with(repo, tmp_path, "parallel/r/a", {"a.txt": "x\n"})
    (path / "scratch.txt").write_text("uncommitted")
    git.remove_worktree(repo, path)
    assert not path.exists() and [p for p, _ in git.worktrees(repo)] == [repo]
    git.remove_worktree(repo, path)
    git.delete_branch(repo, "parallel/r/a")
    assert git.branches(repo) == []
    git.delete_branch(repo, "parallel/r/a")


def test_remove_worktree_whose_folder_vanished_or_half_gone(repo: Path, tmp_path: Path) -> None:
    half = branch_with(repo, tmp_path, "parallel/r/half", {})
    (half / ".git").unlink()  # a removal cut short by kill -9
    git.remove_worktree(repo, half)
    assert not half.exists() and [p for p, _ in git.worktrees(repo)] == [repo]
    gone = branch_with(repo, tmp_path, "parallel/r/gone", {})
    subprocess.run(["rm", "-rf", str(gone)], check=True)
    git.remove_worktree(repo, gone)
    assert [p for p, _ in git.worktrees(repo)] == [repo]


def test_remove_worktree_refuses_a_folder_that_is_not_one(repo: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "keep.txt").write_text("mine")
    with pytest.raises(GitError):
        git.remove_worktree(repo, plain)
    assert (plain / "keep.txt").exists()


def test_branches_by_prefix(repo: Path) -> None:
    for name in ("parallel/r1/a", "parallel/r1/b", "parallel/r2/a", "feature"):
        run(repo, "branch", name)
    assert git.branches(repo) == ["parallel/r1/a", "parallel/r1/b", "parallel/r2/a"]
    assert git.branches(repo, "parallel/r1/") == ["parallel/r1/a", "parallel/r1/b"]
    assert git.branches(repo, "parallel/r1/a") == ["parallel/r1/a"]
    assert git.branches(repo, "") == ["feature", "main", "parallel/r1/a", "parallel/r1/b", "parallel/r2/a"]


def test_git_missing_is_a_git_error(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", os.fspath(repo))
    with pytest.raises(GitError, match="cannot run git"):
        git.git(repo, "status")
    assert git.toplevel(repo) is None


def test_ctrl_c_lets_git_finish(repo: Path, tmp_path: Path) -> None:
    """A Ctrl-C at the terminal reaches the engine's process group, not git's: git ends what it began."""
    done = tmp_path / "done"
    code = ("import sys; from pathlib import Path; from parallel_executor.system import git; print('go', flush=True); "
            f"git.git(Path({str(repo)!r}), '-c', 'alias.slow=!sleep 0.5 && touch {done}', 'slow')")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             start_new_session=True, text=True)
    assert child.stdout is not None and child.stdout.readline() == "go\n"
    # Once git runs (its alias's sleep is there), not after a fixed time: a loaded machine may be slower.
    wait_for(lambda: any(p.name() == "sleep" for p in psutil.Process(child.pid).children(recursive=True)), 10)
    os.killpg(child.pid, signal.SIGINT)
    _, err = child.communicate(timeout=10)
    assert "KeyboardInterrupt" in err
    assert done.exists()
