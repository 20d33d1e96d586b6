"""Worktree overhead (§11): creating, setting up (no setup commands) and merging 10 worktrees of a
5,000-file repository, per worktree, beside `git worktree add` alone. No bar; reported on the real
disk (the system's temp directory, /var/tmp) and on a RAM file system (/dev/shm) when there is one.

The full cycle is what the engine does for a task with `isolation: "worktree"`: add_worktree, the task
writes one file, commit_all, merge_conflicts, merge (mode merge), remove_worktree, delete_branch.
Run: python benchmarks/worktrees.py [--worktrees N] [--files N]"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from parallel_executor.system import git

STEPS = ("add_worktree", "write + commit_all", "merge_conflicts", "merge", "remove_worktree + delete_branch")


def make_repo(parent: Path, files: int) -> Path:
    """A repository of `files` small files in folders of 100, one commit on main."""
    repo = Path(tempfile.mkdtemp(prefix="pe-bench-wt-", dir=parent)) / "repo"
    for i in range(files):
        path = repo / f"dir{i // 100:03d}" / f"file{i:05d}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# file {i}\nVALUE = {i}\n")
    git.git(repo, "init", "-q", "-b", "main")
    git.git(repo, "config", "user.name", "bench")
    git.git(repo, "config", "user.email", "bench@localhost")
    git.git(repo, "add", "-A")
    git.git(repo, "commit", "-q", "-m", "5,000 files")
    return repo


def git_add_alone(repo: Path, i: int) -> float:
    """`git worktree add -b` timed by itself, then removed (untimed)."""
    path, branch = repo.parent / "trees" / f"plain{i}", f"plain/{i}"
    start = time.perf_counter()
    subprocess.run(["git", "-C", str(repo), "worktree", "add", "-q", "-b", branch, str(path), "HEAD"],
                   check=True, stdout=subprocess.DEVNULL)
    spent = time.perf_counter() - start
    git.remove_worktree(repo, path)
    git.delete_branch(repo, branch)
    return spent


def full_cycle(repo: Path, i: int) -> dict[str, float]:
    """The time of each step of the engine's cycle for one worktree."""
    path, branch = repo.parent / "trees" / f"task{i}", f"parallel/bench/task{i}"

    def write_and_commit() -> None:
        (path / f"dir{i:03d}" / f"task{i}.py").write_text(f"DONE = {i}\n")
        git.commit_all(path, f"task{i}: done")

    def conflicts() -> None:
        if git.merge_conflicts(repo, branch):
            raise SystemExit(f"{branch} conflicts")

    def remove() -> None:
        git.remove_worktree(repo, path)
        git.delete_branch(repo, branch)

    actions: list[Callable[[], object]] = [
        lambda: git.add_worktree(repo, path, branch, "HEAD"), write_and_commit, conflicts,
        lambda: git.merge(repo, branch, "merge", f"merge task{i}"), remove,
    ]
    spent = {}
    for step, action in zip(STEPS, actions, strict=True):
        start = time.perf_counter()
        action()
        spent[step] = time.perf_counter() - start
    return spent


def report(where: str, files: int, count: int) -> None:
    parent = Path(where)
    repo = make_repo(parent, files)
    try:
        plain, steps = [], {step: [] for step in STEPS}  # type: list[float], dict[str, list[float]]
        for i in range(count):  # alternating, so that the disk's state weighs on both alike
            plain.append(git_add_alone(repo, i))
            for step, spent in full_cycle(repo, i).items():
                steps[step].append(spent)
        cycle = [sum(times) for times in zip(*steps.values(), strict=True)]
    finally:
        shutil.rmtree(repo.parent, ignore_errors=True)
    print(f"\n{where}: {count} worktrees of a {files:,}-file repository, seconds per worktree")
    print(f"  {'':34} {'median':>8} {'mean':>8}")
    print(f"  {'git worktree add alone':34} {statistics.median(plain):8.4f} {statistics.mean(plain):8.4f}")
    print(f"  {'full cycle (this engine)':34} {statistics.median(cycle):8.4f} {statistics.mean(cycle):8.4f}")
    for step in STEPS:
        print(f"    {step:32} {statistics.median(steps[step]):8.4f} {statistics.mean(steps[step]):8.4f}")
    print(f"  ratio full cycle / worktree add: {statistics.median(cycle) / statistics.median(plain):.2f}x (medians), "
          f"{statistics.mean(cycle) / statistics.mean(plain):.2f}x (means); "
          f"overhead beyond the add: {statistics.median(cycle) - statistics.median(plain):.4f} s (medians)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worktrees", type=int, default=10)
    parser.add_argument("--files", type=int, default=5000)
    args = parser.parse_args()
    # The machine's git config (hooks, signing, fsmonitor) must not change the numbers.
    with tempfile.NamedTemporaryFile(prefix="pe-bench-gitconfig-") as config:
        os.environ.update(GIT_CONFIG_GLOBAL=config.name, GIT_CONFIG_NOSYSTEM="1")
        print(subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip())
        for where in ("/var/tmp", "/dev/shm"):
            if os.path.isdir(where) and os.access(where, os.W_OK):
                report(where, args.files, args.worktrees)


if __name__ == "__main__":
    main()
