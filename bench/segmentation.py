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
from curation.stages import build, run  # noqa: E402
from filters.segmentation import register_segmenter, tokenize, unregister_segmenter  # noqa: E402

MIN_SECONDS = 0.3


def reference_docs(data: Path) -> dict[str, list[str]]:
    """Documents of about 300 words per language (UDHR articles, then Tatoeba sentences)."""
    pieces: dict[str, list[str]] = defaultdict(list)
    for name, keep in (
        ("lid_udhr.jsonl.gz", lambda r: r.get("is_primary_variant")),
        ("lid_tatoeba_laser.jsonl.gz", lambda r: True),
    ):
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


def dictionary_segmenters(docs: dict[str, list[str]], char_rows: dict[str, dict], run_chain) -> list[dict]:
    """The dictionary segmenters (filters/dictionary_segmenters.py) beside the character units: MB/s, tokens
    per document, and the chain's speed with each one registered for its language. Missing packages are reported, not fatal."""
    from filters.dictionary_segmenters import SEGMENTERS, load_segmenter

    out = []
    print(
        f"\n{'segmenter':11} {'lang':4} {'MB/s':>7} {'x chars':>8} {'tokens/doc':>11} {'chars/doc':>10} "
        f"{'pipeline MB/s with it':>22}"
    )
    for name, (lang, _, _) in SEGMENTERS.items():
        texts = docs.get(lang, [])[:40]
        try:
            seg = load_segmenter(name)
        except ImportError as exc:
            print(f"{name:11} {lang:4} not installed ({exc})")
            continue
        seg(texts[0][::-1])  # lazy dictionary/model loading is start-up cost, not throughput
        mb = sum(len(t.encode()) for t in texts) / 1e6
        per_call = timed(lambda: [seg(t) for t in texts])
        char_s = mb / char_rows[lang]["segment_mb_s"]
        register_segmenter(lang, seg)
        try:
            chain_s = timed(lambda: run_chain(texts))
        finally:
            unregister_segmenter(lang)
        n_tok = sum(len(seg(t)) for t in texts) / len(texts)
        n_chr = sum(len(tokenize(t, lang)) for t in texts) / len(texts)
        row = {
            "segmenter": name,
            "lang": lang,
            "mb_s": round(mb / per_call, 3),
            "slowdown_vs_chars": round(per_call / char_s, 1),
            "tokens_per_doc": round(n_tok),
            "char_tokens_per_doc": round(n_chr),
            "pipeline_mb_s_with_it": round(mb / chain_s, 3),
        }
        out.append(row)
        print(
            f"{name:11} {lang:4} {row['mb_s']:7.2f} {row['slowdown_vs_chars']:7.0f}x {row['tokens_per_doc']:11} "
            f"{row['char_tokens_per_doc']:10} {row['pipeline_mb_s_with_it']:22.2f}"
        )
    print(
        "(x chars: time per document against the character segmentation the hot path uses; the last column is the "
        "per-document chain measured with the segmenter registered for its language)"
    )
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--json")
    args = p.parse_args()
    docs = reference_docs(args.data)
    job = parse_spec(
        {
            "output": "/tmp/unused",
            "inputs": [{"path": "x", "format": "jsonl", "source": "bench"}],
            "languages": "all",
            "stages": {
                "langid": {},
                "filters": {"gopher_quality": {}, "gopher_repetition": {}, "c4": {}, "fineweb": {}},
                "dedup": {"exact": {}, "minhash": {}},
            },
        }
    )
    stages = build(job)
    rows = []

    def run_chain(texts: list[str]) -> None:
        t = pa.table({"text": texts, "error": pa.nulls(len(texts), pa.string())})
        run(t, stages)

    for lang in QWEN29:
        texts = docs.get(lang, [])
        if not texts:
            continue
        mb = sum(len(t.encode()) for t in texts) / 1e6
        seg = timed(lambda: [tokenize(t, lang) for t in texts])
        whole = timed(lambda: run_chain(texts))
        rows.append(
            {
                "lang": lang,
                "docs": len(texts),
                "mb": round(mb, 3),
                "segment_mb_s": round(mb / seg, 2),
                "pipeline_mb_s": round(mb / whole, 2),
                "segment_share": round(seg / whole, 3),
            }
        )
    rows.sort(key=lambda r: r["segment_mb_s"])
    print(f"{'lang':5} {'docs':>5} {'MB':>6} {'segment MB/s':>13} {'pipeline MB/s':>14} {'segmenter share':>16}")
    for r in rows:
        print(
            f"{r['lang']:5} {r['docs']:5} {r['mb']:6.2f} {r['segment_mb_s']:13.2f} {r['pipeline_mb_s']:14.2f} "
            f"{r['segment_share']:15.0%}"
        )
    print(
        "\n(the pipeline figure is the per-document chain on one core: normalize, language ID, four heuristic "
        "filters, MinHash keys; the share is the segmenter's single pass over the same text)"
    )
    dictionary = dictionary_segmenters(docs, {r["lang"]: r for r in rows}, run_chain)
    if args.json:
        Path(args.json).write_text(json.dumps({"languages": rows, "dictionary_segmenters": dictionary}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
