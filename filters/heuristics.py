"""The heuristic quality filters by job-spec name, in the order the pipeline runs them.

The order is FineWeb's (Gopher quality, Gopher repetition, C4, FineWeb): cheap rules that drop
the most pages first, and C4, which rewrites pages, before the FineWeb line statistics that
should see the rewritten text.
"""

from __future__ import annotations

from filters.c4 import C4Quality
from filters.fineweb import FineWebQuality
from filters.gopher_quality import GopherQuality
from filters.gopher_repetition import GopherRepetition

HEURISTIC_FILTERS: dict[str, type] = {
    "gopher_quality": GopherQuality,
    "gopher_repetition": GopherRepetition,
    "c4": C4Quality,
    "fineweb": FineWebQuality,
}

__all__ = ["HEURISTIC_FILTERS", "C4Quality", "FineWebQuality", "GopherQuality", "GopherRepetition"]
