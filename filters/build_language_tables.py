"""Build ``filters/language_tables.yaml``: per-language stop words and heuristic thresholds.

Run from the project root (the reference text lives in ``../shared/data``)::

    python -m filters.build_language_tables            # rewrite filters/language_tables.yaml
    python -m filters.build_language_tables --check    # regenerate in memory, exit 1 on any difference

Reference text
    For each of the 29 Qwen2 languages (``filters.languages.QWEN29``): the primary UDHR version
    (``is_primary_variant``; 31 units, preamble + 30 articles) and the Tatoeba sentences of
    ``lid_tatoeba_laser.jsonl.gz`` (up to 1000, deduplicated; none for lo and my, a few hundred
    for th, ceb and km), NFC-normalised (the Vietnamese UDHR and a third of the Bengali Tatoeba
    sentences are decomposed; web text is overwhelmingly NFC, and the rule matches code points). Every unit is put in the derivation split or the held-out split by a
    hash of its id (``is_held_out``: one in four held out); the held-out units are only used by
    ``tests/test_language_tables.py``.

Web pages (``load_web_pages``)
    The extracted articles (``main_text``, at least 50 words) of the real web pages in
    ``web_trafilatura_eval.jsonl.gz`` whose declared language lid.176 confirms, split one in four
    held out by the same hash. Languages with at least ``WEB_MIN_PAGES`` derivation pages (en, de, es,
    fr, pl) take their median ratios from them (see Thresholds); the held-out pages are measured in
    docs/languages.md.

Reference documents (``reference_documents``)
    Paragraphs are UDHR units as they are (heading line + text) and groups of five Tatoeba
    sentences on one line. A document is random paragraphs of one split (seeded) joined by
    newlines until it reaches 300 words (600 tokens for the character-segmented languages,
    ``filters.segmentation.UNSPACED_LANGUAGES``, where a token is one character), i.e. "several
    hundred words". 200 documents per language are drawn from the derivation split.

Stop words (``derive_stop_words``)
    Function words are frequent in every kind of text, topic words only in some. The derivation
    units of each source are packed into chunks of about 100 words (200 characters for the
    character-segmented languages), and every word type (``filters.segmentation.words``, i.e.
    lower-cased) gets its document frequency (share of chunks containing it) in the UDHR chunks
    and in the Tatoeba chunks separately; its score is the smaller of the two, so "right" (UDHR)
    and "Tom" (Tatoeba) score low and "and" high. Types with a digit, and types written
    capitalised in most of their occurrences (names, German nouns: the rule matches tokens
    case-sensitively, as datatrove does) are left out. The list is the 30 best-scoring types with
    a score of at least 10%. Lao and Burmese have no Tatoeba text: their score is the UDHR
    frequency alone, so their lists lean towards the UDHR's vocabulary. For character-segmented
    languages the "stop words" are the most common characters (particles such as 的/是/了, の/は/に,
    and the commonest letters of Thai, Lao, Khmer and Burmese); for those the rule works as a
    check that the text is in the language's script and writing at all.

Thresholds (``derive_row``), FineWeb-2's "median ratio" method
    Each statistic is measured on the 200 reference documents exactly as ``GopherQuality``
    measures it (mean word length over non-symbol tokens; share of tokens with a letter), and
    Gopher's English threshold is scaled by the ratio of the language's median to the English
    median, so a language whose words are 1.5 times longer gets a band 1.5 times wider at both
    ends. Where both the language and English have web pages, the medians are those of the web pages
    (same register on both sides: the ratio says how the languages differ, not how legal text differs
    from the web). A safety margin keeps every clean reference document inside: a lower bound is at most
    90% (word length) / 95% (alpha ratio) of the language's 1st percentile, an upper bound at
    least 110% of its 99th percentile. ``min_stop_words`` is the 1st percentile of the number of
    distinct stop words in 50-word windows (Gopher's minimum document) of the reference documents,
    capped at Gopher's 2 and at least 1.
    The mean-word-length rule is left off (null) for the character-segmented languages: with one
    token per character every word has length ~1 and the rule measures nothing. English keeps
    exactly the published Gopher defaults and stop words (datatrove parity).

Length thresholds (``udhr_density``, ``derive_length_thresholds``)
    Thresholds that count words or characters mean different amounts of text per language: 50
    words of English are about 80 characters of Chinese, and a 30-character line of Thai says what
    a 30-character English line says, while a 30-character Chinese line says three times more. The
    UDHR is parallel text, so each language's words per English word and characters per English
    character over the units both have measure that density; Gopher's minimum and maximum document
    words and C4's minimum words per line are multiplied by the first, FineWeb's short-line length
    by the second, and FineWeb's maximum newlines per word divided by the first. Ratios of the text
    to itself (duplicate lines, n-gram repetition, punctuation shares) need no scaling and keep the
    published values; the n-gram rules are off for character-segmented languages
    (``filters.gopher_repetition.NGRAM_RULES_EXEMPT``).
"""

from __future__ import annotations

import argparse
import difflib
import gzip
import json
import math
import random
import sys
import unicodedata
import zlib
from collections import Counter
from pathlib import Path
from typing import Sequence

from filters.gopher_quality import (
    _LETTERLESS_TOKEN,
    GOPHER_ENGLISH_STOP_WORDS,
    SYMBOL_CHARS,
    _stop_word_pattern,
    token_counts,
)
from filters.languages import QWEN29
from filters.segmentation import UNSPACED_LANGUAGES, tokenize, words

DATA_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
UDHR = DATA_DIR / "lid_udhr.jsonl.gz"
TATOEBA = DATA_DIR / "lid_tatoeba_laser.jsonl.gz"
WEB = DATA_DIR / "web_trafilatura_eval.jsonl.gz"
TABLE_PATH = Path(__file__).resolve().parent / "language_tables.yaml"

SEED = 5
HELD_OUT_ONE_IN = 4
DOC_WORDS, DOC_WORDS_UNSPACED = 300, 600
SENTENCES_PER_PARAGRAPH = 5
DERIVATION_DOCS = 200
CHUNK_WORDS, CHUNK_WORDS_UNSPACED = 100, 200
N_STOP_WORDS, MIN_STOP_SCORE = 30, 0.10
WINDOW_WORDS = 50
WEB_MIN_WORDS = 50  # Gopher's shortest document
WEB_MIN_PAGES = 10  # derivation pages a language needs for its web-register medians

# Gopher's published English thresholds (datatrove's GopherQualityFilter defaults).
GOPHER = {
    "min_avg_word_length": 3,
    "max_avg_word_length": 10,
    "min_stop_words": 2,
    "max_non_alpha_words_ratio": 0.8,
    "min_doc_words": 50,
    "max_doc_words": 100000,
}
# The length thresholds of C4 and FineWeb (datatrove's defaults), scaled per language by text density.
C4 = {"min_words_per_line": 3}
FINEWEB = {"short_line_length": 30, "new_line_ratio": 0.3}


def is_held_out(unit_id: str) -> bool:
    """Whether a reference unit (UDHR article or Tatoeba sentence) is kept for testing only."""
    return zlib.crc32(unit_id.encode()) % HELD_OUT_ONE_IN == 0


def load_reference_units(data_dir: Path | None = None) -> dict[str, dict[str, list[tuple[str, str]]]]:
    """lang -> source ("udhr", "tatoeba") -> [(id, text)] for the 29 languages, in file order."""
    udhr_path = (data_dir / UDHR.name) if data_dir else UDHR
    tatoeba_path = (data_dir / TATOEBA.name) if data_dir else TATOEBA
    units: dict[str, dict[str, list[tuple[str, str]]]] = {lang: {"udhr": [], "tatoeba": []} for lang in QWEN29}
    with gzip.open(udhr_path, "rt", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if r["lang"] in units and r["is_primary_variant"] and r["in_qwen29"]:
                units[r["lang"]]["udhr"].append((r["id"], unicodedata.normalize("NFC", r["text"]).strip()))
    with gzip.open(tatoeba_path, "rt", encoding="utf-8") as f:
        seen: set[tuple[str, str]] = set()
        for line in f:
            r = json.loads(line)
            key = (r["lang"], unicodedata.normalize("NFC", r["text"]).strip())
            if r["lang"] in units and key not in seen and key[1]:
                seen.add(key)
                units[r["lang"]]["tatoeba"].append((r["id"], key[1]))
    return units


def load_web_pages(data_dir: Path | None = None) -> dict[str, list[tuple[str, str]]]:
    """lang -> [(id, main text)] of the real web pages whose declared language lid.176 confirms.

    The articles trafilatura extracted (`main_text`) of at least WEB_MIN_WORDS words: the clean text a crawl
    gives after extraction, with its numbers, lists and captions. A fifth of the pages declare a language
    they are not written in (most of them "en"); only those lid.176 labels as declared are kept.
    """
    from filters.langid import LanguageIdentifier

    path = (data_dir / WEB.name) if data_dir else WEB
    pages: dict[str, list[tuple[str, str]]] = {}
    if not path.is_file():
        return pages
    rows = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            text = unicodedata.normalize("NFC", r.get("main_text") or "").strip()
            if r["lang"] in QWEN29 and len(text.split()) >= WEB_MIN_WORDS:
                rows.append((r["lang"], r["id"], text))
    labels, _ = LanguageIdentifier(pairs=()).predict([t for _, _, t in rows])
    for (lang, id_, text), label in zip(rows, labels):
        if label == lang:
            pages.setdefault(lang, []).append((id_, text))
    return pages


def web_documents(pages: dict[str, list[tuple[str, str]]], lang: str, *, held_out: bool) -> list[str]:
    return [t for _, t in _split(pages.get(lang, []), held_out)]


def _split(items: list[tuple[str, str]], held_out: bool) -> list[tuple[str, str]]:
    return [(i, t) for i, t in items if is_held_out(i) == held_out]


def _paragraphs(lang: str, units: dict[str, list[tuple[str, str]]], held_out: bool) -> list[str]:
    paragraphs = [t for _, t in _split(units["udhr"], held_out)]
    sentences = [t for _, t in _split(units["tatoeba"], held_out)]
    joiner = "" if lang in ("zh", "ja") else " "
    for i in range(0, len(sentences), SENTENCES_PER_PARAGRAPH):
        paragraphs.append(joiner.join(sentences[i : i + SENTENCES_PER_PARAGRAPH]))
    return paragraphs


def doc_words(lang: str) -> int:
    return DOC_WORDS_UNSPACED if lang in UNSPACED_LANGUAGES else DOC_WORDS


def reference_documents(
    lang: str, units: dict[str, list[tuple[str, str]]], *, held_out: bool, n: int, seed: int = SEED
) -> list[str]:
    """`n` clean documents of about doc_words(lang) words from one split (see the module docstring)."""
    paragraphs = _paragraphs(lang, units, held_out)
    sizes = [len(words(p, lang)) for p in paragraphs]
    rng = random.Random(f"{seed}-{lang}-{held_out}")
    target = doc_words(lang)
    docs = []
    for _ in range(n):
        order = list(range(len(paragraphs)))
        rng.shuffle(order)
        chosen, total = [], 0
        for i in order:
            chosen.append(paragraphs[i])
            total += sizes[i]
            if total >= target:
                break
        docs.append("\n".join(chosen))
    return docs


def _chunks(lang: str, texts: list[str]) -> list[list[str]]:
    """Raw tokens with a letter, packed into chunks of about CHUNK_WORDS words."""
    size = CHUNK_WORDS_UNSPACED if lang in UNSPACED_LANGUAGES else CHUNK_WORDS
    chunks: list[list[str]] = [[]]
    for text in texts:
        chunks[-1].extend(t for t in tokenize(text, lang) if not _LETTERLESS_TOKEN.fullmatch(t))
        if len(chunks[-1]) >= size:
            chunks.append([])
    return [c for c in chunks if len(c) >= size // 2]


def derive_stop_words(lang: str, units: dict[str, list[tuple[str, str]]]) -> list[str]:
    frequencies: list[Counter[str]] = []
    raw: Counter[str] = Counter()
    for source in ("udhr", "tatoeba"):
        chunks = _chunks(lang, [t for _, t in _split(units[source], False)])
        if not chunks:
            continue
        df: Counter[str] = Counter()
        for chunk in chunks:
            raw.update(chunk)
            df.update({w.lower() for w in chunk})
        frequencies.append(Counter({w: c / len(chunks) for w, c in df.items()}))
    lowered: Counter[str] = Counter()
    for token, count in raw.items():
        lowered[token.lower()] += count
    scores = {}
    for word in frequencies[0]:
        if any(ch.isdigit() for ch in word) or raw[word] * 2 < lowered[word]:
            continue  # numbers; mostly capitalised (names, nouns): the rule matches case-sensitively
        if not words(word, lang):
            continue
        scores[word] = min(f.get(word, 0.0) for f in frequencies)
    ranked = sorted((w for w, s in scores.items() if s >= MIN_STOP_SCORE), key=lambda w: (-scores[w], w))
    return sorted(ranked[:N_STOP_WORDS])


def document_stats(text: str, lang: str) -> tuple[float, float]:
    """(mean word length, share of tokens with a letter), as GopherQuality computes them."""
    tokens, joined, n_symbols, n_symbol_chars = token_counts(text, lang)
    n_words = len(tokens) - n_symbols
    avg_len = (len(joined) - (len(tokens) - 1) - n_symbol_chars) / n_words
    alpha = (len(tokens) - len(_LETTERLESS_TOKEN.findall(joined))) / len(tokens)
    return avg_len, alpha


def _quantile(values: Sequence[float], q: float) -> float:
    values = sorted(values)
    pos = q * (len(values) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return values[lo] + (values[hi] - values[lo]) * (pos - lo)


def _stop_word_windows(text: str, lang: str, stop_words: list[str]) -> list[int]:
    pattern = _stop_word_pattern(stop_words)
    tokens = [t for t in tokenize(text, lang) if not (t in SYMBOL_CHARS)]
    counts = []
    for start in range(0, max(1, len(tokens) - WINDOW_WORDS + 1), WINDOW_WORDS // 2):
        window = "\n".join(tokens[start : start + WINDOW_WORDS])
        counts.append(len(set(pattern.findall(window))))
    return counts


def _round(x: float, down: bool) -> float:
    return (math.floor if down else math.ceil)(x * 100) / 100


def udhr_density(units: dict[str, dict[str, list[tuple[str, str]]]], lang: str) -> tuple[float, float]:
    """(words, characters) of `lang` per English word and character, over the UDHR units both have.

    The UDHR is parallel text, so this is how many words (tokens of the language's segmenter: one per
    character for the character-segmented scripts) and characters the language spends on what English
    says in one; both splits are used, since no document is built from it.
    """

    def by_unit(lang_: str) -> dict[str, str]:
        return {i.split("-", 2)[2]: t for i, t in units[lang_]["udhr"]}

    en, other = by_unit("en"), by_unit(lang)
    shared = sorted(set(en) & set(other))
    n_words = sum(len(words(other[u], lang)) for u in shared) / sum(len(words(en[u], "en")) for u in shared)
    n_chars = sum(len(other[u]) for u in shared) / sum(len(en[u]) for u in shared)
    return n_words, n_chars


def derive_length_thresholds(row: dict, density: tuple[float, float]) -> None:
    """Thresholds that count words or characters, scaled by the language's density against English."""
    n_words, n_chars = density
    row["min_doc_words"] = max(1, round(GOPHER["min_doc_words"] * n_words))
    row["max_doc_words"] = round(GOPHER["max_doc_words"] * n_words)
    row["c4"] = {"min_words_per_line": max(1, round(C4["min_words_per_line"] * n_words))}
    row["fineweb"] = {
        "short_line_length": max(1, round(FINEWEB["short_line_length"] * n_chars)),
        "new_line_ratio": round(FINEWEB["new_line_ratio"] / n_words, 3),
    }
    row["reference"]["udhr_words_per_english_word"] = round(n_words, 3)
    row["reference"]["udhr_chars_per_english_char"] = round(n_chars, 3)


def _medians(docs: list[str], lang: str) -> tuple[float, float]:
    stats = [document_stats(d, lang) for d in docs]
    return _quantile([s[0] for s in stats], 0.5), _quantile([s[1] for s in stats], 0.5)


def derive_row(
    lang: str,
    docs: list[str],
    stop_words: list[str],
    english_medians: tuple[float, float],
    web: tuple[list[str], tuple[float, float]] | None = None,
) -> dict:
    """One language's thresholds. `web`: (the language's web derivation pages, English's web medians);
    given, the median ratios are taken between web pages of the two languages (the register a crawl gives)
    instead of between their UDHR + Tatoeba documents. The margin keeps every clean reference document
    inside either way (web pages are not all clean prose: that is what the rules are for)."""
    stats = [document_stats(d, lang) for d in docs]
    lengths, alphas = [s[0] for s in stats], [s[1] for s in stats]
    med_len, med_alpha = _quantile(lengths, 0.5), _quantile(alphas, 0.5)
    ratio_len, ratio_alpha = med_len / english_medians[0], med_alpha / english_medians[1]
    if web is not None:
        web_len, web_alpha = _medians(web[0], lang)
        ratio_len, ratio_alpha = web_len / web[1][0], web_alpha / web[1][1]
    row: dict = {"stop_words": stop_words}
    if lang in UNSPACED_LANGUAGES:
        row["min_avg_word_length"] = row["max_avg_word_length"] = None
    else:
        row["min_avg_word_length"] = _round(
            min(GOPHER["min_avg_word_length"] * ratio_len, 0.9 * _quantile(lengths, 0.01)), True
        )
        row["max_avg_word_length"] = _round(
            max(GOPHER["max_avg_word_length"] * ratio_len, 1.1 * _quantile(lengths, 0.99)), False
        )
    windows = [c for d in docs for c in _stop_word_windows(d, lang, stop_words)]
    row["min_stop_words"] = max(1, min(GOPHER["min_stop_words"], math.floor(_quantile(windows, 0.01))))
    row["max_non_alpha_words_ratio"] = _round(
        min(GOPHER["max_non_alpha_words_ratio"] * ratio_alpha, 0.95 * _quantile(alphas, 0.01)), True
    )
    row["reference"] = {
        "documents": len(docs),
        "median_avg_word_length": round(med_len, 2),
        "median_alpha_words_ratio": round(med_alpha, 3),
        "stop_word_windows_p01": round(_quantile(windows, 0.01), 2),
    }
    if web is not None:
        row["reference"].update(
            web_pages=len(web[0]),
            web_median_avg_word_length=round(web_len, 2),
            web_median_alpha_words_ratio=round(web_alpha, 3),
        )
    return row


def web_register_languages(pages: dict[str, list[tuple[str, str]]]) -> set[str]:
    """Languages (and English) with enough web derivation pages for web-register medians."""
    have = {lang for lang in pages if len(web_documents(pages, lang, held_out=False)) >= WEB_MIN_PAGES}
    return have if "en" in have else set()


def build_rows(data_dir: Path | None = None) -> dict[str, dict]:
    units = load_reference_units(data_dir)
    pages = load_web_pages(data_dir)
    on_web = web_register_languages(pages)
    docs = {lang: reference_documents(lang, units[lang], held_out=False, n=DERIVATION_DOCS) for lang in QWEN29}
    english_medians = _medians(docs["en"], "en")
    english_web = _medians(web_documents(pages, "en", held_out=False), "en") if on_web else None
    rows = {}
    for lang in QWEN29:
        web = (web_documents(pages, lang, held_out=False), english_web) if lang in on_web and english_web else None
        if lang == "en":  # published Gopher, C4 and FineWeb values, unchanged (datatrove parity)
            row = derive_row(lang, docs[lang], sorted(GOPHER_ENGLISH_STOP_WORDS), english_medians, web)
            derive_length_thresholds(row, (1.0, 1.0))
            row.update(GOPHER, c4=dict(C4), fineweb=dict(FINEWEB))
        else:
            row = derive_row(lang, docs[lang], derive_stop_words(lang, units[lang]), english_medians, web)
            derive_length_thresholds(row, udhr_density(units, lang))
        row["reference"]["udhr_units"] = sum(1 for i, _ in units[lang]["udhr"] if not is_held_out(i))
        row["reference"]["tatoeba_sentences"] = sum(1 for i, _ in units[lang]["tatoeba"] if not is_held_out(i))
        rows[lang] = row
    return rows


HEADER = """\
# Per-language stop words and heuristic thresholds, read by filters/gopher_quality.py, filters/c4.py
# and filters/fineweb.py.
#
# GENERATED by filters/build_language_tables.py from the UDHR (primary versions), Tatoeba text and web pages in
# ../shared/data (lid_udhr, lid_tatoeba_laser, web_trafilatura_eval .jsonl.gz); do not edit by hand. Regenerate with
#     python -m filters.build_language_tables
# and check that this file is current with
#     python -m filters.build_language_tables --check
# The method (stop words: frequent in both UDHR and Tatoeba text; thresholds: Gopher's English values
# scaled by the ratio of the language's median to the English median on clean reference documents
# (on real web pages where there are enough of them: de, es, fr, pl),
# FineWeb-2 style, with a margin around the 1st/99th percentiles; thresholds that count words or
# characters, i.e. Gopher's document length, C4's words per line, FineWeb's short-line length and
# newlines per word: scaled by the language's words and characters per English one in the parallel
# UDHR text) is in that module's docstring. English keeps the published Gopher/C4/FineWeb values. A null threshold turns its rule off for the language
# (mean word length for the character-segmented languages, where a token is one character).
# `reference` records what the values were derived from; the filters do not read it.
"""


def _scalar(value) -> str:
    if value is None:
        return "null"
    return json.dumps(value, ensure_ascii=False)


def render(rows: dict[str, dict]) -> str:
    out = [HEADER]
    for lang, row in rows.items():
        out.append(f"{lang}:\n")
        out.append(f"  stop_words: {json.dumps(row['stop_words'], ensure_ascii=False)}\n")
        for key in (
            "min_avg_word_length",
            "max_avg_word_length",
            "min_stop_words",
            "max_non_alpha_words_ratio",
            "min_doc_words",
            "max_doc_words",
        ):
            out.append(f"  {key}: {_scalar(row[key])}\n")
        for rule in ("c4", "fineweb"):
            out.append(f"  {rule}: {{{', '.join(f'{k}: {_scalar(v)}' for k, v in row[rule].items())}}}\n")
        ref = ", ".join(f"{k}: {_scalar(v)}" for k, v in row["reference"].items())
        out.append(f"  reference: {{{ref}}}\n")
    return "".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="regenerate in memory and compare with the shipped table")
    parser.add_argument("--data-dir", type=Path, default=None, help=f"reference data folder (default {DATA_DIR})")
    parser.add_argument("--output", type=Path, default=TABLE_PATH)
    args = parser.parse_args(argv)
    text = render(build_rows(args.data_dir))
    if args.check:
        shipped = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if shipped == text:
            print(f"{args.output}: up to date")
            return 0
        sys.stdout.writelines(
            difflib.unified_diff(shipped.splitlines(True), text.splitlines(True), str(args.output), "regenerated")
        )
        print(f"{args.output}: differs from the regenerated table")
        return 1
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
