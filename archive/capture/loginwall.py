"""Login walls: a page answered with a login form, or a redirect to a login page, instead
of its content. Such a page is recorded (what the server answered is evidence) but as a
failure, "logged out", never as a capture of the content it stands in front of."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from selectolax.lexbor import LexborHTMLParser

ERROR_KIND = "logged-out"
# A redirect to one of these paths is a login wall, whatever the site.
LOGIN_PATH = re.compile(r"(?<![a-z])(?:log[-_]?in|sign[-_]?in)(?![a-z])", re.I)
# The default for a page answered 200 when credentials were given: a form asking for a
# password (a login form) where the content should be.
PASSWORD_FORM = "form input[type=password]"


def check_selector(selector: str) -> str:
    """A CSS selector lexbor understands (ValueError otherwise)."""
    try:
        LexborHTMLParser("<p></p>").css_first(selector)
    except Exception as exc:  # noqa: BLE001 - lexbor raises several kinds for a bad selector
        raise ValueError(f"{selector!r} is not a CSS selector ({exc})") from None
    return selector


@dataclass(frozen=True)
class LoginWall:
    """How to tell a login wall: URL patterns, CSS selectors, and whether credentials were
    given (then a password form counts too)."""

    url_patterns: tuple[str, ...] = ()
    selectors: tuple[str, ...] = ()
    credentials_given: bool = False

    def redirect(self, target: str | None) -> str | None:
        """Why a redirect to `target` is a login wall (None: it is not)."""
        if not target:
            return None
        for pattern in self.url_patterns:
            if re.search(pattern, target):
                return f"logged out: redirected to {target} (matches --logged-out-url {pattern})"
        if LOGIN_PATH.search(urlsplit(target).path):
            return f"logged out: redirected to the login page {target}"
        return None

    def page(self, url: str, body: bytes | None) -> str | None:
        """Why a page answered with content (`body`, decoded HTML) is a login wall."""
        for pattern in self.url_patterns:
            if re.search(pattern, url):
                return f"logged out: the page's address matches --logged-out-url {pattern}"
        if body is None or not (self.selectors or self.credentials_given):
            return None
        tree = LexborHTMLParser(body)
        for selector in self.selectors:
            if tree.css_first(selector) is not None:
                return f"logged out: the page shows {selector} (--logged-out-selector)"
        if self.credentials_given and tree.css_first(PASSWORD_FORM) is not None:
            return "logged out: the page is a login form (a password field) instead of the content"
        return None
