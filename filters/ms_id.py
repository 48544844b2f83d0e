"""Standard Malay or Indonesian: the marker words of the `ms/id` pair (filters/language_pairs.py).

lid.176 labels most Standard Malay text `id` (fastText #870; on five-sentence Tatoeba documents it gets 26%
of the Malay ones right). The two standards share most of their words and differ in vocabulary and a few
spellings, so the pair decides by words: a naive-Bayes sum of per-word log(P_ms / P_id) from wordfreq's word
lists (filters/build_ms_id_table.py, ~35,000 words), plus decisive marker words of each standard (the pairs
every guide to the two lists first: kerana/karena, bahawa/bahwa, wang/uang, kerajaan/pemerintah,
perkara/pasal for an article of law, ...), averaged per word.

Parameters (MARKER_WEIGHT, the pair's threshold 0.1) were chosen on the build half of the Tatoeba ms/id
sentences (five-sentence documents) and the UDHR articles; tests/test_ms_id.py measures the other half.
"""

from __future__ import annotations

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


def marker_weights() -> dict[str, float]:
    """Evidence each marker word adds: + for Malay, - for Indonesian."""
    out = {w: MARKER_WEIGHT * v for w, v in MARKERS_MS.items()}
    out.update({w: -MARKER_WEIGHT * v for w, v in MARKERS_ID.items()})
    return out
