"""The HTTP API and the dashboard page (§15), on Starlette. Routes are thin: reading is runs.py,
starting launch.py, steering engine/control.py, following events.py; blocking work runs on threads."""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from parallel_executor.engine import control
from parallel_executor.engine.journal import RUN_ID, recover_dead_runs
from parallel_executor.errors import UserError
from parallel_executor.server import events, launch, runs
from parallel_executor.server.security import BODY_LIMIT, Guard
from parallel_executor.system.locations import runs_dir

PAGE = Path(__file__).with_name("dashboard.html")
# The page carries its script and style inline; the nonce lets exactly those run, nothing injected.
PAGE_POLICY = ("default-src 'none'; script-src 'nonce-{n}'; style-src 'nonce-{n}'; "
               "connect-src 'self'; img-src 'self' data:; frame-src 'self'; base-uri 'none'; form-action 'none'")


def make_app(token: str, hosts: frozenset[str], cwd: Path) -> Guard:
    changes = events.Changes()

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        changes.start()
        yield
        changes.stop()

    async def dashboard(request: Request) -> Response:
        nonce = secrets.token_urlsafe(16)
        html = PAGE.read_text().replace("{{nonce}}", nonce)
        return Response(html, media_type="text/html", headers={
            "content-security-policy": PAGE_POLICY.format(n=nonce), "referrer-policy": "no-referrer",
            "x-content-type-options": "nosniff", "cache-control": "no-store"})

    async def list_runs(request: Request) -> Response:
        limit = _int(request.query_params.get("limit", "50"), "limit", 1, 1000)
        return _json(await run_in_threadpool(runs.listed, limit))

    async def start_run(request: Request) -> Response:
        body = await _body(request)
        return _json(await run_in_threadpool(launch.start, body, cwd), 202)

    async def one_run(request: Request) -> Response:
        return _json(await run_in_threadpool(runs.run_doc, request.path_params["run_id"]))

    async def steer(request: Request) -> Response:
        run_id, action = request.path_params["run_id"], request.path_params["action"]
        return _json(await run_in_threadpool(_steer, run_id, action), 202 if action == "cancel" else 200)

    async def all_batches(request: Request) -> Response:
        return _json(await run_in_threadpool(runs.batches, request.path_params["run_id"]))

    async def one_batch(request: Request) -> Response:
        found = await run_in_threadpool(runs.batches, request.path_params["run_id"])
        number = _int(request.path_params["n"], "batch", 0, len(found) - 1, 404)
        return _json(found[number])

    async def task_log(request: Request) -> Response:
        q = request.query_params
        tail = _int(q["tail"], "tail", 0, 100_000) if "tail" in q else None
        text = await run_in_threadpool(runs.task_log, request.path_params["run_id"], request.path_params["task_id"],
                                       q.get("stream", "stdout"), tail, q.get("raw") in ("1", "true"))
        return Response(text, media_type="text/plain; charset=utf-8")

    async def timeline(request: Request) -> Response:
        html = await run_in_threadpool(runs.timeline_page, request.path_params["run_id"])
        return Response(html, media_type="text/html; charset=utf-8")

    async def follow(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        if not RUN_ID.fullmatch(run_id) or not (runs_dir() / run_id / "events.jsonl").is_file():
            raise runs.ApiError(404, f"no run '{run_id}'")  # no status.json read (and validated) per follower
        try:
            after = events.parse_after(request.headers.get("last-event-id", request.query_params.get("after")))
        except ValueError:
            raise runs.ApiError(400, "Last-Event-ID must be an event's id (a whole number)") from None
        gone: Callable[[], bool] = lambda: not runs.engine_alive(run_id)  # noqa: E731
        body = events.stream(runs_dir() / run_id, after, changes, gone)
        return StreamingResponse(body, media_type="text/event-stream",
                                 headers={"cache-control": "no-store", "x-accel-buffering": "no"})

    app = Starlette(routes=[
        Route("/", dashboard),
        Route("/api/runs", list_runs),
        Route("/api/runs", start_run, methods=["POST"]),
        Route("/api/runs/{run_id}", one_run),
        Route("/api/runs/{run_id}/{action:str}", steer, methods=["POST"]),
        Route("/api/runs/{run_id}/batches", all_batches),
        Route("/api/runs/{run_id}/batches/{n}", one_batch),
        Route("/api/runs/{run_id}/tasks/{task_id}/log", task_log),
        Route("/api/runs/{run_id}/timeline", timeline),
        Route("/api/runs/{run_id}/events", follow),
    ], exception_handlers={runs.ApiError: _api_error, HTTPException: _http_error, Exception: _crash},
        lifespan=lifespan)
    return Guard(app, token, hosts)


def _steer(run_id: str, action: str) -> dict[str, Any]:
    if action not in control.SIGNALS:
        raise runs.ApiError(404, f"no such action '{action}' (cancel, pause, unpause)")
    runs.status_of(run_id)
    try:
        status, engine = control.send(run_id, action)
    except control.NotLive as e:
        raise runs.ApiError(409, e.lines[0]) from None
    except UserError as e:
        raise runs.ApiError(404, e.lines[0]) from None
    if engine is None and action == "cancel":  # as the CLI's cancel: end what the dead engine left running
        recover_dead_runs()
        return {"run_id": run_id, "state": runs.status_of(run_id)["state"]}
    if engine is None and status["state"] != control.WANTED.get(action):
        raise runs.ApiError(409, f"run {run_id}: its engine (pid {status['pid']}) is gone; cancel ends what it left")
    if action == "cancel":
        return {"run_id": run_id, "state": "stopping"}
    now = control.wait_for(run_id, control.WANTED[action], 5.0)
    return {"run_id": run_id, "state": now["state"]}


async def _body(request: Request) -> Any:
    """The JSON body, read up to BODY_LIMIT bytes whatever Content-Length said (413 beyond)."""
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > BODY_LIMIT:
            raise runs.ApiError(413, f"body over {BODY_LIMIT} bytes")
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        raise runs.ApiError(400, "the body is not JSON") from None


def _int(text: str, name: str, low: int, high: int, status: int = 400) -> int:
    if not text.isdigit() or not low <= int(text) <= high:
        raise runs.ApiError(status, f"{name} must be a whole number from {low} to {high}")
    return int(text)


def _json(doc: Any, status: int = 200) -> Response:
    return JSONResponse(doc, status, headers={"cache-control": "no-store"})


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, runs.ApiError)
    return JSONResponse({"error": exc.message, **exc.extra}, exc.status)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail}, exc.status_code, headers=exc.headers)


async def _crash(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": "internal error; see the server's log"}, 500)
