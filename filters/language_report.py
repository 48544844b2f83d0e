"""The per-language quality table (docs/languages.md): for each of the 29 Qwen2 languages, language-ID
accuracy, the heuristic filters' pass rate on held-out clean text and drop rate on the same text corrupted,
and where each language's thresholds come from. All on reference text the tables never saw:

- LID, UDHR: the primary-variant UDHR articles (the bundled lid.176 with the Malay/Indonesian decision).
- LID, paragraphs: held-out clean paragraphs (Tatoeba sentences five at a time, UDHR articles) that score at
  or above the language's threshold with the right label (filters/lid_thresholds.yaml).
- Web pages: the held-out real web pages (extracted articles, lid.176 confirming their declared language) of
  the languages that have some here, through the same filters; English keeps the published values, so its
  figure is what those values do to the same register.
- Filters: held-out documents of several hundred words (filters/build_language_tables.py), run through
  gopher_quality, gopher_repetition, c4 and fineweb in pipeline order; "corrupted" is the lowest drop rate
  over four corruptions (repeated lines, boilerplate, symbol noise, text of another script).

    python -m filters.language_report [--data-dir ../shared/data] > docs/languages.md
"""

from __future__ import annotations

import argparse
from pathlib import Path

import regex

from filters.segmentation import UNSPACED_LANGUAGES

BOILERPLATE = ["Home | About | Contact | Login", "Share on Facebook | Twitter | Email", "© 2024 All rights reserved"]
NOISE = " #### @@@ ### $$$ %%% "
_LATIN = regex.compile(r"\p{Latin}")


def run_filters(texts: list[str], lang: str) -> list[str | None]:
    """The heuristic filters in pipeline order (C4's rewritten text goes on to FineWeb)."""
    from filters.heuristics import HEURISTIC_FILTERS

    reasons: list[str | None] = [None] * len(texts)
    current = list(texts)
    for cls in HEURISTIC_FILTERS.values():
        alive = [i for i, r in enumerate(reasons) if r is None]
        result = cls()([current[i] for i in alive], [lang] * len(alive))
        for k, i in enumerate(alive):
            reasons[i] = result.reasons[k]
            if result.texts is not None and result.reasons[k] is None:
                current[i] = result.texts[k]
    return reasons


def repeat_lines(doc: str, lang: str) -> str:
    lines = doc.split("\n")
    return "\n".join(lines + [max(lines, key=len)] * 15)


def add_boilerplate(doc: str, lang: str) -> str:
    return "\n".join(part for line in doc.split("\n") for part in [line, *BOILERPLATE])


def add_symbol_noise(doc: str, lang: str) -> str:
    if lang in UNSPACED_LANGUAGES:
        return "".join(doc[i : i + 12] + NOISE for i in range(0, len(doc), 12))
    out = []
    for line in doc.split("\n"):
        ws = line.split(" ")
        out.append(" ".join(" ".join(ws[i : i + 6]) + NOISE for i in range(0, len(ws), 6)))
    return "\n".join(out)


CORRUPTIONS = {"repeated_lines": repeat_lines, "boilerplate": add_boilerplate, "symbol_noise": add_symbol_noise}


def filter_rates(held_out: dict[str, list[str]], lang: str) -> tuple[float, dict[str, float], list[str]]:
    """(clean pass rate, drop rate per corruption and `other_script`, the clean documents' drop reasons)."""
    docs = held_out[lang]
    clean = run_filters(docs, lang)
    rates = {}
    for name, corrupt in CORRUPTIONS.items():
        rates[name] = sum(r is not None for r in run_filters([corrupt(d, lang) for d in docs], lang)) / len(docs)
    replacement = held_out["ru" if _LATIN.search(docs[0]) else "en"]
    rates["other_script"] = sum(r is not None for r in run_filters(replacement[: len(docs)], lang)) / len(docs)
    return sum(r is None for r in clean) / len(docs), rates, sorted({r for r in clean if r})


def register(lang: str, units: dict[str, list], row: dict) -> str:
    """Where a language's thresholds come from (its row of filters/language_tables.yaml says)."""
    if lang == "en":
        return "Gopher/C4/FineWeb published values (web)"
    sources = ["UDHR (legal)"] + (["Tatoeba (conversational)"] if units.get("tatoeba") else [])
    ref = " + ".join(sources)
    if "web_pages" in row.get("reference", {}):
        return f"web pages ({row['reference']['web_pages']}): median ratios to English web; margin: {ref}"
    return f"{ref}, median-ratio scaled from English"


def report(data_dir: Path, docs_per_language: int = 40) -> str:
    """The markdown page."""
    import gzip
    import json
    from collections import Counter, defaultdict

    from filters import build_language_tables as blt
    from filters.langid import LanguageIdentifier, bundled_thresholds, reference_paragraphs
    from filters.language_table import load_language_table
    from filters.languages import QWEN29

    lid = LanguageIdentifier()
    with gzip.open(data_dir / "lid_udhr.jsonl.gz", "rt", encoding="utf-8") as f:
        rows = [r for r in map(json.loads, f) if r.get("is_primary_variant") and r["lang"] in QWEN29]
    labels, _ = lid.predict([r["text"] for r in rows])
    udhr: dict[str, Counter] = defaultdict(Counter)
    for r, got in zip(rows, labels):
        udhr[r["lang"]][got == r["lang"]] += 1
    paragraphs = reference_paragraphs(data_dir, QWEN29, "heldout")
    thresholds = bundled_thresholds()
    units = blt.load_reference_units(data_dir)
    held_out = {lang: blt.reference_documents(lang, units[lang], held_out=True, n=docs_per_language) for lang in QWEN29}
    pages = blt.load_web_pages(data_dir)
    rows_table = load_language_table()
    lines = [
        "# Languages: how each of the 29 does",
        "",
        "Generated by `python -m filters.language_report > docs/languages.md` (see its docstring for the method);",
        "every figure is on held-out reference text. The thresholds of every language but English are Gopher's",
        "English values scaled by each statistic's median ratio to English (FineWeb-2's method), with a margin",
        "that keeps every clean reference document inside (filters/build_language_tables.py). The ratios come",
        "from real web pages where there are enough here (de, es, fr, pl: the register a crawl gives), else",
        "from UDHR and Tatoeba text (legal and conversational); on web pages the margin binds, so the web",
        "ratios move only the word-length bands. Rules that count tokens count a run of digits as one token",
        "in the character-segmented languages (filters/segmentation.py), so numbers and dates do not sink",
        "their text though the reference text has few of them.",
        "",
        "| lang | LID UDHR | LID paragraphs (n) | LID threshold | filters: clean pass | corrupted: lowest drop "
        "| clean drops | web pages: pass (n) | thresholds from |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for lang in QWEN29:
        ok, bad = udhr[lang][True], udhr[lang][False]
        labs, scores = lid.predict(paragraphs[lang])
        passed = sum(lab == lang and s >= thresholds[lang] for lab, s in zip(labs, scores))
        clean, drops, reasons = filter_rates(held_out, lang)
        lowest = min(drops, key=drops.__getitem__)
        web = blt.web_documents(pages, lang, held_out=True)
        web_cell = f"{sum(r is None for r in run_filters(web, lang)) / len(web):.0%} ({len(web)})" if web else "-"
        lines.append(
            f"| {lang} | {ok / (ok + bad):.1%} ({ok}/{ok + bad}) | {passed / len(labs):.1%} ({len(labs)}) | "
            f"{thresholds[lang]:.2f} | {clean:.0%} | {drops[lowest]:.0%} ({lowest}) | "
            f"{', '.join(reasons) or '-'} | {web_cell} | {register(lang, units[lang], rows_table[lang])} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = ap.parse_args(argv)
    print(report(args.data_dir), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
