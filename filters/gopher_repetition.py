"""Gopher repetition rules (Rae et al. 2021, table A1), the defaults of datatrove's GopherRepetitionFilter.

Rules, in datatrove's order (the first failing one is the drop reason):

- ``gopher_repetition:empty``           empty text
- ``gopher_repetition:dup_para``        over 30% of paragraphs (split on blank lines) are repeats
- ``gopher_repetition:dup_para_chars``  repeated paragraphs hold over 20% of the characters
- ``gopher_repetition:dup_line``        over 30% of lines are repeats
- ``gopher_repetition:dup_line_chars``  repeated lines hold over 20% of the characters
- ``gopher_repetition:top_{n}_gram``    the most frequent token n-gram (n = 2, 3, 4) covers over
  20%, 18%, 16% of the characters (its length with spaces times its count)
- ``gopher_repetition:dup_{n}_gram``    repeated token n-grams (n = 5..10), counted left to right
  without overlap, cover over 15%, 14%, ... 10% of the characters

Tokens are ``filters.segmentation.tokenize`` output (words and punctuation), as datatrove runs its
word tokenizer. Duplicate n-grams are compared as token sequences, where datatrove compares the
tokens concatenated without a separator (which also equates "ab c" with "a bc"). Sequences make
repetition monotone in n (a repeated 6-gram contains a repeated 5-gram), which the speed-ups
rely on: each n only looks at positions whose (n-1)-gram repeats, and a document without a
repeated 5-gram skips the 6..10-gram checks.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass
from itertools import accumulate, compress
from operator import itemgetter
from typing import Iterable, Sequence

import numpy as np

from filters.base import Filter, FilterResult, Measure
from filters.segmentation import UNSPACED_LANGUAGES, tokenize

# The n-gram thresholds are calibrated on words. Where the segmenter falls back to one token per
# character, 5- to 10-grams of characters repeat in clean text (a two-character word is a 2-gram), so
# the n-gram rules are skipped there until per-language thresholds exist; the line and paragraph
# duplication rules still apply.
NGRAM_RULES_EXEMPT: frozenset[str] = UNSPACED_LANGUAGES

_TOP_N = ((2, 0.2), (3, 0.18), (4, 0.16))
_DUP_N = ((5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10))

DATATROVE_REASONS: dict[str, str] = {
    "gopher_repetition:empty": "empty",
    "gopher_repetition:dup_para": "dup_para_frac",
    "gopher_repetition:dup_para_chars": "dup_para_char_frac",
    "gopher_repetition:dup_line": "dup_line_frac",
    "gopher_repetition:dup_line_chars": "dup_line_char_frac",
    **{f"gopher_repetition:top_{n}_gram": f"top_{n}_gram" for n in range(1, 21)},
    **{f"gopher_repetition:dup_{n}_gram": f"duplicated_{n}_n_grams" for n in range(1, 21)},
}

_EMPTY = "gopher_repetition:empty"
_DUP_PARA = "gopher_repetition:dup_para"
_DUP_PARA_CHARS = "gopher_repetition:dup_para_chars"
_DUP_LINE = "gopher_repetition:dup_line"
_DUP_LINE_CHARS = "gopher_repetition:dup_line_chars"

_PARAGRAPH_SPLIT = re.compile(r"\n{2,}")
_LINE_SPLIT = re.compile(r"\n+")
_TOP_COUNT = itemgetter(1)


def _duplicates(items: list[str]) -> tuple[int, int]:
    """(repeats, characters in repeats): every occurrence after an item's first counts."""
    unique = set(items)
    if len(unique) == len(items):
        return 0, 0
    return len(items) - len(unique), sum(map(len, items)) - sum(map(len, unique))


class _RepeatIndex:
    """The token n-grams of one document that may repeat, for growing n.

    A repeated (n+1)-gram starts with a repeated n-gram, so each step keys only the positions
    whose shorter n-gram repeats: on prose these shrink fast and n = 2..10 costs little more than
    n = 2 alone. Keys nest as ((t0, t1), t2)..., equal exactly when the token sequences are.
    """

    __slots__ = ("tokens", "n", "positions", "keys", "counts")

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self._reset()

    def _reset(self) -> None:
        self.n = 1
        self.positions: Sequence[int] = range(len(self.tokens))
        self.keys: list = self.tokens
        self.counts: Counter | None = None  # unigrams are not pruned

    def at(self, n: int) -> tuple[Sequence[int], list, Counter]:
        """Positions (ascending) and keys of every n-gram occurring twice or more, plus possibly
        some that occur once, with the counts of the keys; every occurrence of a repeated
        n-gram is included, so counts of 2+ are exact."""
        if n < self.n:
            self._reset()
        tokens, positions, keys, counts = self.tokens, self.positions, self.keys, self.counts
        while self.n < n:
            m = self.n
            if counts is not None:
                repeats = list(map((1).__lt__, map(counts.__getitem__, keys)))
                positions = list(compress(positions, repeats))
                keys = list(compress(keys, repeats))
            end = bisect_left(positions, len(tokens) - m)  # room for one more token
            positions = positions[:end]
            if isinstance(positions, range):  # nothing pruned yet: the next tokens are a slice
                following: Iterable[str] = tokens[m : m + end]
            else:
                following = map(tokens.__getitem__, map(m.__add__, positions))
            keys = list(zip(keys[:end], following))
            counts = Counter(keys)
            self.n = m + 1
        self.positions, self.keys, self.counts = positions, keys, counts
        return positions, keys, counts if counts is not None else Counter(keys)


def _top_chars(index: _RepeatIndex, n: int, offsets: list[int]) -> int:
    """Length of the most frequent n-gram joined with spaces, times its count (datatrove's
    find_top_duplicate). Ties go to the n-gram seen first, as Counter.most_common(1); a top count
    of 1 means every n-gram is distinct and the one at position 0 is the top. Needs n <= #tokens."""
    positions, keys, counts = index.at(n)
    gram, count = max(counts.items(), key=_TOP_COUNT) if counts else (None, 1)
    start = positions[keys.index(gram)] if count > 1 else 0
    return (offsets[start + n] - offsets[start] + n - 1) * count


def _repeated_chars(
    positions: Sequence[int], keys: list, counts: Counter, n: int, offsets: list[int], n_chars: int, frac: float
) -> int | None:
    """Characters of n-grams seen before, scanning left to right and jumping past each repeat
    (datatrove's find_all_duplicate); None when no n-gram repeats.

    Only positions of repeated n-grams can count, so the scan visits those alone, and it stops as
    soon as the fraction `frac` of `n_chars` is exceeded.
    """
    if len(counts) == len(keys):
        return None
    repeats = list(map((1).__lt__, map(counts.__getitem__, keys)))
    seen: set = set()
    repeated = 0
    next_free = 0
    for i, key in zip(compress(positions, repeats), compress(keys, repeats)):
        if i < next_free:
            continue
        if key in seen:
            repeated += offsets[i + n] - offsets[i]
            if repeated / n_chars > frac:
                break
            next_free = i + n
        else:
            seen.add(key)
    return repeated


@dataclass
class GopherRepetition(Filter):
    """Gopher's repetition heuristics. A fraction set to None (or 0) disables its rule."""

    dup_line_frac: float | None = 0.3  # drop documents with a larger share of lines that repeat an earlier line
    dup_para_frac: float | None = 0.3  # the same for paragraphs
    dup_line_char_frac: float | None = 0.2  # drop documents with a larger share of characters in repeated lines
    dup_para_char_frac: float | None = 0.2  # the same for paragraphs
    top_n_grams: tuple[tuple[int, float], ...] = _TOP_N  # (n, most characters in the top n-gram)
    dup_n_grams: tuple[tuple[int, float], ...] = _DUP_N  # (n, most characters in repeated n-grams)
    name = "gopher_repetition"

    def __post_init__(self) -> None:
        self._top = tuple((int(n), float(f), f"gopher_repetition:top_{n}_gram") for n, f in self.top_n_grams)
        self._dup = tuple((int(n), float(f), f"gopher_repetition:dup_{n}_gram") for n, f in self.dup_n_grams)
        # With n ascending, no repeated n-gram means no repeated longer one: later passes can be skipped.
        self._dup_ascending = all(a[0] < b[0] for a, b in zip(self._dup, self._dup[1:]))

    def _lines_and_paragraphs(self, text: str, counts: Sequence[int] | None = None) -> str | None:
        """The rules before the n-grams: empty text, repeated paragraphs and lines. `counts`: the six
        figures of filters/kernels.py's repetition_lines where the caller has them."""
        if not text:
            return _EMPTY
        n_chars = len(text)
        if counts is None:
            paragraphs = _PARAGRAPH_SPLIT.split(text.strip())
            lines = _LINE_SPLIT.split(text)
            counts = (len(paragraphs), *_duplicates(paragraphs), len(lines), *_duplicates(lines))
        n_paras, para_repeats, para_chars, n_lines, line_repeats, line_chars = counts
        if self.dup_para_frac and para_repeats / n_paras > self.dup_para_frac:
            return _DUP_PARA
        if self.dup_para_char_frac and para_chars / n_chars > self.dup_para_char_frac:
            return _DUP_PARA_CHARS
        if self.dup_line_frac and line_repeats / n_lines > self.dup_line_frac:
            return _DUP_LINE
        if self.dup_line_char_frac and line_chars / n_chars > self.dup_line_char_frac:
            return _DUP_LINE_CHARS
        return None

    def check(self, text: str, lang: str | None = None) -> str | None:
        """The drop reason for one document, or None if it passes."""
        reason = self._lines_and_paragraphs(text)
        if reason is not None or lang in NGRAM_RULES_EXEMPT:
            return reason
        n_chars = len(text)
        tokens = tokenize(text, lang)
        n_tokens = len(tokens)
        if not n_tokens:
            return None
        index = _RepeatIndex(tokens)
        offsets = list(accumulate(map(len, tokens), initial=0))
        for n, frac, reason in self._top:
            if n_tokens < n:
                continue
            if _top_chars(index, n, offsets) / n_chars > frac:
                return reason

        for n, frac, reason in self._dup:
            positions, keys, counts = index.at(n)
            repeated = _repeated_chars(positions, keys, counts, n, offsets, n_chars, frac)
            if repeated is None:
                if self._dup_ascending:
                    break
            elif repeated / n_chars > frac:
                return reason
        return None

    def explain(self, text: str, lang: str | None, reason: str) -> Measure | None:
        n_chars = max(1, len(text))
        if reason in (_DUP_PARA, _DUP_PARA_CHARS, _DUP_LINE, _DUP_LINE_CHARS):
            paragraphs = _PARAGRAPH_SPLIT.split(text.strip())
            lines = _LINE_SPLIT.split(text)
            items, frac, char_frac = (
                (paragraphs, self.dup_para_frac, self.dup_para_char_frac)
                if reason in (_DUP_PARA, _DUP_PARA_CHARS)
                else (lines, self.dup_line_frac, self.dup_line_char_frac)
            )
            repeats, chars = _duplicates(items)
            if reason in (_DUP_PARA, _DUP_LINE):
                return Measure(repeats / max(1, len(items)), frac, ">")
            return Measure(chars / n_chars, char_frac, ">")
        rules = {r: (n, f, kind) for kind, group in (("top", self._top), ("dup", self._dup)) for n, f, r in group}
        if reason not in rules:
            return None
        n, frac, kind = rules[reason]
        tokens = tokenize(text, lang)
        if len(tokens) < n:
            return Measure(0.0, frac, ">")
        index = _RepeatIndex(tokens)
        offsets = list(accumulate(map(len, tokens), initial=0))
        if kind == "top":
            return Measure(_top_chars(index, n, offsets) / n_chars, frac, ">")
        positions, keys, counts = index.at(n)
        repeated = _repeated_chars(positions, keys, counts, n, offsets, n_chars, float("inf"))
        return Measure((repeated or 0) / n_chars, frac, ">")

    def __call__(self, texts: Sequence[str], langs: Sequence[str | None]) -> FilterResult:
        """The n-gram rules of the whole batch in one compiled pass over tokens shared with the other
        filters (filters/tokens.py, filters/_text_kernels.c's `repetition`), where they can be."""
        from filters.kernels import kernels, repetition_lines
        from filters.tokens import batch_tokens

        k = kernels()
        counts = repetition_lines(list(texts))
        if k is None or counts is None:
            return super().__call__(texts, langs)
        reasons = [self._lines_and_paragraphs(t, c) for t, c in zip(texts, counts.tolist())]
        rows = [i for i, r in enumerate(reasons) if r is None and langs[i] not in NGRAM_RULES_EXEMPT]
        if not rows:
            return FilterResult(reasons)
        tb = batch_tokens([texts[i] for i in rows], [langs[i] for i in rows])
        if tb is None:  # a registered segmenter: the n-gram rules in Python for those rows
            for i in rows:
                reasons[i] = self.check(texts[i], langs[i])
            return FilterResult(reasons)
        n_chars = np.array([len(texts[i]) for i in rows], dtype=np.int64)
        top = [(n, f) for n, f, _ in self._top]
        dup = [(n, f) for n, f, _ in self._dup]
        failed = np.frombuffer(
            k.repetition(
                np.ascontiguousarray(tb.hashes).tobytes(),
                np.ascontiguousarray(tb.lengths).tobytes(),
                np.ascontiguousarray(tb.offsets).tobytes(),
                n_chars.tobytes(),
                top,
                dup,
                self._dup_ascending,
            ),
            dtype=np.int16,
        )
        names = [r for _, _, r in self._top] + [r for _, _, r in self._dup]
        for i, f in zip(rows, failed.tolist()):
            if f >= 0:
                reasons[i] = names[f]
        return FilterResult(reasons)
