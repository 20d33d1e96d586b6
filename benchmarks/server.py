"""Watchers do not slow the engine (§15): a 1,000-task run (`sleep` 0.01-0.03 s each, a few dependencies,
-j 8, about 3 s and 2,000 journal events) with 50 clients following its event stream, side by side with
the same run and no server, alternating, several rounds. Bar: the run's wall time with the server and
its 50 watchers <= 1.05 x without (median of the per-round ratios); exit 1 when missed.
Also reported, without a bar: the server's CPU seconds while the run runs (and as a share of the run's
wall time), the events' delay (p50, p99) and that every client received every event.

Without the server, the run is `run FILE -q -j 8`; with it, a fresh `serve --port 0` per round starts
the same run through `POST /api/runs` and 50 clients open `GET /api/runs/{id}/events` as soon as the
run id is known (a stream starts from the journal's first line, so nothing is missed). The clients
are cheap, so as not to take the CPU the engine needs: one thread, raw sockets and a selector, the
chunked HTTP/1.1 body decoded by hand; each finds an event's "time" in its data line without parsing
the JSON (client 0 also parses every data line). Wall time, both sides alike = the journal's first
event (run-started) to its run-finished event. Server CPU = the serve process's user + system time
(all its threads) from the POST's answer until the last client has its `end` event. Event delay =
the moment a client read the event off its socket minus the "time" the engine wrote in it (to the
millisecond, truncated: about +0.5 ms of bias), over the events written after the client asked for
the stream (the ones before are a backlog, counted apart); and apart, the `end` event's delay after
the journal's run-finished. Every client must get every journal line and then `end`, in order:
anything else is an error. The clients share the machine with the engine, so their own CPU time is
reported too: it weighs on the ratio as the server's does.

The Claude home is a temp directory on disk by default (where a user's journal is); --ram puts it
on a RAM file system (see common.private_home). One warm-up run (not counted) first, so that every
counted run finds the same history. --profile FILE runs each server under cProfile (stats to FILE.N).
Run: python benchmarks/server.py [--rounds N] [--clients 50] [--tasks 1000] [--slots 8] [--ram] [--profile FILE]"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ENGINE, private_home, write_tasks

BAR = 1.05
FOLLOW_WITHIN = 300.0  # seconds for the clients to see a run end before the benchmark gives up
EVENT = re.compile(rb'id: ([0-9]+)\nevent: [^\n]*\ndata: \{"seq": [0-9]+, "time": "([^"]{29})"')
LEFT: list[subprocess.Popen[bytes] | tuple[int, str]] = []  # servers, and (pid, run id) of engines, to end on a stop


def task_list(n: int) -> list[dict[str, Any]]:
    """n tasks of 10-30 ms; every 50th waits for the three before it (a few joins in the graph)."""
    tasks: list[dict[str, Any]] = []
    for i in range(n):
        task: dict[str, Any] = {"id": f"t{i}", "command": ["sleep", f"0.0{1 + i % 3}"]}
        if i >= 3 and i % 50 == 0:
            task["blockedBy"] = [f"t{i - 3}", f"t{i - 2}", f"t{i - 1}"]
        tasks.append(task)
    return tasks


def run_id() -> str:
    now = time.time()
    return time.strftime("%Y%m%d-%H%M%S", time.localtime(now)) + f".{int(now % 1 * 1000):03d}-{os.urandom(2).hex()}"


@lru_cache(maxsize=4096)
def _second(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def epoch(stamp: str) -> float:
    """The engine's time stamp ("2026-01-02T03:04:05.678+01:00") as seconds; the second is parsed once."""
    return _second(stamp[:19] + stamp[23:]) + int(stamp[20:23]) / 1000


def journal(home: Path, run: str) -> tuple[int, float, float]:
    """The run's journal: its number of lines, its wall time (run-started to run-finished), its end time."""
    lines = (home / "memory" / "temp" / "runs" / run / "events.jsonl").read_bytes().splitlines()
    first, last = json.loads(lines[0]), json.loads(lines[-1])
    if first["event"] != "run-started" or last["event"] != "run-finished" or last["state"] != "success":
        raise SystemExit(f"run {run}: its journal does not go from run-started to a successful run-finished")
    return len(lines), epoch(last["time"]) - epoch(first["time"]), epoch(last["time"])


def baseline(home: Path, tasks: Path, slots: int) -> float:
    run = run_id()
    engine = subprocess.Popen([*ENGINE, "run", str(tasks), "-q", "-j", str(slots), "--run-id", run],
                              cwd=tasks.parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    LEFT.append(engine)
    if engine.wait() != 0:
        raise SystemExit(f"the run without server exited {engine.returncode}")
    LEFT.remove(engine)
    return journal(home, run)[1]


@dataclass
class Client:
    """One follower of the event stream: a non-blocking socket, its HTTP response decoded as it comes."""

    number: int
    sock: socket.socket
    asked_at: float = 0.0
    head: bytes = b""
    chunked: bool | None = None  # None until the response's head is read
    raw: bytes = b""
    left: int = 0  # bytes of the current chunk still to come
    crlf: bool = False  # a chunk's data ended: its CRLF is next
    text: bytes = b""  # decoded body not yet split into events
    ids: list[int] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)
    backlog: int = 0
    ended: bool = False
    ended_at: float = 0.0

    def feed(self, data: bytes, now: float) -> None:
        if self.chunked is None:
            self.head += data
            if b"\r\n\r\n" not in self.head:
                return
            head, data = self.head.split(b"\r\n\r\n", 1)
            status = head.split(b"\r\n", 1)[0]
            if b" 200 " not in status + b" ":
                raise SystemExit(f"client {self.number}: {status.decode(errors='replace')}")
            self.chunked = b"transfer-encoding: chunked" in head.lower()
        self.text += self._unchunk(data) if self.chunked else data
        *blocks, self.text = self.text.split(b"\n\n")
        for block in blocks:
            self._event(block, now)

    def _unchunk(self, data: bytes) -> bytes:
        raw, pos, out = self.raw + data, 0, []
        while True:
            if self.left:
                piece = raw[pos:pos + self.left]
                out.append(piece)
                pos += len(piece)
                self.left -= len(piece)
                if self.left:
                    break
                self.crlf = True
            if self.crlf:
                if len(raw) - pos < 2:
                    break
                pos, self.crlf = pos + 2, False
            end = raw.find(b"\r\n", pos)
            if end < 0:
                break
            size = int(raw[pos:end].split(b";")[0], 16)
            pos = end + 2
            if size == 0:
                break
            self.left = size
        self.raw = raw[pos:]
        return b"".join(out)

    def _event(self, block: bytes, now: float) -> None:
        if self.ended:
            raise SystemExit(f"client {self.number}: an event after the end")
        if block.startswith(b"id: "):
            found = EVENT.match(block)
            if found is None:
                raise SystemExit(f"client {self.number}: not an event of the journal: {block[:200]!r}")
            self.ids.append(int(found[1]))
            if self.number == 0 and json.loads(block.split(b"\ndata: ", 1)[1])["seq"] != self.ids[-1]:
                raise SystemExit(f"client 0: event {self.ids[-1]} carries another seq")
            written = epoch(found[2].decode())
            if written >= self.asked_at:
                self.delays.append(now - written)
            else:
                self.backlog += 1
        elif block.startswith(b"event: end\n"):
            self.ended, self.ended_at = True, now
        elif not block.startswith(b":"):  # a keepalive comment is the only other thing allowed
            raise SystemExit(f"client {self.number}: not an event: {block[:200]!r}")


def follow(port: int, token: str, run: str, clients: int) -> list[Client]:
    """`clients` streams of the run's events, followed in this thread until each has its `end`."""
    request = (f"GET /api/runs/{run}/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
               "Accept: text/event-stream\r\n\r\n").encode()
    chooser = selectors.DefaultSelector()
    followers = []
    for number in range(clients):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setblocking(False)
        client = Client(number, sock, asked_at=time.time())
        sock.send(request)
        chooser.register(sock, selectors.EVENT_READ, client)
        followers.append(client)
    open_ = clients
    deadline = time.monotonic() + FOLLOW_WITHIN
    try:
        while open_:
            if time.monotonic() > deadline:
                raise SystemExit(f"the streams did not end within {FOLLOW_WITHIN:.0f} s")
            for key, _ in chooser.select(timeout=1.0):
                client = key.data
                data = client.sock.recv(1 << 18)
                now = time.time()
                if not data:
                    raise SystemExit(f"client {client.number}: the server closed the stream before its end")
                client.feed(data, now)
                if client.ended:
                    chooser.unregister(client.sock)
                    open_ -= 1
    finally:
        for client in followers:
            client.sock.close()
        chooser.close()
    return followers


def start_server(env: dict[str, str], profile: str | None) -> tuple[subprocess.Popen[bytes], int, str]:
    argv = ([sys.executable, "-m", "cProfile", "-o", profile, "-m", "parallel_executor"] if profile else ENGINE)
    server = subprocess.Popen([*argv, "serve", "--port", "0"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL)
    LEFT.append(server)
    assert server.stdout is not None
    line = server.stdout.readline().decode()
    if not line.startswith("dashboard: http://127.0.0.1:"):
        raise SystemExit(f"serve said {line!r}")
    address, token = line.split("http://127.0.0.1:", 1)[1].strip().split("/#token=")
    return server, int(address), token


def stop_server(server: subprocess.Popen[bytes]) -> None:
    server.send_signal(signal.SIGINT)  # uvicorn ends cleanly on it (and cProfile writes its stats)
    try:
        server.wait(10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
    LEFT.remove(server)


def with_server(home: Path, tasks: Path, slots: int, clients: int, profile: str | None) -> dict[str, Any]:
    server, port, token = start_server(dict(os.environ, CLAUDE_CONFIG_DIR=str(home)), profile)
    try:
        watched = psutil.Process(server.pid)
        api = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        api.request("POST", "/api/runs", json.dumps({"task_file": str(tasks), "options": {"max_parallel": slots}}),
                    {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        answer = api.getresponse()
        body = json.loads(answer.read())
        api.close()
        if answer.status != 202:
            raise SystemExit(f"POST /api/runs: {answer.status} {body}")
        cpu = watched.cpu_times()
        mine = os.times()
        run = body["run_id"]
        status = json.loads((home / "memory" / "temp" / "runs" / run / "status.json").read_text())
        LEFT.append((status["pid"], run))
        followers = follow(port, token, run, clients)
        after = watched.cpu_times()
        mine_after = os.times()
        with contextlib.suppress(psutil.NoSuchProcess):  # the engine's last writes, after its run-finished
            psutil.Process(status["pid"]).wait(60)
        LEFT.remove((status["pid"], run))
    finally:
        if server in LEFT:
            stop_server(server)
    lines, wall, finished = journal(home, run)
    for client in followers:
        if client.ids != list(range(1, lines + 1)) or not client.ended:
            raise SystemExit(f"client {client.number}: {len(client.ids)} events (ended: {client.ended}), "
                             f"not the journal's {lines} lines in order and an end")
    return {"wall": wall, "cpu": (after.user + after.system) - (cpu.user + cpu.system),
            "clients_cpu": (mine_after.user + mine_after.system) - (mine.user + mine.system),
            "delays": [d for c in followers for d in c.delays], "ends": [c.ended_at - finished for c in followers],
            "backlog": sum(c.backlog for c in followers),
            "events": lines + 1}


def cleanup() -> None:
    for left in LEFT:
        with contextlib.suppress(OSError, psutil.Error):
            if isinstance(left, tuple):  # an engine `serve` started, in a session of its own: it and its tasks
                pid, run = left
                if run in " ".join(psutil.Process(pid).cmdline()):
                    os.killpg(pid, signal.SIGKILL)
            else:
                left.kill()
                left.wait()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--slots", type=int, default=8)
    parser.add_argument("--ram", action="store_true", help="the Claude home on a RAM file system, not on disk")
    parser.add_argument("--profile", metavar="FILE", help="run each server under cProfile; stats to FILE.N")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwinds the stack: servers and runs ended
    home = private_home(on_disk=not args.ram)
    tasks = write_tasks(task_list(args.tasks))
    alone: list[float] = []
    served: list[dict[str, Any]] = []
    try:
        baseline(home, tasks, args.slots)  # warm-up: from here on every run finds the same history
        for round_ in range(args.rounds):  # alternate which side goes first: no fixed order bias
            profile = f"{args.profile}.{round_}" if args.profile else None
            if round_ % 2:
                served.append(with_server(home, tasks, args.slots, args.clients, profile))
                alone.append(baseline(home, tasks, args.slots))
            else:
                alone.append(baseline(home, tasks, args.slots))
                served.append(with_server(home, tasks, args.slots, args.clients, profile))
            print(f"round {round_ + 1}: {alone[-1]:.3f} s alone, {served[-1]['wall']:.3f} s served "
                  f"(server CPU {served[-1]['cpu']:.2f} s)", flush=True)
    finally:
        cleanup()
        shutil.rmtree(tasks.parent, ignore_errors=True)
    ratios = [s["wall"] / a for s, a in zip(served, alone, strict=True)]
    ratio = statistics.median(ratios)
    delays = [d for s in served for d in s["delays"]]
    cpu = statistics.median(s["cpu"] for s in served)
    wall = statistics.median(s["wall"] for s in served)
    where = "RAM" if args.ram else "disk"
    print(f"{args.tasks} tasks at -j {args.slots}, {args.clients} clients, {args.rounds} rounds, the home on {where} "
          f"({home.parent})")
    print(f"run wall time without server: median {statistics.median(alone):.3f} s")
    print(f"run wall time with server and {args.clients} watchers: median {wall:.3f} s")
    print(f"server CPU while the run ran: median {cpu:.2f} s ({cpu / wall:.0%} of the run's wall time); "
          f"the clients' own CPU: median {statistics.median(s['clients_cpu'] for s in served):.2f} s")
    print(f"event delay over {len(delays)} live events: p50 {percentile(delays, 0.5) * 1000:.1f} ms, "
          f"p99 {percentile(delays, 0.99) * 1000:.1f} ms, max {max(delays) * 1000:.1f} ms "
          f"(backlog read at connect: {sum(s['backlog'] for s in served)} events, not counted)")
    ends = [d for s in served for d in s["ends"]]
    print(f"the end event, after run-finished: p50 {percentile(ends, 0.5) * 1000:.1f} ms, "
          f"max {max(ends) * 1000:.1f} ms")
    print(f"every client received all {served[0]['events']} events (journal lines + end), in order")
    ok = ratio <= BAR
    print(f"wall with server / without: {ratio:.3f}x (per round: {', '.join(f'{r:.3f}' for r in ratios)}) "
          f"(bar <= {BAR}x) {'OK' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
