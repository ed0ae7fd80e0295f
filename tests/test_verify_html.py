"""The HTML report, rendered by a real headless Chromium and printed to PDF: the verdict
is visible, the screenshot is shown, and nothing is fetched from anywhere."""

from __future__ import annotations

import http.server
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from selectolax.lexbor import LexborHTMLParser as HTMLParser

from tests.site import serving_thread
from tests.verifyhelp import build_wacz, new_signer, png

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PDFTOTEXT = shutil.which("pdftotext")
needs_browser = pytest.mark.skipif(not (CHROMIUM and PDFTOTEXT),
                                   reason="chromium and pdftotext are installed by scripts/test")
URL = "http://example.test/statement"
# Chromium's own background calls (time, component updates, sign-in), which its flags do
# not all silence; they reach our recording proxy, never the internet, and are not the
# report's doing. Anything else the proxy sees came from the page.
BROWSER_SERVICES = ("clients2.google.com", "update.googleapis.com", "accounts.google.com",
                    "redirector.gvt1.com")
QUIET = ["--disable-features=NetworkTimeServiceQuerying,OptimizationHints,MediaRouter,Translate,"
         "AutofillServerCommunication,CertificateTransparencyComponentUpdater",
         "--disable-domain-reliability", "--disable-client-side-phishing-detection",
         "--disable-default-apps", "--no-default-browser-check", "--metrics-recording-only",
         "--disable-breakpad", "--disable-sync", "--disable-extensions",
         "--safebrowsing-disable-auto-update"]


class _Recorder(http.server.ThreadingHTTPServer):
    """A proxy that fetches nothing and remembers every request it was asked for."""

    def __init__(self) -> None:
        self.seen: list[str] = []          # requests the page made
        self.browser: list[str] = []       # Chromium's own calls home
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _any(self) -> None:
                line = f"{self.command} {self.path}"
                own = any(host in self.path.split("/")[2 if "://" in self.path else 0]
                          for host in BROWSER_SERVICES)
                (recorder.browser if own else recorder.seen).append(line)
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_HEAD = do_CONNECT = _any  # noqa: N815

            def log_message(self, *args) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    def __enter__(self):
        serving_thread(self).start()
        return self

    def __exit__(self, *exc):
        self.shutdown()
        self.server_close()


def _print(page: Path, pdf: Path, proxy: _Recorder, tmp: Path) -> None:
    proc = subprocess.run([
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-extensions",
        f"--user-data-dir={tmp / 'profile'}",
        f"--proxy-server=http://127.0.0.1:{proxy.server_address[1]}", "--proxy-bypass-list=<-loopback>",
        "--no-pdf-header-footer", f"--print-to-pdf={pdf}", *QUIET, page.as_uri(),
    ], capture_output=True, text=True, timeout=120)
    assert pdf.exists() and pdf.stat().st_size > 0, proc.stderr[-3000:]


def _pdf_text(pdf: Path) -> str:
    return subprocess.run([PDFTOTEXT, "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("html")
    signer, pub = new_signer(tmp / "keys")
    wacz = build_wacz(tmp / "c.wacz", [
        {"url": URL, "body": b"<p>The statement</p>", "screenshot": png(320, 200, (255, 0, 255))},
        {"url": URL + "/2", "body": b"<p>Another page</p>"},
    ], signer)
    return tmp, wacz, pub


def test_report_is_self_contained(reports, run):
    tmp, wacz, pub = reports
    out = tmp / "static.html"
    assert run("verify", wacz, "--trust", f"desk={pub}", "--html", out).code == 0
    text = out.read_text()
    tree = HTMLParser(text)
    assert not tree.css("script") and not tree.css("link") and not tree.css("iframe")
    assert all(node.attributes["src"].startswith("data:image/png;base64,") for node in tree.css("[src]"))
    assert not tree.css("[href]")                       # captured URLs are text, never links
    assert "default-src 'none'" in text and "url(" not in text and "@import" not in text
    assert tree.css_first("#verdict h1").text() == "VERIFIED"
    assert URL in text and "desk" in text


@needs_browser
def test_chromium_renders_verdict_and_screenshot_and_fetches_nothing(reports, run):
    tmp, wacz, pub = reports
    page, pdf = tmp / "report.html", tmp / "report.pdf"
    assert run("verify", wacz, "--trust", f"desk={pub}", "--html", page).code == 0
    with _Recorder() as proxy:
        _print(page, pdf, proxy, tmp)
    assert proxy.seen == []
    text = _pdf_text(pdf)
    first_page = text.split("\f")[0]
    assert first_page.lstrip().startswith("VERIFIED")
    assert "every check passed" in first_page
    assert URL in text
    raw = pdf.read_bytes()
    # the screenshot is printed: an image XObject of its size is in the PDF
    assert b"/Subtype /Image" in raw and b"/Width 320" in raw and b"/Height 200" in raw


@needs_browser
def test_not_verified_report_prints_its_verdict(reports, run, tmp_path):
    _, wacz, _ = reports
    page, pdf = tmp_path / "bad.html", tmp_path / "bad.pdf"
    assert run("verify", wacz, "--html", page).code == 1       # no trusted key given
    with _Recorder() as proxy:
        _print(page, pdf, proxy, tmp_path)
    assert proxy.seen == []
    # PDF text wraps wherever the (random) fingerprint ends a line: compare words
    first_page = " ".join(_pdf_text(pdf).split("\f")[0].split())
    assert first_page.startswith("NOT VERIFIED")
    assert "not among the keys you trust" in first_page


@needs_browser
def test_the_request_detector_works(tmp_path):
    page, pdf = tmp_path / "leaky.html", tmp_path / "leaky.pdf"
    page.write_text('<!doctype html><p>leaky</p><img src="http://example.invalid/pixel.png">')
    with _Recorder() as proxy:
        _print(page, pdf, proxy, tmp_path)
    assert any("example.invalid/pixel.png" in line for line in proxy.seen), proxy.seen


def test_an_html_path_that_cannot_be_written_is_one_line_before_checking(reports, run):
    tmp, wacz, pub = reports
    for target, words in ((tmp / "no" / "such" / "r.html", "does not exist"), (tmp, "is a directory")):
        result = run("verify", wacz, "--trust", pub, "--html", target)
        assert result.code == 2 and result.out == "", result
        assert words in result.err and "internal error" not in result.err
        assert len(result.err.strip().splitlines()) == 1


def test_screenshots_of_a_file_that_did_not_verify_say_so_beside_them(reports, run, tmp_path):
    """A printed page of pictures may be read apart from the verdict on the first page:
    each screenshot of a file that did not verify carries the verdict with it."""
    _, wacz, pub = reports
    bad, good = tmp_path / "bad.html", tmp_path / "good.html"
    assert run("verify", wacz, "--html", bad).code == 1        # no trusted key given
    assert run("verify", wacz, "--trust", f"desk={pub}", "--html", good).code == 0
    [picture] = HTMLParser(bad.read_text()).css(".page img")
    caption = picture.next.text()
    assert "NOT VERIFIED" in caption and "may not be what was captured" in caption
    assert "may not be what was captured" not in good.read_text()


@needs_browser
def test_printed_tables_break_no_word_and_list_every_failed_fetch(capture, site, pubkey, run, tmp_path):
    """Printed on A4 portrait: custody events and times are whole ("capture/d" was split),
    and the failed fetches are listed with URL and reason."""
    long_path = "/missing/" + "a-long-segment/" * 6 + "?q=" + "x" * 60
    wacz = capture("/", long_path)
    capture_id = wacz.name.removesuffix(".wacz")
    page, pdf = tmp_path / "custody.html", tmp_path / "custody.pdf"
    result = run("verify", capture_id, "--store", tmp_path / "store", "--trust", pubkey, "--html", page)
    assert result.code == 0, result
    with _Recorder() as proxy:
        _print(page, pdf, proxy, tmp_path)
    text = _pdf_text(pdf)
    custody = text.split("Custody history", 1)[1]
    rows = [line.split() for line in custody.splitlines() if re.match(r"\s*\d+\s+20\d\d-", line)]
    assert [row[2] for row in rows][:3] == ["captured", "sealed", "stored"], custody
    assert all(re.fullmatch(r"20\d\d-\d\d-\d\dT[\d:.]+Z", row[1]) for row in rows), custody
    failed = text.split("Failed fetches", 1)[1].split("Custody history", 1)[0].splitlines()
    header = next(n for n, line in enumerate(failed) if line.split()[:1] == ["URL"])
    column = failed[header].index("what")        # the URL column, wrapped over lines
    url = "".join(line[:column].strip() for line in failed[header + 1:])
    assert url == site.url(long_path), failed
    assert failed[header + 1][column:].split() == ["page", "HTTP", "404"], failed
