"""What stands between the network and the engine (§15): the token, the Host check, the body cap.

`Guard` is plain ASGI around the whole app, so that nothing (not even a 404) is answered to a
foreign Host, and no /api/ route runs without the token.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
import re
import secrets
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from parallel_executor.system.fsutil import open_private, private_dir
from parallel_executor.system.jsonfile import set_aside
from parallel_executor.system.locations import memory_dir

BODY_LIMIT = 1 << 20  # bytes; a task file bigger than this is better given by path
TOKEN = re.compile(r"[A-Za-z0-9_-]{32,128}")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


def token_file() -> Path:
    return memory_dir() / "config" / "api-token"


def load_token() -> str:
    """The API token, made at the first `serve` and kept owner-only; one that cannot be used (empty,
    not a token, a directory) is moved aside and a new one made."""
    path = token_file()
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        with os.fdopen(fd) as f:
            text = f.read(200).strip()
        if TOKEN.fullmatch(text):
            os.chmod(path, 0o600)
            return text
        why = "not a token"
    except FileNotFoundError:
        why = ""
    except (IsADirectoryError, UnicodeDecodeError, OSError) as e:
        if isinstance(e, PermissionError):
            raise
        why = f"it cannot be read ({getattr(e, 'strerror', None) or e})"
    if why:
        set_aside(path, why)
    token = secrets.token_urlsafe(32)
    fd = open_private(path, os.O_WRONLY | os.O_TRUNC)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str:
    """`Host: name:port` -> name (IPv6 kept in brackets), lowercased."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[: header.find("]") + 1] if "]" in header else header
    return header.rsplit(":", 1)[0] if ":" in header else header


def allowed_hosts(bound: str, extra: tuple[str, ...]) -> frozenset[str]:
    """The Host names answered: the bound address (an IPv6 one in brackets, as Host writes it),
    localhost, and each --allow-host."""
    bound = bound.lower().strip("[]")
    return frozenset({f"[{bound}]" if ":" in bound else bound, "localhost", *(h.lower() for h in extra)})


class Guard:
    """Host check (403), bearer token on /api/ (401), declared body size (413); and the last word on
    errors: whatever escapes the app is one line on stderr, never a traceback to anyone."""

    def __init__(self, app: App, token: str, hosts: frozenset[str]) -> None:
        self.app, self.token, self.hosts = app, token.encode(), hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        problem = self._problem(scope, headers)
        if problem:
            await reply(send, *problem)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as e:  # the app answered 500 already, or it is answered here
            print(f"parallel-executor serve: {scope.get('method')} {scope.get('path')}: {type(e).__name__}: {e}",
                  file=sys.stderr)
            if not started:
                await reply(send, 500, "internal error; see the server's log")

    def _problem(self, scope: Scope, headers: dict[bytes, bytes]) -> tuple[int, str] | None:
        if host_name(headers.get(b"host", b"").decode("latin-1")) not in self.hosts:
            return 403, "this server does not answer to that Host (see serve --allow-host)"
        if scope["path"].startswith("/api/"):
            given = headers.get(b"authorization", b"")
            scheme, _, value = given.partition(b" ")
            if scheme.lower() != b"bearer" or not hmac.compare_digest(value.strip(), self.token):
                return 401, "missing or wrong token: send Authorization: Bearer TOKEN (see serve's first line)"
        length = headers.get(b"content-length", b"0")
        if not length.isdigit():
            return 400, "bad Content-Length"
        if int(length) > BODY_LIMIT:
            return 413, f"body over {BODY_LIMIT} bytes"
        return None


async def reply(send: Send, status: int, error: str) -> None:
    body = json.dumps({"error": error}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
