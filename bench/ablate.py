"""Proxy models for mixture ablations: does the cheap byte n-gram model rank mixtures like the tiny
transformer, and at what cost per mixture?

Builds a pool of five sources from ../shared/data (Reuters, web pages' main text, code files, math
problems, Tatoeba paragraphs) with a curation job (engine local, no filters), draws `--mixtures`
mixtures as `curate ablate` does, trains both proxies on the same training set of each mixture (seed 0)
and scores them on the same target (held-out web and math documents). Prints each mixture's two losses,
the Spearman correlation between the proxies, and seconds per mixture for each. Needs PyTorch.

    python bench/ablate.py [--mixtures 16] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

DATA = REPO.parent / "shared" / "data"


def build_pool_corpus(folder: Path, data: Path) -> Path:
    """The five sources as JSONL, curated (no filters) into folder/pool; returns the curate output."""
    from curation.job import run_job
    from curation.progress import Progress
    from curation.spec import parse_spec

    def rows(name: str, field: str = "text"):
        with gzip.open(data / name, "rt", encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                if r.get(field):
                    yield {"id": r["id"], "text": r[field]}

    def tatoeba():
        groups: dict[str, list[dict]] = {}
        for r in (json.loads(x) for x in gzip.open(data / "lid_tatoeba_laser.jsonl.gz", "rt", encoding="utf-8")):
            groups.setdefault(r["lang"], []).append(r)
        for rs in groups.values():
            for i in range(0, len(rs), 10):
                yield {"id": rs[i]["id"], "text": "\n".join(x["text"] for x in rs[i : i + 10])}

    sources = {
        "reuters": rows("news_reuters21578.jsonl.gz"),
        "web": rows("web_trafilatura_eval.jsonl.gz", "main_text"),
        "code": rows("code_files.jsonl.gz"),
        "math": rows("math_problems.jsonl.gz"),
        "tatoeba": tatoeba(),
    }
    inputs = []
    for name, it in sources.items():
        path = folder / f"{name}.jsonl"
        with path.open("w", encoding="utf-8") as f:
            for r in it:
                f.write(json.dumps(r) + "\n")
        inputs.append({"path": str(path), "format": "jsonl", "source": name})
    out = folder / "pool"
    run_job(
        parse_spec(
            {"output": str(out), "inputs": inputs, "languages": "all", "stages": {}, "execution": {"engine": "local"}}
        ),
        progress=Progress(enabled=False),
    )
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mixtures", type=int, default=16)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    import pyarrow as pa

    from curation.execution import LocalExecutor
    from curation.outputs import Layout
    from curation.progress import Progress
    from filters.metrics import spearman
    from mixtures.ablate import _read_texts, _Swarm, train_proxy
    from mixtures.job import _available, _load_or_build_pool
    from mixtures.pool import curated_files
    from mixtures.regression import sample_mixtures
    from mixtures.select import id_hashes
    from mixtures.spec import parse_ablate_spec

    with tempfile.TemporaryDirectory(prefix="bench-ablate-") as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        pool_out = build_pool_corpus(folder, args.data)
        job = parse_ablate_spec(
            {
                "inputs": [str(pool_out)],
                "output": str(folder / "out"),
                "target_tokens": 30_000_000,
                "execution": {"engine": "local"},
                "proxy": "gpt",
            }
        )
        files = curated_files(job.inputs)
        ex = LocalExecutor(job)
        pool = _load_or_build_pool(ex, Layout(job.output), files, job)
        held = id_hashes(pool["id"].to_pylist(), 0, "heldout").astype(np.float64) / 2.0**64 < 0.05
        train_idx = np.flatnonzero(~held)
        available = _available(pool.take(pa.array(train_idx)))
        buckets = sorted(available)
        tokens = np.array([available[b] for b in buckets], dtype=np.float64)
        caps = job.max_epochs * tokens / job.target_tokens
        held_idx = np.flatnonzero(held)
        hb = pool["bucket"].to_numpy(zero_copy_only=False)[held_idx]
        texts = _read_texts(files, pool, held_idx[np.isin(hb, ["web", "math"])])
        target = {b: [texts[i] for i in held_idx[hb == b].tolist()][:400] for b in ("web", "math")}
        swarm = _Swarm(job, ex, pool, train_idx, buckets, caps, files, Progress(enabled=False))
        mixtures = sample_mixtures(tokens / tokens.sum(), caps, args.mixtures, np.random.default_rng(0))
        print(f"pool ready in {time.perf_counter() - t0:.0f}s: {len(pool):,} documents, buckets {buckets}")
        rows = []
        for k, w in enumerate(mixtures):
            r = swarm.rows(w, 0)
            need = np.unique(r)
            swarm.texts.update(_read_texts(files, pool, np.array([i for i in need if i not in swarm.texts], np.int64)))
            corpus = [swarm.texts[i] for i in need.tolist()]
            local = np.searchsorted(need, r)
            ng = train_proxy(corpus, local, target, "ngram", {"order": 4}, 0)
            gp = train_proxy(corpus, local, target, "gpt", job.gpt.model_dump(), 0)
            rows.append(
                {
                    "weights": dict(zip(buckets, np.round(w, 3).tolist())),
                    "ngram": ng["loss"],
                    "ngram_s": ng["seconds"],
                    "gpt": gp["loss"],
                    "gpt_s": gp["seconds"],
                }
            )
            print(
                f"mixture {k:2d}: ngram {ng['loss']:.4f} ({ng['seconds']:.2f}s)  gpt {gp['loss']:.4f} "
                f"({gp['seconds']:.1f}s)  {rows[-1]['weights']}"
            )
        rho = spearman(np.array([r["ngram"] for r in rows]), np.array([r["gpt"] for r in rows]))
        ng_s = float(np.mean([r["ngram_s"] for r in rows]))
        gp_s = float(np.mean([r["gpt_s"] for r in rows]))
        print(
            f"\nSpearman(ngram, gpt) over {len(rows)} mixtures: {rho:.3f}; seconds per mixture: ngram {ng_s:.2f}, "
            f"gpt {gp_s:.1f} ({gp_s / ng_s:.0f}x)"
        )
        if args.json:
            args.json.write_text(
                json.dumps(
                    {"spearman_ngram_gpt": rho, "ngram_seconds": ng_s, "gpt_seconds": gp_s, "mixtures": rows}, indent=2
                )
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
