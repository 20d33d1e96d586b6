"""The HTTP API (§15) against a real `serve` on 127.0.0.1 (--port 0), with real HTTP requests and
real engine runs: security first (token, Host, body size, ids), then starting, reading, following
and steering runs, and a run that outlives a restart of the server."""

from __future__ import annotations

import http.client
import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.conftest import ENGINE, wait_for
from tests.serving import Server

pytestmark = pytest.mark.timeout(60)
ENDED = ("success", "partial", "failed", "cancelled")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the tests that need no restart (each run's files are its own anyway)."""
    root = tmp_path_factory.mktemp("served")
    (root / "claude").mkdir()
    server = Server(root / "claude", root)
    yield server
    assert "Traceback" not in server.stop()


def write(folder: Path, tasks: object, name: str = "tasks.json") -> Path:
    path = folder / name
    path.write_text(json.dumps(tasks))
    return path


def ended(doc: dict[str, object]) -> bool:
    return doc["state"] in ENDED


# ---- security -------------------------------------------------------------------------------


def test_the_token_is_asked_for_on_every_api_request(served: Server) -> None:
    assert served.request("GET", "/api/runs", token=None)[0] == 401
    status, doc = served.request("GET", "/api/runs", token="x" * 43)
    assert status == 401 and "token" in doc["error"]
    assert served.request("GET", "/api/runs", headers={"Authorization": served.token})[0] == 401  # no "Bearer"
    assert served.request("POST", "/api/runs", {"task_file": "/nonexistent"}, token=None)[0] == 401
    assert served.request("GET", "/api/runs")[0] == 200
    assert served.request("GET", "/", token=None)[0] == 200  # the page holds no data; its requests need the token


def test_the_token_file_is_owner_only_and_kept(served: Server) -> None:
    path = served.home / "memory" / "config" / "api-token"
    assert path.read_text().strip() == served.token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_foreign_host_is_refused(served: Server) -> None:
    for host in ("evil.example", "evil.example:80", "127.0.0.1.evil.example"):
        status, doc = served.request("GET", "/api/runs", headers={"Host": host})
        assert status == 403 and "Host" in doc["error"], host
    assert served.request("GET", "/", token=None, headers={"Host": "attacker.test"})[0] == 403
    assert served.request("GET", "/api/runs", headers={"Host": f"localhost:{served.port}"})[0] == 200


def test_a_body_over_a_mebibyte_is_413(served: Server, tmp_path: Path) -> None:
    big = b'{"tasks": "' + b"x" * (2 << 20) + b'"}'
    status, doc = served.request("POST", "/api/runs", raw=big)
    assert status == 413 and "body" in doc["error"]
    # Chunked, with no Content-Length to refuse early: read up to the cap, then refused.
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
    conn.request("POST", "/api/runs", body=iter([big[i:i + 65536] for i in range(0, len(big), 65536)]),
                 headers={"Authorization": f"Bearer {served.token}"}, encode_chunked=True)
    assert conn.getresponse().status == 413
    conn.close()
    # A declared size over the cap is refused before any of the body is read.
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=5)
    conn.putrequest("POST", "/api/runs")
    for name, value in (("Authorization", f"Bearer {served.token}"), ("Content-Length", str(2 << 20))):
        conn.putheader(name, value)
    conn.endheaders(b"{")
    assert conn.getresponse().status == 413
    conn.close()


@pytest.mark.parametrize("path", [
    "/api/runs/..%2F..%2Fconfig", "/api/runs/..%2Fruns%2Factive/batches", "/api/runs/%2e%2e/batches",
    "/api/runs/20240101-000000.000-ab12%00/batches", "/api/runs/20240101-000000.000-ab12",
    "/api/runs/x/tasks/..%2F..%2Fapi-token/log", "/api/runs/%00/events",
])
def test_ids_that_are_not_ids_go_nowhere(served: Server, path: str) -> None:
    status, doc = served.request("GET", path)
    assert status in (400, 404), (path, status)
    assert "error" in doc


def test_a_task_id_is_matched_in_full(served: Server, tmp_path: Path) -> None:
    run_id = served.start({"task_file": str(write(tmp_path, {"tasks": [{"id": "a", "command": "echo hi"}]}))})
    served.wait_state(run_id, ended)
    for task in ("..%2Fa", "a%00", "a.json", ".%2Fa", "%2e%2e"):
        status, _ = served.request("GET", f"/api/runs/{run_id}/tasks/{task}/log")
        assert status in (400, 404), task
    assert served.request("GET", f"/api/runs/{run_id}/tasks/a/log?stream=../../x")[0] == 400


def test_errors_are_json_never_a_traceback(served: Server) -> None:
    for method, path, raw in [("POST", "/api/runs", b"{not json"), ("POST", "/api/runs", b"[]"),
                              ("POST", "/api/runs", b'{"task_file": 5}'), ("GET", "/api/nothing", None),
                              ("GET", "/api/runs?limit=-1", None), ("POST", "/api/runs", b'{"tasks": [], "x": 1}')]:
        status, doc = served.request(method, path, raw=raw)
        assert 400 <= status < 500 and isinstance(doc, dict) and doc["error"], (path, raw, status, doc)


def test_secrets_are_served_masked_or_not_at_all(served: Server, tmp_path: Path) -> None:
    tasks = {"tasks": [{"id": "keyed", "command": "test ${#API_KEY} = 12", "env": {"API_KEY": "s3cret-value"}}]}
    run_id = served.start({"tasks": tasks})
    assert served.wait_state(run_id, ended)["state"] == "success"  # the task got the value
    served_text = [json.dumps(served.get(f"/api/runs/{run_id}")), json.dumps(served.get("/api/runs")),
                   json.dumps(list(served.events(run_id))), served.get(f"/api/runs/{run_id}/timeline"),
                   json.dumps(served.get(f"/api/runs/{run_id}/batches"))]
    assert not [text for text in served_text if "s3cret-value" in text]


def test_serve_refuses_a_remote_host_without_allow_remote(tmp_path: Path) -> None:
    env = {**os.environ, "CLAUDE_CONFIG_DIR": str(tmp_path)}
    done = subprocess.run([*ENGINE, "serve", "--host", "0.0.0.0", "--port", "0"], capture_output=True, text=True,
                          env=env, timeout=30)
    assert done.returncode == 2 and "--allow-remote" in done.stderr and "Traceback" not in done.stderr


def test_serve_without_the_extra_names_it(tmp_path: Path) -> None:
    fake = tmp_path / "site" / "starlette"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'starlette'\", name='starlette')\n")
    env = {**os.environ, "CLAUDE_CONFIG_DIR": str(tmp_path), "PYTHONPATH": f"{tmp_path / 'site'}:{sys.path[0]}"}
    done = subprocess.run([*ENGINE, "serve", "--port", "0"], capture_output=True, text=True, env=env, timeout=30)
    assert done.returncode == 2 and "parallel-executor[server]" in done.stderr, done.stderr


# ---- starting and reading runs --------------------------------------------------------------


def test_a_run_from_a_file_goes_to_success(served: Server, tmp_path: Path) -> None:
    path = write(tmp_path, {"tasks": [{"id": "a", "command": "echo first"},
                                      {"id": "b", "command": "echo second", "blockedBy": ["a"]},
                                      {"id": "c", "command": "echo third >&2", "blockedBy": ["a"]}]})
    run_id = served.start({"task_file": str(path), "options": {"max_parallel": 2}})
    doc = served.wait_state(run_id, ended)
    assert doc["state"] == "success" and doc["summary"]["tasks"] == 3
    assert doc["task_file"] == str(path) and doc["slots"] == 2
    assert [b["task_ids"] for b in served.get(f"/api/runs/{run_id}/batches")] == [["a"], ["b", "c"]]
    second = served.get(f"/api/runs/{run_id}/batches/1")
    assert second["counts"] == {"success": 2} and second["duration"] >= 0 and second["cost_usd"] == 0
    assert served.request("GET", f"/api/runs/{run_id}/batches/2")[0] == 404
    assert served.get(f"/api/runs/{run_id}/tasks/b/log") == "second\n"
    assert served.get(f"/api/runs/{run_id}/tasks/c/log?stream=stderr") == "third\n"
    assert [r["state"] for r in served.get("/api/runs") if r["run_id"] == run_id] == ["success"]
    path = served.home / "memory" / "temp" / "runs" / run_id / "status.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "state": "partial"}))  # as a --resume would
    assert [r["state"] for r in served.get("/api/runs") if r["run_id"] == run_id] == ["partial"]
    page = served.get(f"/api/runs/{run_id}/timeline")
    assert 'data-task-id="b"' in page


def test_inline_tasks_are_kept_with_the_run_and_resolve_against_base_dir(served: Server, tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    tasks = {"tasks": [{"id": "here", "command": "pwd", "cwd": "work"}]}
    run_id = served.start({"tasks": tasks, "base_dir": str(tmp_path)})
    assert served.wait_state(run_id, ended)["state"] == "success"
    kept = served.home / "memory" / "temp" / "runs" / run_id / "tasks.json"
    assert json.loads(kept.read_text()) == tasks and stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert served.get(f"/api/runs/{run_id}/tasks/here/log").strip() == str((tmp_path / "work").resolve())


def test_an_invalid_task_file_is_422_with_one_problem_per_line(served: Server, tmp_path: Path) -> None:
    runs_before = set((served.home / "memory" / "temp" / "runs").glob("*"))
    tasks = {"tasks": [{"id": "a", "command": "true", "blockedBy": ["ghost"]}, {"id": "b"},
                       {"id": "a", "command": "true"}]}
    status, doc = served.request("POST", "/api/runs", {"tasks": tasks})
    assert status == 422 and len(doc["problems"]) == 3, doc
    assert any("ghost" in p for p in doc["problems"]) and all("\n" not in p for p in doc["problems"])
    status, doc = served.request("POST", "/api/runs", {"task_file": str(tmp_path / "none.json")})
    assert status == 422 and "none.json" in doc["error"] and doc["problems"] == ["no such file"]
    status, doc = served.request("POST", "/api/runs", {"tasks": {"tasks": [{"id": "a", "command": "true"}]},
                                                       "options": {"max_parallel": 0, "bogus": 1}})
    assert status == 422 and len(doc["problems"]) == 2
    assert set((served.home / "memory" / "temp" / "runs").glob("*")) == runs_before  # nothing left of them


def test_the_event_stream_is_in_order_and_resumes_after_an_id(served: Server, tmp_path: Path) -> None:
    tasks = [{"id": f"t{i}", "command": "sleep 0.2"} for i in range(4)]
    run_id = served.start({"tasks": {"tasks": tasks}, "options": {"max_parallel": 4}})
    got = list(served.events(run_id))
    ids = [int(i) for i, kind, _ in got if kind != "end"]
    assert ids == list(range(1, len(ids) + 1)) and got[-1][1] == "end" and got[-1][2] == {"state": "success"}
    journal = (served.home / "memory" / "temp" / "runs" / run_id / "events.jsonl").read_text().splitlines()
    assert [data for _, kind, data in got if kind != "end"] == [json.loads(line) for line in journal]
    assert {data["task"] for _, kind, data in got if kind == "started"} == {t["id"] for t in tasks}
    later = list(served.events(run_id, last_id=str(ids[3])))
    assert [int(i) for i, kind, _ in later if kind != "end"] == ids[4:]
    assert served.request("GET", f"/api/runs/{run_id}/events", headers={"Last-Event-ID": "x"})[0] == 400


def test_a_live_stream_follows_the_journal_as_it_grows(served: Server, tmp_path: Path) -> None:
    tasks = [{"id": "one", "command": "sleep 0.5"}, {"id": "two", "command": "sleep 0.5", "blockedBy": ["one"]}]
    run_id = served.start({"tasks": {"tasks": tasks}})
    seen: list[tuple[float, str]] = [(time.time(), kind) for _, kind, _ in served.events(run_id)]
    started_two = next(t for t, kind in seen if kind == "success")
    assert seen[-1][0] - started_two > 0.3  # it was there while the run ran, not read at the end


# ---- steering -------------------------------------------------------------------------------


def _tree(pid: int) -> list[psutil.Process]:
    parent = psutil.Process(pid)
    return [parent, *parent.children(recursive=True)]


def test_pause_stops_the_trees_and_cancel_ends_them(served: Server, tmp_path: Path) -> None:
    tasks = [{"id": f"s{i}", "command": "sleep 30 & sleep 30; wait"} for i in range(2)]
    run_id = served.start({"tasks": {"tasks": tasks}})
    doc = served.wait_state(run_id, lambda d: all(t["status"] == "running" and t.get("pid") for t in d["tasks"]))
    pids = [t["pid"] for t in doc["tasks"]]
    assert doc["eta_seconds"] > 0 and doc["engine_alive"]  # sleep 30 has no history: 1 s each, guessed
    trees = [p for pid in pids for p in _tree(pid)]
    status, answer = served.request("POST", f"/api/runs/{run_id}/pause")
    assert status == 200 and answer["state"] == "paused"
    wait_for(lambda: all(p.status() == psutil.STATUS_STOPPED for p in trees), 10)
    assert served.get(f"/api/runs/{run_id}")["state"] == "paused"
    assert served.request("POST", f"/api/runs/{run_id}/pause")[1]["state"] == "paused"  # paused already: no harm
    status, answer = served.request("POST", f"/api/runs/{run_id}/cancel")  # a paused run can be cancelled
    assert status == 202 and answer["state"] == "stopping"
    doc = served.wait_state(run_id, ended)
    assert doc["state"] == "cancelled" and {t["status"] for t in doc["tasks"]} == {"cancelled"}
    assert not [p for p in trees if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    status, answer = served.request("POST", f"/api/runs/{run_id}/cancel")
    assert status == 409 and "ended" in answer["error"]
    assert served.request("POST", f"/api/runs/{run_id}/unpause")[0] == 409
    assert served.request("POST", f"/api/runs/{run_id}/explode")[0] == 404


def test_a_dead_engine_ends_the_stream_and_cancel_ends_what_it_left(served: Server, tmp_path: Path) -> None:
    run_id = served.start({"tasks": {"tasks": [{"id": "left", "command": "sleep 30"}]}})
    doc = served.wait_state(run_id, lambda d: d["tasks"][0]["status"] == "running" and d["tasks"][0].get("pid"))
    task = psutil.Process(doc["tasks"][0]["pid"])
    psutil.Process(doc["pid"]).kill()  # kill -9: no run-finished line will come
    got = list(served.events(run_id))
    assert got[-1][1:] == ("end", {"state": "engine gone"})
    assert served.get(f"/api/runs/{run_id}")["engine_alive"] is False
    status, answer = served.request("POST", f"/api/runs/{run_id}/cancel")
    assert status == 202 and answer["state"] == "cancelled"
    wait_for(lambda: not task.is_running() or task.status() == psutil.STATUS_ZOMBIE, 10)


def test_a_run_outlives_a_restart_of_the_server(home: Path, tmp_path: Path) -> None:
    first = Server(home, tmp_path)
    tasks = [{"id": "slow", "command": "sleep 1.5; echo done"}, {"id": "after", "command": "echo after",
                                                                  "blockedBy": ["slow"]}]
    try:
        run_id = first.start({"tasks": {"tasks": tasks}})
        engine = psutil.Process(first.wait_state(run_id, lambda d: True)["pid"])
    finally:
        assert "Traceback" not in first.stop()
    assert engine.is_running() and engine.status() != psutil.STATUS_ZOMBIE  # the run goes on without the server
    second = Server(home, tmp_path)
    try:
        assert second.token == first.token
        got = list(second.events(run_id))
        assert got[-1][2] == {"state": "success"} and [k for _, k, _ in got].count("started") == 2
        assert second.get(f"/api/runs/{run_id}")["state"] == "success"
        assert second.get(f"/api/runs/{run_id}/tasks/slow/log") == "done\n"
    finally:
        second.stop()


def test_an_unusable_token_file_is_moved_aside(home: Path, tmp_path: Path) -> None:
    path = home / "memory" / "config" / "api-token"
    path.parent.mkdir(parents=True)
    path.write_text("short\n")
    server = Server(home, tmp_path)
    try:
        assert server.token != "short" and list(path.parent.glob("api-token.corrupt-*"))
    finally:
        assert "could not be used" in server.stop()
