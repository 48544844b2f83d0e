"""Build ``filters/models/ms_id_words.tsv.gz``: how much each word says "Standard Malay" against "Indonesian".

Two standard forms of one language share most of their words; what separates them is vocabulary and a few
spellings (kerana/karena, bahawa/bahwa, wang/uang, kerajaan/pemerintah, ...), exactly what lid.176 misses
(it labels most Malay text `id`). The table holds, per lower-cased word, log(P_ms(w) / P_id(w)) from the
word frequency lists of wordfreq 3.1.1 (``small_ms`` and ``small_id``, built from Wikipedia, subtitles, news,
books and web text; data license CC BY-SA 4.0, see filters/models/NOTICE.md), a word missing from one list
taken at that list's floor (1e-7), clipped to +-5 and rounded to 0.01; words whose ratio is within +-0.25 are
left out (they say nothing). No text of ../shared/data goes into it: the tests measure it on Tatoeba and
UDHR text it never saw. Regenerate with (wordfreq need not be importable, only its data files)::

    pip download --no-deps wordfreq==3.1.1 && unzip -o -q wordfreq-3.1.1-py3-none-any.whl 'wordfreq/data/*'
    python -m filters.build_ms_id_table --data wordfreq/data [--check]
"""

from __future__ import annotations

import argparse
import gzip
import math
import sys
from pathlib import Path

TABLE = Path(__file__).resolve().parent / "models" / "ms_id_words.tsv.gz"
FLOOR = 1e-7
CLIP = 5.0
MIN_ODDS = 0.25


def read_wordfreq(path: Path) -> dict[str, float]:
    """A wordfreq `cB` list (msgpack: a header, then buckets of words at -0.01 dB steps) as word -> frequency."""
    import msgpack

    data = msgpack.loads(gzip.decompress(path.read_bytes()), raw=False)
    if not isinstance(data[0], dict) or data[0].get("format") != "cB":
        raise SystemExit(f"{path}: not a wordfreq cB list")
    return {w: 10 ** (-i / 100) for i, bucket in enumerate(data[1:]) for w in bucket}


def build(data_dir: Path) -> bytes:
    ms, idn = read_wordfreq(data_dir / "small_ms.msgpack.gz"), read_wordfreq(data_dir / "small_id.msgpack.gz")
    rows = []
    for w in sorted(set(ms) | set(idn)):
        odds = max(-CLIP, min(CLIP, math.log(ms.get(w, FLOOR) / idn.get(w, FLOOR))))
        if abs(odds) >= MIN_ODDS and "\t" not in w and "\n" not in w:
            rows.append(f"{w}\t{odds:.2f}")
    text = "# word\tlog(P_ms/P_id), from wordfreq 3.1.1 small_ms/small_id (CC BY-SA 4.0)\n" + "\n".join(rows) + "\n"
    return gzip.compress(text.encode("utf-8"), mtime=0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="wordfreq's data folder (holds small_ms.msgpack.gz)")
    ap.add_argument("--check", action="store_true", help="exit 1 if the shipped table differs")
    args = ap.parse_args(argv)
    out = build(args.data)
    if args.check:
        same = TABLE.is_file() and gzip.decompress(TABLE.read_bytes()) == gzip.decompress(out)
        print(f"{TABLE}: {'up to date' if same else 'differs from the regenerated table'}")
        return 0 if same else 1
    TABLE.write_bytes(out)
    print(f"wrote {TABLE} ({len(out):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
