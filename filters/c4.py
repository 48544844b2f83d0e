"""C4 quality rules (Raffel et al. 2020), the defaults of datatrove's C4QualityFilter.

C4 edits pages as well as dropping them. Each line (each sentence with ``split_paragraph=False``)
is stripped and dropped when it has a word over 1000 characters, does not end in terminal
punctuation (. ? ! " ') or ends in "...", has under 3 words, mentions "javascript", or mentions a
cookie / terms-of-use phrase; Wikipedia citation marks ("[1]", "[edit]", "[citation needed]") are
removed. The page is dropped, with these reasons, in the order datatrove checks them:

- ``c4:lorem_ipsum``        a surviving line contains "lorem ipsum"
- ``c4:curly_bracket``      a surviving line contains "{" (code)
- ``c4:too_few_sentences``  under 5 sentences in the lines kept

Kept pages are rewritten to their kept lines; FilterResult.texts carries the new text.

Sentences: datatrove counts them with its tokenizer's sentence splitter (spaCy's sentencizer for
English). ``split_sentences`` is a regex stand-in: a sentence ends at a run of . ! ? (plus closing
quotes/brackets) followed by whitespace or the end, or at a CJK full stop; trailing text without
one is a sentence too. It has no abbreviation list, so "U.S. officials" counts two sentences.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import regex

from filters.base import Filter, FilterResult, Measure
from filters.language_table import per_language
from filters.segmentation import NO_SENTENCE_PUNCTUATION, UNSPACED_LANGUAGES, words

_SENTENCE_END = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s|$)|[。！？]+[」』”’)）]*")
_CITATION = re.compile(r"\[\d*]|\[edit]|\[citation needed]")
_END_PUNCTUATION = (".", "?", "!", '"', "'")
# C4's rules are English ones. For other languages a line may also end with any Unicode sentence
# terminal (Devanagari danda, Urdu full stop, Arabic question mark, CJK full stop...), and those
# terminals end sentences too; English keeps C4's exact rule (and datatrove parity).
_ANY_SENTENCE_TERMINAL = regex.compile(r"[\p{Sentence_Terminal}\"'”’»)\]）」』]$")
_SENTENCE_END_ANY = regex.compile(r"\p{Sentence_Terminal}+[\"'”’»)\]）」』]*(?=\s|$)|[。！？]+[」』”’)）]*")
_POLICY_PHRASES = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")
_COOKIE_PHRASES = tuple(p for p in _POLICY_PHRASES if "cookie" in p)
# The same matches anchored at the end: whether a line's last sentence end closes it (no unterminated tail).
_SENTENCE_END_AT_END = re.compile(r"(?:[.!?]+[\"'”’)\]]*|[。！？]+[」』”’)）]*)$")


_NEEDLES = ("lorem ipsum", "javascript", "{", *_POLICY_PHRASES)  # what the compiled path searches for


def _is_policy(line_l: str) -> bool:
    """A policy phrase in the lower-cased line (every cookie phrase has "cookie": one scan for the four)."""
    return (
        "terms of use" in line_l
        or "privacy policy" in line_l
        or ("cookie" in line_l and any(p in line_l for p in _COOKIE_PHRASES))
    )


DATATROVE_REASONS: dict[str, str] = {
    "c4:lorem_ipsum": "lorem_ipsum",
    "c4:curly_bracket": "curly_bracket",
    "c4:too_few_sentences": "too_few_sentences",
}
_LOREM, _CURLY, _FEW_SENTENCES = DATATROVE_REASONS


def sentence_ends(text: str, any_terminal: bool = False) -> list[int]:
    """End offsets of the sentences of `text` (the last one may be its unterminated tail)."""
    pattern = _SENTENCE_END_ANY if any_terminal else _SENTENCE_END
    ends = [m.end() for m in pattern.finditer(text)]
    tail = ends[-1] if ends else 0
    if tail < len(text) and not text[tail:].isspace():
        ends.append(len(text))
    return ends


def split_sentences(text: str) -> list[str]:
    """`text` cut after each sentence end, whitespace kept, as datatrove's split_into_sentences.

    The pieces join back to `text`; a text without any sentence is one piece.
    """
    ends = sentence_ends(text)
    if len(ends) <= 1:
        return [text]
    starts = [0, *ends[:-1]]
    ends[-1] = len(text)
    return [text[a:b] for a, b in zip(starts, ends)]


def count_sentences(text: str, any_terminal: bool = False) -> int:
    """len(split_sentences(text)) without building the pieces: the sentence ends, plus the tail after the
    last one unless it is blank (two scans in C, no Python per match)."""
    if any_terminal:  # `regex`'s \s is not str.isspace (U+001C..U+001F): the exact path
        return max(1, len(sentence_ends(text, any_terminal)))
    # `re`'s \s is str.isspace, so a blank tail is what rstrip() removes
    n = len(_SENTENCE_END.findall(text))
    if not _SENTENCE_END_AT_END.search(text.rstrip()) and text.strip():
        n += 1
    return max(1, n)


@dataclass
class C4Quality(Filter):
    """C4's line and page heuristics. -1 disables a numeric rule, False a boolean one.

    ``min_words_per_line`` left at its default comes from the document's row of the language table
    (filters/language_tables.yaml: scaled by the language's words per English word); ``language_table``
    False applies the given value to every language.
    """

    split_paragraph: bool = True  # lines are split at newlines (false: into sentences)
    remove_citations: bool = True  # remove Wikipedia-style citation marks ([1], [citation needed])
    filter_no_terminal_punct: bool = True  # remove lines that do not end in terminal punctuation
    min_num_sentences: int = 5  # drop pages with fewer sentences once lines are removed
    min_words_per_line: int = 3  # remove lines with fewer words
    max_word_length: int = 1000  # remove lines with a longer word
    filter_lorem_ipsum: bool = True  # drop pages that contain "lorem ipsum"
    filter_javascript: bool = True  # remove lines that mention javascript
    filter_curly_bracket: bool = True  # drop pages that contain a curly bracket
    filter_policy: bool = True  # remove lines with policy boilerplate (terms of use, cookies, privacy policy)
    language_table: bool = True  # min_words_per_line left at its default comes from the language table
    name = "c4"
    rewrites = True

    def __post_init__(self) -> None:
        self._min_words: dict[str | None, int] = {}
        if self.language_table:
            table = per_language("c4", {"min_words_per_line": self.min_words_per_line}, {"min_words_per_line": 3})
            self._min_words = {lang: row["min_words_per_line"] for lang, row in table.items()}

    def check(self, text: str, lang: str | None = None) -> tuple[str | None, str]:
        """(drop reason or None, rewritten text). The text is returned unchanged when dropped.

        For labelled languages other than English any Unicode sentence terminal ends
        a line and a sentence; English keeps C4's exact punctuation rule.
        """
        reason, new_text, _ = self._scan(text, lang)
        return reason, new_text

    def explain(self, text: str, lang: str | None, reason: str) -> Measure | None:
        if reason == _FEW_SENTENCES:
            return Measure(self._scan(text, lang)[2], self.min_num_sentences, "<")
        return Measure(None, None) if reason in (_LOREM, _CURLY) else None

    def _scan(self, text: str, lang: str | None) -> tuple[str | None, str, int]:
        """`check`'s decision plus the sentences counted in the lines kept."""
        other = lang is not None and lang != "en"
        unspaced = lang in UNSPACED_LANGUAGES
        # Thai and Lao end sentences (and clauses) with a space: each space-separated run is one.
        no_punct = lang in NO_SENTENCE_PUNCTUATION
        split_paragraph = self.split_paragraph
        lines = text.splitlines() if split_paragraph else split_sentences(text)
        max_word_length = self.max_word_length
        remove_citations = self.remove_citations
        terminal = self.filter_no_terminal_punct
        min_words = self._min_words.get(lang, self.min_words_per_line)
        lorem = self.filter_lorem_ipsum
        javascript = self.filter_javascript
        curly = self.filter_curly_bracket
        policy = self.filter_policy
        count = self.min_num_sentences != -1

        n_sentences = 0
        kept = []
        for line in lines:
            stripped = line.strip()
            # A word longer than max_word_length needs a line at least that long.
            if (
                max_word_length != -1
                and len(stripped) > max_word_length
                and any(len(w) > max_word_length for w in stripped.split())
            ):
                continue
            line = _CITATION.sub("", stripped) if remove_citations and "[" in stripped else stripped
            if terminal and not no_punct and (not line.endswith(_END_PUNCTUATION) or line.endswith("...")):
                if not (other and _ANY_SENTENCE_TERMINAL.search(line) and not line.endswith("...")):
                    continue
            # Words are counted before citations are removed, as the reference does; splitting at
            # most min_words - 1 times is enough to tell whether there are min_words.
            if (
                min_words > 0
                and len(stripped.split(None, min_words - 1)) < min_words
                and not (unspaced and len(words(stripped, lang)) >= min_words)
            ):
                continue  # (words of unspaced scripts are counted with the language's segmenter, no punctuation)
            line_l = line.lower()
            if lorem and "lorem ipsum" in line_l:
                return _LOREM, text, n_sentences
            if javascript and "javascript" in line_l:
                continue
            if curly and "{" in line:
                return _CURLY, text, n_sentences
            if policy and _is_policy(line_l):
                continue
            if count:
                if no_punct:
                    n_sentences += len(line.split())
                else:
                    n_sentences += count_sentences(line, other) if split_paragraph else 1
            kept.append(line)
        if n_sentences < self.min_num_sentences:
            return _FEW_SENTENCES, text, n_sentences
        return None, ("\n" if split_paragraph else " ").join(kept).strip(), n_sentences

    def __call__(self, texts: Sequence[str], langs: Sequence[str | None]) -> FilterResult:
        """English pages (and unlabelled ones) through the compiled line rules (filters/_text_kernels.c's
        c4_english, the same decisions as `check`), the others through `check`."""
        from filters.kernels import kernels

        k = kernels()
        english = [i for i, lang in enumerate(langs) if lang is None or lang == "en"]
        if k is None or not self.split_paragraph or not english:
            return super().__call__(texts, langs)
        reasons: list[str | None] = [None] * len(texts)
        new_texts: list[str] = list(texts)
        codes = (None, _LOREM, _CURLY, _FEW_SENTENCES)
        by_lang: dict[str | None, list[int]] = {}
        for i in english:
            by_lang.setdefault(langs[i], []).append(i)
        for lang, rows in by_lang.items():
            options = (
                self.max_word_length,
                self.remove_citations,
                self.filter_no_terminal_punct,
                self._min_words.get(lang, self.min_words_per_line),
                self.filter_lorem_ipsum,
                self.filter_javascript,
                self.filter_curly_bracket,
                self.filter_policy,
                self.min_num_sentences,
            )
            results = k.c4_english([texts[i] for i in rows], options, _CITATION, _NEEDLES)
            for i, (code, text) in zip(rows, results):
                reasons[i] = codes[code]
                new_texts[i] = text
        for i, lang in enumerate(langs):
            if not (lang is None or lang == "en"):
                reasons[i], new_texts[i] = self.check(texts[i], lang)
        return FilterResult(reasons, new_texts)
