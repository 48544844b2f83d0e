"""Word segmentation, one hook per language.

Heuristic filters count words and MinHash builds word n-grams, so both need to know what a
word is. Languages written with spaces use one compiled regex (a fast stand-in for spaCy, which
datatrove uses for English and which runs at about a tenth of the speed). Scripts written without
spaces (zh, ja, th, lo, km, my) are split into one token per character of that script (a run of digits,
in any script, is one token, as a number is one word elsewhere): 6x to 60x
faster than dictionary segmenters, and the per-language thresholds are derived in these units
(bench/README.md has the measurements). Dictionary segmenters (filters/dictionary_segmenters.py,
extra `segmenters`) plug in per language with `register_segmenter`.
"""

from __future__ import annotations

from typing import Callable

import regex

Segmenter = Callable[[str], list[str]]

# Letters/digits with inner apostrophes or hyphens stay one word ("don't", "state-of-the-art"),
# every other non-space character is a token of its own, as spaCy does for punctuation.
_WORD_OR_SYMBOL = regex.compile(r"[\p{L}\p{M}\p{N}_]+(?:['’\-][\p{L}\p{M}\p{N}_]+)*|[^\s\p{L}\p{M}\p{N}_]")
UNSPACED_SCRIPTS = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}"
# A run of digits (Thai, Lao, Khmer, Burmese digits belong to their scripts; 1,250 / 04.19 / 12/01 with
# their separators) is one token, as a number is one word in spaced languages: one token per digit made
# every date and price count several times against the share of tokens with a letter.
_CHAR_OR_WORD = regex.compile(
    rf"\p{{N}}+(?:[.,:/]\p{{N}}+)*|[{UNSPACED_SCRIPTS}]\p{{M}}*|[\p{{L}}\p{{M}}\p{{N}}_--{UNSPACED_SCRIPTS}]+(?:['’\-][\p{{L}}\p{{M}}\p{{N}}_--{UNSPACED_SCRIPTS}]+)*|[^\s\p{{L}}\p{{M}}\p{{N}}_]",
    regex.V1,
)
_IS_WORD = regex.compile(r"[\p{L}\p{N}]")
# Words only (no punctuation tokens), for the built-in segmenters: one regex pass on lower-cased
# text instead of tokenizing, lower-casing and filtering token by token (MinHash's hot path).
_WORD_ONLY = regex.compile(r"[\p{L}\p{M}\p{N}_]*[\p{L}\p{N}][\p{L}\p{M}\p{N}_]*(?:['’\-][\p{L}\p{M}\p{N}_]+)*")
_CHAR_OR_WORD_ONLY = regex.compile(
    rf"\p{{N}}+(?:[.,:/]\p{{N}}+)*|[{UNSPACED_SCRIPTS}]\p{{M}}*|[\p{{L}}\p{{M}}\p{{N}}_--{UNSPACED_SCRIPTS}]*[\p{{L}}\p{{N}}--{UNSPACED_SCRIPTS}]"
    rf"[\p{{L}}\p{{M}}\p{{N}}_--{UNSPACED_SCRIPTS}]*(?:['’\-][\p{{L}}\p{{M}}\p{{N}}_--{UNSPACED_SCRIPTS}]+)*",
    regex.V1,
)

UNSPACED_LANGUAGES = frozenset({"zh", "ja", "th", "lo", "km", "my", "yue", "wuu", "bo", "dz"})
# Thai and Lao end sentences with a space, not punctuation: rules about lines ending in
# punctuation (C4, FineWeb) cannot apply to them.
NO_SENTENCE_PUNCTUATION = frozenset({"th", "lo"})


def _regex_words(text: str) -> list[str]:
    return _WORD_OR_SYMBOL.findall(text)


def _char_words(text: str) -> list[str]:
    return _CHAR_OR_WORD.findall(text)


_REGISTRY: dict[str, Segmenter] = {}


def register_segmenter(lang: str, segmenter: Segmenter) -> None:
    """Use `segmenter` for documents labelled `lang` (an ISO 639-1/3 code as fastText gives it)."""
    _REGISTRY[lang] = segmenter


def unregister_segmenter(lang: str) -> None:
    """Back to the built-in segmentation for `lang`."""
    _REGISTRY.pop(lang, None)


def get_segmenter(lang: str | None) -> Segmenter:
    """The tokenizer for `lang`: words and punctuation tokens, in order (like spaCy's output)."""
    if lang in _REGISTRY:
        return _REGISTRY[lang]
    if lang in UNSPACED_LANGUAGES:
        return _char_words
    return _regex_words


def tokenize(text: str, lang: str | None = None) -> list[str]:
    """Words and punctuation tokens of `text` as the filters see them."""
    return get_segmenter(lang)(text)


# Dedup shingles: word n-grams where words are written apart, character n-grams (one unit per
# character of the script, marks attached) where they are not. Near-duplicates are then found at the
# same rate per edited unit in zh/ja/th/km/my as in English (tests/test_multilingual_dedup.py), and
# stay comparable when a dictionary word segmenter is registered for the filters later.
CHARACTER_SHINGLE_LANGUAGES = UNSPACED_LANGUAGES


def shingle_units(text: str, lang: str | None = None) -> list[str]:
    """The lower-cased units MinHash builds its n-grams from (see CHARACTER_SHINGLE_LANGUAGES)."""
    if lang in CHARACTER_SHINGLE_LANGUAGES:
        return _CHAR_OR_WORD_ONLY.findall(text.lower())
    return words(text, lang)


def tokenize_mode(lang: str | None) -> int | None:
    """How `tokenize(text, lang)` segments, as filters/kernels.py names it: 0 `_WORD_OR_SYMBOL`, 1
    `_CHAR_OR_WORD`, None a registered segmenter."""
    seg = get_segmenter(lang)
    return 0 if seg is _regex_words else 1 if seg is _char_words else None


def words_mode(lang: str | None) -> int | None:
    """How `words(text, lang)` segments, as filters/kernels.py names it: 0 `_WORD_ONLY`, 1 `_CHAR_OR_WORD_ONLY`,
    None a registered segmenter (which only Python can run)."""
    seg = get_segmenter(lang)
    return 0 if seg is _regex_words else 1 if seg is _char_words else None


def shingle_mode(lang: str | None) -> int | None:
    """`words_mode` for `shingle_units`."""
    return 1 if lang in CHARACTER_SHINGLE_LANGUAGES else words_mode(lang)


def mixed_units(text: str) -> list[str]:
    """Lower-cased units whatever the language: characters of the scripts written without spaces, words of
    the others (for matching text whose language is unknown, such as benchmark items)."""
    return _CHAR_OR_WORD_ONLY.findall(text.lower())


def words(text: str, lang: str | None = None) -> list[str]:
    """Lower-cased word tokens only (no punctuation): what MinHash shingles are built from."""
    seg = get_segmenter(lang)
    if seg is _regex_words:
        return _WORD_ONLY.findall(text.lower())
    if seg is _char_words:
        return _CHAR_OR_WORD_ONLY.findall(text.lower())
    return [t.lower() for t in seg(text) if _IS_WORD.search(t)]
