"""FineWeb quality rules (Penedo et al. 2024), the defaults of datatrove's FineWebQualityFilter.

Rules, in order (the first failing one is the drop reason, as in datatrove):

- ``fineweb:empty``            no non-blank line
- ``fineweb:line_punct_ratio`` under 12% of non-blank lines end in terminal punctuation
- ``fineweb:short_line_ratio`` over 67% of non-blank lines are at most 30 characters (per language)
- ``fineweb:char_dup_ratio``   characters in repeated lines over 1% of the (newline-free) text
- ``fineweb:list_ratio``       newlines per token over 0.3 (lists, menus, tables; per language)

The two per-language values come from filters/language_tables.yaml (English's are the published ones).

Tokens come from ``filters.segmentation.tokenize``, the stand-in for datatrove's word tokenizer, and
are only computed for documents that reach the last rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import repeat
from operator import itemgetter
from typing import Sequence

from filters.base import Filter, FilterResult, Measure
from filters.characters import TERMINAL_PUNCTUATION
from filters.language_table import per_language
from filters.segmentation import NO_SENTENCE_PUNCTUATION, tokenize

DATATROVE_REASONS: dict[str, str] = {
    "fineweb:empty": "empty",
    "fineweb:line_punct_ratio": "line_punct_ratio",
    "fineweb:short_line_ratio": "short_line_ratio",
    "fineweb:char_dup_ratio": "char_dup_ratio",
    "fineweb:list_ratio": "list_ratio",
}

_EMPTY, _LINE_PUNCT, _SHORT_LINE, _CHAR_DUP, _LIST = DATATROVE_REASONS
_LAST_CHAR = itemgetter(-1)


@dataclass
class FineWebQuality(Filter):
    """FineWeb's line-level heuristics. ``stop_chars`` None means any Unicode sentence terminal.

    ``short_line_length`` and ``new_line_ratio`` left at their defaults come from the document's row of
    the language table (filters/language_tables.yaml: scaled by the language's characters and words per
    English one); ``language_table`` False applies the given values to every language.
    """

    line_punct_thr: float = 0.12  # drop documents where a smaller share of lines ends in terminal punctuation
    line_punct_exclude_zero: bool = False  # keep documents where no line at all ends in punctuation
    stop_chars: tuple[str, ...] | None = None  # the characters that count as terminal punctuation
    short_line_thr: float = 0.67  # drop documents with a larger share of short lines
    short_line_length: int = 30  # a line of at most this many characters is short
    char_duplicates_ratio: float = 0.01  # drop documents with a larger share of characters in repeated lines
    new_line_ratio: float = 0.3  # drop documents with more newlines per word
    language_table: bool = True  # the two line limits left at their defaults come from the language table
    name = "fineweb"

    def __post_init__(self) -> None:
        stops = TERMINAL_PUNCTUATION if self.stop_chars is None else tuple(self.stop_chars)
        # Single-character stops (the default) are tested with one set lookup on the last
        # character; str.endswith(tuple) would compare against all ~170 of them per line.
        self._stop_set: frozenset[str] | None = frozenset(stops) if all(len(s) == 1 for s in stops) else None
        self._stop_tuple: tuple[str, ...] = tuple(stops)
        mine = {"short_line_length": self.short_line_length, "new_line_ratio": self.new_line_ratio}
        self._lengths: dict[str | None, tuple[int, float]] = {}  # None: no language, the defaults
        if self.language_table:
            table = per_language("fineweb", mine, {"short_line_length": 30, "new_line_ratio": 0.3})
            self._lengths = {lang: (row["short_line_length"], row["new_line_ratio"]) for lang, row in table.items()}
        self._default_lengths = (self.short_line_length, self.new_line_ratio)

    def check(self, text: str, lang: str | None = None, n_tokens: int | None = None) -> str | None:
        """The drop reason for one document, or None if it passes (`n_tokens`: len(tokenize(text, lang))
        where the caller has it)."""
        lines = list(filter(str.strip, text.split("\n")))  # the non-blank lines
        n_lines = len(lines)
        if not n_lines:
            return _EMPTY

        stop_set = self._stop_set
        if stop_set is not None:
            n_punct = sum(map(stop_set.__contains__, map(_LAST_CHAR, lines)))
        else:
            n_punct = sum(map(str.endswith, lines, repeat(self._stop_tuple)))
        ratio = n_punct / n_lines
        if (
            ratio < self.line_punct_thr
            and not (ratio == 0 and self.line_punct_exclude_zero)
            and lang not in NO_SENTENCE_PUNCTUATION
        ):
            return _LINE_PUNCT

        short_line_length, new_line_ratio = self._lengths.get(lang, self._default_lengths)
        lengths = list(map(len, lines))
        if sum(map(short_line_length.__ge__, lengths)) / n_lines > self.short_line_thr:
            return _SHORT_LINE

        # Characters in every repeat of a line (not its first occurrence), as datatrove's find_duplicates.
        unique = set(lines)
        dup_chars = sum(lengths) - sum(map(len, unique)) if len(unique) < n_lines else 0
        new_lines = text.count("\n")
        if dup_chars / (len(text) - new_lines) > self.char_duplicates_ratio:
            return _CHAR_DUP

        if new_lines:  # a one-line text needs no tokenizing
            n_words = len(tokenize(text, lang)) if n_tokens is None else n_tokens
            # datatrove divides by zero here; lines without any token are all list, no prose.
            if (new_lines / n_words if n_words else float("inf")) > new_line_ratio:
                return _LIST
        return None

    def explain(self, text: str, lang: str | None, reason: str) -> Measure | None:
        lines = list(filter(str.strip, text.split("\n")))
        n_lines = max(1, len(lines))
        short_line_length, new_line_ratio = self._lengths.get(lang, self._default_lengths)
        if reason == _LINE_PUNCT:
            n_punct = sum(line.endswith(self._stop_tuple) for line in lines)
            return Measure(n_punct / n_lines, self.line_punct_thr, "<")
        if reason == _SHORT_LINE:
            return Measure(sum(len(line) <= short_line_length for line in lines) / n_lines, self.short_line_thr, ">")
        new_lines = text.count("\n")
        if reason == _CHAR_DUP:
            dup_chars = sum(map(len, lines)) - sum(map(len, set(lines)))
            return Measure(dup_chars / max(1, len(text) - new_lines), self.char_duplicates_ratio, ">")
        if reason == _LIST:
            n_words = len(tokenize(text, lang))
            return Measure(new_lines / n_words if n_words else float("inf"), new_line_ratio, ">")
        return None

    def __call__(self, texts: Sequence[str], langs: Sequence[str | None]) -> FilterResult:
        """Token counts from the tokens shared with the other filters (filters/tokens.py) where they can be."""
        from filters.tokens import batch_tokens

        tb = batch_tokens(texts, langs)
        if tb is None:
            return super().__call__(texts, langs)
        counts = tb.n_tokens.tolist()
        return FilterResult([self.check(t, lang, n) for t, lang, n in zip(texts, langs, counts)])
