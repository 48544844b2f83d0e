"""The optional dictionary segmenters split real text into words, losing no character.

Each one runs only where its package is installed (`pip install 'corpus-curation[segmenters]'`); the
built-in Burmese syllable segmenter always runs.
"""

from __future__ import annotations

import importlib.util

import pytest

from filters.dictionary_segmenters import SEGMENTERS, burmese_syllables, load_segmenter
from filters.segmentation import get_segmenter, register_segmenter, tokenize, unregister_segmenter
from tests.conftest import read_jsonl_gz, shared_file

MODULES = {
    "jieba": "jieba",
    "sudachi": "sudachipy",
    "pythainlp": "pythainlp",
    "laonlp": "laonlp",
    "khmer-nltk": "khmernltk",
    "sylbreak": "re",
}


@pytest.fixture(scope="module")
def udhr() -> dict[str, str]:
    texts: dict[str, list[str]] = {}
    langs = {lang for lang, _, _ in SEGMENTERS.values()}
    for r in read_jsonl_gz(shared_file("lid_udhr.jsonl.gz"), where=lambda r: r.get("is_primary_variant")):
        if r["lang"] in langs:
            texts.setdefault(r["lang"], []).append(r["text"])
    return {lang: "\n".join(a[:6]) for lang, a in texts.items()}


@pytest.mark.parametrize("name", sorted(SEGMENTERS))
def test_segmenter_gives_words_and_keeps_every_character(name, udhr):
    if importlib.util.find_spec(MODULES[name]) is None:
        pytest.skip(f"{MODULES[name]} not installed (extra 'segmenters')")
    lang = SEGMENTERS[name][0]
    text = udhr[lang]
    tokens = load_segmenter(name)(text)
    assert "".join(tokens) == "".join(text.split()), "a segmenter must not drop or invent characters"
    chars = len(tokenize(text, lang))
    # Words, not characters: fewer units than one per character, and many of more than one character.
    assert len(tokens) < 0.85 * chars
    assert sum(len(t) > 1 for t in tokens) > 0.3 * len(tokens)


def test_registered_segmenter_replaces_characters_and_can_be_removed(udhr):
    text = udhr["my"]
    before = tokenize(text, "my")
    register_segmenter("my", burmese_syllables)
    try:
        assert get_segmenter("my") is burmese_syllables
        assert tokenize(text, "my") == burmese_syllables(text)
    finally:
        unregister_segmenter("my")
    assert tokenize(text, "my") == before


def test_burmese_syllables():
    assert burmese_syllables("မြန်မာစာ ကို လေ့လာပါ။ Hello 2024") == [
        "မြန်",
        "မာ",
        "စာ",
        "ကို",
        "လေ့",
        "လာ",
        "ပါ",
        "။",
        "Hello",
        "2024",
    ]
    assert burmese_syllables("သင်္ချိုင်း") == ["သင်္ချိုင်း"]  # kinzi/stacked consonants stay in their syllable


def test_unknown_segmenter_named():
    with pytest.raises(ValueError, match="unknown segmenter 'mecab'.*jieba"):
        load_segmenter("mecab")
