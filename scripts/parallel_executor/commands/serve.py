"""`serve [--host H] [--port P] [--allow-remote] [--allow-host NAME]...`: the HTTP API and live
dashboard (§15), on uvicorn. Nothing of it is imported by any other command."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path

import click

from parallel_executor.errors import EXIT_OK, UserError


def main(host: str, port: int, allow_remote: bool, allow_hosts: tuple[str, ...]) -> int:
    try:
        import uvicorn

        from parallel_executor.server.app import make_app
    except ModuleNotFoundError as e:
        raise UserError(f"serve needs the server extra ({e.name} is missing): "
                        "pip install 'parallel-executor[server]'") from None
    from parallel_executor.server.security import allowed_hosts, is_loopback, load_token

    if not is_loopback(host) and not allow_remote:
        raise UserError(f"--host {host} is not a loopback address: add --allow-remote to serve the network "
                        "(put a TLS proxy in front: the token travels in clear)")
    for name in allow_hosts:
        if not name or (any(c in name for c in "/:@ \t") and not name.startswith("[")):
            raise UserError(f"--allow-host {name!r}: give a host name, without port or scheme")
    listener = _bind(host, port)
    token = load_token()
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"dashboard: http://{shown}:{listener.getsockname()[1]}/#token={token}")
    if not is_loopback(host):
        click.echo(f"warning: serving {host} over plain HTTP: the token and every run's output travel in clear; "
                   "put a TLS proxy in front", err=True)
    app = make_app(token, allowed_hosts(host, allow_hosts), Path.cwd())
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(server.serve(sockets=[listener]))
    return EXIT_OK


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before the first line is printed (so --port 0's port is known)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise UserError(f"--host {host}: {e.strerror}") from None
    family, kind, proto, _, address = infos[0]
    listener = socket.socket(family, kind, proto)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(address)
        listener.listen(2048)
    except OSError as e:
        listener.close()
        raise UserError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    listener.set_inheritable(False)
    return listener
