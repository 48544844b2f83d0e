"""The compiled text kernels (filters/_text_kernels.c), or None where they could not be built.

The extension is optional (`pip install` builds it with the C compiler it finds; without one the install
goes on and every caller keeps its pure-Python path, with the same results). Its code-point classes are
made here from the `regex` module's own properties, so the C state machine and the regexes of
filters/segmentation.py agree on every letter, mark, digit and script by construction.
``CURATION_NO_KERNELS=1`` turns the kernels off (for the parity tests and the benchmark's comparison).
"""

from __future__ import annotations

import os
from functools import lru_cache
from types import ModuleType

import numpy as np

# bits of the class table, as filters/_text_kernels.c reads them
L, M, N, UNDERSCORE, UNSPACED, SPACE, SYMBOL, PYSPACE = 1, 2, 4, 8, 16, 32, 64, 128
# flags of tokens()
T_SYMBOL, T_LETTER = 1, 2
N_CODEPOINTS = 0x110000
# the scripts letter_scripts counts (index 0: every other script); filters/scripts.py's languages use these
SCRIPTS = ("", "Latin", "Cyrillic", "Arabic", "Hebrew", "Han", "Hiragana", "Katakana", "Hangul", "Thai", "Lao",
           "Khmer", "Myanmar", "Devanagari", "Bengali")  # fmt: skip


def class_table() -> bytes:
    """One byte per code point: which of \\p{L}, \\p{M}, \\p{N}, `_`, the unspaced scripts, regex's \\s and
    Gopher's SYMBOL_CHARS it is in, and str.isspace()."""
    import regex

    from filters.characters import SYMBOL_CHARS
    from filters.segmentation import UNSPACED_SCRIPTS

    everything = "".join(map(chr, range(N_CODEPOINTS)))
    table = np.zeros(N_CODEPOINTS, dtype=np.uint8)
    for bit, pattern in ((L, r"\p{L}+"), (M, r"\p{M}+"), (N, r"\p{N}+"), (UNSPACED, rf"[{UNSPACED_SCRIPTS}]+")):
        for m in regex.finditer(pattern, everything):
            table[m.start() : m.end()] |= bit
    for m in regex.finditer(r"\s+", everything):
        table[m.start() : m.end()] |= SPACE
    table[ord("_")] |= UNDERSCORE
    for c in SYMBOL_CHARS:
        table[ord(c)] |= SYMBOL
    for cp in range(0x3001):  # str.isspace: 29 code points, none above U+3000
        if chr(cp).isspace():
            table[cp] |= PYSPACE
    return table.tobytes()


def script_table() -> bytes:
    """One byte per code point: its index in SCRIPTS (0 for the others)."""
    import regex

    everything = "".join(map(chr, range(N_CODEPOINTS)))
    table = np.zeros(N_CODEPOINTS, dtype=np.uint8)
    for i, name in enumerate(SCRIPTS[1:], start=1):
        for m in regex.finditer(rf"\p{{Script={name}}}+", everything):
            table[m.start() : m.end()] = i
    return table.tobytes()


def kernels() -> ModuleType | None:
    """The extension module, ready to use (its tables set), or None (not built, or CURATION_NO_KERNELS)."""
    if os.environ.get("CURATION_NO_KERNELS", "") not in ("", "0"):
        return None
    return _loaded()


@lru_cache(maxsize=1)
def _loaded() -> ModuleType | None:
    try:
        from filters import _text_kernels  # type: ignore[attr-defined]
    except ImportError:
        return None
    lower = bytes(ord(chr(c).lower()) for c in range(256))  # each one character: see _text_kernels.c
    _text_kernels.set_classes(class_table(), lower)
    _text_kernels.set_scripts(script_table())
    return _text_kernels


def word_hashes(texts: list[str | None], char_mode: list[bool]) -> tuple[np.ndarray, np.ndarray] | None:
    """(uint64 xxh3_64 word hashes of all texts, int64 offsets: text i's are hashes[off[i]:off[i+1]]),
    the words being segmentation.words / shingle_units of the lower-cased text; None without kernels."""
    k = kernels()
    if k is None:
        return None
    h, off = k.word_hashes(texts, bytes(char_mode))
    return np.frombuffer(h, dtype=np.uint64), np.frombuffer(off, dtype=np.int64)


def letter_scripts(texts: list[str | None]) -> np.ndarray | None:
    """(len(texts), 16) uint32: letters of each of SCRIPTS per text; None without kernels."""
    k = kernels()
    if k is None:
        return None
    return np.frombuffer(k.letter_scripts(texts), dtype=np.uint32).reshape(len(texts), 16)


def tokens(texts: list[str | None], char_mode: list[bool]) -> tuple[np.ndarray, ...] | None:
    """(uint64 hashes of the tokens as written, uint32 lengths, uint8 T_* flags, int64 offsets n+1): the
    tokens of segmentation.tokenize for every text; None without kernels."""
    k = kernels()
    if k is None:
        return None
    h, lengths, flags, off = k.tokens(texts, bytes(char_mode))
    return (
        np.frombuffer(h, dtype=np.uint64),
        np.frombuffer(lengths, dtype=np.uint32),
        np.frombuffer(flags, dtype=np.uint8),
        np.frombuffer(off, dtype=np.int64),
    )


def gopher_lines(texts: list[str | None]) -> np.ndarray | None:
    """(len(texts), 3) int64: str.splitlines() lines, bullet lines, ellipsis-ending lines; None without kernels."""
    k = kernels()
    if k is None:
        return None
    return np.frombuffer(k.gopher_lines(texts), dtype=np.int64).reshape(len(texts), 3)


def repetition_lines(texts: list[str | None]) -> np.ndarray | None:
    """(len(texts), 6) int64: paragraphs of text.strip() (split at 2+ newlines), their repeats and repeated
    characters, then the same for lines (split at newlines); None without kernels."""
    k = kernels()
    if k is None:
        return None
    return np.frombuffer(k.repetition_lines(texts), dtype=np.int64).reshape(len(texts), 6)
