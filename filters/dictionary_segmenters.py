"""Dictionary word segmenters for the scripts written without spaces, by name.

The hot path segments zh/ja/th/lo/km/my into characters (filters/segmentation.py): the per-language
thresholds are derived in those units and MinHash shingles on them. These segmenters give real words
instead, at 6x to 300x the cost (``python bench/segmentation.py`` measures both side by side), for
users who want word statistics and accept the cost; install them with
``pip install 'corpus-curation[segmenters]'`` (about 400 MB, mostly dictionaries), then
``register_segmenter(lang, load_segmenter(name))`` in the process that runs the filters. The shipped
language table (filters/language_tables.yaml) is derived in character units; word counts from these
segmenters are 25% to 70% of the character counts, so a table derived with them would differ.

Burmese syllables need no package: syllable breaking is a published regular expression (Ye Kyaw Thu's
sylbreak), so it is built in.
"""

from __future__ import annotations

import re
from typing import Callable

from filters.segmentation import Segmenter

# sylbreak (github.com/ye-kyaw-thu/sylbreak, MIT): a syllable starts at a consonant that is not
# stacked (preceded by virama) and does not carry asat or virama itself, or at any other character;
# unlike sylbreak, a run of Latin letters or digits stays one unit.
_MY_CONSONANTS = "\u1000-\u1021"
_MY_OTHER = "\u1023\u1024\u1025\u1026\u1027\u1029\u102a\u103f\u104c\u104d\u104f\u1040-\u1049\u104a\u104b"
_SYLLABLE_START = re.compile(
    rf"(?<!\u1039)[{_MY_CONSONANTS}](?![\u103a\u1039])|(?<![a-zA-Z0-9])[a-zA-Z0-9]|[{_MY_OTHER}!-/:-@\[-`{{-~]"
)


def burmese_syllables(text: str) -> list[str]:
    """Burmese text split into syllables (other scripts' runs are kept whole between spaces)."""
    out: list[str] = []
    for chunk in text.split():
        starts = [m.start() for m in _SYLLABLE_START.finditer(chunk)]
        if not starts or starts[0] != 0:
            starts.insert(0, 0)
        out.extend(chunk[a:b] for a, b in zip(starts, starts[1:] + [len(chunk)]))
    return out


def _jieba() -> Segmenter:
    import jieba

    jieba.setLogLevel(60)
    jieba.initialize()
    # HMM off: unknown words stay split into known pieces, 1.8x faster than with it, same counts within 2%.
    return lambda text: [t for t in jieba.lcut(text, HMM=False) if not t.isspace()]


def _sudachi() -> Segmenter:
    from sudachipy import Dictionary, SplitMode

    dictionary = Dictionary(dict="core")
    make = getattr(dictionary, "tokenizer", None) or dictionary.create  # 0.7 renamed create()
    tokenizer = make(SplitMode.A)  # A: shortest units, like UniDic's
    return lambda text: [m.surface() for m in tokenizer.tokenize(text) if not m.surface().isspace()]


def _pythainlp() -> Segmenter:
    from pythainlp.tokenize import word_tokenize

    return lambda text: [t for t in word_tokenize(text, engine="newmm") if not t.isspace()]


def _laonlp() -> Segmenter:
    from laonlp.tokenize import word_tokenize

    return lambda text: [t for t in word_tokenize(text) if not t.isspace()]


def _khmer_nltk() -> Segmenter:
    import logging

    logging.getLogger("khmer-nltk").setLevel(logging.WARNING)
    from khmernltk import word_tokenize

    return lambda text: [t for t in word_tokenize(text) if not t.isspace()]


# name -> (language, loader, pip package). Which one per language and why: bench/README.md.
SEGMENTERS: dict[str, tuple[str, Callable[[], Segmenter], str]] = {
    "jieba": ("zh", _jieba, "jieba"),
    "sudachi": ("ja", _sudachi, "sudachipy sudachidict_core"),
    "pythainlp": ("th", _pythainlp, "pythainlp"),
    "laonlp": ("lo", _laonlp, "laonlp"),
    "khmer-nltk": ("km", _khmer_nltk, "khmer-nltk"),
    "sylbreak": ("my", lambda: burmese_syllables, ""),
}


def load_segmenter(name: str) -> Segmenter:
    """The segmenter called `name` (a key of SEGMENTERS), with a clear message when its package is missing."""
    if name not in SEGMENTERS:
        raise ValueError(f"unknown segmenter {name!r}; choose one of {', '.join(sorted(SEGMENTERS))}")
    lang, loader, package = SEGMENTERS[name]
    try:
        return loader()
    except ImportError as exc:
        raise ImportError(
            f"segmenter {name!r} ({lang}) needs {package}: pip install 'corpus-curation[segmenters]' ({exc})"
        ) from exc
