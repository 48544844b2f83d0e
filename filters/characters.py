"""Character sets the filters share: Unicode sentence terminals (FineWeb, C4, Gopher) and the characters
that do not make a token a word (Gopher). A leaf module, so the compiled kernels (filters/kernels.py) can
build their tables from these without importing the filters."""

from __future__ import annotations

import string

import regex


def _terminal_punctuation() -> frozenset[str]:
    # datatrove's TERMINAL_PUNCTUATION is the Unicode Sentence_Terminal property (Unicode 15) plus
    # three Khmer signs; deriving it keeps the list in step with Unicode instead of copying it.
    # Every Sentence_Terminal code point lies below U+20000 (planes 2+ hold only ideographs).
    every_char = "".join(map(chr, range(0x20000)))
    return frozenset(regex.findall(r"\p{Sentence_Terminal}", every_char)) | frozenset("៖៙៚")


TERMINAL_PUNCTUATION: frozenset[str] = _terminal_punctuation()


# The characters that do not make a token a word: datatrove's PUNCTUATION_SET (ASCII punctuation,
# control characters, a few CJK and typographic marks, every sentence terminal), kept identical
# (fullwidth '１' included) so word counts match the reference.
SYMBOL_CHARS: frozenset[str] = (
    frozenset(string.punctuation)
    | frozenset(map(chr, [*range(0, 9), 11, 12, *range(13, 32), *range(127, 160)]))
    | frozenset("«´»–—’“”„…∶━►、〈〉《》「」【】％（），１：；～")
    | TERMINAL_PUNCTUATION
)
