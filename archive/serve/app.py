"""The app's routes: captures list, one capture, Verify now, downloads, replay (framed
from the replay origin), a URL's history with two captures compared, and search.
Read-only: nothing here stores, changes or deletes a capture. Every value from a
capture reaches a page through Jinja2's autoescaping, never as markup."""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path
from urllib.parse import quote, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.concurrency import iterate_in_threadpool

from archive import utctime
from archive.catalog.locate import open_catalog
from archive.catalog.query import QueryError
from archive.custody.history import summary_of
from archive.custody.ledger import open_ledger
from archive.errors import ArchiveError, NotFound
from archive.ids import is_capture_id
from archive.serve import capturefiles, listing
from archive.serve.config import ServeConfig
from archive.serve.ranges import capture_response, stored_size
from archive.serve.replay import INSTALL_HINT
from archive.serve.textdiff import sentence_diff
from archive.serve.verifier import Verifier
from archive.values import human_bytes
from archive.verify.model import VERIFIED, CannotCheck
from archive.verify.report import CHECK_TITLES, facts, headline, signer_line

HERE = Path(__file__).parent
PAGE_SIZE = 50
PAGES_SHOWN = 500
SCREENSHOTS_SHOWN = 12
STATUS_WORDS = {"pass": "passed", "fail": "FAILED", "warn": "note", "skip": "NOT CHECKED"}
DAY = len("2026-01-01")
COUNTS_EVERY = 30.0


CHANGED = ("the stored capture changed since it was verified here: that verdict no longer applies; "
           "verify it again (Verify now)")


def _templates() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True))
    env.filters["bytes"] = lambda n: human_bytes(n) if isinstance(n, int) else "-"
    env.filters["utc"] = lambda t: utctime.readable(t) if t else ""
    env.filters["q"] = lambda value: quote(str(value), safe="")
    env.globals["badge_class"] = lambda b: listing.BADGES.get(b, "unchecked")
    env.globals["check_title"] = lambda name: CHECK_TITLES.get(name, name)
    env.globals["status_word"] = lambda s: STATUS_WORDS.get(s, s)
    return env


def _time_filter(text: str | None, end: bool) -> str | None:
    """A date field (YYYY-MM-DD) as the UTC time the catalog compares with."""
    text = (text or "").strip()
    if len(text) != DAY or not text.replace("-", "").isdigit():
        return None
    return text + ("T23:59:59Z" if end else "T00:00:00Z")


class App:
    def __init__(self, config: ServeConfig, store, replay_ready: bool) -> None:
        self.config, self.store, self.replay_ready = config, store, replay_ready
        self.env = _templates()
        self.local = threading.local()
        self.verifier = Verifier(store, config.trusted, config.tsa_paths, config.operator, config.record,
                                 self._record_verdict, config.allow_unsigned)

    # -- plumbing -----------------------------------------------------------------

    def catalog(self):
        """This thread's connection to the catalog (opened once per worker thread)."""
        held = getattr(self.local, "catalog", None)
        if held is None:
            held = self.local.catalog = open_catalog(self.store, self.config.catalog)[0]
        return held

    def _record_verdict(self, capture_id: str, verdict: str) -> None:
        catalog = open_catalog(self.store, self.config.catalog)[0]
        try:
            catalog.set_verdicts({capture_id: (verdict, utctime.micros())})
        finally:
            catalog.close()

    def render(self, request: Request, name: str, status: int = 200, headers: dict | None = None, **context) -> HTMLResponse:
        context.setdefault("nav", "")
        text = self.env.get_template(name).render(request=request, replay_ready=self.replay_ready, **context)
        return HTMLResponse(text, status_code=status, headers=headers)

    def error(self, request: Request, status: int, message: str) -> HTMLResponse:
        return self.render(request, "error.html", status=status, message=message, title="Error")

    def replay_origin(self, request: Request) -> str:
        return f"{request.url.scheme}://{request.url.hostname}:{self.config.replay_port_number}"

    # -- captures -----------------------------------------------------------------

    def captures(self, request: Request) -> Response:
        q = request.query_params
        filters = listing.Filters(job=q.get("job") or None, host=(q.get("host") or "").strip() or None,
                                  since=_time_filter(q.get("since"), False), until=_time_filter(q.get("until"), True),
                                  verdict=q.get("verdict") if q.get("verdict") in listing.VERDICTS else None)
        before = q.get("before") if is_capture_id(q.get("before") or "") else None
        catalog = self.catalog()
        rows, next_before = listing.list_captures(catalog, filters, before, PAGE_SIZE)
        kept = {k: q.get(k) for k in ("job", "host", "since", "until", "verdict") if q.get(k)}
        return self.render(request, "captures.html", nav="captures", title="Captures", rows=rows, q=kept,
                           jobs=listing.jobs(catalog), verdicts=listing.VERDICTS,
                           next_link=("/captures?" + urlencode({**kept, "before": next_before})) if next_before else None,
                           first_link=("/captures?" + urlencode(kept)) if before else None,
                           counts=self.counts(catalog))

    def counts(self, catalog) -> dict:
        """The catalog's totals, counted at most every COUNTS_EVERY seconds (a count of
        100,000 rows on every page view is the list's largest cost)."""
        held = getattr(self, "_counts", None)
        if held is None or time.monotonic() - held[0] > COUNTS_EVERY:
            held = self._counts = (time.monotonic(), catalog.counts())
        return held[1]

    def _capture_or_404(self, request: Request) -> tuple[str, dict | None]:
        capture_id = request.path_params["capture_id"]
        if not is_capture_id(capture_id):
            return capture_id, None
        return capture_id, self.catalog().capture(capture_id)

    def capture(self, request: Request) -> Response:
        capture_id, row = self._capture_or_404(request)
        if row is None or row.get("missing_since"):
            return self.error(request, 404, f"no capture {capture_id} in the catalog of this store "
                                            "(`archive index` adds what the store holds)")
        catalog = self.catalog()
        row["badge"] = listing.badge(row)
        pages = catalog.pages(capture_id, limit=PAGES_SHOWN)
        run, report, source = self.verifier.current(capture_id)
        try:
            shots = capturefiles.screenshot_urls(capture_id, source)
        except CannotCheck:        # not in the store any more, or unreadable: Verify now says which
            shots = frozenset()
        focus = request.query_params.get("url")
        shown = ([focus] if focus in shots else []) + [p["url"] for p in pages if p["url"] in shots and p["url"] != focus]
        return self.render(
            request, "capture.html", nav="captures", title=row.get("title") or capture_id, c=row, pages=pages,
            more_pages=row.get("pages", 0) > len(pages), media=listing.media_items(listing.media(catalog, capture_id)),
            changes=catalog.changes(capture_id), run=run, report=report,
            headline=headline(report) if report else None, signer=signer_line(report) if report else None,
            facts=facts(report) if report else [], custody=self._custody(capture_id),
            screenshots=shown[:SCREENSHOTS_SHOWN], focus=focus, verified=bool(report and report.verdict == VERIFIED),
            trusted=sorted(self.config.trusted.values()))

    def _custody(self, capture_id: str) -> list[dict]:
        """The capture's custody entries as the ledger holds them (checked when verified)."""
        try:
            records = open_ledger(self.store).records()
        except (ArchiveError, OSError):
            return []
        return [summary_of(r.entry) for r in records if r.entry and r.entry.get("capture") == capture_id]

    def verify_now(self, request: Request) -> Response:
        capture_id, row = self._capture_or_404(request)
        if row is None:
            return self.error(request, 404, f"no capture {capture_id} in the catalog")
        # a form from another site must not start work here (the app is reached by cookie)
        if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return self.error(request, 403, "Verify now is only accepted from this app's own pages")
        self.verifier.start(capture_id)
        return RedirectResponse(f"/captures/{capture_id}#verification", status_code=303)

    def verify_status(self, request: Request) -> Response:
        run = self.verifier.get(request.path_params["capture_id"])
        return JSONResponse(run.status() if run else {"state": "none"})

    def report_html(self, request: Request) -> Response:
        capture_id = request.path_params["capture_id"]
        run, report, source = self.verifier.current(capture_id)
        if report is None:
            return self.error(request, 409, CHANGED if run and run.changed else
                              "verify the capture first (Verify now), then download its report")
        from archive.verify.html import render_html
        try:
            text = render_html(report, source)
        except CannotCheck:         # replaced while the report was made
            return self.error(request, 409, CHANGED)
        return HTMLResponse(text, headers={
            "Content-Disposition": f'attachment; filename="{capture_id}-verification.html"',
            "Content-Security-Policy": "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox"})

    def download(self, request: Request) -> Response:
        capture_id = request.path_params["capture_id"]
        size = stored_size(self.store, capture_id) if is_capture_id(capture_id) else None
        if size is None:
            return self.error(request, 404, f"no capture {capture_id} in the store")
        return capture_response(self.store, capture_id, size, request.headers.get("range"), request.method == "HEAD",
                                {"Content-Disposition": f'attachment; filename="{capture_id}.wacz"'})

    def image(self, request: Request) -> Response:
        capture_id, url = request.path_params["capture_id"], request.query_params.get("url", "")
        if not is_capture_id(capture_id) or not url:
            return PlainTextResponse("not found", status_code=404)
        try:
            found = capturefiles.image(self.verifier.current(capture_id)[2], url)
        except CannotCheck:         # the object verified was replaced meanwhile: its page says so
            return PlainTextResponse(CHANGED, status_code=409)
        if found is None:
            return PlainTextResponse("no such image", status_code=404)
        data, kind = found
        return Response(data, media_type=kind, headers={"Cache-Control": "private, max-age=3600"})

    def resource(self, request: Request) -> Response:
        capture_id, url = request.path_params["capture_id"], request.query_params.get("url", "")
        if not is_capture_id(capture_id) or not url:
            return self.error(request, 400, "give the URL of the resource to extract (?url=...)")
        try:
            out, found = capturefiles.resource(self.verifier.current(capture_id)[2], url)
        except CannotCheck:
            return self.error(request, 409, CHANGED)
        except NotFound as exc:
            return self.error(request, 404, str(exc))
        except ArchiveError as exc:
            return self.error(request, 422, f"cannot extract {url}: {exc}")
        name = (url.rstrip("/").rsplit("/", 1)[-1] or "resource").split("?")[0][:80] or "resource"
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)

        def chunks():
            with out:
                while data := out.read(1 << 20):
                    yield data
        # served as a download, never rendered here: the content is the web's, not ours
        return StreamingResponse(iterate_in_threadpool(chunks()), media_type="application/octet-stream", headers={
            "Content-Disposition": f'attachment; filename="{safe}"', "Content-Length": str(found.bytes_written),
            "X-Archive-Payload-SHA256": found.sha256, "X-Archive-Record": f"{found.warc_file}@{found.offset}",
            "Content-Security-Policy": "default-src 'none'; sandbox"})

    # -- replay ---------------------------------------------------------------------

    def replay(self, request: Request) -> Response:
        capture_id, row = self._capture_or_404(request)
        if row is None:
            return self.error(request, 404, f"no capture {capture_id} in the catalog")
        url = request.query_params.get("url") or (row["seeds"][0] if row["seeds"] else "")
        origin = self.replay_origin(request)
        frame = f"{origin}/embed?" + urlencode({"capture": capture_id, "url": url})
        headers = None
        if self.replay_ready:
            csp = self.env.globals["ui_csp"].replace("frame-ancestors", f"frame-src {origin}; frame-ancestors")
            headers = {"Content-Security-Policy": csp}
        return self.render(request, "replay.html", headers=headers, nav="captures", title=f"Replay of {url}",
                           c=row, url=url, frame=frame, hint=INSTALL_HINT, pages=self.catalog().pages(capture_id, limit=200))

    # -- history and comparison ---------------------------------------------------------

    def history(self, request: Request) -> Response:
        url = request.query_params.get("url", "")
        if not url:
            return self.render(request, "history.html", nav="history", title="History of a URL", url="", rows=[])
        rows = listing.url_history(self.catalog(), url)
        ids = [r["capture_id"] for r in rows]
        a, b = request.query_params.get("a"), request.query_params.get("b")
        if not (a in ids and b in ids) and len(ids) >= 2:
            a, b = ids[-2], ids[-1]
        if a in ids and b in ids and ids.index(a) > ids.index(b):
            a, b = b, a         # earlier on the left
        compared = self._compare(url, a, b) if a in ids and b in ids and a != b else None
        return self.render(request, "history.html", nav="history", title=f"History of {url}", url=url, rows=rows,
                           a=a, b=b, compared=compared)

    def _compare(self, url: str, a: str, b: str) -> dict:
        from archive.diff import diff_captures
        catalog = self.catalog()
        first, second = self.verifier.source(a), self.verifier.source(b)
        finding = None
        try:
            diff = diff_captures(first, second, self.verifier.source)
            change = next((c for c in [*diff.changes, *diff.uncertain] if c.url == url), None)
            finding = change.finding if change else f"The page {url} is unchanged between these two captures."
        except (ArchiveError, OSError) as exc:
            finding = f"The captures could not be compared: {exc}"
        lines, cut = sentence_diff(listing.page_text(catalog, a, url) or "", listing.page_text(catalog, b, url) or "")
        shots = {cid: url in capturefiles.screenshot_urls(cid, self.verifier.source(cid)) for cid in (a, b)}
        return {"a": a, "b": b, "finding": finding, "lines": lines, "cut": cut, "shots": shots,
                "removed": sum(1 for k, _ in lines if k == "removed"), "added": sum(1 for k, _ in lines if k == "added")}

    # -- search ---------------------------------------------------------------------

    def search(self, request: Request) -> Response:
        q = request.query_params
        text = (q.get("q") or "").strip()
        hits, problem, offset = [], None, 0
        try:
            offset = max(0, int(q.get("offset") or 0))
        except ValueError:
            offset = 0
        if text:
            try:
                found = self.catalog().search(text, url_prefix=q.get("url") or None, job=q.get("job") or None,
                                              since=_time_filter(q.get("since"), False),
                                              until=_time_filter(q.get("until"), True), limit=21, offset=offset)
            except (QueryError, ArchiveError) as exc:
                found, problem = [], str(exc)
            hits = [dict(asdict(h), parts=_marked(h.snippet, h.marks)) for h in found[:20]]
            more = len(found) > 20
        else:
            more = False
        kept = {k: q.get(k) for k in ("q", "url", "job", "since", "until") if q.get(k)}
        return self.render(request, "search.html", nav="search", title=f"Search: {text}" if text else "Search",
                           text=text, hits=hits, problem=problem, q=kept,
                           next_link=("/search?" + urlencode({**kept, "offset": offset + 20})) if more else None)


def _marked(snippet: str, marks: list[list[int]]) -> list[tuple[str, bool]]:
    """The snippet as (text, is a hit) parts, for the template to escape and mark."""
    parts, pos = [], 0
    for start, end in marks:
        if start < pos:
            continue
        parts += [(snippet[pos:start], False), (snippet[start:end], True)]
        pos = end
    parts.append((snippet[pos:], False))
    return [p for p in parts if p[0]]


def build(config: ServeConfig, store, replay_ready: bool, middleware, ui_csp: str) -> tuple[Starlette, App]:
    app = App(config, store, replay_ready)
    app.env.globals["ui_csp"] = ui_csp

    def home(request: Request) -> Response:
        return RedirectResponse("/captures", status_code=302)

    def guarded(view):
        """A view whose failure is an error page and one line on stderr, never a traceback."""
        def run(request: Request) -> Response:
            try:
                return view(request)
            except Exception as exc:  # noqa: BLE001
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                message = first if isinstance(exc, (ArchiveError, CannotCheck, OSError)) else f"internal error: {type(exc).__name__}: {first}"
                print(f"archive serve: {request.url.path}: {message}", file=sys.stderr)
                return app.error(request, 500, message)
        return run

    routes = [
        Route("/", home),
        Route("/captures", guarded(app.captures)),
        Route("/captures/{capture_id}", guarded(app.capture)),
        Route("/captures/{capture_id}/verify", guarded(app.verify_now), methods=["POST"]),
        Route("/captures/{capture_id}/verify/status", guarded(app.verify_status)),
        Route("/captures/{capture_id}/report.html", guarded(app.report_html)),
        Route("/captures/{capture_id}/wacz", guarded(app.download), methods=["GET", "HEAD"]),
        Route("/captures/{capture_id}/image", guarded(app.image)),
        Route("/captures/{capture_id}/resource", guarded(app.resource)),
        Route("/captures/{capture_id}/replay", guarded(app.replay)),
        Route("/history", guarded(app.history)),
        Route("/search", guarded(app.search)),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]

    starlette = Starlette(routes=routes, middleware=middleware)
    return starlette, app
