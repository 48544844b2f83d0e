"""Script consistency: a document labelled Thai that is mostly Latin script is suspicious.

Language ID is a classifier over character n-grams; mixed or transliterated text (Romanised Hindi,
Latin-script spam labelled with a low-resource language, lists of names) gets confident labels whose
script does not fit. This check counts the letters of each script in the same sample the language-ID
model sees, and drops a document when too few of them are in its language's scripts.
"""

from __future__ import annotations

import regex

# The scripts each Qwen2 language is written in (Unicode script names, as the `regex` module knows them).
LANGUAGE_SCRIPTS: dict[str, tuple[str, ...]] = {
    **{lang: ("Latin",) for lang in ("en", "de", "fr", "es", "pt", "it", "nl", "cs", "pl", "tr", "vi", "id",
                                     "ms", "ceb", "tl")},
    "ru": ("Cyrillic",), "ar": ("Arabic",), "fa": ("Arabic",), "ur": ("Arabic",), "he": ("Hebrew",),
    "zh": ("Han",), "ja": ("Han", "Hiragana", "Katakana"), "ko": ("Hangul", "Han"), "th": ("Thai",),
    "lo": ("Lao",), "km": ("Khmer",), "my": ("Myanmar",), "hi": ("Devanagari",), "bn": ("Bengali",),
}
_SCRIPT_RE = {s: regex.compile(rf"[\p{{L}}&&\p{{Script={s}}}]", regex.V1)  # letters only, as the total
              for s in {x for v in LANGUAGE_SCRIPTS.values() for x in v}}
_LETTER = regex.compile(r"\p{L}")


def script_share(text: str, lang: str) -> float | None:
    """Share of the letters of `text` that belong to `lang`'s scripts (None: language not in the table,
    or no letters at all)."""
    scripts = LANGUAGE_SCRIPTS.get(lang)
    if scripts is None:
        return None
    letters = len(_LETTER.findall(text))
    if letters == 0:
        return None
    return sum(len(_SCRIPT_RE[s].findall(text)) for s in scripts) / letters
