"""The compiled text kernels (filters/_text_kernels.c) give exactly what the Python paths give.

Word hashes equal xxh3_64 of every word the segmentation regexes find (both modes: words, and the
character-or-word units of the scripts written without spaces), on real text of every kind here and on
generated strings of the characters where the rules have edges (separators, marks, digits of other
scripts, special lower-casing, surrogates); MinHash signatures equal the numpy path's; a registered
segmenter still decides for its language; and where a C compiler exists the extension was built."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from curation.dedup.minhash import MinHasher
from filters import kernels as fk
from filters.segmentation import _CHAR_OR_WORD_ONLY, register_segmenter, unregister_segmenter, words
from tests.conftest import SHARED_DATA

EDGES = list("aZz_-'’.,:/ \t\n1２३๓\u0301\u0e31\u0e47กขあアー漢字ÀİΣσςßﬁ\u200b\u00ad") + ["\U0001f600", "\ud800", "𝔘"]


def python_hashes(text: str, char_mode: bool) -> list[int]:
    units = _CHAR_OR_WORD_ONLY.findall(text.lower()) if char_mode else words(text, None)
    return [xxhash.xxh3_64_intdigest(w.encode("utf-8", "surrogatepass")) for w in units]


def kernel_hashes(texts: list[str], char_mode: bool) -> list[list[int]]:
    got = fk.word_hashes(texts, [char_mode] * len(texts))
    assert got is not None
    h, off = got
    return [h[off[i] : off[i + 1]].tolist() for i in range(len(texts))]


needs_kernels = pytest.mark.skipif(
    fk.kernels() is None, reason="the compiled kernels are not built here (test_built_where_a_compiler_exists)"
)


def test_built_where_a_compiler_exists():
    if shutil.which("cc") or shutil.which("gcc"):
        assert fk.kernels() is not None, "a C compiler is here but filters._text_kernels did not build"


@needs_kernels
@settings(max_examples=400, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from(EDGES), max_size=40), min_size=1, max_size=8))
def test_generated_strings_segment_as_the_regexes_do(texts):
    for char_mode in (False, True):
        assert kernel_hashes(texts, char_mode) == [python_hashes(t, char_mode) for t in texts]


@needs_kernels
def test_real_text_segments_as_the_regexes_do():
    import gzip
    import json
    from itertools import islice

    texts = []
    for name in ("lid_udhr.jsonl.gz", "web_trafilatura_eval.jsonl.gz", "code_files.jsonl.gz"):
        if (SHARED_DATA / name).exists():
            with gzip.open(SHARED_DATA / name, "rt", encoding="utf-8") as f:
                texts += [json.loads(line)["text"] for line in islice(f, 400)]
    if not texts:
        pytest.skip("../shared/data not present")
    for char_mode in (False, True):
        got = kernel_hashes(texts, char_mode)
        assert sum(g != python_hashes(t, char_mode) for g, t in zip(got, texts)) == 0


@needs_kernels
def test_none_and_empty_texts_have_no_words():
    assert kernel_hashes(["", "  ... ", "a"], False) == [[], [], python_hashes("a", False)]
    h, off = fk.word_hashes([None, "x y"], [False, False])
    assert off.tolist() == [0, 0, 2]


@needs_kernels
def test_minhash_signatures_equal_the_numpy_path(monkeypatch):
    texts = ["The quick brown fox jumps over the lazy dog " * 3, "短い文章です。日本語のテキスト。", "", "one two",
             "สวัสดีครับ วันนี้ 1,250 บาท", "Ang mga tao ay ipinanganak na malaya at pantay-pantay."]  # fmt: skip
    langs = [None, "ja", None, "en", "th", "tl"]
    with_kernel = MinHasher(5, 14, 8, 1).signatures(texts, langs)
    monkeypatch.setenv("CURATION_NO_KERNELS", "1")
    assert fk.kernels() is None
    without = MinHasher(5, 14, 8, 1).signatures(texts, langs)
    monkeypatch.delenv("CURATION_NO_KERNELS")
    assert np.array_equal(with_kernel, without)
    assert (with_kernel[2] == 0xFFFFFFFF).all() and not (with_kernel[0] == 0xFFFFFFFF).all()


@needs_kernels
def test_a_registered_segmenter_still_decides_its_language():
    texts = ["alpha beta gamma delta epsilon zeta", "alpha beta gamma delta epsilon zeta"]
    plain = MinHasher(2, 2, 2, 1).signatures(texts, ["xx", "yy"])
    register_segmenter("xx", lambda t: t.split(" ")[:2])  # a segmenter only Python can run
    try:
        seg = MinHasher(2, 2, 2, 1).signatures(texts, ["xx", "yy"])
    finally:
        unregister_segmenter("xx")
    assert not np.array_equal(seg[0], plain[0]) and np.array_equal(seg[1], plain[1])


@needs_kernels
@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from(EDGES + list("яБعربيשלום각한ไทยລາວខ្មែរမြန်हिंदীবাংলা")), max_size=60), min_size=1, max_size=6))  # fmt: skip
def test_script_shares_count_as_the_regexes_do(texts):
    from filters.scripts import LANGUAGE_SCRIPTS, script_share, script_shares

    for lang in [*LANGUAGE_SCRIPTS, "xx"]:
        assert script_shares(texts, [lang] * len(texts)) == [script_share(t, lang) for t in texts]


def _without_kernels(fn):
    import os

    os.environ["CURATION_NO_KERNELS"] = "1"
    try:
        return fn()
    finally:
        del os.environ["CURATION_NO_KERNELS"]


# documents with every kind of repetition: few distinct words, repeated lines and paragraphs, symbols
_WORDS = st.sampled_from(
    ["the", "of", "and", "a", "b", "Tom", "#", "...", "…", "-", "•", "tom", "x-y", "१२", "漢", "ก"]
)
_LINE = st.lists(_WORDS, min_size=0, max_size=12).map(" ".join)
_BLOCK = st.lists(_LINE, min_size=1, max_size=12).map(lambda ls: "\n".join(ls)) | st.lists(
    _LINE, min_size=1, max_size=4
).map(lambda ls: "\n\n".join(ls * 3))
_EDGE = st.sampled_from(["", "\n", "\n\n\n", " ", "\t\n ", "\u3000"])
_DOC = st.tuples(_EDGE, _BLOCK, _EDGE).map("".join)


@needs_kernels
@settings(max_examples=300, deadline=None)
@given(
    st.lists(_DOC, min_size=1, max_size=6),
    st.sampled_from(["en", "de", "th", None, "en"]),
    st.sampled_from([((2, 0.2), (3, 0.18)), ((4, 0.05), (2, 0.1)), ((1, 0.3),)]),
    st.sampled_from([((5, 0.15), (6, 0.14)), ((7, 0.01), (5, 0.02)), ((1, 0.05), (3, 0.0)), ((2, 0.01), (2, 0.0))]),
)
def test_filters_decide_as_their_python_paths_do(docs, lang, top, dup):
    """The shared tokens and the compiled n-gram rules change no decision (thresholds off the defaults
    too: n-gram sizes out of order, unigrams, a zero fraction)."""
    from filters.c4 import C4Quality
    from filters.fineweb import FineWebQuality
    from filters.gopher_quality import GopherQuality
    from filters.gopher_repetition import GopherRepetition

    langs = [lang] * len(docs)
    for make in (
        lambda: GopherQuality(min_doc_words=1, min_stop_words=1),
        GopherQuality,
        lambda: GopherRepetition(top_n_grams=top, dup_n_grams=dup),
        GopherRepetition,
        FineWebQuality,
        C4Quality,
        lambda: C4Quality(min_num_sentences=2, max_word_length=4, min_words_per_line=1),
    ):
        fast = make()(docs, langs)
        slow = _without_kernels(lambda: make()(docs, langs))
        assert fast.reasons == slow.reasons and fast.texts == slow.texts


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from(list(" \t\r\n\x00\x0b\x1f\x7f\u200b\ufeffaÅ\u030aﬁ\u3000\x85")), max_size=30))
def test_normalize_skips_only_substitutions_that_cannot_match(text):
    """curation/stages/normalize.py tests a substring before each substitution and skips NFC on NFC text:
    the result is the plain sequence of the four substitutions, NFC and strip."""
    import re
    import unicodedata

    from curation.stages.normalize import normalize_text

    def plain(t: str, form: str) -> str:
        t = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b\ufeff]", "", re.sub(r"\r\n?", "\n", t))
        t = unicodedata.normalize(form, t) if form != "none" else t
        return re.sub(r"\n{3,}", "\n\n", re.sub(r"[ \t]+\n", "\n", t)).strip()

    for form in ("NFC", "NFKC", "none"):
        assert normalize_text(text, form) == plain(text, form)  # type: ignore[arg-type]


@needs_kernels
@settings(max_examples=500, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from(list("a.…-•· \t\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029\u3000\xa0")), max_size=40), max_size=5))  # fmt: skip
def test_gopher_line_counts_are_the_regexes(texts):
    from filters.gopher_quality import _BULLET_LINE, _ELLIPSIS_LINE

    expected = []
    for t in texts:
        joined = "\n".join(t.splitlines())
        n = len(t.splitlines())
        expected.append(
            [n, len(_BULLET_LINE.findall(joined)) if n else 0, len(_ELLIPSIS_LINE.findall(joined)) if n else 0]
        )
    got = fk.gopher_lines(texts)
    assert got is not None and got.tolist() == expected


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab .!?\"'”’)]。！？」』)）\u0964\u06d4 \n\t\x1c\x1f\x85\u2028\xa0\u3000»")), max_size=16))  # fmt: skip
def test_c4_sentence_count_is_the_number_of_pieces(text):
    from filters.c4 import count_sentences, split_sentences

    for any_terminal in (False, True):
        from filters.c4 import sentence_ends

        assert count_sentences(text, any_terminal) == max(1, len(sentence_ends(text, any_terminal)))
    assert count_sentences(text) == len(split_sentences(text))


@needs_kernels
def test_shared_tokens_are_the_tokens_of_each_text():
    """A later filter handed some of the same text objects, in another order, with one rewritten, gets each
    text's own tokens (gathered or segmented anew), equal to segmenting them afresh."""
    from filters.tokens import batch_tokens

    texts = [f"Line {i} of text, with words and 123 numbers.\nAnother line {i}!" for i in range(20)] + ["", "漢字かな"]
    langs = ["en"] * 20 + ["en", "ja"]
    first = batch_tokens(texts, langs)
    assert first is not None and len(first) == len(texts)
    later = [texts[21], texts[3], texts[0] + " changed", *texts[5:15]]
    later_langs = ["ja", "en", "en", *["en"] * 10]
    got = batch_tokens(later, later_langs)
    fresh = fk.tokens(later, [lang == "ja" for lang in later_langs])
    assert got is not None and fresh is not None
    assert np.array_equal(got.offsets, fresh[3])
    assert np.array_equal(got.hashes, fresh[0]) and np.array_equal(got.lengths, fresh[1])
    assert np.array_equal(got.flags, fresh[2])
    assert got.per_doc(got.lengths).tolist() == [len(t.replace(" ", "").replace("\n", "")) for t in later]


@needs_kernels
def test_filters_with_a_registered_segmenter_decide_as_check():
    """Documents of a language with a registered segmenter (which only Python can run) among others."""
    from filters.fineweb import FineWebQuality
    from filters.gopher_quality import GopherQuality
    from filters.gopher_repetition import GopherRepetition

    docs = ["one two three four five " * 8, "a b a b a b a b a b a b a b a b\nx y z", "Hello there. " * 30] * 2
    langs = ["xx", "xx", "xx", "en", "en", "en"]
    register_segmenter("xx", lambda t: t.split())
    try:
        for f in (GopherQuality(min_doc_words=5), GopherRepetition(), FineWebQuality()):
            assert f(docs, langs).reasons == [f.check(d, lang) for d, lang in zip(docs, langs)]
    finally:
        unregister_segmenter("xx")
