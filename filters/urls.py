"""URL filtering for crawled documents: domain block lists and allow lists (files, one domain per line),
and URL patterns. A listed domain covers its subdomains (`example.com` blocks `www.example.com`), as the
UT1 and similar block lists mean it. Matching is by set lookups over the host's suffixes, so a list of
millions of domains costs one lookup per label of the host.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable
from urllib.parse import urlsplit


def read_domain_list(path: str | Path) -> frozenset[str]:
    """Domains of a list file: one per line, `#` comments and blank lines ignored, lower-cased; a line
    may also be a URL (its host is taken)."""
    out = set()
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.split("#", 1)[0].strip().lower()
        if not line:
            continue
        host = urlsplit(line).hostname if "://" in line else line.split("/", 1)[0]
        if host:
            out.add(host.strip(".").removeprefix("www."))
    return frozenset(out)


def normalize_url(url: str) -> str:
    """The URL as dedup compares it: scheme and host lower-cased, default port and fragment dropped."""
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError:
        return url.strip()
    scheme = parts.scheme.lower()
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    return f"{scheme}://{host}{parts.path or '/'}" + (f"?{parts.query}" if parts.query else "")


def host_of(url: str | None) -> str | None:
    try:
        host = urlsplit(url or "").hostname
    except ValueError:
        return None
    return host.strip(".").lower() if host else None


def _suffixes(host: str) -> Iterable[str]:
    labels = host.split(".")
    return (".".join(labels[i:]) for i in range(len(labels)))


class UrlFilter:
    def __init__(
        self, block: frozenset[str] = frozenset(), allow: frozenset[str] | None = None, patterns: Iterable[str] = ()
    ):
        self.block, self.allow = block, allow
        self.patterns = [re.compile(p) for p in patterns]

    def check(self, url: str | None) -> str | None:
        """The drop reason for a document's URL, or None. Documents without a URL pass."""
        if url is None:
            return None
        host = host_of(url)
        if host is None:
            return "url:invalid"
        if self.block and any(s in self.block for s in _suffixes(host)):
            return "url:blocked_domain"
        if self.allow is not None and not any(s in self.allow for s in _suffixes(host)):
            return "url:not_allowed"
        if any(p.search(url) for p in self.patterns):
            return "url:pattern"
        return None
