"""A BrowserSession on its own, sealed into a WACZ, for tests of the session's own
behaviours (pages that never settle, scripts that never yield, downloads, TLS, several
page options in one session). `archive capture --browser` is tested through the CLI."""

from __future__ import annotations

from pathlib import Path

from archive.capture.browser import BrowserOptions, BrowserPageResult, BrowserSession, page_entry
from archive.keys import load_private_key
from archive.wacz.zipwriter import ContainerWriter
from archive.seal.sign import Signer
from archive.seal.wacz import SealInput, seal
from archive.warc.records import warcinfo_fields
from archive.warc.writer import WarcWriter
from tests.conftest import PASSPHRASE

CAPTURE_ID = "20261125T120000Z-0b0b0b0b"


class BrowserCapture:
    """A container, a WARC writer and a browser session; seal() ends the capture."""

    def __init__(self, directory: Path, options: BrowserOptions | None = None,
                 exclude=None) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.container = ContainerWriter(directory / f"{CAPTURE_ID}.wacz")
        self.writer = WarcWriter(
            self.container, CAPTURE_ID,
            warcinfo_fields(CAPTURE_ID, "tester", "(the browser's own)", "ignored"),
        )
        self.index: list[str] = []
        self.pages: list[BrowserPageResult] = []
        self.session = BrowserSession(
            self.writer, lambda recorded: self.index.extend(recorded.index), options, exclude).start()
        self.closed = False

    def page(self, url: str, options=None) -> BrowserPageResult:
        result = self.session.capture_page(url, options)
        self.pages.append(result)
        return result

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self.session.close()
            finally:
                self.writer.close()

    def seal(self, key: Path | None = None) -> Path:
        self.close()
        signer = Signer(load_private_key(key, PASSPHRASE.encode())) if key else None
        entries = [page_entry(p) for p in self.pages]
        return seal(self.container, SealInput(
            capture_id=CAPTURE_ID, index_lines=self.index, pages=entries,
            main_page_url=entries[0]["url"] if entries else None,
            main_page_date=entries[0]["ts"] if entries else None,
        ), signer).path

    def __enter__(self) -> "BrowserCapture":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
