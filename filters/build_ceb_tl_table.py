"""Build ``filters/models/ceb_tl_words.tsv.gz``: how much each word says "Cebuano" against "Tagalog".

lid.176 labels a third of clean Cebuano paragraphs `tl`; the two share their script and many content words
but few function words (ug/at, nga/na, dili/hindi, og/ng, kini/ito, unsa/ano). No word list of Cebuano
ships in a package the registries serve, so the table is counted from the *build* half of the reference
text the LID thresholds use (filters/langid.py `reference_paragraphs(..., "build")`: even-position Tatoeba
five-sentence paragraphs and UDHR articles, ../shared/data); tests/test_lid_thresholds.py measures the
odd positions, which it never saw. Per lower-cased word seen at least twice in the two languages together:
log of its add-0.5-smoothed frequency in Cebuano over that in Tagalog, clipped to +-4 and rounded to 0.01;
words within +-0.5 are left out. Regenerate or verify with::

    python -m filters.build_ceb_tl_table [--check] [--data-dir ../shared/data]
"""

from __future__ import annotations

import argparse
import gzip
import math
import sys
from collections import Counter
from pathlib import Path

import regex

TABLE = Path(__file__).resolve().parent / "models" / "ceb_tl_words.tsv.gz"
SMOOTHING = 0.5
MIN_COUNT = 2
MIN_ODDS = 0.5
CLIP = 4.0
_TOKEN = regex.compile(r"[a-z]+(?:-[a-z]+)*")  # as filters/language_pairs.py reads words


def build(data_dir: Path) -> bytes:
    from filters.langid import reference_paragraphs

    paras = reference_paragraphs(data_dir, ["ceb", "tl"], "build")
    counts = {lang: Counter(w for p in paras[lang] for w in _TOKEN.findall(p.lower())) for lang in ("ceb", "tl")}
    ceb, tl = counts["ceb"], counts["tl"]
    vocab = sorted(set(ceb) | set(tl))
    n_ceb, n_tl = sum(ceb.values()), sum(tl.values())
    rows = []
    for w in vocab:
        if ceb[w] + tl[w] < MIN_COUNT:
            continue
        odds = math.log((ceb[w] + SMOOTHING) / (n_ceb + SMOOTHING * len(vocab))) - math.log(
            (tl[w] + SMOOTHING) / (n_tl + SMOOTHING * len(vocab))
        )
        if abs(odds) >= MIN_ODDS:
            rows.append(f"{w}\t{max(-CLIP, min(CLIP, odds)):.2f}")
    head = (
        f"# word\tlog(P_ceb/P_tl), from {n_ceb} Cebuano and {n_tl} Tagalog words of the build half of "
        "the UDHR/Tatoeba reference text (filters/build_ceb_tl_table.py)\n"
    )
    return gzip.compress((head + "\n".join(rows) + "\n").encode("utf-8"), mtime=0)


def main(argv: list[str] | None = None) -> int:
    from filters.langid import DEFAULT_DATA_DIR

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="folder of lid_*.jsonl.gz")
    ap.add_argument("--check", action="store_true", help="exit 1 if the shipped table differs")
    args = ap.parse_args(argv)
    out = build(args.data_dir)
    if args.check:
        same = TABLE.is_file() and gzip.decompress(TABLE.read_bytes()) == gzip.decompress(out)
        print(f"{TABLE}: {'up to date' if same else 'differs from the regenerated table'}")
        return 0 if same else 1
    TABLE.write_bytes(out)
    print(f"wrote {TABLE} ({len(out):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
