"""Replay on its own origin (another port): ReplayWeb.page, served from the pinned npm
package installed outside the repository (scripts/install-replay), reading the WACZ by
range requests answered from the store. Replayed pages never run on the app's origin,
and the CSP of this origin (ReplayWeb.page's service worker included) allows nothing
but this origin: a replayed page cannot reach the live web."""

from __future__ import annotations

import html
import mimetypes
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from archive import replayweb
from archive.ids import is_capture_id
from archive.serve.ranges import capture_response, stored_size

INSTALL_HINT = "scripts/install-replay (needs npm; it installs the pinned ReplayWeb.page outside the repository)"
TYPES = {".js": "application/javascript", ".json": "application/json", ".html": "text/html; charset=utf-8",
         ".css": "text/css", ".wasm": "application/wasm"}


def replay_folder() -> Path | None:
    """ReplayWeb.page's installed folder, or None (the app then says how to get it)."""
    return replayweb.locate()


def embed_page(capture_id: str, url: str) -> str:
    """ReplayWeb.page on one capture, at one URL of it, filling its frame."""
    return (
        "<!doctype html><html><head><meta charset='utf-8'><meta name='referrer' content='no-referrer'>"
        "<title>replay</title><script src='/replay/ui.js'></script>"
        "<style>html,body{margin:0;height:100%}replay-web-page{display:block;width:100%;height:100%}</style>"
        "</head><body>"
        f"<replay-web-page source='/wacz/{html.escape(capture_id)}.wacz' url='{html.escape(url)}' "
        "replayBase='/replay/' embed='replayonly'></replay-web-page></body></html>")


def replay_app(store, folder: Path, middleware) -> Starlette:
    root = folder.resolve()

    def embed(request: Request) -> Response:
        capture_id, url = request.query_params.get("capture", ""), request.query_params.get("url", "")
        if not is_capture_id(capture_id) or not url:
            return PlainTextResponse("give ?capture=ID&url=URL", status_code=400)
        return HTMLResponse(embed_page(capture_id, url))

    def package(request: Request) -> Response:
        file = (root / request.path_params["path"]).resolve()
        if not file.is_relative_to(root) or not file.is_file():
            return PlainTextResponse("not found", status_code=404)
        kind = TYPES.get(file.suffix) or mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        return FileResponse(file, media_type=kind, headers={"Service-Worker-Allowed": "/replay/"})

    def wacz(request: Request) -> Response:
        capture_id = request.path_params["name"].removesuffix(".wacz")
        size = stored_size(store, capture_id) if is_capture_id(capture_id) else None
        if size is None:
            return PlainTextResponse("no such capture", status_code=404)
        return capture_response(store, capture_id, size, request.headers.get("range"), request.method == "HEAD",
                                {"Cache-Control": "no-store"})

    return Starlette(routes=[
        Route("/embed", embed),
        Route("/replay/{path:path}", package),
        Route("/wacz/{name}", wacz, methods=["GET", "HEAD"]),
    ], middleware=middleware)
