"""The engine of the working tree ("new") side by side with the engine of an earlier commit ("old",
--base, default HEAD), in one run, on the workloads of overhead.py (1000 `true` tasks at -j 8: exec,
shell, a path lock on each) and makespan.py (the 200-task DAG at -j 4, both schedules). Each round
runs every workload on both engines back to back, alternating which goes first, each run in a fresh
private home (RAM; with --disk also on disk). Bars: paired median ratio new/old <= 1.10 ("the same
figures as before"), and dynamic makespan <= 1.08x the lower bound, as in makespan.py.

The old engine runs from a detached `git worktree` of --base in a temp dir, removed at exit (also on
an error, Ctrl-C or SIGTERM). A hidden `--new REV` takes the new side from a worktree too, to check
the harness (or compare two commits) while the working tree is broken.

Which code runs: both sides are `python -m parallel_executor` with PYTHONPATH=<tree>/scripts. The
venv's editable install is a .pth line (<repo>/scripts) that `site` appends to sys.path *after* the
PYTHONPATH entries, so PYTHONPATH wins; only sys.path[0], the current directory, comes before it,
so the engines run in an empty directory. Not assumed but checked: at start each side imports the
package with exactly the same interpreter, environment and directory, prints its __file__, and the
benchmark stops unless it is that side's tree.
Run: python benchmarks/compare.py [--base REV] [--rounds N] [--disk]"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import io
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import private_home, timed, write_tasks
from makespan import lower_bound, random_dag

ROOT = Path(__file__).resolve().parent.parent
ENGINE = [sys.executable, "-m", "parallel_executor"]
BAR, BOUND_BAR = 1.10, 1.08


def git(*args: str) -> str:
    done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


def checkout(stack: contextlib.ExitStack, rev: str) -> Path:
    """A detached worktree of rev, removed when the stack closes."""
    tree = Path(tempfile.mkdtemp(prefix="pe-compare-tree-"))
    stack.callback(shutil.rmtree, tree, ignore_errors=True)
    git("worktree", "add", "--detach", "--quiet", str(tree), rev)
    stack.callback(lambda: subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)]))
    return tree


def check_import(name: str, scripts: Path, cwd: Path) -> None:
    code = "import parallel_executor; print(parallel_executor.__file__)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(scripts)})
    found = Path(done.stdout.strip()).resolve() if done.returncode == 0 else None
    print(f"{name} imports {found}")
    if found != (scripts / "parallel_executor" / "__init__.py").resolve():
        raise RuntimeError(f"{name}: PYTHONPATH={scripts} does not win: {found} {done.stderr.strip()}")


def run(scripts: Path, argv: list[str], disk: bool, cwd: Path) -> float:
    """Wall time (overhead) or makespan from the JSON summary (--json), in a fresh private home."""
    with contextlib.redirect_stdout(io.StringIO()):  # its compileall of the working tree may complain
        home = private_home(on_disk=disk)
    env = {**os.environ, "PYTHONPATH": str(scripts), "CLAUDE_CONFIG_DIR": str(home)}
    try:
        if "--json" not in argv:
            return timed([*ENGINE, "run", *argv], stderr=subprocess.PIPE, env=env, cwd=cwd)
        done = subprocess.run([*ENGINE, "run", *argv], capture_output=True, text=True, env=env, cwd=cwd)
        if done.returncode:
            raise subprocess.CalledProcessError(done.returncode, done.args, done.stdout, done.stderr)
        tasks = json.loads(done.stdout)["tasks"].values()
        start = min(datetime.fromisoformat(t["start_time"]) for t in tasks)
        return (max(datetime.fromisoformat(t["end_time"]) for t in tasks) - start).total_seconds()
    except subprocess.CalledProcessError as error:
        stderr = error.stderr.decode() if isinstance(error.stderr, bytes) else error.stderr
        raise RuntimeError(f"{scripts}: engine exited {error.returncode}: {stderr}") from None
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", default="HEAD", help="commit of the old engine [HEAD]")
    parser.add_argument("--new", help=argparse.SUPPRESS)  # a commit instead of the working tree
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--disk", action="store_true", help="also with the private homes on disk")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwinds the stack: worktrees removed
    with contextlib.ExitStack() as stack:
        scratch = Path(tempfile.mkdtemp(prefix="pe-compare-"))  # the engines' cwd, the task files
        stack.callback(shutil.rmtree, scratch, ignore_errors=True)
        (cwd := scratch / "cwd").mkdir()
        trees = {"old": checkout(stack, args.base), "new": checkout(stack, args.new) if args.new else ROOT}
        new_rev = f"{args.new} = {git('rev-parse', '--short', args.new)}" if args.new else "working tree"
        print(f"old: {args.base} = {git('rev-parse', '--short', args.base)}; new: {new_rev}")
        sides = {name: tree / "scripts" for name, tree in trees.items()}
        for name, scripts in sides.items():
            compileall.compile_dir(str(scripts), quiet=1)
            check_import(name, scripts, cwd)

        def tasks_file(tasks: list[dict[str, object]]) -> str:
            path = write_tasks(tasks)
            stack.callback(shutil.rmtree, path.parent, ignore_errors=True)
            return str(path)

        n, dag = 1000, random_dag()
        overhead = ["-j", "8", "--quiet"]
        workloads = {
            "overhead exec": [tasks_file([{"id": f"t{i}", "command": ["true"]} for i in range(n)]), *overhead],
            "overhead shell": [tasks_file([{"id": f"t{i}", "command": "true"} for i in range(n)]), *overhead],
            "overhead locks": [tasks_file([{"id": f"t{i}", "command": ["true"], "paths": [f"out/t{i}/"]}
                                           for i in range(n)]), *overhead],
        }
        dag_file = tasks_file(dag)
        for schedule in ("dynamic", "waves"):
            workloads[f"makespan {schedule}"] = [dag_file, "-j", "4", "--json", "--schedule", schedule]
        homes = {"ram": False, "disk": True} if args.disk else {"ram": False}
        keys = [(w, h) for w in workloads for h in homes]
        times: dict[tuple[str, str], dict[str, list[float]]] = {k: {"old": [], "new": []} for k in keys}
        for round_ in range(args.rounds):
            for i, (workload, home) in enumerate(keys):
                for side in ("old", "new") if (round_ + i) % 2 == 0 else ("new", "old"):
                    times[workload, home][side].append(run(sides[side], workloads[workload], homes[home], cwd))
            print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr)

    ok = True
    print(f"\n{'workload':<24} {'old (s)':>8} {'new (s)':>8}  paired new/old (bar <= {BAR:.2f}), {args.rounds} rounds")
    for (workload, home), pair in times.items():
        ratio = statistics.median(x / y for x, y in zip(pair["new"], pair["old"], strict=True))
        ok &= ratio <= BAR
        old, new = statistics.median(pair["old"]), statistics.median(pair["new"])
        print(f"{workload + ', ' + home:<24} {old:8.3f} {new:8.3f}  {ratio:.3f}x {'OK' if ratio <= BAR else 'FAIL'}")
    bound = lower_bound(dag, 4)
    print(f"\nmakespan lower bound max(critical path, work/4): {bound:.3f} s")
    for (workload, home), pair in times.items():
        if workload.startswith("makespan"):
            old, new = (statistics.median(pair[side]) / bound for side in ("old", "new"))
            bar = workload.endswith("dynamic")
            ok &= new <= BOUND_BAR or not bar
            verdict = f"(bar <= {BOUND_BAR}) {'OK' if new <= BOUND_BAR else 'FAIL'}" if bar else "(no bar)"
            print(f"{workload + ', ' + home:<24} old {old:.3f}x, new {new:.3f}x the bound {verdict}")
    print("all bars hold" if ok else "SOME BAR FAILS")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
