"""Language pairs decided again by vocabulary (filters/language_pairs.py): the Cebuano/Tagalog table decides
held-out paragraphs of both right, it only ever touches documents labelled with one of the pair, the shipped
table is what its builder makes of the reference text, and a job names its pairs (unknown ones refused)."""

from __future__ import annotations

import pytest

from curation.spec import parse_spec
from filters.langid import LanguageIdentifier, reference_paragraphs
from filters.language_pairs import PAIRS, pairs_for
from tests.conftest import shared_file


@pytest.fixture(scope="module")
def heldout():
    return reference_paragraphs(shared_file("lid_udhr.jsonl.gz").parent, ["ceb", "tl"], "heldout")


@pytest.mark.parametrize("lang", ["ceb", "tl"])
def test_cebuano_tagalog_words_decide_heldout_paragraphs(heldout, lang):
    pair = PAIRS["ceb/tl"]
    decided = pair.decide(heldout[lang])
    assert sum(d == lang for d in decided) / len(decided) >= 0.97, pair.name
    # and the margin is not a hair: the median paragraph is well on its side of the threshold
    ev = sorted(pair.evidence(t) for t in heldout[lang])
    assert (ev[len(ev) // 2] > 0.3) if lang == "ceb" else (ev[len(ev) // 2] < -0.3)


def test_pairs_touch_only_their_labels():
    texts = ["The weather is nice today and we go out.", "Dili ko mokaon og karne kay gikapoy ko karon.",
             "Hindi ako kumakain ng karne dahil pagod ako ngayon.", "Das Wetter ist heute schön."]  # fmt: skip
    with_pairs, s1 = LanguageIdentifier().predict(texts)
    without, s0 = LanguageIdentifier(pairs=()).predict(texts)
    assert with_pairs[1:3] == ["ceb", "tl"]
    assert with_pairs[0] == without[0] == "en" and with_pairs[3] == without[3] == "de"
    assert s1[0] == s0[0] and s1[3] == s0[3]


def test_shipped_ceb_tl_table_equals_regeneration():
    from filters.build_ceb_tl_table import main

    assert main(["--check", "--data-dir", str(shared_file("lid_udhr.jsonl.gz").parent)]) == 0


def test_pairs_are_validated():
    with pytest.raises(ValueError, match="unknown language pair"):
        pairs_for(["ms/tl"])
    base = {"output": "/tmp/unused", "inputs": [{"path": "/tmp/unused", "source": "t", "format": "jsonl"}]}
    with pytest.raises(ValueError, match=r"stages\.langid\.pairs.*unknown language pair"):
        parse_spec({**base, "stages": {"langid": {"pairs": ["xx/yy"]}}})
    assert parse_spec({**base, "stages": {"langid": {"pairs": []}}}).stages.langid.pairs == []
    assert parse_spec({**base, "stages": {"langid": {}}}).stages.langid.pairs == ["ms/id", "ceb/tl"]
