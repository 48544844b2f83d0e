"""The built-in heuristic quality filters by job-spec name (filters/registry.py adds the plugins).

FineWeb's order (Gopher quality, Gopher repetition, C4, FineWeb) is the recommended one: cheap rules that
drop the most pages first, and C4, which rewrites pages, before the FineWeb line statistics that should
see the rewritten text. A job runs its filters in the order its spec lists them.
"""

from __future__ import annotations

from filters.c4 import C4Quality
from filters.domain import DOMAIN_FILTERS, CodeQuality, MathQuality
from filters.fineweb import FineWebQuality
from filters.gopher_quality import GopherQuality
from filters.gopher_repetition import GopherRepetition

HEURISTIC_FILTERS: dict[str, type] = {
    "gopher_quality": GopherQuality,
    "gopher_repetition": GopherRepetition,
    "c4": C4Quality,
    "fineweb": FineWebQuality,
}

# The web filters above apply to every domain but code and math, which get their own rules instead.
ALL_FILTERS: dict[str, type] = {**HEURISTIC_FILTERS, **DOMAIN_FILTERS}
RULE_DOMAINS: frozenset[str] = frozenset(DOMAIN_FILTERS)

__all__ = [
    "ALL_FILTERS",
    "HEURISTIC_FILTERS",
    "RULE_DOMAINS",
    "C4Quality",
    "CodeQuality",
    "FineWebQuality",
    "GopherQuality",
    "GopherRepetition",
    "MathQuality",
]
