"""Browser capture: a real headless Chromium (Debian's, driven by Playwright) loads
the page through our recording proxy, so every request and response it makes lands in
the WARC exactly as the HTTP crawler writes them; then the page as a person saw it is
kept too: a full-page PNG screenshot (`urn:screenshot:<url>`) and the rendered DOM
(`urn:dom:<url>`, and `urn:dom:<frame url>` for each frame loaded from the web) as
resource records, and a metadata record saying how it was loaded.

launch.py starts Chromium, page.py drives one page (navigation, waits, scrolling,
snapshots), traffic.py follows what the proxy saw of it and judges the page from that,
records.py writes its snapshot and metadata records, session.py holds them together
(one Chromium and one proxy for one capture), result.py is what comes back.
"""

from archive.capture.browser.failures import BrowserGone
from archive.capture.browser.launch import CHROMIUM_ARGS, check_chromium, find_chromium
from archive.capture.browser.result import BrowserPageResult, page_entry
from archive.capture.browser.session import BrowserOptions, BrowserSession

__all__ = ["BrowserGone", "BrowserOptions", "BrowserPageResult", "BrowserSession", "CHROMIUM_ARGS",
           "check_chromium", "find_chromium", "page_entry"]
