"""Benchmark decontamination: documents sharing a long n-gram with any test item of a benchmark.

GPT-3's rule (and many since): a training document that shares a 13-gram of words with a benchmark item
has seen that item. Units are `filters.segmentation.mixed_units` (lower-cased words without punctuation,
one unit per character of the scripts written without spaces, whatever the label), so Chinese problems are
found too and a document's language label cannot hide a copy. Each
benchmark's n-grams are hashed into one Python set per worker (a benchmark of 10,000 items of 100 words is
about a million n-grams, some 100 MB); a document is checked with one set lookup per n-gram. Items shorter
than `min_item_units` are skipped (counted): an 8-word item would match common phrases everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

from filters.segmentation import mixed_units


def ngram_hashes(text: str, n: int) -> set[int]:
    units = mixed_units(text)
    return {hash(tuple(units[i : i + n])) for i in range(len(units) - n + 1)}


@dataclass
class BenchmarkIndex:
    """The n-gram hashes of one benchmark's items."""

    name: str
    n: int = 13
    min_item_units: int = 13
    grams: set[int] = field(default_factory=set)
    items: int = 0
    skipped_short: int = 0

    def add_items(self, texts: Iterable[str]) -> "BenchmarkIndex":
        for t in texts:
            units = mixed_units(t)
            if len(units) < max(self.n, self.min_item_units):
                self.skipped_short += 1
                continue
            self.items += 1
            self.grams.update(hash(tuple(units[i : i + self.n])) for i in range(len(units) - self.n + 1))
        return self


class Decontaminator:
    """Which benchmarks each document shares an n-gram with."""

    def __init__(self, indexes: Sequence[BenchmarkIndex]):
        self.indexes = list(indexes)

    def hits(self, text: str) -> list[str]:
        if not self.indexes:
            return []
        out = []
        by_n: dict[int, set[int]] = {}
        for ix in self.indexes:
            if ix.n not in by_n:
                by_n[ix.n] = ngram_hashes(text, ix.n)
            if not by_n[ix.n].isdisjoint(ix.grams):
                out.append(ix.name)
        return out
