"""A run's journal as Server-Sent Events (§15): one event per line of events.jsonl, in order, `id:`
its seq, resumable after any id, ending when the run ends.

The server keeps no state of its own: each stream reads the file from where it is. Streams sleep
until inotify says a run folder changed (one watcher for the whole server), so a thousand idle
followers cost nothing, and none reads more than what was appended.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from parallel_executor.system.inotify import IN_MODIFY, IN_MOVED_TO, Watcher, moved_in

LOOK_EVERY = 1.0  # seconds: a stream looks at its run's state at least this often (no inotify: its file too)
KEEPALIVE = 15.0  # seconds of silence before a comment line, so that proxies keep the stream open
BATCH = 0.05  # seconds: a busy journal wakes its streams at most this often (each wake costs every stream)


class Changes:
    """Wakes every waiting stream when a watched run folder changes: at once after a quiet spell, then at
    most once per BATCH, so that a run writing hundreds of lines a second costs a few wakes, not hundreds."""

    def __init__(self) -> None:
        self._watcher: Watcher | None = None
        self._waiters: set[asyncio.Future[None]] = set()
        self._pending: asyncio.TimerHandle | None = None
        self._woke = 0.0
        self.version = 0

    def start(self) -> None:
        self._watcher = moved_in(IN_MODIFY | IN_MOVED_TO)
        if self._watcher is not None:
            asyncio.get_running_loop().add_reader(self._watcher.fd, self._fired)

    def stop(self) -> None:
        if self._watcher is not None:
            asyncio.get_running_loop().remove_reader(self._watcher.fd)
            self._watcher.close()
            self._watcher = None

    def watch(self, folder: Path) -> None:
        if self._watcher is not None:
            with contextlib.suppress(OSError):  # too many watches: the stream looks every LOOK_EVERY s instead
                self._watcher.watch(str(folder))

    def _fired(self) -> None:
        assert self._watcher is not None
        self._watcher.names()
        if self._pending is None:
            loop = asyncio.get_running_loop()
            self._pending = loop.call_at(max(loop.time(), self._woke + BATCH), self._wake)

    def _wake(self) -> None:
        self._pending = None
        self._woke = asyncio.get_running_loop().time()
        self.version += 1
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    async def wait(self, timeout: float, seen: int) -> None:
        """Until a change after `seen` (a version read before the stream last read its file), or timeout."""
        if self.version != seen:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.add(waiter)
        try:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(waiter, timeout)  # a future: no task made per wait
        finally:
            self._waiters.discard(waiter)


def parse_after(value: str | None) -> int:
    """Last-Event-ID (or ?after=): the last seq the client has; ValueError when it is not one."""
    if value is None or value == "":
        return 0
    if not value.isdigit() or len(value) > 18:
        raise ValueError(value)
    return int(value)


async def stream(run_dir: Path, after: int, changes: Changes, engine_gone: Callable[[], bool]) -> AsyncIterator[bytes]:
    """The journal's events with seq > after, as SSE bytes; then an `end` event once the journal's
    last event is `run-finished` (or its engine is gone without one) and every line has been sent."""
    changes.watch(run_dir)
    fd = os.open(run_dir / "events.jsonl", os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        loop = asyncio.get_running_loop()
        journal, quiet_since, looked = _Journal(after), loop.time(), loop.time()
        while True:
            seen = changes.version
            if data := _read_all(fd):
                if out := journal.take(data):
                    quiet_since = loop.time()
                    yield out
                continue
            final = journal.final
            if final is None and loop.time() - looked >= LOOK_EVERY:
                looked = loop.time()
                final = "engine gone" if engine_gone() else None
            if final is not None and not _read_more(fd):
                yield b"event: end\ndata: " + json.dumps({"state": final}).encode() + b"\n\n"
                return
            if loop.time() - quiet_since >= KEEPALIVE:
                quiet_since = loop.time()
                yield b": keepalive\n\n"
            await changes.wait(LOOK_EVERY, seen)
    finally:
        os.close(fd)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def _read_more(fd: int) -> bool:
    """Has the file grown past where this stream is? (Then there is more to send before the end.)"""
    return os.fstat(fd).st_size > os.lseek(fd, 0, os.SEEK_CUR)


class _Journal:
    """Whole lines to SSE events; remembers the last line's state when it ended the run."""

    def __init__(self, after: int) -> None:
        self.after, self.rest, self.line_number = after, b"", 0
        self.final: str | None = None

    def take(self, data: bytes) -> bytes:
        lines = (self.rest + data).split(b"\n")
        self.rest = lines.pop()
        out = []
        for line in lines:
            self.line_number += 1
            parsed = _parsed(line)
            if parsed is None:
                continue  # a torn line after a power cut: never a whole event
            seq, final, event = parsed
            self.final = final
            seq = seq if seq is not None else self.line_number  # a journal from before seq: its line
            if seq > self.after:
                out.append(event if event[:4] == b"id: " else b"id: %d\n%s" % (seq, event))
        return b"".join(out)


@functools.lru_cache(maxsize=8192)
def _parsed(line: bytes) -> tuple[int | None, str | None, bytes] | None:
    """A journal line, parsed once for every stream that reads it: (seq, final state, SSE bytes)."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    if not isinstance(event, dict):
        return None
    kind = str(event.get("event", "message"))
    final = str(event.get("state")) if kind == "run-finished" else None  # a resume carries on
    seq = event.get("seq")
    body = b"event: %s\ndata: %s\n\n" % (kind.replace("\n", " ").encode(), line.strip())
    return (seq, final, b"id: %d\n%s" % (seq, body)) if isinstance(seq, int) else (None, final, body)
