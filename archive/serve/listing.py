"""What the app asks of the catalog beyond its read API: captures newest first, filtered
by job, seed host, date and verdict, paged by key (as fast on the last page of 100,000
as on the first); one page's text; every capture of one URL. Values are always
parameters, never spliced into SQL."""

from __future__ import annotations

from dataclasses import dataclass

from archive.catalog.catalog import CAPTURE_COLUMNS, _capture_row
from archive.warc import urns

SHOWN_ELSEWHERE = (urns.SCREENSHOT, urns.DOM)     # not listed as media: shown as screenshots

# verdict filter -> SQL condition on captures `c` (badges: see badge())
VERDICTS = {
    "verified": "c.verdict = 'VERIFIED' AND c.signer IS NOT NULL",
    "not-verified": "c.verdict = 'NOT VERIFIED'",
    "unsigned": "c.signer IS NULL AND (c.verdict IS NULL OR c.verdict <> 'NOT VERIFIED')",
    "unchecked": "c.verdict IS NULL AND c.signer IS NOT NULL",
}
BADGES = {"VERIFIED": "verified", "NOT VERIFIED": "not-verified", "UNSIGNED": "unsigned",
          "COULD NOT CHECK": "could-not", "not verified yet": "unchecked"}


@dataclass
class Filters:
    job: str | None = None
    host: str | None = None
    since: str | None = None        # UTC time, inclusive
    until: str | None = None
    verdict: str | None = None      # a key of VERDICTS

    def where(self) -> tuple[list[str], list]:
        where, params = ["c.missing_since IS NULL"], []
        if self.job:
            where.append("c.job = ?")
            params.append(self.job)
        if self.since:
            where.append("c.created >= ?")
            params.append(self.since)
        if self.until:
            where.append("c.created <= ?")
            params.append(self.until)
        if self.host:
            # seeds is a JSON list of URLs: the host ends at '/', ':', '?', '#' or the string's end
            host = self.host.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            ends = ("/", ":", "?", "#", '"')
            where.append("(" + " OR ".join(["c.seeds LIKE ? ESCAPE '\\'"] * len(ends)) + ")")
            params += [f'%://{host}{end}%' for end in ends]
        if self.verdict in VERDICTS:
            where.append(VERDICTS[self.verdict])
        return where, params


def badge(capture: dict) -> str:
    """The verdict shown for a capture: its last recorded verification, UNSIGNED for one
    without a signature (unless it failed), else 'not verified yet'."""
    verdict = capture.get("verdict")
    if verdict == "NOT VERIFIED":
        return verdict
    if not capture.get("signer"):
        return "UNSIGNED"
    return verdict or "not verified yet"


def list_captures(catalog, filters: Filters, before: str | None = None, limit: int = 50) -> tuple[list[dict], str | None]:
    """(captures newest first, the id to page on from, or None on the last page)."""
    where, params = filters.where()
    if before:
        where.append("c.id < ?")
        params.append(before)
    rows = catalog.db.execute(
        f"SELECT {', '.join('c.' + c for c in CAPTURE_COLUMNS)} FROM captures c WHERE {' AND '.join(where)} "
        "ORDER BY c.id DESC LIMIT ?", (*params, limit + 1))
    found = [_capture_row(r) for r in rows]
    for row in found:
        row["badge"] = badge(row)
    more = len(found) > limit
    return found[:limit], (found[limit - 1]["id"] if more else None)


def jobs(catalog, most: int = 500) -> list[str]:
    """The jobs named by captures, in order: one index seek per job (a DISTINCT would read
    the index of every capture: 40 ms at 100,000)."""
    return [r[0] for r in catalog.db.execute(
        "WITH RECURSIVE j(job) AS (SELECT min(job) FROM captures UNION ALL "
        "SELECT (SELECT min(job) FROM captures WHERE job > j.job) FROM j WHERE j.job IS NOT NULL) "
        "SELECT job FROM j WHERE job IS NOT NULL LIMIT ?", (most,))]


def page_text(catalog, capture_id: str, url: str) -> str | None:
    return catalog.page_text(capture_id, url)


def url_history(catalog, url: str, limit: int = 1000) -> list[dict]:
    """Every capture of `url` in time order, with the page's status, title and digest."""
    rows = catalog.db.execute(
        "SELECT p.capture_id, c.created, p.ts, p.status, p.title, p.digest, p.error, c.verdict, c.signer "
        "FROM pages p JOIN captures c ON c.id = p.capture_id WHERE p.url = ? AND c.missing_since IS NULL "
        "ORDER BY c.created, c.id, p.id LIMIT ?", (url, limit))
    out = []
    for capture_id, created, ts, status, title, digest, error, verdict, signer in rows:
        row = {"capture_id": capture_id, "created": created, "ts": ts, "status": status, "title": title,
               "digest": digest, "error": error, "verdict": verdict, "signer": signer}
        row["badge"] = badge(row)
        out.append(row)
    return out


def media(catalog, capture_id: str, limit: int = 200) -> list[dict]:
    rows = catalog.db.execute("SELECT url, ts, mime, status, digest, size FROM media WHERE capture_id = ? "
                              "LIMIT ?", (capture_id, limit))
    return [dict(zip(("url", "ts", "mime", "status", "digest", "size"), r)) for r in rows]


def media_items(rows: list[dict]) -> list[dict]:
    """The media rows a capture's page lists, each with `thumb`: the captured image shown
    in its row (an image itself; a video or audio item's thumbnail, which is then not
    listed again on its own). Screenshots and DOMs are shown elsewhere."""
    urls = {row["url"] for row in rows}
    items = []
    for row in rows:
        url = row["url"]
        if url.startswith(SHOWN_ELSEWHERE) or (
                url.startswith(urns.THUMBNAIL) and urns.MEDIA + url[len(urns.THUMBNAIL):] in urls):
            continue
        thumb = urns.THUMBNAIL + url[len(urns.MEDIA):] if url.startswith(urns.MEDIA) else None
        if thumb not in urls:
            thumb = url if (row.get("mime") or "").startswith("image/") else None
        items.append({**row, "thumb": thumb})
    return items
