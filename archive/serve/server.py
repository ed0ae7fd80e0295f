"""Starting `archive serve`: the checks first (bind, token, store, catalog), then the app
and the replay origin on two loopback ports, served by uvicorn until Ctrl-C or SIGTERM."""

from __future__ import annotations

import asyncio
import socket
from typing import Callable

import uvicorn
from starlette.middleware import Middleware

from archive.catalog.locate import open_catalog
from archive.errors import ArchiveError
from archive.serve.app import build
from archive.serve.config import ServeConfig
from archive.serve.guard import Guard, allowed_hosts, check_bind, replay_headers, ui_headers
from archive.serve.replay import INSTALL_HINT, replay_app, replay_folder
from archive.store.address import StoreOptions, open_store


def _listen(bind: str, port: int) -> socket.socket:
    """A bound socket (port 0: any free one), or a one-line error."""
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # inherited by each connection accepted: without it a kept-alive connection waits
    # ~40 ms per answer (headers and body are separate writes; Nagle meets delayed ACK)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((bind, port))
    except OSError as exc:
        sock.close()
        raise ArchiveError(f"cannot listen on {bind}:{port}: {exc.strerror or exc}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _host(bind: str) -> str:
    return "127.0.0.1" if bind in ("0.0.0.0", "") else (f"[{bind}]" if ":" in bind else bind)


def serve(config: ServeConfig, announce: Callable[[dict], None]) -> None:
    """Run until stopped; `announce` gets the addresses once both ports listen."""
    check_bind(config.bind, config.token)
    store = open_store(config.store, StoreOptions(endpoint_url=config.endpoint_url))
    catalog, _ = open_catalog(store, config.catalog)      # fails now, in one line, if there is none
    catalog.close()
    folder = replay_folder()
    wanted_replay = config.replay_port_number      # port 0 (any free one) for the app: any for replay too
    app_sock = _listen(config.bind, config.port)
    port = app_sock.getsockname()[1]
    config.port = port
    try:
        replay_sock = _listen(config.bind, wanted_replay) if folder else None
    except ArchiveError as exc:
        app_sock.close()
        raise ArchiveError(f"{exc} (the replay origin's port: choose another with --replay-port)") from None
    if replay_sock:
        config.replay_port = replay_sock.getsockname()[1]
    ui = ui_headers(None)
    app, state = build(config, store, folder is not None,
                       [Middleware(Guard, hosts=allowed_hosts(config.bind, port, config.token),
                                   token=config.token, headers=ui)],
                       ui["Content-Security-Policy"])
    servers = [uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))]
    sockets = [app_sock]
    if folder and replay_sock:
        replay = replay_app(store, folder, [Middleware(
            Guard, hosts=allowed_hosts(config.bind, config.replay_port, config.token), token=config.token,
            headers=replay_headers(f"http://*:{port}"))])
        servers.append(uvicorn.Server(uvicorn.Config(replay, log_level="warning", access_log=False, lifespan="off")))
        sockets.append(replay_sock)
    host = _host(config.bind)
    announce({"url": f"http://{host}:{port}/", "replay": f"http://{host}:{config.replay_port}/" if folder else None,
              "replay_hint": None if folder else f"replay is off: ReplayWeb.page is not installed ({INSTALL_HINT})",
              "store": store.address, "token": bool(config.token)})
    try:
        asyncio.run(_run_all(servers, sockets))
    finally:
        state.verifier.close()
        for sock in sockets:
            sock.close()


async def _run_all(servers: list, sockets: list) -> None:
    tasks = [asyncio.create_task(server.serve(sockets=[sock])) for server, sock in zip(servers, sockets)]
    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for server in servers:       # one stopped (a signal reaches each): stop the other too
        server.should_exit = True
    await asyncio.gather(*tasks, return_exceptions=True)
