"""Dedup at cluster scale: measured per-record constants of the shuffle and clustering, and what they
project to for N documents on W workers.

Runs the real dedup functions (`curation.dedup.shuffle`: keyed records, partitioning, the reducer's sort
and star edges, connected components) on synthetic band keys for `--docs` documents with a given share of
near-duplicate clusters, measures seconds and bytes per record (one core), then prints the formulas of
docs/benchmarks.md evaluated for 1e8, 1e9 and 1e10 documents.

    python bench/dedup_scale.py [--docs 1000000] [--dup-share 0.05] [--workers 64] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from curation.dedup import shuffle  # noqa: E402
from curation.dedup.distributed import cluster_local  # noqa: E402

BANDS = 14


def synthetic_keys(n: int, dup_share: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Band keys (n x BANDS) and exact keys (n x 2): a `dup_share` of the documents are near copies of an
    earlier one (sharing a random half of its bands), the rest unique."""
    bands = rng.integers(0, 2**63, size=(n, BANDS), dtype=np.uint64)
    exact = rng.integers(0, 2**63, size=(n, 2), dtype=np.uint64)
    copies = np.flatnonzero(rng.random(n) < dup_share)
    copies = copies[copies > 0]
    origin = (rng.random(len(copies)) * copies).astype(np.int64)  # an earlier document
    shared = rng.random((len(copies), BANDS)) < 0.5
    bands[copies] = np.where(shared, bands[origin], bands[copies])
    return bands, exact, copies


def measure(n: int, dup_share: float, partitions: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    bands, exact, copies = synthetic_keys(n, dup_share, rng)
    docs = np.arange(n, dtype=np.int64)
    t0 = time.perf_counter()
    recs = shuffle.keyed_records(docs, exact, bands)
    parts = shuffle.partition(recs, partitions)
    t_map = time.perf_counter() - t0
    record_bytes = recs.dtype.itemsize
    t0 = time.perf_counter()
    edges = [shuffle.reduce_edges([p]) for p in parts]
    t_reduce = time.perf_counter() - t0
    n_edges = sum(len(e[0]) for e in edges)
    t0 = time.perf_counter()
    u, v, kind = (np.concatenate([e[i] for e in edges]) for i in range(3))
    result = cluster_local(u, v, kind, partitions=partitions)
    t_cluster = time.perf_counter() - t0
    n_records = len(recs)
    return {
        "docs": n,
        "dup_share": dup_share,
        "partitions": partitions,
        "records": n_records,
        "record_bytes": record_bytes,
        "keys_per_doc": n_records / n,
        "map_ns_per_record": t_map / n_records * 1e9,
        "reduce_ns_per_record": t_reduce / n_records * 1e9,
        "edges": n_edges,
        "edges_per_duplicate_doc": n_edges / max(1, len(copies)),
        "cluster_ns_per_edge": t_cluster / max(1, n_edges) * 1e9,
        "edge_bytes": 8 + 8 + 1,
        "duplicates_found": int((result["reason"] > 0).sum()),
        "planted": len(copies),
    }


def project(m: dict, n_docs: float, workers: int, dup_share: float, partitions: int) -> dict:
    keys = n_docs * m["keys_per_doc"]
    shuffle_bytes = keys * m["record_bytes"]
    edges = n_docs * dup_share * m["edges_per_duplicate_doc"]
    return {
        "docs": n_docs,
        "workers": workers,
        "partitions": partitions,
        "shuffle_GB": shuffle_bytes / 1e9,
        "reducer_MB": shuffle_bytes / partitions / 1e6,
        "map_reduce_hours": keys * (m["map_ns_per_record"] + m["reduce_ns_per_record"]) / 1e9 / workers / 3600,
        "edges": edges,
        "cluster_GB": edges * (m["edge_bytes"] + 16) / 1e9,  # edges + node/label arrays
        "cluster_hours": edges * m["cluster_ns_per_edge"] / 1e9 / 3600,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=1_000_000)
    ap.add_argument("--dup-share", type=float, default=0.05)
    ap.add_argument("--workers", type=int, default=64)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    m = measure(args.docs, args.dup_share, partitions=16)
    print(
        f"measured on {m['docs']:,} documents ({m['planted']:,} planted near copies, "
        f"{m['duplicates_found']:,} found), one core:"
    )
    print(
        f"  {m['keys_per_doc']:.0f} keys per document x {m['record_bytes']} bytes = "
        f"{m['keys_per_doc'] * m['record_bytes']:.0f} bytes per document through the shuffle"
    )
    print(
        f"  map (keyed records + partition): {m['map_ns_per_record']:.0f} ns per key; reduce (sort + star edges): "
        f"{m['reduce_ns_per_record']:.0f} ns per key"
    )
    print(
        f"  {m['edges_per_duplicate_doc']:.1f} edges per near-duplicate document; connected components: "
        f"{m['cluster_ns_per_edge']:.0f} ns per edge"
    )
    rows = []
    for n in (1e8, 1e9, 1e10):
        partitions = max(16, int(n * m["keys_per_doc"] * m["record_bytes"] / 256e6))  # about 256 MB per reducer
        rows.append(project(m, n, args.workers, args.dup_share, partitions))
    print(f"\nprojected for {args.workers} workers, {args.dup_share:.0%} near duplicates, ~256 MB per reducer:\n")
    print(
        f"{'documents':>10} {'shuffle GB':>11} {'partitions':>10} {'per reducer MB':>15} {'map+reduce h':>13} "
        f"{'edges':>10} {'clustering GB':>14} {'clustering h':>13}  (all partitions, one core)"
    )
    for r in rows:
        print(
            f"{r['docs']:10.0e} {r['shuffle_GB']:11,.0f} {r['partitions']:10,} {r['reducer_MB']:15,.0f} "
            f"{r['map_reduce_hours']:13.2f} {r['edges']:10.2e} {r['cluster_GB']:14,.1f} {r['cluster_hours']:13.2f}"
        )
    if args.json:
        args.json.write_text(json.dumps({"measured": m, "projected": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
