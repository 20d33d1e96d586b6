"""Which worktree each task of `isolation: "worktree"` runs in (§11), decided before anything runs.

One worktree per epic (else per task) at `<worktrees.root>/<run_id>/<key>`, on branch
`parallel/<run_id>/<key>`, from `base` of the repository holding the task's cwd; the task's cwd and
paths are moved to the same relative place inside it, so path locks are per checkout. What cannot
work is refused here, before anything runs (exit 2): a cwd outside a git repository, a `base` that
does not exist, uncommitted changes to tracked files of the checkout its work would merge into,
a detached HEAD to merge into.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from parallel_executor.engine.journal import RUN_ID, read_status
from parallel_executor.errors import UserError
from parallel_executor.plan.config import Config
from parallel_executor.plan.model import TaskFile, TaskSpec
from parallel_executor.system import git
from parallel_executor.system.locations import runs_dir


@dataclass
class Tree:
    """One worktree of a run, and what became of it (status.json's `worktrees`)."""

    key: str  # the epic, else the task id
    repo: Path
    path: Path
    branch: str
    base: str  # commit
    target: str | None  # the branch its work merges into; None with merge "none"
    merge: str  # merge, squash or none
    timeout: float  # of its setup commands: its first task's
    tasks: list[str] = field(default_factory=list)
    state: str = "planned"  # planned, preparing, ready, failed, merging, merged, kept, conflict, removed
    error: str | None = None
    copied: tuple[str, ...] = ()  # untracked after preparation (copied in, made by setup): never committed
    reused: bool = False  # made by an earlier session of this run (--resume)
    recorded: tuple[str, ...] | None = None  # `copied` as that earlier session found it, if it said

    def doc(self) -> dict[str, object]:
        return {"key": self.key, "repo": str(self.repo), "path": str(self.path), "branch": self.branch,
                "base": self.base, "target": self.target, "merge": self.merge, "state": self.state,
                "error": self.error, "tasks": list(self.tasks), "copied": list(self.copied)}


def plan_trees(taskfile: TaskFile, config: Config, run_id: str) -> tuple[TaskFile, dict[str, Tree]]:
    """The task file with worktree tasks moved into their worktrees, and the worktrees by key."""
    trees: dict[str, Tree] = {}
    problems: list[str] = []
    moved: list[TaskSpec] = []
    checked: dict[Path, list[str]] = {}
    for spec in taskfile.tasks:
        if spec.isolation != "worktree":
            moved.append(spec)
            continue
        key = spec.epic or spec.id
        tree = trees.get(key)
        if tree is None:
            try:
                tree = _tree(spec, key, config, run_id, problems, checked)
            except git.GitError as e:  # a corrupt index, git missing: said like any other refusal
                problems.append(f"task '{spec.id}': {e}")
                tree = None
            if tree is None:
                moved.append(spec)
                continue
            trees[key] = tree
        tree.tasks.append(spec.id)
        moved.append(_moved(spec, tree))
    if problems:
        raise UserError(problems)
    _recall_copied(trees, run_id)
    return dataclasses.replace(taskfile, tasks=tuple(moved)), trees


def _recall_copied(trees: dict[str, Tree], run_id: str) -> None:
    """On --resume, what the earlier session found untracked in each worktree once it was prepared:
    files a failed task left since are its work, to be committed when it runs again, not excluded."""
    if not RUN_ID.fullmatch(run_id) or not (runs_dir() / run_id / "status.json").exists():
        return
    try:
        earlier = read_status(run_id).get("worktrees")
    except UserError:
        return
    for entry in earlier if isinstance(earlier, list) else ():
        if isinstance(entry, dict) and (tree := trees.get(str(entry.get("key")))) is not None \
                and isinstance(entry.get("copied"), list):
            tree.recorded = tuple(str(name) for name in entry["copied"])


def _tree(spec: TaskSpec, key: str, config: Config, run_id: str, problems: list[str],
          checked: dict[Path, list[str]]) -> Tree | None:
    where = _existing(spec.cwd)
    repo = git.toplevel(where)
    if repo is None:
        problems.append(f"task '{spec.id}': isolation \"worktree\" needs a git repository, and its cwd "
                        f"{spec.cwd} is not in one")
        return None
    base = git.commit_of(repo, spec.base or "HEAD")
    if base is None:
        problems.append(f"task '{spec.id}': base '{spec.base or 'HEAD'}' does not exist in {repo}")
        return None
    merge = spec.merge or config.worktree_merge
    target = git.head_branch(repo) if merge != "none" else None
    if merge != "none" and target is None:
        problems.append(f"task '{spec.id}': {repo} is on a detached HEAD, so its work has no branch to merge "
                        "into: check out a branch, or set \"merge\": \"none\" to keep the work on its branch")
        return None
    if merge != "none" and repo not in checked:
        checked[repo] = git.dirty_tracked(repo)
        if checked[repo]:
            shown = ", ".join(checked[repo][:5]) + (f" and {len(checked[repo]) - 5} more" if len(checked[repo]) > 5
                                                    else "")
            problems.append(f"{repo} has uncommitted changes to tracked files ({shown}): the work of worktree "
                            "tasks is merged into this checkout, which must be clean first; commit or stash them "
                            "(untracked files do not matter)")
    path = config.worktrees_root / run_id / key
    return Tree(key, repo, path, f"parallel/{run_id}/{key}", base, target, merge, spec.timeout)


def _moved(spec: TaskSpec, tree: Tree) -> TaskSpec:
    """The task with its cwd and paths at the same relative places inside its worktree."""

    def inside(path: str) -> str:
        p = Path(path).resolve()  # the repository's root is a real path: so must this be, to compare
        return str(tree.path / p.relative_to(tree.repo)) if p.is_relative_to(tree.repo) else path

    return dataclasses.replace(spec, cwd=Path(inside(str(spec.cwd))), paths=tuple(map(inside, spec.paths)),
                               reads=tuple(map(inside, spec.reads)), artifacts=tuple(map(inside, spec.artifacts)))


def _existing(path: Path) -> Path:
    """The path, or its nearest parent that exists (a cwd may be made by an earlier task)."""
    for candidate in (path, *path.parents):
        if candidate.is_dir():
            return candidate
    return Path("/")
