"""Legacy Zawgyi Burmese: detected on real text, converted back to Unicode, handled by the langid stage.

Unicode Burmese: the 31 primary-variant UDHR articles (../shared/data/lid_udhr.jsonl.gz). Zawgyi:
those articles re-encoded with python-myanmar's Unicode -> Zawgyi converter, plus two strings typed
from the literature (sources at each)."""

from __future__ import annotations

import difflib

import pyarrow as pa
import pytest

from curation.spec import parse_spec
from curation.stages import build, run
from filters.zawgyi import ZAWGYI_THRESHOLD, is_zawgyi, unicode_to_zawgyi, zawgyi_probability, zawgyi_to_unicode
from tests.conftest import read_jsonl_gz, shared_file

# "မြန်မာစာ" (Myanmar script) in Unicode and in Zawgyi's visual order: ya-yit U+103B typed before the
# consonant, asat as U+1039 (in the Zawgyi font, U+103B draws Unicode's U+103C medial ra and U+1039
# draws U+103A asat). Typed by hand from that correspondence, not taken from a converter.
MT_UNICODE = "\u1019\u103c\u1014\u103a\u1019\u102c\u1005\u102c"
MT_ZAWGYI = "\u103b\u1019\u1014\u1039\u1019\u102c\u1005\u102c"
# python-myanmar, myanmar/converter.py docstring: Zawgyi "ဉာဏ္ႀကီးရွင္" is Unicode "ဉာဏ်ကြီးရှင်".
PM_ZAWGYI = "ဉာဏ္ႀကီးရွင္"
PM_UNICODE = "ဉာဏ်ကြီးရှင်"


@pytest.fixture(scope="module")
def burmese():
    rows = read_jsonl_gz(
        shared_file("lid_udhr.jsonl.gz"), where=lambda r: r.get("is_primary_variant") and r["lang"] == "my"
    )
    assert len(rows) == 31
    return [r["text"] for r in rows]


def test_unicode_burmese_is_not_flagged(burmese):
    probs = [zawgyi_probability(t) for t in burmese]
    assert max(probs) < 0.05, probs
    assert not any(is_zawgyi(t) for t in burmese)


def test_zawgyi_reencodings_are_detected(burmese):
    zawgyi = [unicode_to_zawgyi(t) for t in burmese]
    assert all(z != u for z, u in zip(zawgyi, burmese))
    assert min(zawgyi_probability(z) for z in zawgyi) >= ZAWGYI_THRESHOLD


def test_strings_from_the_literature():
    assert not is_zawgyi(MT_UNICODE) and is_zawgyi(MT_ZAWGYI)
    assert not is_zawgyi(PM_UNICODE) and is_zawgyi(PM_ZAWGYI)
    assert zawgyi_to_unicode(MT_ZAWGYI) == MT_UNICODE
    assert zawgyi_to_unicode(PM_ZAWGYI) == PM_UNICODE


def test_non_myanmar_text_is_never_zawgyi():
    assert zawgyi_probability("Plain English, no Burmese at all.") == float("-inf")
    assert not is_zawgyi("Plain English, no Burmese at all.")


def test_conversion_round_trip(burmese):
    back = [zawgyi_to_unicode(unicode_to_zawgyi(t)) for t in burmese]
    exact = sum(b == u for b, u in zip(back, burmese))
    assert exact >= 28, exact  # measured: 28 of 31; the rest differ in one character each
    for b, u in zip(back, burmese):
        assert difflib.SequenceMatcher(None, u, b, autojunk=False).ratio() > 0.995
        assert not is_zawgyi(b)


def _table(texts):
    n = len(texts)
    return pa.table(
        {
            "text": pa.array(texts, pa.large_string()),
            "error": pa.nulls(n, pa.string()),
            "drop_reason": pa.nulls(n, pa.string()),
            "n_chars": pa.array([len(t) for t in texts], pa.int64()),
        }
    )


def _run(burmese, policy):
    lang_spec = {} if policy is None else {"zawgyi": policy}
    job = parse_spec(
        {
            "output": "/tmp/unused",
            "inputs": [{"path": "/tmp/unused", "source": "t", "format": "jsonl"}],
            "stages": {"langid": lang_spec},
            "execution": {"engine": "local"},
        }
    )
    stages = build(job, ["langid"])
    unicode_texts = burmese[1:6]
    texts = (
        unicode_texts
        + [unicode_to_zawgyi(t) for t in unicode_texts]
        + ["The quick brown fox jumps over the lazy dog again."]
    )
    return job, unicode_texts, run(_table(texts), stages)


@pytest.mark.parametrize("policy", [None, "convert"])
def test_stage_converts_by_default(burmese, policy):
    job, uni, out = _run(burmese, policy)
    assert job.stages.langid.zawgyi == "convert"
    assert out["drop_reason"].to_pylist() == [None] * 11
    texts = out["text"].to_pylist()
    assert texts[:5] == uni
    assert texts[5:10] == uni  # these five articles round-trip exactly
    assert out["lang"].to_pylist()[:10] == ["my"] * 10
    assert out["n_chars"].to_pylist()[5:10] == [len(t) for t in uni]
    assert min(out["lang_score"].to_pylist()[:10]) > 0.99


def test_stage_drop_and_keep(burmese):
    _, uni, out = _run(burmese, "drop")
    assert out["drop_reason"].to_pylist() == [None] * 5 + ["langid:zawgyi"] * 5 + [None]
    _, uni, out = _run(burmese, "keep")
    assert out["drop_reason"].to_pylist() == [None] * 11
    assert out["text"].to_pylist()[5:10] == [unicode_to_zawgyi(t) for t in uni]
