"""Run retention (§10): `cleanup` deletes the state (runs_dir()/RUN_ID) and results of runs that ended
more than `runs_retention_days` ago.

A run is never removed while its engine lives (a live state with a live engine, or an active marker
naming one). Its end is status.json's `ended`; for a run whose engine died before ending (a live
state, engine gone) or a status without `ended`, status.json's mtime — the engine's last write.
A status.json that cannot be used is moved aside by the reader; the run is then judged by its
newest file's mtime (events.jsonl, or what was moved aside: a rename keeps the mtime), never by the
directory's own, which the rename has just changed. A status the environment stops us reading
(no permission) keeps the run.

Only what the engine owns is deleted: the run directory runs_dir()/RUN_ID and the results folder
results_root()/RUN_ID. A `--results-dir` the user chose is kept, with why. A symbolic link is
removed as a link; nothing is ever followed out of these two roots.

A run that still has a worktree holding unmerged work (§11) is kept: its status is what lets
`worktrees list` say whose work it is. The caller finds them (results/worktrees.py) and passes them
as `held`: run id -> the worktree (or branch) that holds the work.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from parallel_executor.engine.journal import LIVE_STATES, RUN_ID, engine_alive, marked_engine, read_status
from parallel_executor.errors import UserError
from parallel_executor.system import procs
from parallel_executor.system.locations import results_root, runs_dir
from parallel_executor.system.timestamps import epoch, iso

DAY = 86400.0


class RunVerdict(NamedTuple):
    run_id: str
    ended: str | None  # ISO time the run is judged to have ended; None while it runs
    bytes: int  # what removing it frees: its state, and its results when they are the engine's own
    due: bool  # ended more than the retention ago (or of unknown end): removed, or kept saying why
    removed: bool  # removed (in a dry run: would be)
    results_dir: str | None  # the run's results folder, wherever it is
    results_removed: bool
    reason: str


class _Judged(NamedTuple):
    """What is known of a run before deciding: when it ended (None: running) and where its results are."""

    ended: float | None
    results: Path
    note: str  # how the end was found, when not from status.json's `ended`


def run_dirs() -> list[str]:
    """Every run id with a directory (or a link) under runs_dir(), oldest first; readable status or not."""
    root = runs_dir()
    try:
        entries = list(os.scandir(root))
    except OSError:  # no runs yet, or a file where the folder belongs
        return []
    return sorted(e.name for e in entries if RUN_ID.fullmatch(e.name) and (e.is_symlink() or e.is_dir()))


def retain(days: float, dry_run: bool, now: float | None = None,
           held: Mapping[str, str] | None = None) -> list[RunVerdict]:
    """Judge every run, and (unless dry_run) remove those that ended more than `days` ago.
    `days` <= 0 keeps every run; so is every run in `held` (run id -> its worktree holding unmerged work)."""
    now = time.time() if now is None else now
    held = held or {}
    verdicts = [judge(run_id, days, now, held) for run_id in run_dirs()]
    return verdicts if dry_run else [remove(v, days, now, held) if v.removed else v for v in verdicts]


def judge(run_id: str, days: float, now: float, held: Mapping[str, str] | None = None) -> RunVerdict:
    try:
        judged = _ended(run_id)
    except OSError as e:
        return RunVerdict(run_id, None, 0, True, False, None, False, f"its status cannot be read ({e.strerror or e})")
    why_not = _not_own_results(judged.results, run_id)
    size = usage([runs_dir() / run_id, *([] if why_not else [judged.results])])
    kept = RunVerdict(run_id, None, size, False, False, str(judged.results), False, "running")
    if judged.ended is None:
        return kept
    ended, age = iso(judged.ended), (now - judged.ended) / DAY
    if days <= 0 or age < days:
        keep = "runs are kept forever (runs_retention_days 0)" if days <= 0 else f"kept for {days:g} days"
        return kept._replace(ended=ended, reason=f"ended {age:.1f} days ago{judged.note}: {keep}")
    reason = f"ended {age:.1f} days ago{judged.note}"
    if held and run_id in held:
        return kept._replace(ended=ended, due=True, reason=f"{reason}; holds unmerged work in worktree {held[run_id]}")
    reason += f"; results kept: {why_not}" if why_not else ""
    return kept._replace(ended=ended, due=True, removed=True, results_removed=not why_not, reason=reason)


def remove(verdict: RunVerdict, days: float, now: float, held: Mapping[str, str] | None = None) -> RunVerdict:
    """Delete what the verdict says, after judging the run again: it may have been resumed meanwhile."""
    again = judge(verdict.run_id, days, now, held)
    if not again.removed:
        return again
    marker = runs_dir() / "active" / verdict.run_id
    try:
        if marker.is_symlink() or marker.exists():
            procs.sweep(verdict.run_id)  # a dead engine's leftover tasks, as recover_dead_runs would end them
            _delete(marker)
        if again.results_removed and again.results_dir:
            _delete(Path(again.results_dir))
        _delete(runs_dir() / verdict.run_id)  # the state last: an interrupted cleanup still sees the run
    except OSError as e:
        return again._replace(removed=False, results_removed=False,
                              reason=f"{again.reason}; could not delete: {e.strerror or e} ({e.filename})")
    return again


def _ended(run_id: str) -> _Judged:
    """When the run ended (None: its engine is alive) and where its results are. OSError: status unreadable."""
    path = runs_dir() / run_id
    default = results_root() / run_id
    if marker_alive(run_id):
        return _Judged(None, default, "")
    if path.is_symlink():  # not the engine's own folder: judged by the link, nothing read through it
        return _Judged(path.lstat().st_mtime, default, " (a link: judged by its own time)")
    try:
        status = read_status(run_id)
    except UserError:  # missing, or unusable and moved aside
        return _Judged(_newest_mtime(path), default, " (no usable status: judged by its newest file)")
    results = Path(status["results_dir"]) if status.get("results_dir") else default
    if status.get("state") in LIVE_STATES:
        if engine_alive(status):
            return _Judged(None, results, "")
        return _Judged(_mtime(path / "status.json"), results, " (engine gone)")
    stamp = status.get("ended")
    with contextlib.suppress(ValueError, TypeError, OverflowError):
        return _Judged(epoch(stamp), results, "")  # type: ignore[arg-type]
    return _Judged(_mtime(path / "status.json"), results, "")


def marker_alive(run_id: str) -> bool:
    engine = marked_engine(runs_dir() / "active" / run_id)
    return engine is not None and procs.alive(*engine)


def _not_own_results(results: Path, run_id: str) -> str:
    """Why results may not be deleted ("" when they are results_root()/RUN_ID, the engine's own)."""
    root = os.path.realpath(results_root())
    parent = os.path.realpath(results.parent)  # the last part is not resolved: a link is removed as a link
    if parent == root and results.name == run_id:
        return ""
    if parent == root or parent.startswith(root + os.sep):
        return f"{results} is not this run's own folder of the results root"
    return f"{results} is outside the results root (chosen with --results-dir)"


def _mtime(path: Path) -> float:
    return path.lstat().st_mtime


def _newest_mtime(folder: Path) -> float:
    times = [_mtime(folder)]
    with contextlib.suppress(OSError):
        times = [e.stat(follow_symlinks=False).st_mtime for e in os.scandir(folder)] or times
    return max(times)


def usage(paths: list[Path]) -> int:
    """Bytes on disk under paths, like `du -s -B1`: links not followed, hard links counted once."""
    seen: set[tuple[int, int]] = set()
    total, stack = 0, [str(p) for p in paths]
    while stack:
        path = stack.pop()
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in seen:
            continue
        seen.add((st.st_dev, st.st_ino))
        total += _blocks(st)
        if stat.S_ISDIR(st.st_mode):
            with contextlib.suppress(OSError):
                stack.extend(os.path.join(path, name) for name in os.listdir(path))
    return total


def _blocks(st: os.stat_result) -> int:
    blocks: Any = getattr(st, "st_blocks", None)
    return int(blocks) * 512 if blocks is not None else st.st_size  # no st_blocks on Windows


def _delete(path: Path) -> None:
    """Remove path: a link or a file as itself, a folder with what it holds (rmtree follows no link)."""
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path)


def human_size(size: int) -> str:
    """Bytes as du -h would round them, in decimal units: 0 B, 812 B, 41.2 MB."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")
