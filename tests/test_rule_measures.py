"""Each filter's `explain` (the value and threshold shown beside a sampled drop) agrees with its decision:
for every document a rule drops, the measured value is on the dropping side of the threshold, and
moving the threshold past the value lets the document through that rule."""

from __future__ import annotations

import dataclasses
import gzip
import json
from pathlib import Path

import pytest

from filters.base import Measure
from filters.c4 import C4Quality
from filters.domain import CodeQuality, MathQuality
from filters.fineweb import FineWebQuality
from filters.gopher_quality import GopherQuality
from filters.gopher_repetition import GopherRepetition

CORPUS = Path(__file__).resolve().parents[1] / "curation" / "demo" / "corpus"


def _texts(name: str, n: int = 300) -> list[str]:
    out = []
    with gzip.open(CORPUS / name, "rt", encoding="utf-8") as f:
        for line in f:
            out.append(json.loads(line)["text"])
            if len(out) >= n:
                break
    return out


def _corrupted(texts: list[str]) -> list[str]:
    """The same documents cut short, repeated, turned into lists and into symbol soup: every rule gets hits."""
    out = []
    for t in texts[:60]:
        words = t.split()
        out += [
            " ".join(words[:12]),
            t[:12],
            "\n".join([words[0] if words else "x"] * 40),
            (t[:400] + "\n\n") * 6,
            "\n".join(f"- {w}" for w in words[:80]),
            " ".join(f"#{w} ..." for w in words[:60]),
            t + "\nThe lorem ipsum text goes on here.",
            t + "\nWrite it as if (x) { return y; } in the end.",
        ]
    return out


def _violates(m: Measure) -> bool:
    if m.drops_when == "<":
        return m.value < m.threshold
    if m.drops_when == ">":
        return m.value > m.threshold
    raise AssertionError(f"unknown drops_when {m.drops_when!r}")


@pytest.mark.parametrize(
    "filt, corpus",
    [
        (GopherQuality(), "reuters.jsonl.gz"),
        (GopherRepetition(), "reuters.jsonl.gz"),
        (FineWebQuality(), "reuters.jsonl.gz"),
        (C4Quality(), "reuters.jsonl.gz"),
        (CodeQuality(), "go_code.jsonl.gz"),
        (MathQuality(), "gsm8k.jsonl.gz"),
    ],
    ids=lambda x: getattr(x, "name", x),
)
def test_measure_is_on_the_dropping_side(filt, corpus):
    texts = _texts(corpus)
    texts += _corrupted(texts)
    seen: dict[str, int] = {}
    for text in texts:
        got = filt.check(text, "en")
        reason = got[0] if isinstance(got, tuple) else got
        if reason is None:
            continue
        m = filt.explain(text, "en", reason)
        assert m is not None, f"{filt.name} gives no measure for {reason}"
        seen[reason] = seen.get(reason, 0) + 1
        if m.value is None:
            continue
        assert _violates(m), f"{reason}: {m} does not drop ({text[:80]!r})"
    assert len(seen) >= 2, f"too few rules exercised: {seen}"


def test_moving_the_threshold_past_the_value_lets_the_document_through_that_rule():
    """The threshold explain reports is the one the rule applies: set just past the value, the document is no
    longer dropped for that reason (it may fail a later rule)."""
    texts = _corrupted(_texts("reuters.jsonl.gz", 80))
    options = {
        "gopher_quality:word_count_low": "min_doc_words",
        "gopher_quality:bullet_lines": "max_bullet_lines_ratio",
        "gopher_quality:hash_ratio": "max_symbol_word_ratio",
    }
    moved = 0
    filt = GopherQuality(language_table=False)
    for text in texts:
        reason = filt.check(text, "en")
        if reason not in options:
            continue
        m = filt.explain(text, "en", reason)
        assert m is not None and m.value is not None
        looser = m.value if m.drops_when == "<" else m.value + 1e-9
        relaxed = dataclasses.replace(filt, **{options[reason]: looser})
        assert relaxed.check(text, "en") != reason
        moved += 1
    assert moved >= 3
