"""The git worktrees the engine made for tasks with "isolation": "worktree" (§11): which still exist,
whether they hold unmerged work, and removing those of finished runs that hold none.

They are found two ways: each run's status.json names its worktrees (its "worktrees" entries), and a
directory <root>/<run_id>/<key> that no status names is one an engine left when it crashed (its
repository is the one git gives as the worktree's common dir). A branch parallel/<run_id>/<key> of a
repository seen either way, that neither names, is listed too (its worktree is gone).

Unmerged work is what removing would lose: a change in the worktree (a tracked file changed, or an
untracked file git does not ignore, other than the config's `copy` files the engine put there and, when
the status names them, the files it found untracked once the worktree was set up), or a
branch that exists and is not an ancestor of its target (a squash merge deletes its branch, so a
squash branch still there is unmerged too). What cannot be told (the repository is gone, git fails)
counts as unmerged: the worktree is kept.

A worktree is removed only when its run is finished: no engine alive for it (its status's, or the one
an active marker names — `run --resume` writes its marker before its status).
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from parallel_executor.engine.journal import LIVE_STATES, RUN_ID, engine_alive, read_status, run_ids
from parallel_executor.errors import UserError
from parallel_executor.results.retention import marker_alive, usage
from parallel_executor.system import git
from parallel_executor.system.locations import runs_dir

BRANCH_PREFIX = "parallel/"
CANNOT_TELL = "cannot tell"
NOT_A_WORKTREE = "not a git worktree"


class Worktree(NamedTuple):
    run_id: str
    key: str
    repo: str | None  # None: not known (a directory that is not a git worktree)
    path: str
    exists: bool  # the directory is still there
    branch: str | None
    branch_exists: bool
    target: str | None  # the branch its work merges into (None with merge "none": judged against HEAD)
    state: str  # as its run's status records it; "unknown" when no status names it
    run_state: str  # its run's state; "no status" when none is left
    finished: bool  # no engine is alive for its run: it may be removed
    unmerged: bool  # it holds unmerged work, or what it holds cannot be told
    why: str  # what is unmerged, in a few words ("" when nothing is)
    changes: tuple[str, ...]  # files changed and not committed in the worktree
    ahead: bool  # its branch has commits its target lacks


class Cleaned(NamedTuple):
    run_id: str
    key: str
    path: str
    branch: str | None
    removed: bool  # removed (in a dry run: would be)
    bytes: int  # what removing its directory frees
    unmerged: bool  # kept for the work it holds (or for what could not be told)
    reason: str
    finish: tuple[str, ...]  # commands to finish it by hand, when kept for its unmerged work


def find(root: Path, copy: Sequence[str] = ()) -> list[Worktree]:
    """Every worktree or branch the engine made that still exists, by run (oldest first), then key."""
    runs: dict[str, tuple[str, bool]] = {}
    found: list[Worktree] = []
    for run_id in sorted(run_ids()):
        if (runs_dir() / run_id).is_symlink():
            continue  # not the engine's own run: nothing is read (or set aside) through a link
        if not _mentions_worktrees(run_id):
            continue  # most runs: no status to parse and validate (a folder of theirs is judged below)
        status = _status(run_id)
        runs[run_id] = _run_state(run_id, status)
        found += [_recorded(run_id, entry, runs[run_id], copy) for entry in _entries(status)]
    named = {os.path.realpath(w.path) for w in found}
    for path in _directories(root):
        if os.path.realpath(path) not in named:
            run_id = path.parent.name
            run = runs.get(run_id) or _run_state(run_id, _own_status(run_id))
            found.append(_orphan(run_id, path, run, copy))
    found += _lone_branches(found, runs)
    return sorted((w for w in found if w.exists or w.branch_exists), key=lambda w: (w.run_id, w.key))


def clean(root: Path, copy: Sequence[str], dry_run: bool) -> list[Cleaned]:
    """Remove the worktrees and branches of finished runs that hold nothing unmerged (unless dry_run);
    a verdict for each one found."""
    verdicts = [judge(w, dry_run) for w in find(root, copy)]
    if not dry_run:
        for run_id in {v.run_id for v in verdicts if v.removed}:
            with contextlib.suppress(OSError):
                (root / run_id).rmdir()  # only when empty: another worktree of the run may be kept
    return verdicts


def judge(worktree: Worktree, dry_run: bool) -> Cleaned:
    w = worktree
    size = usage([Path(w.path)]) if w.exists else 0
    kept = Cleaned(w.run_id, w.key, w.path, w.branch, False, size, w.unmerged and w.finished, "", ())
    if not w.finished:
        return kept._replace(reason=f"its run is {w.run_state}")
    if w.unmerged:
        return kept._replace(reason=f"holds unmerged work: {w.why}", finish=finish(w))
    if dry_run:
        return kept._replace(removed=True, reason=_removable(w))
    if not _run_state(w.run_id, _status(w.run_id))[1]:
        return kept._replace(reason="its run was resumed meanwhile")
    try:
        _remove(w)
    except (git.GitError, OSError) as e:
        return kept._replace(reason=f"could not remove: {e}")
    return kept._replace(removed=True, reason=_removable(w))


def finish(w: Worktree) -> tuple[str, ...]:
    """The commands that finish by hand what a worktree holds (after them, `worktrees clean` removes it)."""
    if w.why.endswith(NOT_A_WORKTREE):
        return (f"ls -la {w.path}   ({NOT_A_WORKTREE}: remove it by hand once nothing in it is wanted)",)
    unknown = w.why.startswith(CANNOT_TELL)
    steps = []
    if w.exists and (w.changes or unknown):
        steps.append(f"cd {w.path} && git status   (commit the changes, or discard them)")
    if w.branch and w.repo and (w.ahead or (unknown and w.branch_exists)):
        into = f"git switch {w.target} && " if w.target else ""
        steps.append(f"cd {w.repo} && {into}git merge {w.branch}   (or drop it: git branch -D {w.branch})")
    return tuple(steps)


def _removable(w: Worktree) -> str:
    return f"nothing unmerged (worktree {w.state}, run {w.run_state})"


def _remove(w: Worktree) -> None:
    path = Path(w.path)
    if w.exists:
        if w.repo is None:
            path.rmdir()  # an empty folder the engine made before git did: never one with files
        else:
            git.remove_worktree(Path(w.repo), path)
    if w.branch_exists and w.repo and w.branch:
        git.delete_branch(Path(w.repo), w.branch)


def _own_status(run_id: str) -> dict[str, Any] | None:
    """The status of a run named by a worktree folder, when it is the engine's own (never through a link)."""
    own = RUN_ID.fullmatch(run_id) and not (runs_dir() / run_id).is_symlink()
    return _status(run_id) if own else None


def _mentions_worktrees(run_id: str) -> bool:
    try:
        return b'"worktrees"' in (runs_dir() / run_id / "status.json").read_bytes()
    except OSError:
        return True  # read_status says what is wrong with it


def _status(run_id: str) -> dict[str, Any] | None:
    try:
        return read_status(run_id)
    except UserError:  # gone meanwhile, or unusable and moved aside: its worktrees are found as folders
        return None


def _run_state(run_id: str, status: dict[str, Any] | None) -> tuple[str, bool]:
    """The run's state, and whether it is finished (no engine alive for it)."""
    state = str(status.get("state")) if status else "no status"
    resuming = marker_alive(run_id)  # `run --resume` writes its marker before its status
    live = resuming or (status is not None and state in LIVE_STATES and engine_alive(status))
    if state in LIVE_STATES and not live:
        state += " (engine gone)"
    elif resuming and state not in LIVE_STATES:
        state = "resuming"
    return state, not live


def _entries(status: dict[str, Any] | None) -> Iterator[dict[str, Any]]:
    entries = (status or {}).get("worktrees")
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("path"), str) and isinstance(entry.get("repo"), str):
            yield entry


def _recorded(run_id: str, entry: dict[str, Any], run: tuple[str, bool], copy: Sequence[str]) -> Worktree:
    path, repo = Path(entry["path"]), entry["repo"]
    branch = entry.get("branch") if isinstance(entry.get("branch"), str) else None
    target = entry.get("target") if isinstance(entry.get("target"), str) else None
    key = str(entry.get("key") or path.name)
    copied = entry.get("copied")  # what the engine found untracked once the worktree was set up
    if isinstance(copied, list):
        copy = (*copy, *(name for name in copied if isinstance(name, str)))
    return _judged(run_id, key, repo, path, branch, target, str(entry.get("state") or "unknown"), run, copy)


def _directories(root: Path) -> Iterator[Path]:
    """Every <root>/<run_id>/<key> folder (a link is not followed out of the root)."""
    with contextlib.suppress(OSError):
        for run_dir in sorted(root.iterdir()):
            if RUN_ID.fullmatch(run_dir.name) and run_dir.is_dir() and not run_dir.is_symlink():
                with contextlib.suppress(OSError):
                    yield from (p for p in sorted(run_dir.iterdir()) if p.is_dir() and not p.is_symlink())


def _orphan(run_id: str, path: Path, run: tuple[str, bool], copy: Sequence[str]) -> Worktree:
    """A folder no status names: its repository and branch are asked of git."""
    repo = branch = target = None
    if _is_worktree(path):
        with contextlib.suppress(git.GitError):
            common = Path(git.git(path, "rev-parse", "--path-format=absolute", "--git-common-dir").strip())
            repo = str(common.parent if common.name == ".git" else common)
            branch = git.worktree_branch(Path(repo), path)
            target = git.head_branch(Path(repo))
    elif not any(path.iterdir()):  # made by the engine, which died before git filled it: nothing to lose
        return Worktree(run_id, path.name, None, str(path), True, None, False, None, "unknown", run[0], run[1],
                        False, "", (), False)
    return _judged(run_id, path.name, repo, path, branch, target, "unknown", run, copy)


def _lone_branches(found: list[Worktree], runs: dict[str, tuple[str, bool]]) -> list[Worktree]:
    """Branches parallel/<run_id>/<key> of the repositories seen that no status or folder names."""
    known = {(w.repo, w.branch) for w in found}
    lone = []
    for repo in sorted({w.repo for w in found if w.repo}):
        try:
            names = git.branches(Path(repo), prefix=BRANCH_PREFIX)
            target = git.head_branch(Path(repo))
        except git.GitError:
            continue
        for branch in names:
            run_id, _, key = branch[len(BRANCH_PREFIX):].partition("/")
            if (repo, branch) not in known and RUN_ID.fullmatch(run_id) and key:
                run = runs.get(run_id) or _run_state(run_id, None)
                lone.append(_judged(run_id, key, repo, None, branch, target, "unknown", run, ()))
    return lone


def _judged(run_id: str, key: str, repo: str | None, path: Path | None, branch: str | None, target: str | None,
            state: str, run: tuple[str, bool], copy: Sequence[str]) -> Worktree:
    exists = path is not None and (path.is_dir() or path.is_symlink())
    branch_exists, ahead = False, False
    changes: tuple[str, ...] = ()
    try:
        if repo is None or (path is not None and exists and not _is_worktree(path)):
            raise _Unknown(NOT_A_WORKTREE)
        branch_exists = branch is not None and branch in git.branches(Path(repo), prefix=BRANCH_PREFIX)
        if path is not None and exists:
            changes = tuple(git.dirty_tracked(path) + [f for f in git.untracked(path) if not _copied(f, copy)])
        ahead = branch is not None and branch_exists and not git.is_merged(Path(repo), branch, into=target or "HEAD")
        # merge "none" records no target: its branch is the user's to merge into what is checked out
        why = _why(changes, ahead, target or (git.head_branch(Path(repo)) if ahead else None))
    except (_Unknown, git.GitError, OSError) as e:
        why = f"{CANNOT_TELL}: {e}"
    shown = str(path) if path is not None else ""
    return Worktree(run_id, key, repo, shown, exists, branch, branch_exists, target, state, run[0], run[1],
                    bool(why), why, changes, ahead)


class _Unknown(Exception):
    """What a worktree holds cannot be told."""


def _why(changes: tuple[str, ...], ahead: bool, target: str | None) -> str:
    reasons = []
    if changes:
        reasons.append(f"{len(changes)} uncommitted change{'' if len(changes) == 1 else 's'} "
                       f"({', '.join(changes[:3])}{', …' if len(changes) > 3 else ''})")
    if ahead:
        reasons.append(f"commits not in {target or 'HEAD'}")
    return "; ".join(reasons)


def _is_worktree(path: Path) -> bool:
    """A work tree's own top: a folder inside another repository (a root under a dotfiles repo) is not one."""
    top = git.toplevel(path)
    return top is not None and os.path.realpath(top) == os.path.realpath(path)


def _copied(name: str, copy: Sequence[str]) -> bool:
    """The file is one the `copy` globs put in the worktree, as git.commit_all's `exclude` reads them: a
    path, a folder holding it, or a glob (one without "/" also matches a file name at any depth)."""
    parts = name.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    return any(fnmatch.fnmatchcase(prefix, glob.rstrip("/")) for glob in copy for prefix in prefixes) or any(
        fnmatch.fnmatchcase(parts[-1], glob) for glob in copy if "/" not in glob)
