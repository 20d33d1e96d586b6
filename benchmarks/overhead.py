"""Per-task overhead: 1000 trivial tasks (`true`) at -j 8, side by side with `xargs -P 8` and GNU
parallel, alternating, several rounds; prints the median ratios. Bars: engine <= 2.0x xargs and
faster than GNU parallel. Then the engine's peak memory with 10,000 tasks (bar < 100 MB).

Like for like, two ways: "shell" runs the command line `true` through /bin/sh in every tool
(the engine's string command, `xargs sh -c`, GNU parallel's shell); "exec" runs the program
directly (the engine's argv command, `xargs -n 1 true`). The bars are checked on both.
Also reported, without a bar: the engine with its state on disk instead of a RAM file system (see
common.private_home), and with a path lock on every task. With --monitor, the engine also runs with
its live monitor drawing on a pseudo-terminal, against --quiet.
Run: python benchmarks/overhead.py [--rounds N] [--monitor]"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import pty
import statistics
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ENGINE, ensure_gnu_parallel, private_home, timed, write_tasks


def peak_rss(argv: list[str]) -> int:
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    watched = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            peak = max(peak, watched.memory_info().rss)
        except psutil.Error:
            break
        time.sleep(0.02)
    return peak


def on_terminal(argv: list[str]) -> float:
    """Wall time of argv with its stderr on a pseudo-terminal (so the live monitor draws), drained."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))

    def drain() -> None:
        with contextlib.suppress(OSError):
            while os.read(master, 65536):
                pass

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        return timed(argv, stderr=slave, env={**os.environ, "TERM": "xterm-256color"})
    finally:
        os.close(slave)
        reader.join(timeout=5)
        os.close(master)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--monitor", action="store_true", help="engine with its progress output on")
    args = parser.parse_args()
    n, jobs = 1000, 8
    shell_tasks = write_tasks([{"id": f"t{i}", "command": "true"} for i in range(n)])
    exec_tasks = write_tasks([{"id": f"t{i}", "command": ["true"]} for i in range(n)])
    locked_tasks = write_tasks([{"id": f"t{i}", "command": ["true"], "paths": [f"out/t{i}/"]} for i in range(n)])
    lines = ("true\n" * n).encode()
    gnu = ensure_gnu_parallel()

    disk_home = private_home(on_disk=True)
    ram_home = private_home()

    def engine(path: Path, home: Path = ram_home) -> float:
        return timed([*ENGINE, "run", str(path), "-j", str(jobs), "--quiet"], stderr=subprocess.DEVNULL,
                      env={**os.environ, "CLAUDE_CONFIG_DIR": str(home)})

    contenders = {
        "engine shell": lambda: engine(shell_tasks),
        "xargs shell": lambda: timed(["xargs", "-P", str(jobs), "-I{}", "sh", "-c", "{}"], input=lines),
        "engine exec": lambda: engine(exec_tasks),
        "xargs exec": lambda: timed(["xargs", "-P", str(jobs), "-n", "1", "true"], input=lines),
    }
    if gnu:
        contenders["gnu-parallel"] = lambda: timed([gnu, "--will-cite", "-j", str(jobs)], input=lines)
    contenders["engine exec, disk"] = lambda: engine(exec_tasks, disk_home)
    contenders["engine exec, locks"] = lambda: engine(locked_tasks)
    if args.monitor:
        contenders["engine exec+monitor"] = lambda: on_terminal([*ENGINE, "run", str(exec_tasks), "-j", str(jobs)])
    times: dict[str, list[float]] = {name: [] for name in contenders}
    names = list(contenders)
    for round_ in range(args.rounds):  # each round starts with the next contender: no fixed order bias
        for name in names[round_ % len(names):] + names[: round_ % len(names)]:
            times[name].append(contenders[name]())
    for name, values in times.items():
        print(f"{name:>19}: median {statistics.median(values):.3f} s over {args.rounds} rounds ({n} tasks, -j {jobs})")

    def ratio(a: str, b: str) -> float:
        """Median of the per-round ratios: each pair ran back to back, so a slow spell of a shared
        machine weighs on both sides of a ratio instead of on one median."""
        return statistics.median(x / y for x, y in zip(times[a], times[b], strict=True))

    ok = True
    for way in ("shell", "exec"):
        r = ratio(f"engine {way}", f"xargs {way}")
        ok &= r <= 2.0
        print(f"engine / xargs ({way}): {r:.2f}x (bar <= 2.0x) {'OK' if r <= 2.0 else 'FAIL'}")
    if gnu:
        gnu_ratio = ratio("engine shell", "gnu-parallel")
        ok &= gnu_ratio < 1
        print(f"engine / GNU parallel (shell): {gnu_ratio:.2f}x (bar < 1) {'OK' if gnu_ratio < 1 else 'FAIL'}")
    else:
        print("GNU parallel: not available on this machine, not compared")
    print(f"engine / xargs (exec) with the results on disk ({disk_home.parent}; reported, no bar): "
          f"{ratio('engine exec, disk', 'xargs exec'):.2f}x")
    print(f"engine / xargs (exec) with a path lock on every task (reported, no bar): "
          f"{ratio('engine exec, locks', 'xargs exec'):.2f}x")
    if args.monitor:
        r = ratio("engine exec+monitor", "engine exec")
        print(f"live monitor on a terminal (reported, no bar): {r:.2f}x the wall time of --quiet")
    big = write_tasks([{"id": f"t{i}", "command": ["true"]} for i in range(10_000)])
    peak = peak_rss([*ENGINE, "run", str(big), "-j", str(jobs), "--quiet"])
    print(f"engine peak RSS with 10,000 tasks: {peak / 2**20:.1f} MB (bar < 100 MB) "
          f"{'OK' if peak < 100 * 2**20 else 'FAIL'}")
    return 0 if ok and peak < 100 * 2**20 else 1


if __name__ == "__main__":
    sys.exit(main())
