"""Near-duplicates in languages written without spaces are found as often as in English.

Pairs are made from UDHR text: a paragraph (two consecutive articles) and a copy with 2% of its
units replaced by other units of the same text, units being words for en/fr/ru and characters for
zh/ja/th/km/my (what a light edit, OCR noise or template churn does). The MinHash stage must make
each pair a candidate (share an LSH band) about as often in every language as in English, and
must not pair paragraphs that are not copies.
"""

from __future__ import annotations

import random
from collections import defaultdict

import numpy as np
import pytest

from curation.dedup.minhash import MinHasher
from filters.segmentation import UNSPACED_LANGUAGES, tokenize
from tests.conftest import read_jsonl_gz, shared_file

LANGS = ("en", "zh", "ja", "th", "km", "my")
EDIT = 0.02


@pytest.fixture(scope="module")
def paragraphs():
    by: dict[str, list[str]] = defaultdict(list)
    for r in read_jsonl_gz(shared_file("lid_udhr.jsonl.gz"), where=lambda r: r.get("is_primary_variant")):
        if r["lang"] in LANGS:
            by[r["lang"]].append(r["text"])
    return {lang: ["\n".join(a[i : i + 2]) for i in range(len(a) - 1)] for lang, a in by.items()}


def _join(tokens: list[str], lang: str) -> str:
    return ("" if lang in UNSPACED_LANGUAGES else " ").join(tokens)


def _rates(paragraphs: list[str], lang: str, mh: MinHasher, seeds: int = 4) -> tuple[float, float]:
    rng = random.Random(0)
    found = total = 0
    bases = [tokenize(p, lang) for p in paragraphs]
    for toks in bases:
        for _ in range(seeds):
            edited = list(toks)
            for _ in range(max(1, round(len(toks) * EDIT))):
                edited[rng.randrange(len(edited))] = toks[rng.randrange(len(toks))]
            keys = mh.band_keys(mh.signatures([_join(toks, lang), _join(edited, lang)], [lang, lang]))
            found += bool((keys[0] == keys[1]).any())
            total += 1
    # Different paragraphs (articles apart) must not collide.
    texts = [_join(t, lang) for t in bases[::2]]
    keys = mh.band_keys(mh.signatures(texts, [lang] * len(texts)))
    false = sum(bool((keys[i] == keys[j]).any()) for i in range(len(texts)) for j in range(i + 1, len(texts)))
    return found / total, false / (len(texts) * (len(texts) - 1) / 2)


def test_near_duplicates_found_as_often_as_in_english(paragraphs):
    mh = MinHasher()
    rates = {lang: _rates(paragraphs[lang], lang, mh) for lang in LANGS}
    print("\nlang  found  false-pairs")
    for lang, (found, false) in rates.items():
        print(f"{lang:4}  {found:5.2f}  {false:5.3f}")
    english = rates["en"][0]
    assert english >= 0.8
    for lang in LANGS:
        found, false = rates[lang]
        assert found >= english - 0.1, (lang, found, english)
        assert false <= 0.02, (lang, false)


def test_character_units_for_unspaced_scripts():
    from filters.segmentation import shingle_units

    assert shingle_units("我爱北京 Hello World", "zh") == ["我", "爱", "北", "京", "hello", "world"]
    assert shingle_units("Hello, World!", "en") == ["hello", "world"]
    assert np.array_equal(MinHasher().shingles("我爱北京天安门", "zh"), MinHasher().shingles("我爱北京天安门", "ja"))
