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
    **{
        lang: ("Latin",)
        for lang in ("en", "de", "fr", "es", "pt", "it", "nl", "cs", "pl", "tr", "vi", "id", "ms", "ceb", "tl")
    },
    "ru": ("Cyrillic",),
    "ar": ("Arabic",),
    "fa": ("Arabic",),
    "ur": ("Arabic",),
    "he": ("Hebrew",),
    "zh": ("Han",),
    "ja": ("Han", "Hiragana", "Katakana"),
    "ko": ("Hangul", "Han"),
    "th": ("Thai",),
    "lo": ("Lao",),
    "km": ("Khmer",),
    "my": ("Myanmar",),
    "hi": ("Devanagari",),
    "bn": ("Bengali",),
}
# Deleting runs is much faster in `regex` than finding every character (about 4x here): the share is
# computed from the lengths of the text with non-letters removed, then with other scripts removed too.
_NON_LETTERS = regex.compile(r"[^\p{L}]+")
_OUTSIDE = {
    lang: regex.compile("[^" + "".join(f"\\p{{Script={s}}}" for s in scripts) + "]+")
    for lang, scripts in LANGUAGE_SCRIPTS.items()
}


def script_share(text: str, lang: str) -> float | None:
    """Share of the letters of `text` that belong to `lang`'s scripts (None: language not in the table,
    or no letters at all)."""
    outside = _OUTSIDE.get(lang)
    if outside is None:
        return None
    letters = _NON_LETTERS.sub("", text)
    if not letters:
        return None
    return len(outside.sub("", letters)) / len(letters)


def script_shares(samples: list[str], langs: list[str]) -> list[float | None]:
    """`script_share` of each (sample, language), counted for the whole batch in one compiled pass
    where filters/kernels.py has its extension (the same figures either way)."""
    from filters.kernels import SCRIPTS, letter_scripts

    counts = letter_scripts(samples)  # type: ignore[arg-type]
    if counts is None:
        return [script_share(t, lang) for t, lang in zip(samples, langs)]
    total = counts.sum(axis=1)
    column = {name: i for i, name in enumerate(SCRIPTS) if name}
    out: list[float | None] = []
    for i, lang in enumerate(langs):
        names = LANGUAGE_SCRIPTS.get(lang)
        if names is None or total[i] == 0:
            out.append(None)
        else:
            out.append(float(sum(int(counts[i, column[s]]) for s in names)) / float(total[i]))
    return out
