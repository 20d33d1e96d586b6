"""Makespan under a rate limit: 40 agent tasks of 1 s at -j 12 against a fake agent
(benchmarks/limited_agent.py) that answers with Claude's real 429 result whenever K = 4 of its
calls are already in flight. Side by side: the engine with adaptive concurrency on, the same run
with it off (fixed -j 12, same transient retries), and the ideal ceil(40 / K) x 1 s = 10 s
(computed, not run); for reference, also fixed -j K (a user who knows the limit). Reports each
run's makespan, the 429s it suffered, its attempts and failed tasks, and its ratio to the ideal.
Goal: adaptive <= 1.3x the ideal with no failed task; exit 1 when missed.

Every run has its own HOME, XDG_STATE_HOME and CLAUDE_CONFIG_DIR (temp dirs, on a RAM file
system when there is one): the adaptive level is shared between the engine's concurrent runs
through a state file, and one run must not start from another's level. The config sets
retry_backoff_seconds to 0.25 (transient retries wait 0.25, 0.5, 1, 2, 4 s; the shipped 2 s
would measure the backoff, not the concurrency policy), retries 0 (only transient retries),
and max_parallel_tasks to the -j asked for, so -j 12 is really 12.
Makespan = the summary's wall_time; the 429s are counted by the fake agent itself (calls.log).
Run: python benchmarks/ratelimit.py [--rounds N] [--tasks 40] [--slots 12] [--k 4] [--timeline] [--keep]
     [--adaptive-only]"""

from __future__ import annotations

import argparse
import compileall
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ENGINE

HERE = Path(__file__).resolve().parent
AGENT = HERE / "limited_agent.py"


@dataclass
class Outcome:
    makespan: float  # the summary's wall_time
    span: float  # first task start to last task end
    process: float  # the engine process, start to exit
    rejected: int  # 429s the fake agent answered
    attempts: int  # as the engine counts them
    failed: int  # tasks that did not succeed
    transient: int  # tasks whose last error the engine classed transient
    unretried: int  # failed tasks classed transient that did not get all their transient retries
    busy: float  # seconds of successful agent work, for the limit's utilisation
    root: Path
    calls: list[list[str]] = field(repr=False, default_factory=list)
    levels: list[tuple[float, int]] = field(repr=False, default_factory=list)  # (Unix time, agents at once)


def scratch_parent() -> Path | None:
    ram = Path("/dev/shm")
    return ram if ram.is_dir() and os.access(ram, os.W_OK) else None


def prepare(base: Path, name: str, args: argparse.Namespace, adaptive: bool,
            jobs: int) -> tuple[list[str], dict[str, str], Path]:
    root = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=base))
    for sub in ("home", "state", "claude", "agent", "work"):
        (root / sub).mkdir()
    config = {
        "max_concurrent": jobs,
        "max_parallel_tasks": max(jobs, 12),
        "retries": 0,
        "transient_retries": args.transient_retries,
        "retry_backoff_seconds": args.backoff,
        "adaptive_concurrency": adaptive,
        "runners": {"limited": {"command": [sys.executable, "-I", "-S", str(AGENT)], "prompt_args": ["--", "{prompt}"],
                                "output": "claude-stream"}},
    }
    (root / "config.json").write_text(json.dumps(config, indent=1))
    tasks = [{"id": f"a{i:02d}", "prompt": f"task {i}: work for a while", "runner": "limited"}
             for i in range(1, args.tasks + 1)]
    (root / "tasks.json").write_text(json.dumps({"defaults": {"retries": 0}, "tasks": tasks}, indent=1))
    env = {**os.environ, "HOME": str(root / "home"), "XDG_STATE_HOME": str(root / "state"),
           "CLAUDE_CONFIG_DIR": str(root / "claude"), "LIMITED_AGENT_DIR": str(root / "agent"),
           "LIMITED_AGENT_SLOTS": str(args.k), "LIMITED_AGENT_SECONDS": str(args.seconds)}
    env.pop("CLAUDECODE", None)
    argv = [*ENGINE, "run", str(root / "tasks.json"), "--config", str(root / "config.json"), "-j", str(jobs)]
    return argv, env, root


def run_once(base: Path, name: str, args: argparse.Namespace, adaptive: bool, jobs: int) -> Outcome:
    argv, env, root = prepare(base, name, args, adaptive, jobs)
    start = time.perf_counter()
    done = subprocess.run([*argv, "--json"], capture_output=True, text=True, env=env, cwd=root / "work")
    process = time.perf_counter() - start
    try:
        summary: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError:
        sys.exit(f"{name}: the engine printed no JSON summary (exit {done.returncode}); its stderr:\n"
                 f"{done.stderr[-3000:]}\n(state kept in {root})")
    tasks = list(summary.get("tasks", {}).values())
    log = root / "agent" / "calls.log"
    calls = [line.split() for line in log.read_text().splitlines()] if log.exists() else []
    starts = [datetime.fromisoformat(t["start_time"]) for t in tasks if t.get("start_time")]
    ends = [datetime.fromisoformat(t["end_time"]) for t in tasks if t.get("end_time")]
    return Outcome(
        makespan=float(summary.get("wall_time", process)),
        span=(max(ends) - min(starts)).total_seconds() if starts and ends else process,
        process=process,
        rejected=sum(1 for c in calls if c[0] == "429"),
        attempts=sum(int(t.get("attempts", 1)) for t in tasks),
        failed=sum(1 for t in tasks if t.get("status") != "success"),
        transient=sum(1 for t in tasks if t.get("error_class") == "transient"),
        unretried=sum(1 for t in tasks if t.get("status") != "success" and t.get("error_class") == "transient"
                      and int(t.get("attempts", 1)) <= args.transient_retries),
        busy=sum(float(c[2]) - float(c[1]) for c in calls if c[0] == "ok"),
        root=root, calls=calls, levels=levels(root))


def levels(root: Path) -> list[tuple[float, int]]:
    """The agents-at-once level as the run's journal says it moved ("at most N at once", "back to N")."""
    moves = []
    for journal in (root / "claude").glob("memory/temp/runs/*/events.jsonl"):
        for line in journal.read_text().splitlines():
            event = json.loads(line)
            if event.get("event") == "agents" and (m := re.search(r"at most (\d+)|back to (\d+)", str(event))):
                moves.append((datetime.fromisoformat(event["time"]).timestamp(), int(m[1] or m[2])))
    return moves


def timeline(outcome: Outcome, k: int, step: float = 1.0) -> None:
    """Per time step: agent calls started, 429s among them, the mean number in flight (of K), and the
    engine's adaptive level (lowest and highest in the step, from the run's journal)."""
    if not outcome.calls:
        print("    (no calls logged)")
        return
    t0 = min(float(c[1]) for c in outcome.calls)
    t1 = max(float(c[2] if c[0] == "ok" else c[1]) for c in outcome.calls)
    print(f"    {'t (s)':>7} {'calls':>6} {'429s':>5} {'in flight (of ' + str(k) + ')':>17} {'level':>6}")
    level = "-"
    for i in range(math.ceil((t1 - t0) / step)):
        a, b = t0 + i * step, t0 + (i + 1) * step
        started = [c for c in outcome.calls if a <= float(c[1]) < b]
        busy = sum(max(0.0, min(b, float(c[2])) - max(a, float(c[1]))) for c in outcome.calls if c[0] == "ok")
        moved = [n for t, n in outcome.levels if a <= t < b]
        if moved:
            level = f"{min(moved)}-{max(moved)}" if min(moved) != max(moved) else str(moved[0])
        print(f"    {i * step:>7.1f} {len(started):>6} {sum(c[0] == '429' for c in started):>5} {busy / step:>17.2f} "
              f"{level:>6}")
        if moved:
            level = str(moved[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="median of N rounds (default 3)")
    parser.add_argument("--tasks", type=int, default=40, help="agent tasks (default 40)")
    parser.add_argument("--slots", "-j", type=int, default=12, help="-j given to the engine (default 12)")
    parser.add_argument("--k", type=int, default=4, help="calls the fake agent allows in flight (default 4)")
    parser.add_argument("--seconds", type=float, default=1.0, help="each task's work (default 1 s)")
    parser.add_argument("--backoff", type=float, default=0.25, help="config retry_backoff_seconds (default 0.25)")
    parser.add_argument("--transient-retries", type=int, default=5, help="config transient_retries (default 5)")
    parser.add_argument("--goal", type=float, default=1.3, help="adaptive makespan / ideal at most (default 1.3)")
    parser.add_argument("--no-reference", action="store_true", help="skip the fixed -j K reference run")
    parser.add_argument("--adaptive-only", action="store_true",
                        help="run only the adaptive engine (to try a policy; no comparison, the goal still checked)")
    parser.add_argument("--timeline", action="store_true", help="print each run's calls, 429s and in-flight per second")
    parser.add_argument("--keep", action="store_true",
                        help="keep every run's state (events.jsonl, results) and print where")
    parser.add_argument("--dry-run", action="store_true", help="only check the config and task file with run --dry-run")
    args = parser.parse_args()
    compileall.compile_dir(str(HERE.parent / "scripts"), quiet=1)
    base = Path(tempfile.mkdtemp(prefix="pe-ratelimit-", dir=scratch_parent()))
    try:
        return measure(args, base)
    finally:
        if args.keep:
            print(f"state kept in {base} (each run: claude/memory/temp/runs/<run_id>/events.jsonl, agent/calls.log)")
        else:
            shutil.rmtree(base, ignore_errors=True)


def measure(args: argparse.Namespace, base: Path) -> int:
    ideal = math.ceil(args.tasks / args.k) * args.seconds
    modes: dict[str, tuple[bool, int]] = {
        f"adaptive on, -j {args.slots}": (True, args.slots),
        f"adaptive off, fixed -j {args.slots}": (False, args.slots),
    }
    if not args.no_reference and not args.adaptive_only:
        modes[f"fixed -j {args.k} (knows K; reference)"] = (False, args.k)
    if args.adaptive_only:
        del modes[f"adaptive off, fixed -j {args.slots}"]
    if args.dry_run:
        argv, env, _ = prepare(base, "dry", args, True, args.slots)
        done = subprocess.run([*argv, "--dry-run"], capture_output=True, text=True, env=env)
        print(done.stdout[-3000:], done.stderr[-3000:], sep="\n")
        return done.returncode
    names = list(modes)
    results: dict[str, list[Outcome]] = {name: [] for name in names}
    for round_ in range(args.rounds):  # each round starts with the next mode: no fixed order bias
        for name in names[round_ % len(names):] + names[: round_ % len(names)]:
            adaptive, jobs = modes[name]
            o = run_once(base, "adaptive" if adaptive else f"fixed-j{jobs}", args, adaptive, jobs)
            results[name].append(o)
            print(f"round {round_ + 1} {name}: {o.makespan:.2f} s ({o.makespan / ideal:.2f}x), {o.rejected} 429s, "
                  f"{o.attempts} attempts, {o.failed} failed, limit busy {o.busy / (args.k * o.makespan):.0%}"
                  + (f"  [{o.root}]" if args.keep else ""), flush=True)
            if o.unretried:
                print(f"  engine anomaly: {o.unretried} tasks failed with a transient error before using their "
                      f"{args.transient_retries} transient retries", flush=True)
            if args.timeline:
                timeline(o, args.k)

    def med(name: str, attr: str) -> float:
        return float(statistics.median(getattr(o, attr) for o in results[name]))

    print()
    print(f"{args.tasks} agent tasks of {args.seconds:g} s, -j {args.slots}, the agent allows K = {args.k} in flight; "
          f"transient_retries {args.transient_retries}, retry_backoff_seconds {args.backoff:g}; "
          f"median of {args.rounds} round{'s' * (args.rounds != 1)}")
    header = f"{'run':<36} {'makespan':>9} {'x ideal':>8} {'429s':>6} {'attempts':>9} {'failed':>7} {'limit busy':>11}"
    print(header)
    print("-" * len(header))
    print(f"{f'ideal: ceil({args.tasks} / {args.k}) x {args.seconds:g} s':<36} {ideal:>7.2f} s {1:>7.2f}x "
          f"{0:>6} {args.tasks:>9} {0:>7} {'100%':>11}")
    for name in names:
        m = med(name, "makespan")
        busy = statistics.median(o.busy / (args.k * o.makespan) for o in results[name])
        print(f"{name:<36} {m:>7.2f} s {m / ideal:>7.2f}x {med(name, 'rejected'):>6g} {med(name, 'attempts'):>9g} "
              f"{med(name, 'failed'):>7g} {busy:>11.0%}")
    on = names[0]
    ratio = med(on, "makespan") / ideal
    failed = med(on, "failed")
    ok = ratio <= args.goal and failed == 0
    print()
    print(f"adaptive / ideal: {ratio:.2f}x (goal <= {args.goal:g}x{', no failed task' if failed else ''}) "
          f"{'PASS' if ok else 'FAIL'}")
    for name in names:
        if med(name, "failed"):
            print(f"note: {name} had {med(name, 'failed'):g} failed tasks (transient retries used up): its makespan "
                  f"counts only the tasks that succeeded, and is not comparable")
    if not args.adaptive_only:
        off = names[1]
        done_on, done_off = (args.tasks - med(n, "failed") for n in (on, off))
        line = (f"adaptive on vs off: {done_on:g} vs {done_off:g} of {args.tasks} tasks done, "
                f"{med(on, 'rejected'):g} vs {med(off, 'rejected'):g} 429s, "
                f"{med(on, 'attempts'):g} vs {med(off, 'attempts'):g} attempts")
        if not med(on, "failed") and not med(off, "failed"):
            line += f", {med(on, 'makespan') / med(off, 'makespan'):.2f}x the makespan"
        print(line)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
