"""Segmentation throughput per language, and its share of the per-document pipeline's time.

For each of the 29 Qwen2 languages, reference text (UDHR articles and Tatoeba sentences from
../shared/data, joined into documents of a few hundred words) goes through `filters.segmentation.tokenize`
and through the whole per-document chain (normalize, language ID, the four heuristic filters, MinHash
keys) in one process; the table gives MB/s of each and the segmenter's share of the chain's time,
slowest languages first.

    python bench/segmentation.py [--data DIR] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import pyarrow as pa  # noqa: E402

from curation.spec import QWEN29, parse_spec  # noqa: E402
from curation.stages import StageContext, stage_plan  # noqa: E402
from filters.segmentation import tokenize  # noqa: E402

MIN_SECONDS = 0.3


def reference_docs(data: Path) -> dict[str, list[str]]:
    """Documents of about 300 words per language (UDHR articles, then Tatoeba sentences)."""
    pieces: dict[str, list[str]] = defaultdict(list)
    for name, keep in (("lid_udhr.jsonl.gz", lambda r: r.get("is_primary_variant")),
                       ("lid_tatoeba_laser.jsonl.gz", lambda r: True)):
        with gzip.open(data / name, "rt", encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                if r["lang"] in QWEN29 and keep(r):
                    pieces[r["lang"]].append(r["text"])
    docs: dict[str, list[str]] = {}
    for lang, texts in pieces.items():
        out, cur = [], []
        for t in texts:
            cur.append(t)
            if sum(len(x) for x in cur) > 1800:
                out.append("\n".join(cur))
                cur = []
        docs[lang] = out[:200]
    return docs


def timed(fn) -> float:
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        el = time.perf_counter() - t0
        if el >= MIN_SECONDS:
            return el / n


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--json")
    args = p.parse_args()
    docs = reference_docs(args.data)
    job = parse_spec({"output": "/tmp/unused", "inputs": [{"path": "x", "format": "jsonl", "source": "bench"}],
                      "languages": "all", "stages": {"langid": {}, "filters": {"gopher_quality": {},
                      "gopher_repetition": {}, "c4": {}, "fineweb": {}}, "dedup": {"exact": {}, "minhash": {}}}})
    ctx = StageContext.build(job)
    plan = stage_plan(job)
    rows = []
    for lang in QWEN29:
        texts = docs.get(lang, [])
        if not texts:
            continue
        mb = sum(len(t.encode()) for t in texts) / 1e6
        seg = timed(lambda: [tokenize(t, lang) for t in texts])
        table = pa.table({"text": texts, "error": pa.nulls(len(texts), pa.string())})

        def chain():
            t = table
            for _, stage in plan:
                t = stage(t, ctx)
        whole = timed(chain)
        rows.append({"lang": lang, "docs": len(texts), "mb": round(mb, 3), "segment_mb_s": round(mb / seg, 2),
                     "pipeline_mb_s": round(mb / whole, 2), "segment_share": round(seg / whole, 3)})
    rows.sort(key=lambda r: r["segment_mb_s"])
    print(f"{'lang':5} {'docs':>5} {'MB':>6} {'segment MB/s':>13} {'pipeline MB/s':>14} {'segmenter share':>16}")
    for r in rows:
        print(f"{r['lang']:5} {r['docs']:5} {r['mb']:6.2f} {r['segment_mb_s']:13.2f} {r['pipeline_mb_s']:14.2f} "
              f"{r['segment_share']:15.0%}")
    print("\n(the pipeline figure is the per-document chain on one core: normalize, language ID, four heuristic "
          "filters, MinHash keys; the share is the segmenter's single pass over the same text)")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
