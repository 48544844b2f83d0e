"""Per-language stop words and Gopher thresholds (filters/language_tables.yaml) on held-out reference text.

For each of the 29 Qwen2 languages, clean documents of several hundred words are assembled from the
UDHR and Tatoeba units that filters/build_language_tables.py held out of the derivation
(``is_held_out``); the four heuristic filters, run in pipeline order with the language set, must
keep 95% of them and drop 90% of the same documents corrupted four ways. Lao and Burmese have no
Tatoeba text: their held-out documents are drawn from their few held-out UDHR articles only (they
overlap), so their rates rest on less text than the other languages'.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from curation.spec import QWEN29
from filters import build_language_tables as blt
from filters.c4 import C4Quality
from filters.fineweb import FineWebQuality
from filters.gopher_quality import LANGUAGE_TABLE, STOP_WORDS, GopherQuality
from filters.language_report import CORRUPTIONS, filter_rates, report
from filters.segmentation import UNSPACED_LANGUAGES
from tests.conftest import shared_file

ROOT = Path(__file__).resolve().parent.parent
HELD_OUT_DOCS = 40
PASS_RATE, DROP_RATE = 0.95, 0.90


@pytest.fixture(scope="module")
def held_out() -> dict[str, list[str]]:
    shared_file("lid_udhr.jsonl.gz")
    shared_file("lid_tatoeba_laser.jsonl.gz")
    units = blt.load_reference_units()
    return {lang: blt.reference_documents(lang, units[lang], held_out=True, n=HELD_OUT_DOCS) for lang in QWEN29}


def test_table_covers_the_29_languages_and_english_is_gophers():
    assert set(LANGUAGE_TABLE) == set(QWEN29)
    en = LANGUAGE_TABLE["en"]
    assert en["stop_words"] == sorted(["the", "be", "to", "of", "and", "that", "have", "with"])
    assert (
        en["min_avg_word_length"],
        en["max_avg_word_length"],
        en["min_stop_words"],
        en["max_non_alpha_words_ratio"],
    ) == (3, 10, 2, 0.8)
    for lang, row in LANGUAGE_TABLE.items():
        assert lang == "en" or 15 <= len(row["stop_words"]) <= 30, lang
        assert STOP_WORDS[lang] == frozenset(row["stop_words"])
        if lang in UNSPACED_LANGUAGES:
            assert row["min_avg_word_length"] is None and row["max_avg_word_length"] is None
        else:
            assert 0 < row["min_avg_word_length"] < row["max_avg_word_length"]


def test_held_out_units_are_not_used_for_the_table(held_out):
    units = blt.load_reference_units()
    for lang in QWEN29:
        derivation = blt.reference_documents(lang, units[lang], held_out=False, n=5)
        held = [t for src in units[lang].values() for i, t in src if blt.is_held_out(i)]
        assert held, lang
        assert not any(t in d for t in held if len(t) > 40 for d in derivation), lang


def test_explicit_thresholds_override_the_table():
    g = GopherQuality(min_avg_word_length=4)
    assert g._thresholds["de"].min_avg_word_length == 4
    assert g._thresholds["de"].max_avg_word_length == LANGUAGE_TABLE["de"]["max_avg_word_length"]
    assert GopherQuality(language_table=False)._thresholds == {}


def test_length_thresholds_follow_text_density(held_out):
    """Chinese says in 8 characters what English says in 30, Thai spends more characters than English:
    the scaled thresholds follow, and a held-out Chinese document cut into sentence lines (every line a
    full sentence, most under 30 characters) keeps its lines under the table but not without it."""
    rows = {lang: LANGUAGE_TABLE[lang] for lang in ("en", "zh", "ja", "th", "de")}
    assert rows["en"]["fineweb"] == {"short_line_length": 30, "new_line_ratio": 0.3}
    assert rows["en"]["c4"] == {"min_words_per_line": 3} and rows["en"]["min_doc_words"] == 50
    assert rows["zh"]["fineweb"]["short_line_length"] < 15 and rows["ja"]["fineweb"]["short_line_length"] < 15
    assert 25 <= rows["de"]["fineweb"]["short_line_length"] <= 40
    for lang in ("zh", "ja", "th"):  # counted in characters: more units than English words
        assert rows[lang]["min_doc_words"] > 50 and rows[lang]["c4"]["min_words_per_line"] > 3
        assert rows[lang]["fineweb"]["new_line_ratio"] < 0.3

    sentences = dict.fromkeys(s + "。" for d in held_out["zh"][:3] for s in d.replace("\n", "").split("。") if s)
    text = "\n".join(sentences)  # each sentence once (held-out documents share paragraphs)
    lines = text.split("\n")
    assert sum(len(line) <= 30 for line in lines) / len(lines) > 0.67
    assert FineWebQuality().check(text, "zh") is None
    assert FineWebQuality(language_table=False).check(text, "zh") == "fineweb:short_line_ratio"
    assert FineWebQuality(short_line_length=30).check(text, "zh") is None  # the default is table-driven...
    assert FineWebQuality(short_line_length=31, language_table=True).check(text, "zh") == "fineweb:short_line_ratio"
    # ...and C4 keeps a Chinese line of a few characters only if it has the scaled number of them.
    short = "\n".join(["他来了。"] * 3 + [line for line in lines[:8]])
    kept = C4Quality().check(short, "zh")[1]
    assert "他来了。" not in kept and "他来了。" in C4Quality(language_table=False).check(short, "zh")[1]


def test_clean_pass_and_corrupted_drop_per_language(held_out):
    rows, failures = [], []
    for lang in QWEN29:
        pass_rate, rates, fails = filter_rates(held_out, lang)  # the same measure docs/languages.md reports
        rows.append((lang, len(held_out[lang]), pass_rate, rates, fails))
        if pass_rate < PASS_RATE:
            failures.append(f"{lang}: clean pass {pass_rate:.0%} ({fails})")
        failures += [f"{lang}: {n} dropped {v:.0%}" for n, v in rates.items() if v < DROP_RATE]

    print(
        "\nlang docs clean_pass "
        + " ".join(f"{n:>15}" for n in [*CORRUPTIONS, "other_script"])
        + "  clean drop reasons"
    )
    for lang, n, p, rates, fails in rows:
        print(f"{lang:<4} {n:>4} {p:>10.0%} " + " ".join(f"{v:>15.0%}" for v in rates.values()) + f"  {fails}")
    assert not failures, failures


def test_build_check_reports_no_difference():
    shared_file("lid_udhr.jsonl.gz")
    shared_file("lid_tatoeba_laser.jsonl.gz")
    proc = subprocess.run(
        [sys.executable, "-m", "filters.build_language_tables", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "up to date" in proc.stdout


def test_the_languages_page_is_current():
    """docs/languages.md is what `python -m filters.language_report` writes from the shipped tables."""
    data_dir = shared_file("lid_udhr.jsonl.gz").parent
    assert (ROOT / "docs" / "languages.md").read_text(encoding="utf-8") == report(data_dir), (
        "docs/languages.md is stale: python -m filters.language_report > docs/languages.md"
    )


def test_web_register_thresholds_hold_real_pages_as_english_does():
    """Where a language's thresholds come from web pages (de has enough held-out ones to measure), the
    filters keep its held-out pages at least as often as Gopher's published values keep English pages of
    the same crawl: the derivation did not make the language stricter than English on the same register."""
    from filters.language_report import run_filters

    shared_file("web_trafilatura_eval.jsonl.gz")
    pages = blt.load_web_pages()
    assert blt.web_register_languages(pages) >= {"en", "de", "es"}
    assert "web_pages" in LANGUAGE_TABLE["de"]["reference"] and "web_pages" not in LANGUAGE_TABLE["zh"]["reference"]

    def pass_rate(lang):
        docs = blt.web_documents(pages, lang, held_out=True)
        assert len(docs) >= 30, lang
        return sum(r is None for r in run_filters(docs, lang)) / len(docs)

    assert pass_rate("de") >= pass_rate("en") - 0.02
