"""Which URLs a crawl may follow: page, prefix, host or domain of its seeds, plus
include/exclude patterns."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import urlsplit

SCOPES = ("page", "prefix", "host", "domain")


@lru_cache(maxsize=1)
def _extractor():
    import tldextract

    # The bundled public suffix snapshot only: never fetch a list from the network.
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def registered_domain(host: str) -> str:
    host = host.lower().rstrip(".")
    if re.fullmatch(r"[\d.]+|\[[0-9a-f:]+\]|localhost", host):
        return host
    parts = _extractor()(host)
    return getattr(parts, "top_domain_under_public_suffix", None) or host


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def _prefix(url: str) -> str:
    parts = urlsplit(url)
    path = parts.path or "/"
    return f"{parts.scheme}://{parts.netloc}{path[: path.rfind('/') + 1]}"


@dataclass
class Scope:
    kind: str
    seeds: list[str]
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.kind not in SCOPES:
            raise ValueError(f"scope must be one of {', '.join(SCOPES)}")
        self._include = [re.compile(p) for p in self.include]
        self._exclude = [re.compile(p) for p in self.exclude]
        self._seeds = set(self.seeds)
        self._hosts = {_host(s) for s in self.seeds}
        self._prefixes = tuple(_prefix(s) for s in self.seeds)
        self._domains = {registered_domain(h) for h in self._hosts} if self.kind == "domain" else set()

    def allows(self, url: str) -> bool:
        """True when a page at `url` is in scope (requisites are not subject to scope)."""
        if any(p.search(url) for p in self._exclude):
            return False
        if any(p.search(url) for p in self._include):
            return True
        if self.kind == "page":
            return url in self._seeds
        if self.kind == "prefix":
            return url.startswith(self._prefixes)
        host = _host(url)
        if self.kind == "host":
            return host in self._hosts
        return registered_domain(host) in self._domains

    def excluded(self, url: str) -> bool:
        return any(p.search(url) for p in self._exclude)
