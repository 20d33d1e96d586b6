"""The git operations of worktree isolation (§11): worktrees, the engine's commits, conflict checks, merges.

Every call is `git -C <dir> ...` with an argv (paths are data, never shell words). The user's checkout is
only ever changed by a merge that git does cleanly; a merge that fails is rolled back before the error."""

from __future__ import annotations

import contextlib
import fnmatch
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

from parallel_executor.system.gitrun import GitError as GitError
from parallel_executor.system.gitrun import git as git
from parallel_executor.system.gitrun import run as _run_git

# The engine's own commits run no hooks: --no-verify alone still runs prepare-commit-msg, post-commit and
# post-merge, and a hook that waits for a terminal would hang a headless run.
_NO_HOOKS = ("-c", "core.hooksPath=/dev/null")
_FALLBACK_IDENTITY = {"name": "parallel-executor", "email": "parallel-executor@localhost"}


def toplevel(path: Path) -> Path | None:
    """The root of the work tree holding path; None outside a repository (or without git)."""
    where = path if path.is_dir() else path.parent
    try:
        return Path(git(where, "rev-parse", "--show-toplevel").rstrip("\n"))
    except GitError:
        return None


def head_branch(repo: Path) -> str | None:
    """The checked-out branch (e.g. "main"); None when HEAD is detached."""
    code, out = _run_git(repo, ("symbolic-ref", "--quiet", "HEAD"), ok=(0, 1))
    return out.strip().removeprefix("refs/heads/") if code == 0 else None


def commit_of(repo: Path, rev: str) -> str | None:
    """The full sha of the commit rev names; None when there is none. (The suffix keeps a rev such as
    "--all" from being read as an option.)"""
    code, out = _run_git(repo, ("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"), ok=(0, 1))
    return out.strip() if code == 0 else None


def _status(worktree: Path, untracked: str = "all") -> Iterator[tuple[str, str]]:
    """(XY, path) of each entry of `git status --porcelain -u<untracked>`; a rename gives both its paths."""
    fields = iter(git(worktree, "status", "--porcelain=v1", "-z", f"--untracked-files={untracked}").split("\0"))
    for field in fields:
        if field:
            code, path = field[:2], field[3:]
            yield code, path
            if code[0] in "RC":
                yield code, next(fields, "")


def dirty_tracked(repo: Path) -> list[str]:
    """Paths of tracked files with uncommitted changes, staged or not; untracked files do not count."""
    return [path for code, path in _status(repo, untracked="no")]  # not listing them is faster


def untracked(worktree: Path) -> list[str]:
    """Untracked, not ignored files, relative to the root of the work tree."""
    return [path for code, path in _status(worktree) if code == "??"]


def add_worktree(repo: Path, path: Path, branch: str, base: str) -> None:
    """A new worktree at path on a new branch made from base. On failure, nothing it made is left."""
    if os.path.lexists(path) and not (path.is_dir() and not any(path.iterdir())):
        raise GitError("git worktree add", f"fatal: '{path}' already exists")
    made = [parent for parent in (path, *path.parents) if not os.path.lexists(parent)]
    git(repo, "branch", "--no-track", "--", branch, base)  # refuses an existing branch before anything is made
    try:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise GitError("git worktree add", f"cannot create {path.parent}: {e.strerror}") from None
        git(repo, "worktree", "add", "--", str(path), branch)
    except BaseException:
        _undo_add(repo, path, branch, made)
        raise


def _undo_add(repo: Path, path: Path, branch: str, made: list[Path]) -> None:
    with contextlib.suppress(OSError):
        if path in made:
            shutil.rmtree(path)
        else:  # an empty folder was there before: empty it again
            for entry in path.iterdir():
                _remove(entry)
    for parent in made[1:]:
        with contextlib.suppress(OSError):
            parent.rmdir()  # only the empty folders made for it; the first one in use stops here
    with contextlib.suppress(GitError):
        git(repo, "worktree", "prune")  # its registration points at a folder that is gone now
    with contextlib.suppress(GitError):
        git(repo, "branch", "-D", "--", branch)


def _remove(entry: Path) -> None:
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry)
    else:
        entry.unlink()


def worktrees(repo: Path) -> list[tuple[Path, str | None]]:
    """The registered worktrees, the main one first: path and checked-out branch (None when detached)."""
    found: list[tuple[Path, str | None]] = []
    for line in git(repo, "worktree", "list", "--porcelain", "-z").split("\0"):
        if line.startswith("worktree "):
            found.append((Path(line[len("worktree "):]), None))
        elif line.startswith("branch refs/heads/") and found:
            found[-1] = (found[-1][0], line[len("branch refs/heads/"):])
    return found


def worktree_branch(repo: Path, path: Path) -> str | None:
    """The branch checked out at path when path is a registered worktree of repo, else None."""
    target = os.path.realpath(path)
    return next((branch for where, branch in worktrees(repo) if os.path.realpath(where) == target), None)


def commit_all(worktree: Path, message: str, exclude: Sequence[str] = ()) -> str | None:
    """Commit every change in worktree, except untracked files that `exclude` names (a path, a folder or
    an fnmatch glob; a glob without "/" also matches a file name at any depth). Returns the new commit's
    sha, None when there was nothing to commit."""
    changed, new = False, []
    excluded = _Matcher(exclude)
    for code, path in _status(worktree):
        if code != "??":
            changed = True
        elif not excluded(path):
            new.append(path)
    if not changed and not new:
        return None
    if changed:
        git(worktree, "add", "--update")  # modified and deleted tracked files
    if new:
        git(worktree, "--literal-pathspecs", "add", "--pathspec-from-file=-", "--pathspec-file-nul",
            input="\0".join(new))
    git(worktree, *_NO_HOOKS, *_identity(worktree), "commit", "--quiet", "--no-verify", "-m", message)
    return git(worktree, "rev-parse", "HEAD").strip()


class _Matcher:
    """Does a path match one of the patterns? Exact paths and folders are looked up, not scanned, as
    the caller may pass every untracked file that setup made."""

    def __init__(self, patterns: Sequence[str]) -> None:
        self.exact = {p.rstrip("/") for p in patterns if not any(c in p for c in "*?[")}
        self.globs = [p for p in patterns if any(c in p for c in "*?[")]

    def __call__(self, path: str) -> bool:
        path = path.rstrip("/")
        parts = path.split("/")
        if any("/".join(parts[:i]) in self.exact for i in range(1, len(parts) + 1)):
            return True
        return any(fnmatch.fnmatchcase(path, glob) or ("/" not in glob and fnmatch.fnmatchcase(parts[-1], glob))
                   for glob in self.globs)


def _identity(repo: Path) -> list[str]:
    """`-c user.name=... -c user.email=...` for what neither the config nor the environment sets."""
    _, out = _run_git(repo, ("config", "--get-regexp", r"^(user|author|committer)\.(name|email)$"), ok=(0, 1))
    known = {line.split(" ", 1)[0].rsplit(".", 1)[-1] for line in out.splitlines()}
    if {"GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"} & os.environ.keys():
        known.add("name")
    if {"GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL", "EMAIL"} & os.environ.keys():
        known.add("email")
    return [arg for key, value in _FALLBACK_IDENTITY.items() if key not in known
            for arg in ("-c", f"user.{key}={value}")]


def merge_conflicts(repo: Path, branch: str, into: str = "HEAD") -> list[str]:
    """The files that merging branch into `into` would leave in conflict; [] when it merges cleanly.
    Worked out in the object store alone: the checkout, index and refs are not touched."""
    code, out = _run_git(repo, ("merge-tree", "--write-tree", "--name-only", "--no-messages", "-z", into, branch),
                     ok=(0, 1))
    if code == 0:
        return []
    names = out.split("\0")[1:]  # the tree's id first, then each conflicted file
    return list(dict.fromkeys(names[:names.index("")] if "" in names else names))


def merge(repo: Path, branch: str, mode: str, message: str) -> str:
    """Merge branch into the checked-out branch of repo, as a merge commit ("merge") or one squashed
    commit ("squash"); returns the new HEAD. The checkout must have no tracked changes. A merge that
    fails is rolled back (no MERGE_HEAD, no conflict markers) before the GitError."""
    if mode not in ("merge", "squash"):
        raise ValueError(f"unknown merge mode {mode!r}")
    dirty = dirty_tracked(repo)
    if dirty:  # rolling back a failed merge would take these with it
        raise GitError("git merge", f"uncommitted changes in {repo}: {', '.join(dirty[:3])}")
    try:
        identity = _identity(repo)
        if mode == "merge":
            git(repo, *_NO_HOOKS, *identity, "merge", "--no-ff", "--no-squash", "--no-edit", "--no-verify",
                "--quiet", "-m", message, "--", branch)
        else:
            git(repo, *_NO_HOOKS, "merge", "--squash", "--quiet", "--", branch)
            if _run_git(repo, ("diff", "--cached", "--quiet"), ok=(0, 1))[0] == 1:
                git(repo, *_NO_HOOKS, *identity, "commit", "--quiet", "--no-verify", "-m", message)
            else:
                _roll_back(repo)  # nothing new on the branch: only SQUASH_MSG to clear
    except BaseException:
        _roll_back(repo)
        raise
    return git(repo, "rev-parse", "HEAD").strip()


def _roll_back(repo: Path) -> None:
    """Undo a merge that stopped half-way. Safe because merge() began with no tracked changes: all
    there is to reset is the merge's own doing; untracked files are left alone."""
    with contextlib.suppress(GitError):
        git(repo, "reset", "--quiet", "--merge")


def is_merged(repo: Path, branch: str, into: str = "HEAD") -> bool:
    """Is branch's tip an ancestor of (or equal to) into? A missing branch is a GitError."""
    return _run_git(repo, ("merge-base", "--is-ancestor", branch, into), ok=(0, 1))[0] == 0


def remove_worktree(repo: Path, path: Path) -> None:
    """Remove the worktree at path, uncommitted work and all; a folder already gone is not an error."""
    if os.path.lexists(path):
        try:
            git(repo, "worktree", "remove", "--force", "--", str(path))
        except GitError:
            if not _registered(repo, path):
                raise
            # A removal cut short (kill -9) leaves a folder git no longer recognises as a worktree.
            shutil.rmtree(path)
    git(repo, "worktree", "prune")


def _registered(repo: Path, path: Path) -> bool:
    target = os.path.realpath(path)
    return any(os.path.realpath(where) == target for where, _ in worktrees(repo)[1:])


def delete_branch(repo: Path, branch: str) -> None:
    """Delete branch, merged or not; a branch already gone is not an error."""
    if commit_of(repo, f"refs/heads/{branch}") is not None:
        git(repo, "branch", "-D", "--", branch)


def branches(repo: Path, prefix: str = "parallel/") -> list[str]:
    """Local branches whose names start with prefix."""
    names = git(repo, "for-each-ref", "--format=%(refname)", "refs/heads/").splitlines()
    return [name for ref in names if (name := ref.removeprefix("refs/heads/")).startswith(prefix)]
