"""Standard Malay or Indonesian: a second look at the documents language ID labels `ms` or `id`.

lid.176 labels most Standard Malay text `id` (fastText #870; on five-sentence Tatoeba documents it gets 26%
of the Malay ones right). The two standards share most of their words and differ in vocabulary and a few
spellings, so this decides by words: a naive-Bayes sum of per-word log(P_ms / P_id) from wordfreq's word
lists (filters/build_ms_id_table.py, ~35,000 words), plus decisive marker words of each standard (the pairs
every guide to the two lists first: kerana/karena, bahawa/bahwa, wang/uang, kerajaan/pemerintah,
perkara/pasal for an article of law, ...), averaged per word. It costs one regex pass over the sample
lid.176 already saw, and runs only on documents lid.176 put in the pair.

Parameters (MARKER_WEIGHT, THRESHOLD) were chosen on the build half of the Tatoeba ms/id sentences (five-
sentence documents) and the UDHR articles; tests/test_ms_id.py measures the other half.
"""

from __future__ import annotations

import gzip
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import regex

from filters.build_ms_id_table import CLIP, TABLE

_TOKEN = regex.compile(r"[a-z]+(?:-[a-z]+)*")
# Words of one standard that the other writes differently or does not use (weights: how decisive).
MARKERS_MS = {
    "kerana": 3,
    "bahawa": 3,
    "sahaja": 3,
    "iaitu": 3,
    "wang": 2,
    "kerajaan": 2,
    "perkara": 2,
    "hendaklah": 3,
    "sebarang": 3,
    "mana-mana": 3,
    "awak": 2,
    "kereta": 2,
    "percuma": 2,
    "boleh": 1,
}
MARKERS_ID = {"karena": 3, "bahwa": 3, "saja": 2, "yaitu": 3, "uang": 3, "pemerintah": 2, "pasal": 3, "apapun": 3,
              "bisa": 2, "kamu": 1, "mobil": 3, "gratis": 2, "maupun": 2, "sih": 2, "nggak": 3, "enggak": 3}  # fmt: skip
MARKER_WEIGHT = 2.0
THRESHOLD = 0.1  # mean evidence per word above which a document is Malay
PAIR = frozenset({"ms", "id"})


@lru_cache(maxsize=1)
def _table(path: str = str(TABLE)) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in gzip.decompress(Path(path).read_bytes()).decode("utf-8").splitlines():
        if line and not line.startswith("#"):
            word, _, odds = line.partition("\t")
            out[word] = float(odds)
    for w, v in MARKERS_MS.items():
        out[w] = max(-CLIP, min(CLIP, out.get(w, 0.0))) + MARKER_WEIGHT * v
    for w, v in MARKERS_ID.items():
        out[w] = max(-CLIP, min(CLIP, out.get(w, 0.0))) - MARKER_WEIGHT * v
    return out


def evidence(text: str) -> float:
    """Mean per-word evidence for Malay (> 0) against Indonesian (< 0)."""
    table = _table()
    words = _TOKEN.findall(text.lower())
    return sum(table.get(w, 0.0) for w in words) / len(words) if words else 0.0


def decide(texts: Sequence[str]) -> list[str]:
    """`ms` or `id` for each text (all of them known to be one of the two)."""
    return ["ms" if evidence(t) > THRESHOLD else "id" for t in texts]
