"""A real `parallel-executor serve` on 127.0.0.1 (--port 0) for the API and dashboard tests, and
plain stdlib HTTP against it."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.conftest import ENGINE


class Server:
    def __init__(self, home: Path, cwd: Path, *args: str) -> None:
        self.home = home
        self.proc = subprocess.Popen([*ENGINE, "serve", "--port", "0", *args], cwd=cwd, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, "CLAUDE_CONFIG_DIR": str(home)})
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        if not first.startswith("dashboard: "):
            self.stop()
            raise AssertionError(f"serve said {first!r}; stderr: {self.proc.stderr.read() if self.proc.stderr else ''}")
        self.url = first.split()[1]  # http://127.0.0.1:PORT/#token=TOKEN
        self.token = self.url.split("#token=")[1]
        self.port = int(self.url.split(":")[2].split("/")[0])

    def stop(self) -> str:
        """Ctrl-C, as a user would; what it said on stderr."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.stderr.read() if self.proc.stderr else ""

    def request(self, method: str, path: str, body: Any = None, token: str | None = "",
                headers: dict[str, str] | None = None, raw: bytes | None = None) -> tuple[int, Any]:
        """(status, JSON or text); token "" means this server's own, None none at all."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        sent = {**({"Authorization": f"Bearer {token or self.token}"} if token is not None else {}), **(headers or {})}
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        try:
            conn.request(method, path, body=data, headers=sent)
            response = conn.getresponse()
            text = response.read().decode()
        finally:
            conn.close()
        if response.getheader("content-type", "").startswith("application/json"):
            return response.status, json.loads(text)
        return response.status, text

    def get(self, path: str, **kwargs: Any) -> Any:
        status, doc = self.request("GET", path, **kwargs)
        assert status == 200, (status, doc)
        return doc

    def start(self, body: dict[str, Any]) -> str:
        status, doc = self.request("POST", "/api/runs", body)
        assert status == 202, (status, doc)
        return str(doc["run_id"])

    def wait_state(self, run_id: str, done: Any, timeout: float = 30) -> dict[str, Any]:
        """Poll GET /api/runs/RUN_ID until done(doc) holds."""
        deadline = time.monotonic() + timeout
        while True:
            doc = self.get(f"/api/runs/{run_id}")
            if done(doc):
                return dict(doc)
            assert time.monotonic() < deadline, doc
            time.sleep(0.05)

    def events(self, run_id: str, last_id: str | None = None, timeout: float = 60) -> Iterator[tuple[str, str, Any]]:
        """The SSE stream as (id, event, data) until the server ends it."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        headers = {"Authorization": f"Bearer {self.token}", **({"Last-Event-ID": last_id} if last_id else {})}
        conn.request("GET", f"/api/runs/{run_id}/events", headers=headers)
        response = conn.getresponse()
        assert response.status == 200, response.read()
        fields: dict[str, str] = {}
        try:
            while line := response.readline():
                text = line.decode().rstrip("\n")
                if text:
                    if not text.startswith(":"):
                        name, _, value = text.partition(": ")
                        fields[name] = value
                    continue
                if fields:
                    yield fields.get("id", ""), fields.get("event", ""), json.loads(fields.get("data", "null"))
                fields = {}
        finally:
            conn.close()
