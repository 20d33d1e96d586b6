"""Worktrees at run time (§11): an admission check that makes a task's worktree when its first task
is about to start, commits each task's work when it succeeds, and merges a worktree's branch back
once all its tasks succeeded, one merge at a time in the order the work finished.

Git and setup commands run on helper threads (a big checkout or `npm ci` must not stall the loop);
their results come back to the loop with `call_soon_threadsafe`. A merge first computes the merge
without touching the checkout (`git merge-tree`): a conflict aborts nothing because nothing began,
so the user's checkout never holds conflict markers or a MERGE_HEAD. Git runs in sessions of its
own, so a Ctrl-C at the terminal never kills it half-way; the engine waits for what is in flight.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
from collections import defaultdict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from parallel_executor.engine.admission import NeverAdmitted
from parallel_executor.engine.records import TaskRun
from parallel_executor.engine.worktree_plan import Tree
from parallel_executor.plan.model import Status, TaskSpec, WorktreePrep
from parallel_executor.system import git, procs
from parallel_executor.system.fsutil import tail_file

OUTPUT_TAIL = 4000  # bytes of a failed setup's output put in its tasks' error
DONE = frozenset({Status.SUCCESS, Status.NOT_NEEDED})


class SetupFailed(Exception):
    pass


class Worktrees:
    def __init__(self, trees: Mapping[str, Tree], tasks: Mapping[str, TaskRun], prep: WorktreePrep, run_id: str,
                 log_dir: Path, call_soon: Callable[[Callable[[], None]], None],
                 event: Callable[..., None], changed: Callable[[Tree], None]) -> None:
        self.trees, self.tasks, self.prep, self.run_id, self.log_dir = trees, tasks, prep, run_id, log_dir
        self.tree_of = {tid: tree for tree in trees.values() for tid in tree.tasks}
        self.call_soon, self.event, self.changed = call_soon, event, changed
        self._makers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="worktree")
        self._merger = ThreadPoolExecutor(max_workers=1, thread_name_prefix="merge")  # one merge at a time
        self._repo_locks: defaultdict[Path, threading.Lock] = defaultdict(threading.Lock)
        self._setups: set[subprocess.Popen[bytes]] = set()
        self._guard = threading.Lock()
        self.stopping = False

    @property
    def busy(self) -> bool:
        """A worktree is being made or merged: the run is not over until it is done."""
        return any(t.state in ("preparing", "merging") for t in self.trees.values())

    # ---- the admission check ----------------------------------------------------------------

    def blocked(self, spec: TaskSpec) -> str | None:
        mine = self.tree_of.get(spec.id)
        for dep in spec.blocked_by:
            tree = self.tree_of.get(dep)
            if tree is None or tree is mine or tree.state in ("merged", "kept"):
                continue  # outside an epic, a dependent sees the merged work (or the kept branch)
            if tree.state in ("conflict", "failed", "removed"):
                raise NeverAdmitted(f"dependency '{dep}': its worktree's work was not merged "
                                    f"({tree.error or tree.state})", Status.SKIPPED)
            return f"waiting for the merge of {tree.branch}"
        if mine is None:
            return None
        if mine.state == "planned":
            mine.state = "preparing"
            self.event("worktree-preparing", key=mine.key, path=str(mine.path), branch=mine.branch)
            self._makers.submit(self._make, mine)
        if mine.state == "preparing":
            return f"preparing worktree {mine.path}"
        if mine.state == "failed" and mine.error:
            raise NeverAdmitted(mine.error)
        return None

    def started(self, spec: TaskSpec) -> None:
        if (tree := self.tree_of.get(spec.id)) is not None:
            self.tasks[spec.id].branch = tree.branch

    def settled(self, spec: TaskSpec) -> None:
        tree = self.tree_of.get(spec.id)
        if tree is None:
            return
        task = self.tasks[spec.id]
        if task.status is Status.SUCCESS and tree.state == "ready" and not task.reused:
            try:  # before any dependent starts: one in the same epic builds on this commit
                title = f"{spec.id}: {spec.subject}" if spec.subject and spec.subject != spec.id else spec.id
                git.commit_all(tree.path, f"{title}\n\nparallel-executor run {self.run_id}", exclude=tree.copied)
            except git.GitError as e:
                tree.error = f"task '{spec.id}': its work could not be committed: {e}"
        if all(self.tasks[t].status.finished for t in tree.tasks):
            self._finish(tree)

    # ---- after the tasks --------------------------------------------------------------------

    def _finish(self, tree: Tree) -> None:
        if tree.state == "planned" and all(self.tasks[t].reused for t in tree.tasks):
            # Every task succeeded in an earlier session of the run (--resume): merge what it left,
            # unless that session did (its branch is gone then).
            if tree.branch not in git.branches(tree.repo, tree.branch):
                tree.state = "merged"
                return
            tree.state = "ready"
        failed = [t for t in tree.tasks if self.tasks[t].status not in DONE]
        if self.stopping and tree.state == "ready":
            tree.state, tree.error = "kept", "the run was stopped: `--resume` carries on in this worktree"
            self._changed(tree)
            return
        if failed or tree.error or tree.state != "ready":
            tree.state = "failed"
            tree.error = tree.error or (f"not merged: {', '.join(failed)} did not succeed; the worktree and its "
                                        f"branch are kept at {tree.path}")
            self._changed(tree)
            return
        tree.state = "merging"
        self._changed(tree)
        self._merger.submit(self._merge, tree)

    def _merge(self, tree: Tree) -> None:
        """On the merge thread: merge (or, with merge "none", keep the branch and drop the checkout)."""
        state, error = "merged", None
        try:
            with self._repo_locks[tree.repo]:
                if self.stopping:
                    state, error = "kept", "the run was stopped before its merge: `--resume` merges it"
                elif tree.merge == "none":
                    git.remove_worktree(tree.repo, tree.path)
                    state = "kept"
                else:
                    state, error = self._merge_now(tree)
        except Exception as e:  # whatever it is, the run must hear of it, or it waits forever
            state, error = "conflict", f"merge failed: {e}"
        self.call_soon(lambda: self._merged(tree, state, error))

    def _merge_now(self, tree: Tree) -> tuple[str, str | None]:
        assert tree.target is not None
        by_hand = (f"the worktree and branch are kept: finish by hand with `cd {tree.repo} && git merge "
                   f"{tree.branch}` (then `git worktree remove {tree.path}`)")
        if git.head_branch(tree.repo) != tree.target:
            return "conflict", f"not merged: {tree.repo} is no longer on {tree.target}; {by_hand}"
        dirty = git.dirty_tracked(tree.repo)
        if dirty:
            return "conflict", f"not merged: {tree.repo} has uncommitted changes to {', '.join(dirty[:5])}; {by_hand}"
        conflicts = git.merge_conflicts(tree.repo, tree.branch)
        if conflicts:
            return "conflict", f"merge conflict in {', '.join(conflicts)}; {by_hand}"
        git.merge(tree.repo, tree.branch, tree.merge,
                  f"Merge {tree.branch} ({', '.join(tree.tasks)}; parallel-executor run {self.run_id})")
        try:
            git.remove_worktree(tree.repo, tree.path)
            git.delete_branch(tree.repo, tree.branch)
        except (git.GitError, OSError) as e:  # merged all the same: what is left is only tidying
            return "merged", f"merged; the worktree {tree.path} could not be removed ({e})"
        return "merged", None

    def _merged(self, tree: Tree, state: str, error: str | None) -> None:
        tree.state, tree.error = state, error
        self._changed(tree)

    def _changed(self, tree: Tree) -> None:
        self.event(f"worktree-{tree.state}", key=tree.key, branch=tree.branch,
                   **({"error": tree.error} if tree.error else {}))
        self.changed(tree)

    # ---- making one -------------------------------------------------------------------------

    def _make(self, tree: Tree) -> None:
        """On a maker thread: the worktree (reused when an earlier session of the run made it), the
        `copy` files, the `setup` commands."""
        state, error = "ready", None
        copied: tuple[str, ...] = ()
        try:
            with self._repo_locks[tree.repo]:
                if git.worktree_branch(tree.repo, tree.path) == tree.branch:
                    tree.reused = True
                elif tree.branch in git.branches(tree.repo, tree.branch):
                    git.git(tree.repo, "worktree", "add", "--", str(tree.path), tree.branch)
                    tree.reused = True
                else:
                    git.add_worktree(tree.repo, tree.path, tree.branch, tree.base)
            if not tree.reused:
                self._copy(tree)
                self._setup(tree)
            copied = tree.recorded if tree.reused and tree.recorded is not None else tuple(git.untracked(tree.path))
        except Exception as e:  # whatever it is, the run must hear of it, or it waits forever
            state, error = "failed", f"worktree {tree.path} could not be prepared: {e}"
        self.call_soon(lambda: self._made(tree, state, error, copied))

    def _made(self, tree: Tree, state: str, error: str | None, copied: tuple[str, ...]) -> None:
        tree.state, tree.error, tree.copied = state, error, copied
        self._changed(tree)

    def _copy(self, tree: Tree) -> None:
        for pattern in self.prep.copy:
            for source in sorted(tree.repo.glob(pattern)):
                if source.is_symlink() or not source.is_file():
                    continue  # a file of the checkout, never what a link points at
                target = tree.path / source.relative_to(tree.repo)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target, follow_symlinks=False)

    def _setup(self, tree: Tree) -> None:
        log = self.log_dir / f"worktree-{tree.key}.log"
        # The run's id marks them, like its tasks: a later run ends what a killed engine left running.
        env = {**os.environ, procs.RUN_ID_VAR: self.run_id, "PARALLEL_WORKTREE": str(tree.path)}
        for command in self.prep.setup:
            argv = ["sh", "-c", command] if isinstance(command, str) else list(command)
            with open(log, "ab") as out:
                with self._guard:
                    if self.stopping:
                        raise SetupFailed("the run was stopped")
                    proc = subprocess.Popen(argv, cwd=tree.path, stdin=subprocess.DEVNULL, stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True, env=env)
                    self._setups.add(proc)
                try:
                    code = proc.wait(timeout=tree.timeout)
                except subprocess.TimeoutExpired:
                    _kill(proc)
                    code = None
                finally:
                    with self._guard:
                        self._setups.discard(proc)
            if code != 0:
                why = f"timed out after {tree.timeout:g}s" if code is None else f"exit code {code}"
                raise SetupFailed(f"setup {argv!r} failed ({why}); its output ({log}):\n"
                                  + tail_file(str(log), OUTPUT_TAIL)[0].rstrip())

    # ---- the end ----------------------------------------------------------------------------

    def stop(self) -> None:
        """Ctrl-C or cancel: end setup commands now; merges not begun are left for `--resume`."""
        with self._guard:
            self.stopping = True
            for proc in list(self._setups):
                _kill(proc)

    def close(self, drain: Callable[[], None]) -> None:
        """After the run, before its loop closes: wait for the helper threads and take their results
        (`drain` runs what they handed to the loop); remove what was half made; keep work."""
        if any(t.state == "preparing" for t in self.trees.values()):
            self.stop()  # the run ended (stopped) while a worktree was being made
        self._makers.shutdown(wait=True, cancel_futures=True)
        self._merger.shutdown(wait=True, cancel_futures=True)
        drain()
        for tree in self.trees.values():
            if tree.state == "preparing" or (tree.state == "failed" and self.stopping and not tree.reused
                                             and not any(self.tasks[t].attempts for t in tree.tasks)):
                with contextlib.suppress(git.GitError):  # half made: nothing of value in it
                    git.remove_worktree(tree.repo, tree.path)
                    git.delete_branch(tree.repo, tree.branch)
                tree.state = "removed"
            elif tree.state in ("ready", "merging"):
                tree.state = "kept"  # the run ended before its tasks did: `--resume` carries on in it

    def docs(self) -> list[dict[str, Any]]:
        return [t.doc() for t in self.trees.values()]


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
