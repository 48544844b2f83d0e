"""Gopher quality rules (Rae et al. 2021, MassiveText), the defaults of datatrove's GopherQualityFilter.

Rules, in datatrove's order (the first failing one is the drop reason):

- ``gopher_quality:word_count_low`` / ``word_count_high``  fewer than 50 / more than 100,000 words
  (per language from the table)
- ``gopher_quality:avg_word_length_low`` / ``avg_word_length_high``  mean word length outside 3..10
  (per language from the table; not for WORD_LENGTH_EXEMPT languages)
- ``gopher_quality:hash_ratio``      '#' per token over 0.1
- ``gopher_quality:ellipsis_ratio``  '...' or '…' per token over 0.1
- ``gopher_quality:bullet_lines``    over 90% of lines start with '•' or '-'
- ``gopher_quality:ellipsis_lines``  over 30% of lines end with an ellipsis
- ``gopher_quality:alpha_words``     under 80% of tokens contain a letter (per language from the table)
- ``gopher_quality:stop_words``      fewer than 2 distinct stop words (per language from the table; only
  for languages in STOP_WORDS)

The numbers above are Gopher's English ones. Each of the 29 Qwen2 languages has a row in
``filters/language_tables.yaml`` (stop words, mean word length band, minimum stop words, share of
tokens with a letter, document length in words), derived from UDHR and Tatoeba reference text by
``python -m filters.build_language_tables`` (method in that module); English's row is Gopher's.
Documents in other languages (or unlabelled) get the English thresholds and no stop-word rule.

Tokens come from ``filters.segmentation.tokenize`` (words and punctuation, like datatrove's word
tokenizer). A "word" for the count and mean length is a token with a character outside SYMBOL_CHARS;
the ratios divide by all tokens, as datatrove does. Stop words match case-sensitively, as datatrove.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import regex
import xxhash

from filters.base import Filter, FilterResult, Measure
from filters.characters import SYMBOL_CHARS
from filters.kernels import gopher_lines
from filters.language_table import LANGUAGE_TABLE
from filters.segmentation import UNSPACED_LANGUAGES, tokenize

if TYPE_CHECKING:
    from filters.tokens import TokenBatch

# Gopher's published English stop words (datatrove's default list).
GOPHER_ENGLISH_STOP_WORDS: frozenset[str] = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})

# The thresholds the per-language table (filters/language_table.py) sets per language.
TABLE_THRESHOLDS = (
    "min_avg_word_length",
    "max_avg_word_length",
    "min_stop_words",
    "max_non_alpha_words_ratio",
    "min_doc_words",
    "max_doc_words",
)

# The 3..10 mean word length is calibrated on words. It means nothing where the segmenter falls back
# to one token per character (the table has null for those languages; this also covers unspaced
# languages outside the table). Korean now has its own band in the table.
WORD_LENGTH_EXEMPT: frozenset[str] = UNSPACED_LANGUAGES

# Stop words per language: the rule runs only for documents whose language is listed. English is
# Gopher's list; the others come from the table.
STOP_WORDS: dict[str, frozenset[str]] = {
    "en": GOPHER_ENGLISH_STOP_WORDS,
    **{
        lang: frozenset(row["stop_words"])
        for lang, row in LANGUAGE_TABLE.items()
        if lang != "en" and row.get("stop_words")
    },
}


DATATROVE_REASONS: dict[str, str] = {
    "gopher_quality:word_count_low": "gopher_short_doc",
    "gopher_quality:word_count_high": "gopher_long_doc",
    "gopher_quality:avg_word_length_low": "gopher_below_avg_threshold",
    "gopher_quality:avg_word_length_high": "gopher_above_avg_threshold",
    "gopher_quality:hash_ratio": "gopher_too_many_hashes",
    "gopher_quality:ellipsis_ratio": "gopher_too_many_ellipsis",
    "gopher_quality:bullet_lines": "gopher_too_many_bullets",
    "gopher_quality:ellipsis_lines": "gopher_too_many_end_ellipsis",
    "gopher_quality:alpha_words": "gopher_below_alpha_threshold",
    "gopher_quality:stop_words": "gopher_enough_stop_words",
}
(
    _WORDS_LOW,
    _WORDS_HIGH,
    _AVG_LOW,
    _AVG_HIGH,
    _HASHES,
    _ELLIPSES,
    _BULLETS,
    _ELLIPSIS_LINES,
    _ALPHA,
    _STOP,
) = DATATROVE_REASONS

# Token-level tests run as C-level scans over the tokens joined by "\n" (no token contains a
# newline) rather than a Python loop per token. A letterless token (no \p{L}, what str.isalpha
# tests) is a line without a letter. A symbol token is a single SYMBOL_CHARS character (a set
# lookup per token) or a longer token of them only; the latter are rare, so a cheap scan for lines
# without a word character (bar the few in SYMBOL_CHARS) finds candidates that are then checked.
_WORDLIKE_SYMBOLS = "".join(sorted(c for c in SYMBOL_CHARS if re.match(r"\w", c)))  # "_" and "１"
_MULTI_SYMBOL_CANDIDATE = re.compile(rf"^(?:[^\w\n]|[{re.escape(_WORDLIKE_SYMBOLS)}]){{2,}}$", re.M)
_LETTERLESS_TOKEN = regex.compile(r"^[^\n\p{L}]+$", regex.M)
# Line-level tests over the lines joined by "\n"; [^\S\n] is str.strip()'s whitespace minus newline.
_BULLET_LINE = re.compile(r"^[^\S\n]*[•\-]", re.M)
_ELLIPSIS_LINE = re.compile(r"(?:\.\.\.|…)[^\S\n]*$", re.M)


def _stop_word_pattern(stop_words: frozenset[str] | set[str] | list[str]) -> re.Pattern[str]:
    alternatives = "|".join(map(re.escape, sorted(stop_words)))
    return re.compile(rf"^(?:{alternatives})$", re.M)


@dataclass(frozen=True)
class _Thresholds:
    min_avg_word_length: float | None
    max_avg_word_length: float | None
    min_stop_words: int | None
    max_non_alpha_words_ratio: float | None
    min_doc_words: int | None
    max_doc_words: int | None


def token_counts(text: str, lang: str | None) -> tuple[list[str], str, int, int]:
    """(tokens, tokens joined by newlines, symbol tokens, characters in symbol tokens): what the rules
    (and the per-language table builder) measure."""
    tokens = tokenize(text, lang)
    joined = "\n".join(tokens)
    n_symbols = n_symbol_chars = sum(map(SYMBOL_CHARS.__contains__, tokens))
    for candidate in _MULTI_SYMBOL_CANDIDATE.findall(joined):
        if SYMBOL_CHARS.issuperset(candidate):
            n_symbols += 1
            n_symbol_chars += len(candidate)
    return tokens, joined, n_symbols, n_symbol_chars


@dataclass
class GopherQuality(Filter):
    """Gopher's document quality heuristics. A threshold set to None (or 0) disables its rule.

    The thresholds in TABLE_THRESHOLDS come from the document's row of the language table
    (filters/language_tables.yaml) when it has one and the threshold is left at Gopher's published
    default; a threshold set explicitly applies to every language, and so do all of them with
    ``language_table=False``. English's row is Gopher's defaults.
    ``stop_words`` maps a language to its stop-word list and replaces STOP_WORDS when given.
    """

    min_doc_words: int | None = 50  # drop documents with fewer words (symbols do not count)
    max_doc_words: int | None = 100000  # drop documents with more words
    min_avg_word_length: int | None = 3  # drop documents whose mean word length (characters) is below
    max_avg_word_length: int | None = 10  # drop documents whose mean word length is above
    max_symbol_word_ratio: float | None = 0.1  # drop documents with more # and ellipsis symbols per word
    max_bullet_lines_ratio: float | None = 0.9  # drop documents with a larger share of lines that start with a bullet
    max_ellipsis_lines_ratio: float | None = 0.3  # drop documents with a larger share of lines ending in an ellipsis
    max_non_alpha_words_ratio: float | None = 0.8  # drop documents where fewer words have a letter
    min_stop_words: int | None = 2  # drop documents with fewer distinct stop words of their language
    stop_words: dict[str, list[str]] | None = None  # language -> stop-word list, replacing the bundled lists
    language_table: bool = True  # thresholds left at their default come from the language table
    name = "gopher_quality"

    def __post_init__(self) -> None:
        lists = STOP_WORDS if self.stop_words is None else self.stop_words
        if not self.language_table and self.stop_words is None:
            lists = {"en": GOPHER_ENGLISH_STOP_WORDS}
        self._stop_patterns: dict[str | None, re.Pattern[str]] = {
            lang: _stop_word_pattern(words) for lang, words in lists.items() if words
        }
        # the same lists as xxh3_64 hashes, for documents whose tokens come hashed (filters/tokens.py)
        self._stop_hashes: dict[str | None, np.ndarray] = {
            lang: np.array(
                sorted({xxhash.xxh3_64_intdigest(w.encode("utf-8", "surrogatepass")) for w in words}), dtype=np.uint64
            )
            for lang, words in lists.items()
            if words
        }
        defaults = {f.name: f.default for f in fields(self)}
        mine = {key: getattr(self, key) for key in TABLE_THRESHOLDS}
        self._default_thresholds = _Thresholds(**mine)
        self._thresholds: dict[str | None, _Thresholds] = {}
        if self.language_table:
            for lang, row in LANGUAGE_TABLE.items():
                self._thresholds[lang] = _Thresholds(
                    **{key: row.get(key) if mine[key] == defaults[key] else mine[key] for key in TABLE_THRESHOLDS}
                )

    def check(self, text: str, lang: str | None = None) -> str | None:
        """The drop reason for one document, or None if it passes."""
        tokens, joined, n_symbols, n_symbol_chars = token_counts(text, lang)
        n_tokens = len(tokens)
        word_chars = len(joined) - (n_tokens - 1) - n_symbol_chars if n_tokens else 0

        def letterless() -> int:
            return len(_LETTERLESS_TOKEN.findall(joined))

        def stop_words(need: int) -> int:
            pattern = self._stop_patterns.get(lang)
            found: set[str] = set()
            if pattern is not None:
                for match in pattern.finditer(joined):  # stops at the `need`-th distinct stop word
                    found.add(match.group())
                    if len(found) >= need:
                        break
            return len(found)

        return self._decide(text, lang, n_tokens, n_symbols, word_chars, letterless, stop_words)

    def explain(self, text: str, lang: str | None, reason: str) -> Measure | None:
        tokens, joined, n_symbols, n_symbol_chars = token_counts(text, lang)
        n_tokens = len(tokens)
        n_words = n_tokens - n_symbols
        word_chars = len(joined) - (n_tokens - 1) - n_symbol_chars if n_tokens else 0
        limits = self._thresholds.get(lang, self._default_thresholds)
        lines = text.splitlines()
        joined_lines = "\n".join(lines)
        n_lines = max(1, len(lines))
        per_token = max(1, n_tokens)
        measures = {
            _WORDS_LOW: lambda: Measure(n_words, limits.min_doc_words, "<"),
            _WORDS_HIGH: lambda: Measure(n_words, limits.max_doc_words, ">"),
            _AVG_LOW: lambda: Measure(word_chars / max(1, n_words), limits.min_avg_word_length, "<"),
            _AVG_HIGH: lambda: Measure(word_chars / max(1, n_words), limits.max_avg_word_length, ">"),
            _HASHES: lambda: Measure(text.count("#") / per_token, self.max_symbol_word_ratio, ">"),
            _ELLIPSES: lambda: Measure(
                (text.count("...") + text.count("…")) / per_token, self.max_symbol_word_ratio, ">"
            ),
            _BULLETS: lambda: Measure(
                len(_BULLET_LINE.findall(joined_lines)) / n_lines, self.max_bullet_lines_ratio, ">"
            ),
            _ELLIPSIS_LINES: lambda: Measure(
                len(_ELLIPSIS_LINE.findall(joined_lines)) / n_lines, self.max_ellipsis_lines_ratio, ">"
            ),
            _ALPHA: lambda: Measure(
                (n_tokens - len(_LETTERLESS_TOKEN.findall(joined))) / per_token, limits.max_non_alpha_words_ratio, "<"
            ),
            _STOP: lambda: Measure(
                len(set(m.group() for m in self._stop_patterns[lang].finditer(joined)))
                if lang in self._stop_patterns
                else 0,
                limits.min_stop_words,
                "<",
            ),
        }
        get = measures.get(reason)
        return get() if get is not None else None

    def __call__(self, texts: Sequence[str], langs: Sequence[str | None]) -> FilterResult:
        """The batch at once where the tokens can be shared (filters/tokens.py), else one `check` each."""
        from filters.tokens import batch_tokens

        tb = batch_tokens(texts, langs)
        if tb is None:
            return super().__call__(texts, langs)
        symbol = tb.is_symbol
        n_tokens = tb.n_tokens.tolist()
        n_symbols = tb.per_doc(symbol).tolist()
        word_chars = tb.per_doc(np.where(symbol, 0, tb.lengths)).tolist()
        letterless = (tb.n_tokens - tb.per_doc(tb.has_letter)).tolist()
        stops = self._stop_word_counts(tb, langs)
        lines = gopher_lines(list(texts))
        line_counts = lines.tolist() if lines is not None else [None] * len(texts)
        reasons = [
            self._decide(text, lang, n_tokens[i], n_symbols[i], word_chars[i], letterless[i], stops[i], line_counts[i])
            for i, (text, lang) in enumerate(zip(texts, langs))
        ]
        return FilterResult(reasons)

    def _stop_word_counts(self, tb: TokenBatch, langs: Sequence[str | None]) -> list[int]:
        """Distinct stop words of its language in each document (tokens matched by hash, as written)."""
        out = np.zeros(len(tb), dtype=np.int64)
        by_lang: dict[str | None, list[int]] = {}
        for i, lang in enumerate(langs):
            by_lang.setdefault(lang, []).append(i)
        for lang, docs in by_lang.items():
            stop = self._stop_hashes.get(lang)
            if stop is None:
                continue
            part = tb if len(docs) == len(tb) else tb.take(docs)
            doc = np.repeat(np.asarray(docs, dtype=np.int64), part.n_tokens)
            where = np.searchsorted(stop, part.hashes)
            hit = stop[np.minimum(where, len(stop) - 1)] == part.hashes
            # one key per (document, stop word): distinct stop words per document
            keys = np.unique(doc[hit] * len(stop) + where[hit])
            out += np.bincount(keys // len(stop), minlength=len(tb))
        return out.tolist()

    def _decide(
        self,
        text: str,
        lang: str | None,
        n_tokens: int,
        n_symbols: int,
        word_chars: int,
        letterless: int | Callable[[], int],
        stop_words: int | Callable[[int], int],
        line_counts: tuple[int, int, int] | None = None,
    ) -> str | None:
        """The rules in datatrove's order on one document's counts. `letterless`: tokens without a letter;
        `stop_words`: distinct stop words (a callable is asked only when its rule is reached: `stop_words(need)`
        may stop counting at `need`)."""
        n_words = n_tokens - n_symbols
        limits = self._thresholds.get(lang, self._default_thresholds)
        if limits.min_doc_words and n_words < limits.min_doc_words:
            return _WORDS_LOW
        if limits.max_doc_words and n_words > limits.max_doc_words:
            return _WORDS_HIGH

        if n_words and lang not in WORD_LENGTH_EXEMPT:  # datatrove's mean of nothing is NaN: passes
            avg_len = word_chars / n_words
            if limits.min_avg_word_length and avg_len < limits.min_avg_word_length:
                return _AVG_LOW
            if limits.max_avg_word_length and avg_len > limits.max_avg_word_length:
                return _AVG_HIGH

        if n_tokens and self.max_symbol_word_ratio:
            if text.count("#") / n_tokens > self.max_symbol_word_ratio:
                return _HASHES
            if (text.count("...") + text.count("…")) / n_tokens > self.max_symbol_word_ratio:
                return _ELLIPSES

        if self.max_bullet_lines_ratio or self.max_ellipsis_lines_ratio:
            if line_counts is None:
                lines = text.splitlines()  # every Unicode line break, as datatrove
                joined_lines = "\n".join(lines)
                n_lines = len(lines)
                bullets = len(_BULLET_LINE.findall(joined_lines)) if n_lines else 0
                ellipses = len(_ELLIPSIS_LINE.findall(joined_lines)) if n_lines else 0
            else:
                n_lines, bullets, ellipses = line_counts
            if n_lines:
                if self.max_bullet_lines_ratio and bullets / n_lines > self.max_bullet_lines_ratio:
                    return _BULLETS
                if self.max_ellipsis_lines_ratio and ellipses / n_lines > self.max_ellipsis_lines_ratio:
                    return _ELLIPSIS_LINES

        if n_tokens and limits.max_non_alpha_words_ratio:
            n_letterless = letterless() if callable(letterless) else letterless
            if (n_tokens - n_letterless) / n_tokens < limits.max_non_alpha_words_ratio:
                return _ALPHA

        need = limits.min_stop_words
        if need and lang in self._stop_patterns and (stop_words(need) if callable(stop_words) else stop_words) < need:
            return _STOP
        return None
