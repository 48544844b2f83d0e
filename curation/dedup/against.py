"""Dedup against earlier corpora (`stages.dedup.against`): a join of the new documents' keys with the
partitions of persisted indexes (`curation.dedup.index`), as steps of tasks that each hold one range.

1. `map_new_keys` (per group of input files): the surviving documents' exact, URL and band keys, cut into
   2^bits key ranges (bits at least every index's, and enough that a range holds about a reducer's keys).
2. `probe` (per key range): the new keys of the range, sorted, against the rows of that range of every
   index's partition files, streamed a few row groups at a time: candidate matches (new document,
   corpus, earlier document, kind), routed by the file group of the new document.
3. `attach_new` (per file group): the new documents' signatures onto band candidates; routed by the docs/
   range of the earlier document.
4. `verify` (per docs range): the earlier documents' ids and signatures from that range of each index's
   docs/ files; a band candidate stands only if the share of equal minhash values reaches the
   threshold; routed back by file group.
5. `decide` (per file group): each new document's best match (an identical text, then the same URL, then
   the most similar near copy; ties to the first corpus and document), one file per input file under
   `_work/against/`, which that file's write task reads alone.

Nothing here is loaded whole: an index's cost is one streamed read of the ranges the new keys fall in.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import numpy as np
import pyarrow as pa

from curation import exchange
from curation.dedup import cluster, index, shuffle
from curation.exchange import Runner, Steps

# reasons written into the decision files, and their drop reasons
AGAINST_REASONS = {1: "exact_duplicate_of_earlier", 2: "minhash_duplicate_of_earlier", 3: "url_duplicate_of_earlier"}
_KIND_REASON = {shuffle.EDGE_EXACT: 1, shuffle.EDGE_BAND: 2, shuffle.EDGE_URL: 3}
_KIND_RANK = {shuffle.EDGE_EXACT: 0, shuffle.EDGE_URL: 1, shuffle.EDGE_BAND: 2}  # which match names a document
PER_KEY = 4  # earlier documents a band key may name per file chunk (more would only repeat the verification)
NEW_KEYS_PER_RANGE = 1_000_000  # new keys one probe task holds (about 24 MB), as the dedup shuffle's reducers

Corpus = tuple[str, str, str, int]  # (index uri, corpus uid, corpus name, index bits)

EMPTY_CANDIDATES: cluster.Frame = {
    "u": np.zeros(0, np.int64),
    "c": np.zeros(0, np.int32),
    "e": np.zeros(0, np.int64),
    "kind": np.zeros(0, np.int8),
}


def _indexes(corpora: Sequence[Corpus]) -> dict[str, tuple[index.DedupIndex, dict[str, int]]]:
    """index uri -> (the index, corpus uid -> corpus number), for the corpora a check uses."""
    out: dict[str, tuple[index.DedupIndex, dict[str, int]]] = {}
    for c, (uri, uid, _name, bits) in enumerate(corpora):
        if uri not in out:
            out[uri] = (index.DedupIndex(uri, bits, {}, []), {})
        out[uri][1][uid] = c
    return out


def map_new_keys(layout: Any, ordinals: Sequence[int], bits: int) -> list[np.ndarray]:
    r = shuffle.annotated_key_records(layout, ordinals)
    return index.split_by_part(r, index.range_part(r["k1"], bits), 1 << bits)


def _match(new: np.ndarray, t: pa.Table, per_key: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(new record index, earlier doc, k2) for each index row of `t` (sorted by k1, k2) whose key equals a
    new key; an index key is used for its first `per_key` documents only."""
    k1, k2, doc = t["k1"].to_numpy(), t["k2"].to_numpy(), t["doc"].to_numpy()
    lo = np.searchsorted(new["k1"], k1, side="left")
    hi = np.searchsorted(new["k1"], k1, side="right")
    hit = np.flatnonzero(hi > lo)
    if not len(hit):
        z = np.zeros(0, np.int64)
        return z, z, np.zeros(0, np.uint64)
    k1, k2, doc, lo, hi = k1[hit], k2[hit], doc[hit], lo[hit], hi[hit]
    # Rank of each index row within its run of equal keys: keep the first per_key of every key.
    same = np.concatenate([[False], (k1[1:] == k1[:-1]) & (k2[1:] == k2[:-1])])
    idx = np.arange(len(k1))
    start = np.maximum.accumulate(np.where(~same, idx, 0))
    keep = (idx - start) < per_key
    k2, doc, lo, hi = k2[keep], doc[keep], lo[keep], hi[keep]
    n = hi - lo
    rows = np.repeat(np.arange(len(lo)), n)
    new_i = np.repeat(lo, n) + (np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n))
    eq = new["k2"][new_i] == k2[rows]
    return new_i[eq], doc[rows][eq], k2[rows][eq]


def probe(
    corpora: Sequence[Corpus], bits: int, r: int, group_of: dict[int, int], groups: int, *parts: np.ndarray
) -> list[Any]:
    """Step 2 for key range r: candidate matches routed by the file group of the new document; then
    (new keys, index rows read, candidates)."""
    new = np.concatenate(parts) if parts else np.zeros(0, shuffle.KEY_DTYPE)
    out: list[cluster.Frame] = []
    read = 0
    if len(new):
        new = new[np.lexsort((new["k2"], new["k1"]))]
        for idx, numbers in _indexes(corpora).values():
            for uid, t in index.read_partition_range(idx, "keys", bits, r, "k1"):
                if uid not in numbers:
                    continue
                read += len(t)
                ni, e, k2 = _match(new, t, PER_KEY)
                if not len(ni):
                    continue
                kind = shuffle.key_kind(k2)
                out.append({"u": new["doc"][ni], "c": np.full(len(ni), numbers[uid], np.int32), "e": e, "kind": kind})
    cand = _unique_candidates(cluster.concat(out, EMPTY_CANDIDATES))
    routed = cluster.split(cand, cluster._groups_of(cand["u"], group_of), groups)
    return routed + [(int(len(new)), read, int(len(cand["u"])))]


def _rank(kind: np.ndarray) -> np.ndarray:
    return np.array([_KIND_RANK[int(k)] for k in range(3)], np.int8)[kind.astype(np.int64)]


def _unique_candidates(f: cluster.Frame) -> cluster.Frame:
    """One candidate per (new document, corpus, earlier document), of the kind that names it best."""
    if not len(f["u"]):
        return f
    order = np.lexsort((_rank(f["kind"]), f["e"], f["c"], f["u"]))
    f = {k: v[order] for k, v in f.items()}
    first = np.concatenate(
        [[True], (f["u"][1:] != f["u"][:-1]) | (f["c"][1:] != f["c"][:-1]) | (f["e"][1:] != f["e"][:-1])]
    )
    return {k: v[first] for k, v in f.items()}


def attach_new(layout: Any, ordinals: Sequence[int], bits: int, *parts: cluster.Frame) -> list[cluster.Frame]:
    """Step 3 for one file group: the new documents' signatures onto band candidates, routed by the docs/
    range of the earlier document."""
    f = cluster.concat(parts, EMPTY_CANDIDATES)
    band = f["kind"] == shuffle.EDGE_BAND
    if band.any():
        nodes, sig = cluster._read_nodes(layout, ordinals, np.unique(f["u"][band]), None)
        if sig is not None:
            f["sig_u"] = np.zeros((len(f["u"]), sig.shape[1]), np.uint32)
            f["sig_u"][band] = sig[cluster._lookup(nodes["doc"], f["u"][band])]
    return cluster.split(f, index.range_part(index.doc_key(f["e"]), bits), 1 << bits)


def verify(
    corpora: Sequence[Corpus],
    bits: int,
    v: int,
    threshold: float,
    group_of: dict[int, int],
    groups: int,
    *parts: cluster.Frame,
) -> list[Any]:
    """Step 4 for docs range v: each candidate's earlier id, and for band candidates the similarity of the
    two signatures (those below `threshold` are dropped); routed by file group; then (candidates, rejected)."""
    f = cluster.concat(parts, EMPTY_CANDIDATES)
    n = len(f["u"])
    ids = np.full(n, None, dtype=object)
    sim = np.where(f["kind"] == shuffle.EDGE_BAND, np.nan, 1.0).astype(np.float32)
    if n:
        dk = index.doc_key(f["e"])
        for idx, numbers in _indexes(corpora).values():
            # only the row groups holding a candidate's document (the docs/ rows are sorted by dk)
            wanted = {uid: np.unique(dk[f["c"] == c]) for uid, c in numbers.items() if (f["c"] == c).any()}
            for uid, t in index.read_partition_range(idx, "docs", bits, v, "dk", wanted=wanted):
                c = numbers[uid]
                mine = np.flatnonzero(f["c"] == c)
                if not len(mine):
                    continue
                docs = t["doc"].to_numpy()
                order = np.argsort(docs, kind="stable")
                pos = np.minimum(np.searchsorted(docs[order], f["e"][mine]), len(docs) - 1)
                found = docs[order][pos] == f["e"][mine]
                at, rows = mine[found], order[pos[found]]
                ids[at] = np.array(t["id"].take(pa.array(rows)).to_pylist(), dtype=object)
                band = f["kind"][at] == shuffle.EDGE_BAND
                if band.any() and "sig" in t.column_names and "sig_u" in f:
                    width = t.schema.field("sig").type.list_size
                    sig_e = np.asarray(t["sig"].take(pa.array(rows[band])).combine_chunks().flatten()).reshape(
                        -1, width
                    )
                    sim[at[band]] = (f["sig_u"][at[band]] == sig_e).mean(axis=1)
    missing = np.array([i is None for i in ids], dtype=bool)
    if missing.any():
        raise RuntimeError(f"dedup against: {int(missing.sum())} indexed document(s) missing from their docs/ files")
    keep = ~np.isnan(sim) & (sim >= threshold)
    out = {
        "u": f["u"][keep],
        "c": f["c"][keep],
        "e": f["e"][keep],
        "id": ids[keep],
        "kind": f["kind"][keep],
        "sim": sim[keep],
    }
    return cluster.split(out, cluster._groups_of(out["u"], group_of), groups) + [(n, int((~keep).sum()))]


def decision_path(layout: Any, ordinal: int) -> str:
    return layout.path("_work", "against", f"f{ordinal:05d}.parquet")


AGAINST_SCHEMA = pa.schema(
    [
        ("_doc", pa.int64()),
        ("reason", pa.int8()),
        ("dup_of", pa.string()),
        ("dup_of_corpus", pa.string()),
        ("similarity", pa.float32()),
    ]
)


def decide(layout: Any, ordinals: Sequence[int], names: Sequence[str], *parts: cluster.Frame) -> list[Any]:
    """Step 5 for one file group: each matched document's best match, one decision file per input file;
    returns {reason: documents}."""
    f = cluster.concat(
        parts,
        {**EMPTY_CANDIDATES, "id": np.zeros(0, object), "sim": np.zeros(0, np.float32)},
    )
    counts: dict[str, int] = {}
    if len(f["u"]):
        order = np.lexsort((f["e"], f["c"], -f["sim"], _rank(f["kind"]), f["u"]))
        f = {k: v[order] for k, v in f.items()}
        first = np.concatenate([[True], f["u"][1:] != f["u"][:-1]])
        f = {k: v[first] for k, v in f.items()}
    reason = np.array([_KIND_REASON[k] for k in range(3)], np.int8)[f["kind"].astype(np.int64)]
    ords = f["u"] >> 32
    for o in ordinals:
        path = decision_path(layout, o)
        sel = ords == o
        if not sel.any():
            layout.remove_file(path)
            continue
        t = pa.table(
            {
                "_doc": f["u"][sel],
                "reason": reason[sel],
                "dup_of": pa.array(f["id"][sel].tolist(), pa.string()),
                "dup_of_corpus": pa.array([names[c] for c in f["c"][sel]], pa.string()),
                "similarity": f["sim"][sel].astype(np.float32),
            },
            schema=AGAINST_SCHEMA,
        )
        layout.write_table(path, t)
    for r, n in zip(*np.unique(reason, return_counts=True)):
        counts[AGAINST_REASONS[int(r)]] = int(n)
    return [counts]


def read_decisions(layout: Any, ordinal: int) -> pa.Table | None:
    return layout.read_table(decision_path(layout, ordinal))


def run_against(
    runner: Runner,
    layout: Any,
    groups: list[list[int]],
    corpora: Sequence[Corpus],
    *,
    new_keys: int,
    threshold: float,
    progress: Callable[[str], None] = lambda m: None,
) -> dict[str, Any]:
    """The check of the annotated files in `groups` against `corpora`; decisions land in `_work/against/`."""
    t0 = time.monotonic()
    G = len(groups)
    group_of = cluster.group_index(groups)
    bits = max([c[3] for c in corpora] + [index.bits_for(new_keys, NEW_KEYS_PER_RANGE)])
    R = 1 << bits
    layout.remove_dir(layout.path("_work", "against"))
    root = layout.path("_work", "exchange_against")
    layout.remove_dir(root)
    steps = Steps(runner, layout, root, progress=lambda m: progress(f"against {m}"))
    try:
        (keys,), _ = steps.run("keys", map_new_keys, [(layout, g, bits) for g in groups], [R])
        (cands,), probed = steps.run(
            "probe",
            probe,
            [(list(corpora), bits, r, group_of, G, exchange.Inbox(keys, G, r)) for r in range(R)],
            [G],
        )
        steps.drop("keys")
        (to_verify,), _ = steps.run(
            "attach",
            attach_new,
            [(layout, g, bits, exchange.Inbox(cands, R, i)) for i, g in enumerate(groups)],
            [R],
        )
        steps.drop("probe")
        (verified,), checked = steps.run(
            "verify",
            verify,
            [(list(corpora), bits, v, threshold, group_of, G, exchange.Inbox(to_verify, G, v)) for v in range(R)],
            [G],
        )
        steps.drop("attach")
        _, decided = steps.run(
            "decide",
            decide,
            [(layout, g, [c[2] for c in corpora], exchange.Inbox(verified, R, i)) for i, g in enumerate(groups)],
            [],
        )
    finally:
        layout.remove_dir(root)
    by_reason: dict[str, int] = {}
    for d in decided:
        for k, n in d[0].items():
            by_reason[k] = by_reason.get(k, 0) + n
    out = {
        "corpora": [c[2] for c in corpora],
        "ranges": R,
        "new_keys": sum(p[0][0] for p in probed),
        "index_keys_read": sum(p[0][1] for p in probed),
        "candidates": sum(p[0][2] for p in probed),
        "rejected_candidates": sum(c[0][1] for c in checked),
        "duplicates": sum(by_reason.values()),
        "by_reason": dict(sorted(by_reason.items())),
        "seconds": round(time.monotonic() - t0, 3),
    }
    progress(
        f"dedup against {len(corpora)} earlier corpus(es): {out['duplicates']:,} duplicates "
        f"({out['candidates']:,} candidates, {out['index_keys_read']:,} index keys read in {R} ranges)"
    )
    return out
