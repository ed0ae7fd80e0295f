"""`archive serve` in a real browser: Debian's Chromium via Playwright against the app on
loopback ports, over a store of captures made here (one with --browser, one after a
sentence was removed, one tampered with, one unsigned, one whose page is hostile)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from tests.conftest import BIN, PASSPHRASE
from tests.serving import Served, Watched, free_port, launch, screenshots_dir
from tests.replay import replayed_frame
from tests.site import ARABIC_WORD, NEWS_SENTENCE, REMOVED_SENTENCE, SiteServer, search_site

playwright_api = pytest.importorskip("playwright.sync_api")

HOSTILE_TITLE = '<script>alert("title")</script><img src=x onerror=alert("title-img")>'


def hostile_body(app_port: int) -> str:
    app = f"http://127.0.0.1:{app_port}"
    return (
        "<p>Hostile text &lt;script&gt;alert('text')&lt;/script&gt; &lt;img src=x onerror=alert(1)&gt; end.</p>"
        f"<script>alert('body'); fetch('{app}/pwned-fetch'); fetch('/pwned-relative');</script>"
        f"<img src=x onerror=\"alert('img'); new Image().src='{app}/pwned-img'\">"
        "<a id=js href=\"javascript:alert('link')\">click me</a>")


def _capture(store: Path, work: Path, urls: list[str], *extra: str) -> str:
    env = dict(os.environ, ARCHIVE_KEY_PASSPHRASE=PASSPHRASE)
    done = subprocess.run([str(BIN / "archive"), "capture", *urls, "--store", str(store), "--work-dir", str(work),
                           "--quiet", "--json", *extra], capture_output=True, text=True, timeout=180, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["capture_id"]


def _tamper(path: Path) -> None:
    """Flip one byte in the middle of a stored capture (its WARC data)."""
    os.chmod(path, 0o644)
    with open(path, "r+b") as fh:
        fh.seek(path.stat().st_size // 3)
        byte = fh.read(1)
        fh.seek(-1, 1)
        fh.write(bytes([byte[0] ^ 0x01]))


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """(store, site base URL, ids by name, app port, key folder)."""
    root = tmp_path_factory.mktemp("serve")
    env = dict(os.environ, ARCHIVE_KEY_PASSPHRASE=PASSPHRASE)
    subprocess.run([str(BIN / "archive"), "keys", "generate", "--out", str(root / "keys")], check=True, env=env,
                   capture_output=True)
    key = str(root / "keys" / "signing-key.pem")
    app_port = free_port()
    site = search_site()
    site.html("/hostile", HOSTILE_TITLE, hostile_body(app_port))
    store, work = root / "store", root / "work"
    ids = {}
    with SiteServer(site) as server:
        url = server.url
        ids["browser"] = _capture(store, work, [url("/news"), url("/statement"), url("/hostile")],
                                  "--browser", "--key", key)
        site.html("/statement", "Ministry statement", "<p>We mourn the victims.</p>")
        ids["later"] = _capture(store, work, [url("/statement"), url("/news"), url("/arabic")], "--key", key)
        ids["tampered"] = _capture(store, work, [url("/russian")], "--key", key)
        ids["unsigned"] = _capture(store, work, [url("/zipped")], "--unsigned")
        base = server.base
    _tamper(next(store.glob(f"captures/*/*/*/{ids['tampered']}.wacz")))
    return store, base, ids, app_port, root / "keys"


@pytest.fixture(scope="module")
def app(store):
    path, _, _, port, keys = store
    served = Served("--store", str(path), "--port", str(port), "--replay-port", str(free_port()), "--trust", f"alice={keys / 'signing-key.pub.pem'}",
                    "--operator", "investigator")
    yield served
    served.stop()


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        chromium = launch(p)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return screenshots_dir(tmp_path_factory)


def verify_now(page, app, capture_id: str, timeout: float = 90) -> None:
    """Open the capture, press Verify now, wait for the result the page then shows."""
    page.goto(f"{app.url}/captures/{capture_id}")
    page.click("#verify-now")
    page.wait_for_selector("#checks", timeout=timeout * 1000)


def test_investigator_views(store, app, browser, shots):
    _, base, ids, _, _ = store
    watched = Watched(browser)
    page = watched.page
    try:
        # one capture: verified in the background, with the signer's trusted name and its screenshots
        verify_now(page, app, ids["browser"])
        assert page.inner_text("#verdict").strip() == "VERIFIED"
        assert "alice" in page.inner_text("#signer")
        assert page.locator("#checks tr.fail").count() == 0
        news_shot = page.locator(f"img[alt='screenshot of {base}/news']")
        news_shot.scroll_into_view_if_needed()
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=news_shot.element_handle())
        assert news_shot.evaluate("img => img.naturalWidth") == 1280
        assert "verified" in page.inner_text("#custody")        # the custody entry Verify now recorded
        page.screenshot(path=shots / "capture.png", full_page=True)
        custody = subprocess.run([str(BIN / "archive"), "custody", "show", ids["browser"], "--store", str(store[0]),
                                  "--json"], capture_output=True, text=True, check=True)
        entries = json.loads(custody.stdout)["entries"]
        assert [e["details"]["result"] for e in entries if e["event"] == "verified"] == ["VERIFIED"]
        assert entries[-1]["actor"]["name"] == "investigator"

        # a tampered capture: NOT VERIFIED, naming the check that failed
        verify_now(page, app, ids["tampered"])
        assert page.inner_text("#verdict").strip() == "NOT VERIFIED"
        failed = page.locator("#checks tr.fail")
        assert failed.count() >= 1
        assert any(name in ("container", "records", "resources") for name in
                   [failed.nth(i).get_attribute("data-check") for i in range(failed.count())])
        page.screenshot(path=shots / "tampered.png", full_page=True)

        # the list: each capture with its verdict
        page.goto(f"{app.url}/captures")
        badges = {page.locator("tr[data-capture]").nth(i).get_attribute("data-capture"):
                  page.locator("tr[data-capture] .badge").nth(i).inner_text()
                  for i in range(page.locator("tr[data-capture]").count())}
        assert badges == {ids["browser"]: "VERIFIED", ids["tampered"]: "NOT VERIFIED",
                          ids["unsigned"]: "UNSIGNED", ids["later"]: "not verified yet"}
        page.screenshot(path=shots / "captures.png", full_page=True)
        page.goto(f"{app.url}/captures?verdict=not-verified")
        assert page.locator("tr[data-capture]").count() == 1

        # replay: the captured article inside the replay frame, served from the other origin
        page.goto(f"{app.url}/captures/{ids['browser']}/replay?url={quote(base + '/news', safe='')}")
        frame = replayed_frame(page, base + "/news")
        assert NEWS_SENTENCE in frame.inner_text("body")
        assert frame.url.startswith(app.replay + "/")
        page.screenshot(path=shots / "replay.png")

        # history: the two captures of /statement side by side, the removed sentence marked
        page.goto(f"{app.url}/history?url={quote(base + '/statement', safe='')}")
        assert REMOVED_SENTENCE in page.inner_text("#textdiff del")
        assert page.locator("#textdiff ins").count() == 0
        assert "changed between" in page.inner_text("#finding")
        page.screenshot(path=shots / "history.png", full_page=True)

        # search: the news page by a phrase, the Arabic page by an Arabic word, hits marked
        page.goto(f"{app.url}/search?q={quote(chr(34) + 'Syrian Observatory for Human Rights' + chr(34))}")
        assert page.locator("#hits mark").first.inner_text() == "Syrian Observatory for Human Rights"
        first = page.locator("#hits li a.title").first
        assert first.inner_text() == "Shelling resumes"
        page.screenshot(path=shots / "search.png", full_page=True)
        first.click()
        assert page.url.startswith(f"{app.url}/captures/") and quote(base + "/news", safe="") in page.url
        assert page.locator("#pages tr.focus .url").inner_text() == base + "/news"
        page.goto(f"{app.url}/search?q={quote(ARABIC_WORD)}")
        assert {u for u in page.locator("#hits .url").all_inner_texts()} == {base + "/arabic"}
        page.screenshot(path=shots / "search-arabic.png", full_page=True)
        assert watched.dialogs == []
    finally:
        watched.close()


def test_a_verdict_is_never_shown_for_a_file_changed_since(store, browser, shots, tmp_path):
    """Verified here, then the stored object changes (written over in place, or replaced by
    another file under its name: whoever can write to the store can): the page must not
    keep the green VERIFIED beside screenshots read from the file as it is now, nor hand
    out the old report over it."""
    _, _, _, _, keys = store
    key, pub = keys / "signing-key.pem", keys / "signing-key.pub.pem"
    site = search_site()
    own = tmp_path / "store"
    with SiteServer(site) as server:
        ids = [_capture(own, tmp_path / "work", [server.url(path)], "--browser", "--key", str(key))
               for path in ("/news", "/statement")]
    first, other = (next(own.glob(f"captures/*/*/*/{i}.wacz")) for i in ids)
    served = Served("--store", str(own), "--port", str(free_port()), "--replay-port", str(free_port()),
                    "--trust", f"alice={pub}", "--operator", "investigator")
    original = first.read_bytes()

    def put(data: bytes) -> None:
        """A file under the capture's name in the store (a new one: another inode)."""
        aside = first.with_name("incoming")
        aside.write_bytes(data)
        os.replace(aside, first)

    watched = Watched(browser)
    page = watched.page
    try:
        for change in ("in place", "replaced"):
            put(original)
            verify_now(page, served, ids[0])
            assert page.inner_text("#verdict").strip() == "VERIFIED"
            report = f"{served.url}/captures/{ids[0]}/report.html"
            assert requests.get(report, timeout=30).status_code == 200
            if change == "in place":
                _tamper(first)
            else:       # another capture's file under its name, with a screenshot of its own
                put(other.read_bytes())
            page.goto(f"{served.url}/captures/{ids[0]}")
            assert page.inner_text("#verdict").strip() == "CHANGED SINCE IT WAS VERIFIED", change
            assert "no longer applies" in page.inner_text("#changed")
            assert page.get_attribute("#verification", "class").split() == ["verdict", "could-not"]
            captions = page.locator("figcaption").all_inner_texts()
            assert captions or change == "replaced"     # (the other capture's screenshot is of another page)
            for caption in captions:
                assert "not vouched for" in caption, caption
            assert page.locator("#download-report").count() == 0
            refused = requests.get(report, timeout=30)
            assert refused.status_code == 409 and "changed since it was verified" in refused.text
            page.screenshot(path=shots / f"changed-{change.replace(' ', '-')}.png", full_page=True)
    finally:
        watched.close()
        served.stop()


def test_lists_and_reports_work_without_javascript(store, app, browser):
    _, base, ids, _, _ = store
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"{app.url}/captures")
        assert page.locator("tr[data-capture]").count() == 4
        page.select_option("select[name=verdict]", "unsigned")
        page.click("form.filters button")
        assert [page.locator("tr[data-capture]").nth(0).get_attribute("data-capture")] == [ids["unsigned"]]
        # Verify now without JavaScript: the page refreshes itself until the result is there
        page.goto(f"{app.url}/captures/{ids['unsigned']}")
        page.click("#verify-now")
        page.wait_for_selector("#checks", timeout=90_000)
        # as `archive verify` says of a capture without a signature (no --allow-unsigned here)
        assert page.inner_text("#verdict").strip() == "NOT VERIFIED"
        assert [page.locator("#checks tr.fail").nth(i).get_attribute("data-check")
                for i in range(page.locator("#checks tr.fail").count())] == ["signature"]
        page.goto(f"{app.url}/search?q=mourn")
        assert page.locator("#hits mark").first.inner_text().lower() == "mourn"
    finally:
        context.close()


def test_hostile_capture_runs_nothing_on_the_app(store, app, browser, shots):
    _, base, ids, port, _ = store
    watched = Watched(browser)
    page = watched.page
    try:
        hostile = base + "/hostile"
        page.goto(f"{app.url}/captures/{ids['browser']}?url={quote(hostile, safe='')}")
        assert HOSTILE_TITLE in page.locator("#pages tr.focus").inner_text()      # shown as text
        page.goto(f"{app.url}/captures")
        page.goto(f"{app.url}/search?q=hostile")
        assert "<script>alert('text')</script>" in page.inner_text("#hits")
        assert page.locator("#hits script, #hits img").count() == 0
        page.goto(f"{app.url}/history?url={quote(hostile, safe='')}")
        page.goto(f"{app.url}/captures/{ids['browser']}/replay?url={quote(hostile, safe='')}")
        frame = replayed_frame(page, hostile)
        frame.click("#js")
        page.wait_for_timeout(1500)
        page.screenshot(path=shots / "hostile-replay.png")
        # its scripts ran (if at all) in the sandboxed frame of the replay origin: no dialog,
        # nothing asked of the app, nothing of the live site
        assert watched.dialogs == []
        assert not [u for u in watched.requests if "pwned" in u and not u.startswith(app.replay)]
        assert not [u for u in watched.requests if u.startswith(base)]
        assert frame.url.startswith(app.replay)
        # neither the app nor ReplayWeb.page asked anything of another server
        assert [u for u in watched.requests if not u.startswith((app.url, app.replay, "data:", "blob:"))] == []
    finally:
        watched.close()


def test_downloads(store, app):
    path, base, ids, _, _ = store
    stored = next(path.glob(f"captures/*/*/*/{ids['later']}.wacz")).read_bytes()
    whole = requests.get(f"{app.url}/captures/{ids['later']}/wacz", timeout=30)
    assert whole.status_code == 200 and whole.content == stored
    assert "attachment" in whole.headers["content-disposition"]
    part = requests.get(f"{app.url}/captures/{ids['later']}/wacz", headers={"Range": "bytes=100-199"}, timeout=30)
    assert part.status_code == 206 and part.content == stored[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(stored)}"
    beyond = requests.get(f"{app.url}/captures/{ids['later']}/wacz", headers={"Range": f"bytes={len(stored)}-"}, timeout=30)
    assert beyond.status_code == 416
    page = requests.get(f"{app.url}/captures/{ids['later']}/resource", params={"url": base + "/statement"}, timeout=30)
    assert page.status_code == 200 and b"We mourn the victims." in page.content
    assert page.headers["content-type"] == "application/octet-stream" and "sandbox" in page.headers["content-security-policy"]
    missing = requests.get(f"{app.url}/captures/{ids['later']}/resource", params={"url": base + "/nothing"}, timeout=30)
    assert missing.status_code == 404 and "was not captured" in missing.text
    # the HTML report, once verified (the tampered capture: its verdict is the same whenever verified)
    report_url = f"{app.url}/captures/{ids['tampered']}/report.html"
    assert requests.post(f"{app.url}/captures/{ids['tampered']}/verify", timeout=30, allow_redirects=False).status_code == 303
    until = time.monotonic() + 90
    while requests.get(f"{app.url}/captures/{ids['tampered']}/verify/status", timeout=30).json()["state"] != "done":
        assert time.monotonic() < until
        time.sleep(0.3)
    report = requests.get(report_url, timeout=30)
    assert report.status_code == 200 and "attachment" in report.headers["content-disposition"]
    assert "<h1>NOT VERIFIED</h1>" in report.text
    assert "sandbox" in report.headers["content-security-policy"]
    # a POST from another site's page is refused
    assert requests.post(f"{app.url}/captures/{ids['later']}/verify", headers={"Sec-Fetch-Site": "cross-site"},
                         timeout=30).status_code == 403
    ui = requests.get(f"{app.url}/captures", timeout=30)
    assert "default-src 'none'" in ui.headers["content-security-policy"]
    assert requests.get(f"{app.url}/captures/nonsense", timeout=30).status_code == 404
    # a request naming another host (DNS rebinding) is refused
    assert requests.get(f"{app.url}/captures", headers={"Host": "evil.example:80"}, timeout=30).status_code == 421


def test_capture_in_s3_replays(s3, browser, tmp_path, key, pubkey, shots):
    """A capture stored in the S3 endpoint replays: the WACZ is read by ranged GETs (the
    store's reader has no other way to read it)."""
    site = search_site()
    catalog = tmp_path / "catalog.sqlite3"
    with SiteServer(site) as server:
        news = server.url("/news")
        capture_id = _capture(s3.address("team"), tmp_path / "work", [news], "--key", str(key),
                              "--catalog", str(catalog))
    app = Served("--store", s3.address("team"), "--catalog", str(catalog), "--port", "0",
                 "--trust", f"alice={pubkey}")
    watched = Watched(browser)
    try:
        page = watched.page
        page.goto(f"{app.url}/captures/{capture_id}/replay?url={quote(news, safe='')}")
        frame = replayed_frame(page, news)
        assert NEWS_SENTENCE in frame.inner_text("body")
        page.screenshot(path=shots / "replay-s3.png")
    finally:
        watched.close()
        assert "Traceback" not in app.stop()
