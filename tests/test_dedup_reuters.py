"""Near-duplicate quality on real newswire: MinHash clusters against brute-force Jaccard.

Reuters-21578 has re-issued and corrected wires (~490 pairs at word-5-gram Jaccard >= 0.8). The
reference here is exact: every pair at >= 0.8 is found by prefix filtering (a pair with Jaccard >= t
must share one of the first |A| - ceil(t|A|) + 1 shingles of A in a global order), then verified by
computing the Jaccard of the two shingle sets. The tokenizer is a plain `\\w+` split, independent of
the one the pipeline uses.
"""

from __future__ import annotations

import math
import re
from collections import Counter

import pyarrow.dataset as pads
import pytest

from curation.job import run_job
from curation.spec import parse_spec
from tests.conftest import shared_file

_WORD = re.compile(r"\w+")


def shingles(text: str, n: int = 5) -> frozenset[str]:
    w = _WORD.findall(text.lower())
    return frozenset(" ".join(w[i : i + n]) for i in range(max(1, len(w) - n + 1)))


def jaccard(a: frozenset, b: frozenset) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def similar_pairs(sets: list[frozenset], threshold: float) -> list[tuple[int, int]]:
    """Every pair with Jaccard >= threshold (exact, via prefix filtering)."""
    freq = Counter(x for s in sets for x in s)
    index: dict[str, list[int]] = {}
    candidates = set()
    for i, s in enumerate(sets):
        toks = sorted(s, key=lambda x: (freq[x], x))
        for x in toks[: len(toks) - math.ceil(threshold * len(toks)) + 1]:
            candidates.update((j, i) for j in index.get(x, ()))
            index.setdefault(x, []).append(i)
    return [(a, b) for a, b in candidates if jaccard(sets[a], sets[b]) >= threshold]


@pytest.fixture(scope="module")
def reuters_job(tmp_path_factory, ray_session):
    out = tmp_path_factory.mktemp("reuters") / "out"
    spec = {
        "name": "reuters-dedup",
        "output": str(out),
        "inputs": [{"path": str(shared_file("news_reuters21578.jsonl.gz")), "format": "jsonl", "source": "reuters"}],
        "stages": {"dedup": {"exact": {}, "minhash": {}}},
    }
    stats = run_job(parse_spec(spec))
    cols = ["id", "text", "dup_cluster"]
    rows = pads.dataset(out / "curated", format="parquet", partitioning="hive").to_table(columns=cols).to_pylist()
    rows += pads.dataset(out / "rejected", format="parquet").to_table(columns=cols + ["drop_reason"]).to_pylist()
    return stats, rows


def test_counts_add_up(reuters_job):
    stats, rows = reuters_job
    assert stats["input_records"] == 21577 == len(rows)
    assert stats["input_records"] == stats["kept"] + stats["rejected"] + stats["quarantined"]
    assert set(stats["by_reason"]) == {"exact_duplicate", "minhash_duplicate"}
    assert stats["rejected"] == sum(stats["by_reason"].values())


def test_similar_pairs_share_a_cluster(reuters_job):
    _, rows = reuters_job
    sets = [shingles(r["text"]) for r in rows]
    pairs = similar_pairs(sets, 0.8)
    together = sum(
        1 for a, b in pairs if rows[a]["dup_cluster"] is not None and rows[a]["dup_cluster"] == rows[b]["dup_cluster"]
    )
    recall = together / len(pairs)
    print(f"\npairs with Jaccard >= 0.8: {len(pairs)}; in the same cluster: {together} ({recall:.1%})")
    assert len(pairs) > 400  # the reference found the natural duplicates at all
    assert recall >= 0.95


def test_removed_documents_resemble_their_kept_document(reuters_job):
    _, rows = reuters_job
    by_id = {r["id"]: r for r in rows}
    removed = [r for r in rows if r.get("drop_reason") in ("exact_duplicate", "minhash_duplicate")]
    kept_ids = {r["dup_cluster"] for r in removed}
    assert all(by_id[k].get("drop_reason") is None for k in kept_ids)  # the cluster is named by its kept doc
    low = [r for r in removed if jaccard(shingles(r["text"]), shingles(by_id[r["dup_cluster"]]["text"])) < 0.5]
    print(f"\nremoved as duplicates: {len(removed)}; Jaccard < 0.5 to the kept document: {len(low)}")
    assert len(removed) > 400
    assert len(low) / len(removed) < 0.02


def test_exact_duplicates_have_an_identical_twin(reuters_job):
    """An exact duplicate's cluster may be named by an earlier near-duplicate; its twin is in the cluster."""
    _, rows = reuters_job
    texts_by_cluster: dict[str, Counter] = {}
    for r in rows:
        if r["dup_cluster"] is not None:
            texts_by_cluster.setdefault(r["dup_cluster"], Counter())[r["text"]] += 1
    exact = [r for r in rows if r.get("drop_reason") == "exact_duplicate"]
    assert len(exact) >= 200  # the README of the data counts 220
    assert all(texts_by_cluster[r["dup_cluster"]][r["text"]] >= 2 for r in exact)
