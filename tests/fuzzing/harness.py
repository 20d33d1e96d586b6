"""Run the command line in this process, many times a second, each time in a fresh sandbox.

A sandbox is a temp dir holding the files of one example (its working dir) and its own
CLAUDE_CONFIG_DIR and XDG_STATE_HOME. `invoke` calls `parallel_executor.cli.main` with stdout
and stderr captured the way a real process has them (stdout strict UTF-8, stderr
backslashreplace), a watchdog that sends SIGINT to a call that hangs, and afterwards puts back
what a crashing engine could leave changed in this process (environment, signal handlers,
working directory, frozen gc, unreaped children).

Every failure carries a reproducer: a shell snippet that recreates the example's files and runs
the same command. An exception escaping `main` is re-raised as it is (so Hypothesis tells
distinct bugs apart by where they were raised), with the reproducer attached as a note; a
broken promise is a `Violation` subclass named after the promise.
"""

from __future__ import annotations

import contextlib
import gc
import io
import os
import shlex
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from parallel_executor.cli import main

from tests.fuzzing.jsontext import compact

ROOT_MARK = "@ROOT@"  # stands for the sandbox's absolute path inside planted files
CALL_LIMIT = 20.0  # seconds before a call counts as hung (then SIGINT; a second one 10 s later)...
SHRINK_LIMIT = 5.0  # ...once one has hung: every call here takes well under a second, and shrinking a hang
_hangs_seen = 0  # tries many variants of it


class Violation(AssertionError):
    """A promise of PRODUCT.md broken without an exception."""


_KINDS: dict[str, type[Violation]] = {}


def violation(kind: str, message: str) -> Violation:
    """An AssertionError of a class named after kind, so each kind is reported as its own bug."""
    if kind not in _KINDS:
        name = "".join(part.capitalize() for part in kind.replace(":", "-").replace(".", "-").split("-"))
        _KINDS[kind] = type(name, (Violation,), {})
    return _KINDS[kind](f"[{kind}] {message}")


@dataclass
class Planted:
    """A file (or a directory holding `inner`) put in place before the command, relative to the sandbox."""

    path: str
    content: bytes = b""
    directory: bool = False
    inner: str = "left-by-user.txt"
    strict: bool = True  # content the engine cannot use: it must survive, in place or moved aside
    label: str = ""
    append_ok: bool = False  # a journal the command may legitimately append to

    def put(self, root: Path) -> None:
        target = root / self.path
        target.parent.mkdir(parents=True, exist_ok=True)
        data = self.content.replace(ROOT_MARK.encode(), str(root).encode())
        if self.directory:
            target.mkdir(exist_ok=True)
            (target / self.inner).write_bytes(data)
        else:
            target.write_bytes(data)

    def script(self) -> str:
        data = compact(self.content)
        if self.directory:
            return f"put({self.path + '/' + self.inner!r}, {data})  # a directory where a file belongs"
        return f"put({self.path!r}, {data})"


@dataclass
class Example:
    """The files of one example and the command run on them; its repr is the reproducer."""

    files: list[Planted] = field(default_factory=list)
    argv: list[str] = field(default_factory=list)
    home_exists: bool = True
    notes: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        return "\n" + self.reproducer()

    def reproducer(self) -> str:
        lines = ["# reproducer: run in an empty directory (CLAUDE_CONFIG_DIR is ./claude)",
                 "export CLAUDE_CONFIG_DIR=$PWD/claude XDG_STATE_HOME=$PWD/xdg",
                 "python3 - <<'EOF'", "import os", "ROOT = os.getcwd().encode()",
                 "def put(path, data):",
                 "    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)",
                 f"    open(path, 'wb').write(data.replace({ROOT_MARK.encode()!r}, ROOT))",
                 *(["os.makedirs('claude', exist_ok=True)"] if self.home_exists and not self._home_is_file() else []),
                 *(f.script() for f in self.files), "EOF",
                 "parallel-executor " + shlex.join(self.argv)]
        lines += [f"# {note}" for note in self.notes]
        return "\n".join(lines)

    def _home_is_file(self) -> bool:
        return any(f.path == "claude" for f in self.files)


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str
    seconds: float
    hung: bool = False


class Sandbox:
    """A fresh working dir and Claude home for one example; the process is put back as it was after."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="pe-fuzz-")).resolve()
        self.home = self.root / "claude"

    def __enter__(self) -> Sandbox:
        self._environ = dict(os.environ)
        self._cwd = os.getcwd()
        os.environ["CLAUDE_CONFIG_DIR"] = str(self.home)
        os.environ["XDG_STATE_HOME"] = str(self.root / "xdg")
        os.environ.pop("PARALLEL_RUN_ID", None)
        os.chdir(self.root)
        return self

    def __exit__(self, *exc: object) -> None:
        os.chdir(self._cwd)
        os.environ.clear()
        os.environ.update(self._environ)
        shutil.rmtree(self.root, ignore_errors=True)

    def plant(self, example: Example) -> None:
        if example.home_exists:
            self.home.mkdir(exist_ok=True)
        for planted in example.files:
            planted.put(self.root)

    def path(self, relative: str) -> Path:
        return self.root / relative


@contextlib.contextmanager
def _process_state_restored() -> Iterator[None]:
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD)}
    umask = os.umask(0o22)
    os.umask(umask)
    wakeup = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(wakeup)
    try:
        yield
    finally:
        for sig, handler in handlers.items():
            if signal.getsignal(sig) is not handler and handler is not None:
                signal.signal(sig, handler)
        with contextlib.suppress(ValueError):
            signal.set_wakeup_fd(wakeup)
        os.umask(umask)
        gc.unfreeze()  # the engine freezes its plan for its lifetime: a process exit ends that
        _reap_children()


def _reap_children() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def invoke(example: Example, argv: Sequence[str] | None = None, limit: float | None = None) -> Outcome:
    """Run `parallel-executor ARGV` in this process; an exception escaping main is re-raised with the reproducer."""
    global _hangs_seen
    argv = list(example.argv if argv is None else argv)
    limit = limit or (SHRINK_LIMIT if _hangs_seen else CALL_LIMIT)
    out_bytes, err_bytes = io.BytesIO(), io.BytesIO()
    out = io.TextIOWrapper(out_bytes, encoding="utf-8", errors="strict", write_through=True)
    err = io.TextIOWrapper(err_bytes, encoding="utf-8", errors="backslashreplace", write_through=True)
    watch = _Watchdog(limit)
    started = time.monotonic()
    try:
        with _process_state_restored(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = watch.call(argv)
            except BaseException as e:
                if isinstance(e, KeyboardInterrupt) and watch.fired:
                    code = 130
                else:
                    raise
    except Exception as e:
        _attach(e, example, argv, out_bytes, err_bytes)
        raise
    except SystemExit as e:  # main must return its code, never exit the process it runs in
        raise violation("system-exit", f"SystemExit({e.code}) escaped main\n{example.reproducer()}") from e
    outcome = Outcome(code, out_bytes.getvalue().decode("utf-8", "replace"),
                      err_bytes.getvalue().decode("utf-8", "replace"), time.monotonic() - started, watch.fired)
    if outcome.hung:
        _hangs_seen += 1
        raise violation("hang", f"no answer within {limit:g}s (stopped with SIGINT; exit {code})\n"
                                f"{example.reproducer()}\nstderr: {outcome.stderr[-2000:]}")
    return outcome


def _attach(e: BaseException, example: Example, argv: list[str], out: io.BytesIO, err: io.BytesIO) -> None:
    note = (f"\n--- input that made `parallel-executor {shlex.join(argv)}` raise ---\n{example.reproducer()}"
            f"\n--- stderr so far ---\n{err.getvalue().decode('utf-8', 'replace')[-1500:]}")
    if hasattr(e, "add_note"):
        e.add_note(note)


class _Watchdog:
    """Calls main; if it has not returned after `limit` seconds, interrupts it as Ctrl-C would (twice)."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.fired = False
        self._lock = threading.Lock()
        self._inside = False

    def call(self, argv: list[str]) -> int:
        timers = [threading.Timer(self.limit, self._interrupt), threading.Timer(self.limit + 10, self._interrupt)]
        for timer in timers:
            timer.daemon = True
        with self._lock:
            self._inside = True
        for timer in timers:
            timer.start()
        try:
            code = main(argv)
        finally:
            with self._lock:
                self._inside = False
            for timer in timers:
                timer.cancel()
        if self.fired:
            time.sleep(0.2)  # a SIGINT sent as main returned lands here, not in the test
        return code

    def _interrupt(self) -> None:
        with self._lock:
            if self._inside:
                self.fired = True
                os.kill(os.getpid(), signal.SIGINT)


def expect(condition: object, kind: str, message: str, example: Example, outcome: Outcome | None = None) -> None:
    if condition:
        return
    detail = ""
    if outcome is not None:
        detail = (f"\nexit {outcome.code}\n--- stdout ---\n{outcome.stdout[-1500:]}"
                  f"\n--- stderr ---\n{outcome.stderr[-1500:]}")
    raise violation(kind, f"{message}\n{example.reproducer()}{detail}")
