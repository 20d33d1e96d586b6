"""The dashboard page (§15) in a real headless Chromium against a real `serve` and real runs: the
page's scripts fetch with the token from the URL fragment, follow the event stream and draw the run.

Chromium is driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`: it reads
NUL-terminated JSON on fd 3 and writes on fd 4), so the test needs no websocket client and can poll
the live DOM until the scripts have drawn what it looks for, rather than guessing a time budget."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import processes_with_marker, py, wait_for
from tests.serving import Server

pytestmark = pytest.mark.timeout(90)
CHROMIUM = "/usr/bin/chromium"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic",
         "--disable-extensions", "--window-size=1280,900", "--remote-debugging-pipe")
ENDED = ("success", "partial", "failed", "cancelled")
WAIT = 30.0  # seconds for the page to show something: generous, for a loaded 2-core machine


class Browser:
    """One headless Chromium and the page it opened; every process of it ended by close()."""

    def __init__(self, profile: Path) -> None:
        assert os.access(CHROMIUM, os.X_OK), "chromium is not installed: `make test` (apt-get install chromium) does it"
        self.profile, self.number, self.buffer = profile, 0, b""
        self.errors: list[str] = []
        browser_reads, self.to_browser = os.pipe()
        self.from_browser, browser_writes = os.pipe()
        self.proc = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=False, start_new_session=True,
            preexec_fn=lambda: _as_fds_3_and_4(browser_reads, browser_writes))
        os.close(browser_reads)
        os.close(browser_writes)
        self.session = ""
        try:
            targets = self.call("Target.getTargets")["targetInfos"]
            page = next(t for t in targets if t["type"] == "page")
            self.session = self.call("Target.attachToTarget", targetId=page["targetId"], flatten=True)["sessionId"]
            self.call("Runtime.enable")
            self.call("Log.enable")
        except BaseException:
            self.close()
            raise

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.number += 1
        message = {"id": self.number, "method": method, "params": params,
                   **({"sessionId": self.session} if self.session else {})}
        os.write(self.to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + WAIT
        while True:
            reply = self._next(deadline)
            if reply.get("id") == self.number:
                assert "error" not in reply, (method, reply["error"])
                return dict(reply["result"])
            self._note(reply)

    def _next(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            assert left > 0 and select.select([self.from_browser], [], [], left)[0], "chromium did not answer"
            chunk = os.read(self.from_browser, 1 << 20)
            assert chunk, "chromium closed its DevTools pipe"
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\0", 1)
        return dict(json.loads(line))

    def _note(self, event: dict[str, Any]) -> None:
        """A script error or a refused resource (a CSP violation, a failed fetch) is the page's bug."""
        params = event.get("params", {})
        if event.get("method") == "Runtime.exceptionThrown":
            self.errors.append(json.dumps(params["exceptionDetails"])[:500])
        elif event.get("method") == "Log.entryAdded" and params["entry"]["level"] == "error" and \
                not params["entry"].get("url", "").endswith("/favicon.ico"):
            self.errors.append(params["entry"]["text"])

    def open(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def evaluate(self, expression: str) -> Any:
        found = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in found, found["exceptionDetails"]
        return found["result"].get("value")

    def wait(self, expression: str, what: str) -> Any:
        """The expression's value once it is truthy (the page's scripts have drawn it)."""
        deadline = time.monotonic() + WAIT
        while not (value := self.evaluate(expression)):
            if time.monotonic() > deadline:
                page = self.evaluate("document.body ? document.body.innerText : ''")
                raise AssertionError(f"the page never showed {what}; it shows:\n{page}\nerrors: {self.errors}")
            time.sleep(0.1)
        return value

    def close(self) -> None:
        with contextlib.suppress(psutil.Error):
            tree = [psutil.Process(self.proc.pid), *psutil.Process(self.proc.pid).children(recursive=True)]
            for process in tree:
                with contextlib.suppress(psutil.Error):
                    process.kill()
            psutil.wait_procs(tree, timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: a helper that re-parented itself too
        self.proc.wait()
        for fd in (self.to_browser, self.from_browser):
            os.close(fd)
        wait_for(lambda: not processes_with_marker(str(self.profile)))


def _as_fds_3_and_4(reads: int, writes: int) -> None:
    """In the child: the DevTools pipe's ends where Chromium looks for them, inheritable."""
    reads, writes = os.dup(reads), os.dup(writes)  # copies above 4, so that neither dup2 clobbers the other
    os.dup2(reads, 3)
    os.dup2(writes, 4)


@pytest.fixture
def served(home: Path, tmp_path: Path) -> Iterator[Server]:
    server = Server(home, tmp_path)
    yield server
    assert "Traceback" not in server.stop()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    opened = Browser(tmp_path / "chromium-profile")
    yield opened
    opened.close()


def text_of(selector: str) -> str:
    """JS: the text of the first element matching selector, or ''."""
    return f"(document.querySelector({json.dumps(selector)}) || {{}}).textContent || ''"


def test_a_finished_run_shows_its_state_its_failure_and_the_runs(served: Server, browser: Browser,
                                                                tmp_path: Path) -> None:
    run_id = served.start({"tasks": {"tasks": [
        {"id": "fine", "command": ["sh", "-c", "echo fine"]},
        {"id": "broken", "command": ["sh", "-c", "echo 'out <b>of</b> broken'; echo 'err of broken' >&2; exit 3"]},
    ]}, "base_dir": str(tmp_path)})
    served.wait_state(run_id, lambda doc: doc["state"] in ENDED)

    browser.open(f"http://127.0.0.1:{served.port}/")  # no token yet: the page says where to find one
    said = browser.wait(text_of("#notoken:not([hidden])"), "how to get a token")
    assert "dashboard: http://HOST:PORT/#token=TOKEN" in said
    browser.open(f"http://127.0.0.1:{served.port}/#token={served.token}&run={run_id}")
    browser.wait(f"{text_of('#failures [data-task-id=broken] pre.stderr')} === 'err of broken\\n'", "broken's stderr")
    assert browser.evaluate("document.querySelector('#run').dataset.state") == "partial"
    assert browser.evaluate(text_of("#state")) == "partial"
    assert browser.evaluate(text_of("#progress")) == "2/2 done, 1 failed"
    failure = browser.evaluate(text_of("#failures [data-task-id=broken]"))
    assert "exit code 3" in failure and "out <b>of</b> broken" in failure  # shown as text, not markup
    assert browser.evaluate("document.querySelectorAll('#failures [data-task-id]').length") == 1
    assert browser.evaluate("document.querySelectorAll('#failures b').length") == 0
    assert browser.wait(f"!!document.querySelector('#runs [data-run-id=\"{run_id}\"]')", "the run in the runs list")
    assert "partial" in browser.evaluate(text_of(f'#runs [data-run-id="{run_id}"]'))
    assert run_id in browser.wait("document.querySelector('#timeline').srcdoc", "the timeline")
    assert browser.evaluate("document.querySelector('#cancel').hidden")  # nothing to cancel any more
    # The token left the visible URL for this tab's storage; the run stayed in it.
    assert browser.evaluate("location.hash") == f"#run={run_id}"
    assert browser.evaluate("sessionStorage.getItem('pe-token')") == served.token
    assert browser.errors == []


def test_a_live_run_shows_running_and_queued_tasks_and_follows_steering(served: Server, browser: Browser,
                                                                        tmp_path: Path) -> None:
    marker = f"dashboard-live-{os.getpid()}-{time.monotonic_ns()}"
    steps = f"import time\nfor i in range(40): print('step', i, {marker!r}, flush=True); time.sleep(0.5)"
    run_id = served.start({"tasks": {"tasks": [
        {"id": "slow", "command": py(steps)},
        {"id": "then", "command": ["sh", "-c", "echo then"], "blockedBy": ["slow"]},
    ]}, "base_dir": str(tmp_path)})
    try:
        served.wait_state(run_id, lambda doc: doc["tasks"][0]["status"] == "running")
        browser.open(f"http://127.0.0.1:{served.port}/#token={served.token}&run={run_id}")
        browser.wait(f"/step \\d+ {marker}/.test({text_of('#running [data-task-id=slow]')})", "slow's last line")
        assert browser.evaluate("document.querySelector('#run').dataset.state") == "running"
        queued = browser.wait(text_of("#queue [data-task-id=then]"), "the queued task")
        assert "pending" in queued and "blocked by slow" in queued
        assert browser.evaluate(text_of("#progress")) == "0/2 done, 0 failed"
        assert browser.evaluate("!document.querySelector('#cancel').hidden && !document.querySelector('#pause').hidden")
        assert browser.wait(f"/ETA|elapsed/.test({text_of('#meta')})", "elapsed time and ETA")

        browser.evaluate("document.querySelector('#pause').click()")  # through the page's own button
        browser.wait("document.querySelector('#run').dataset.state === 'paused'", "the paused state")
        assert browser.wait("!document.querySelector('#unpause').hidden", "the unpause button")
    finally:
        served.request("POST", f"/api/runs/{run_id}/cancel")
        served.wait_state(run_id, lambda doc: doc["state"] in ENDED)
    browser.wait("document.querySelector('#run').dataset.state === 'cancelled'", "the cancelled state")
    assert browser.wait("document.querySelector('#conn').textContent === 'ended'", "the stream's end")
    assert browser.evaluate("document.querySelector('#cancel').hidden")
    wait_for(lambda: not processes_with_marker(marker))
    assert browser.errors == []
