"""Duplicate clusters from candidate edges, as pure functions over hash partitions (no step sees the corpus).

The steps after the key shuffle (`curation.dedup.shuffle`), each a task per partition or per group of
input files, each holding only its share of the edges or documents:

1. `attach_u` / `attach_v` (per group of input files): read the signatures, ids and keep-scores of the
   candidate documents of those files from the annotated parts, and verify every band edge on the
   two full signatures (the share of equal minhash values must reach the threshold). Exact and URL
   edges need no check.
2. `orient`, then `star_step` rounds (per hash partition of nodes): connected components of the
   verified edges by large-star / small-star (Kiveris et al., "Connected Components in MapReduce and
   Beyond", 2014) until the edge set stops changing; it ends as stars around each component's
   smallest document, so every node's label is local to its partition.
3. `by_component` (per node partition): label the edges and node records, and route them by
   component, so each component lands whole in one partition.
4. `resolve_components` (per component partition): keepers by greedy priority (best keep-score,
   then input order). A document is removed only if a verified edge joins it to a keeper, so a
   chain A~B~C never removes C for A; each removed document records its similarity to its keeper.
   Decisions are routed to the group of their input file.
5. `write_decisions` (per group of input files): one sorted decision file per input file, which its
   write task reads alone.

Frames are dicts of equal-length numpy arrays; routing is a stable split by a partition index.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curation.dedup.shuffle import EDGE_BAND, EDGE_EXACT, EDGE_URL

Frame = dict[str, np.ndarray]
_MIX = np.uint64(0x9E3779B97F4A7C15)
MAX_ROUNDS = 64  # star rounds are O(log n); far more means a bug, not a big graph


def node_partition(docs: np.ndarray, partitions: int) -> np.ndarray:
    """The hash partition of each document number (also of component labels, which are documents)."""
    h = docs.astype(np.uint64) * _MIX
    h ^= h >> np.uint64(29)
    return (h % np.uint64(partitions)).astype(np.int64)


def split(frame: Frame, part: np.ndarray, partitions: int) -> list[Frame]:
    """`frame` cut into `partitions` frames by the partition index of each row (order kept)."""
    order = np.argsort(part, kind="stable")
    bounds = np.searchsorted(part[order], np.arange(partitions + 1))
    return [{k: v[order[bounds[i] : bounds[i + 1]]] for k, v in frame.items()} for i in range(partitions)]


def concat(frames: Sequence[Frame], like: Frame) -> Frame:
    """Rows of every frame (the columns of `like` when there are none). Frames without rows are skipped:
    they may lack a column the others have (a file group without candidates has no signatures)."""
    frames = [f for f in frames if f and len(next(iter(f.values())))]
    if not frames:
        return {k: v[:0] for k, v in like.items()}
    return {k: np.concatenate([f[k] for f in frames]) for k in frames[0]}


EMPTY_EDGES: Frame = {"u": np.zeros(0, np.int64), "v": np.zeros(0, np.int64), "kind": np.zeros(0, np.int8)}
EMPTY_NODES: Frame = {"doc": np.zeros(0, np.int64), "id": np.zeros(0, object), "score": np.zeros(0)}
EMPTY_PAIRS: Frame = {"x": np.zeros(0, np.int64), "y": np.zeros(0, np.int64)}


def group_index(ordinals_by_group: Sequence[Sequence[int]]) -> dict[int, int]:
    return {o: g for g, os in enumerate(ordinals_by_group) for o in os}


def _groups_of(docs: np.ndarray, group_of: dict[int, int]) -> np.ndarray:
    ordinals = docs >> 32
    uniq, inv = np.unique(ordinals, return_inverse=True)
    return np.array([group_of[int(o)] for o in uniq], dtype=np.int64)[inv] if len(uniq) else np.zeros(0, np.int64)


def route_edges(edges: tuple[np.ndarray, np.ndarray, np.ndarray], group_of: dict[int, int], groups: int) -> list[Frame]:
    """A reducer's edges, split by the group of the input file of `u` (where step 1 starts)."""
    u, v, kind = edges
    f = {"u": u, "v": v, "kind": kind}
    return split(f, _groups_of(u, group_of), groups)


def _read_nodes(
    layout: Any, ordinals: Sequence[int], docs: np.ndarray, score_col: str | None
) -> tuple[Frame, np.ndarray | None]:
    """id, keep-score and signature (None without MinHash) of the given documents (sorted, unique) of
    these input files, from their annotated parts."""
    ids, scores, sigs, found = [], [], [], []
    for o in ordinals:
        for part in layout.list_files(layout.annotated_dir(o)):
            names = pq.read_schema(part, filesystem=layout.fs).names
            t = pq.read_table(part, columns=["_doc"], filesystem=layout.fs)
            d = t["_doc"].to_numpy()
            hit = np.flatnonzero(np.isin(d, docs))
            if not len(hit):
                continue
            cols = (
                ["id"]
                + ([score_col] if score_col and score_col in names else [])
                + (["_sig"] if "_sig" in names else [])
            )
            t = pq.read_table(part, columns=cols, filesystem=layout.fs).take(pa.array(hit))
            found.append(d[hit])
            ids.append(np.array(t["id"].to_pylist(), dtype=object))
            scores.append(
                t[score_col].to_numpy(zero_copy_only=False).astype(np.float64)
                if score_col and score_col in cols
                else np.full(len(hit), np.nan)
            )
            if "_sig" in cols:
                width = t.schema.field("_sig").type.list_size
                sigs.append(np.asarray(t["_sig"].combine_chunks().flatten()).reshape(-1, width))
    if not found:
        return dict(EMPTY_NODES), None
    d = np.concatenate(found)
    order = np.argsort(d, kind="stable")
    nodes = {"doc": d[order], "id": np.concatenate(ids)[order], "score": np.concatenate(scores)[order]}
    return nodes, (np.concatenate(sigs)[order] if sigs else None)


def _lookup(sorted_docs: np.ndarray, docs: np.ndarray) -> np.ndarray:
    pos = np.minimum(np.searchsorted(sorted_docs, docs), max(0, len(sorted_docs) - 1))
    if len(sorted_docs) == 0 or not np.array_equal(sorted_docs[pos], docs):
        raise RuntimeError("dedup: a candidate document is missing from its annotated parts")
    return pos


def attach_u(
    layout: Any,
    ordinals: Sequence[int],
    score_col: str | None,
    group_of: dict[int, int],
    groups: int,
    partitions: int,
    *edge_parts: Frame,
) -> list[Frame]:
    """Step 1a, for the edges whose `u` is in these files: `u`'s signature onto each edge, routed to the
    group of `v`'s file; node records of the `u` documents, routed by node partition."""
    e = concat(edge_parts, EMPTY_EDGES)
    docs = np.unique(e["u"])
    nodes, sig = _read_nodes(layout, ordinals, docs, score_col)
    if sig is not None and len(e["u"]):
        e["sig_u"] = sig[_lookup(nodes["doc"], e["u"])]
    out = split(e, _groups_of(e["v"], group_of), groups)
    return out + split(nodes, node_partition(nodes["doc"], partitions), partitions)


def attach_v(
    layout: Any, ordinals: Sequence[int], score_col: str | None, threshold: float, partitions: int, *parts: Frame
) -> list[Frame]:
    """Step 1b, for the edges whose `v` is in these files: the similarity of each band edge from the two
    signatures; edges below `threshold` are dropped. Returns the verified edges routed by the node
    partition of `u`, node records of the `v` documents by theirs, and a summary."""
    e = concat(parts, EMPTY_EDGES)
    docs = np.unique(e["v"])
    nodes, sig = _read_nodes(layout, ordinals, docs, score_col)
    sim = np.ones(len(e["u"]), dtype=np.float32)
    band = e["kind"] == EDGE_BAND
    if sig is not None and "sig_u" in e and band.any():
        sig_v = sig[_lookup(nodes["doc"], e["v"][band])]
        sim[band] = (e["sig_u"][band] == sig_v).mean(axis=1)
    keep = ~band | (sim >= threshold)
    verified = {"u": e["u"][keep], "v": e["v"][keep], "kind": e["kind"][keep], "sim": sim[keep]}
    summary = {"candidate_edges": int(len(e["u"])), "band_edges": int(band.sum()), "rejected_edges": int((~keep).sum())}
    return (
        split(verified, node_partition(verified["u"], partitions), partitions)
        + split(nodes, node_partition(nodes["doc"], partitions), partitions)
        + [summary]
    )  # type: ignore[list-item]


def _pairs_out(a: np.ndarray, b: np.ndarray, partitions: int) -> list[Frame]:
    """Undirected edges {a, b} as directed pairs (x, y) stored at x, both ways, routed by x's partition."""
    x = np.concatenate([a, b])
    y = np.concatenate([b, a])
    return split({"x": x, "y": y}, node_partition(x, partitions), partitions)


def orient(partitions: int, *edge_parts: Frame) -> list[Frame]:
    """The verified edges of one node partition as the directed pairs the star steps work on."""
    e = concat(edge_parts, {"u": EMPTY_EDGES["u"], "v": EMPTY_EDGES["v"]})
    return _pairs_out(e["u"], e["v"], partitions)


def _unique_pairs(parts: Sequence[Frame]) -> tuple[np.ndarray, np.ndarray]:
    p = concat(parts, EMPTY_PAIRS)
    x, y = p["x"], p["y"]
    if not len(x):
        return x, y
    order = np.lexsort((y, x))  # by x, then y (np.unique(axis=0) is several times slower)
    x, y = x[order], y[order]
    first = np.concatenate([[True], (x[1:] != x[:-1]) | (y[1:] != y[:-1])])
    return x[first], y[first]


def _fingerprint(x: np.ndarray, y: np.ndarray) -> tuple[int, int]:
    h = (x.astype(np.uint64) * _MIX) ^ (y.astype(np.uint64) + np.uint64(0x632BE59BD9B4E019))
    return int(len(x)), int(np.bitwise_xor.reduce(h * _MIX)) if len(x) else 0


def _min_by_x(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct x, min(x, smallest y of x)) for pairs sorted by x."""
    starts = np.flatnonzero(np.concatenate([[True], x[1:] != x[:-1]]))
    ux = x[starts]
    return ux, np.minimum(ux, np.minimum.reduceat(y, starts))


def star_step(large: bool, partitions: int, *parts: Frame) -> list[Any]:
    """One large-star (`large`) or small-star step over the pairs stored at this partition's nodes.
    Returns the new pairs routed by partition, then (pairs in, fingerprint of the input)."""
    x, y = _unique_pairs(parts)
    fp = _fingerprint(x, y)
    if not len(x):
        return split(dict(EMPTY_PAIRS), np.zeros(0, np.int64), partitions) + [(0, fp)]
    if large:
        # Each node links every larger neighbor to the smallest of itself and its neighbors.
        ux, m = _min_by_x(x, y)
        mx = m[np.searchsorted(ux, x)]
        sel = y > x
        a, b = y[sel], mx[sel]
    else:
        # Each node links itself and its smaller neighbors to the smallest of them.
        sel = y < x
        xs, ys = x[sel], y[sel]
        if len(xs):
            ux, m = _min_by_x(xs, ys)
            mx = m[np.searchsorted(ux, xs)]
            a = np.concatenate([ys, ux])
            b = np.concatenate([mx, m])
        else:
            a = b = np.zeros(0, np.int64)
    keep = a != b
    return _pairs_out(a[keep], b[keep], partitions) + [(int(len(x)), fp)]


def labels(*parts: Frame) -> list[Frame]:
    """After the last round (stars around each component's smallest node): every node of this partition
    and its component's label."""
    x, y = _unique_pairs(parts)
    if not len(x):
        return [{"doc": np.zeros(0, np.int64), "comp": np.zeros(0, np.int64)}]
    ux, m = _min_by_x(x, y)
    return [{"doc": ux, "comp": m}]


def by_component(partitions: int, n_edge_parts: int, lab: Frame, *parts: Frame) -> list[Frame]:
    """Step 3 for one node partition: its labels, its verified edges (those whose `u` it holds) and its node
    records in; edges and labelled node records out, routed by component."""
    edges = concat(parts[:n_edge_parts], {**EMPTY_EDGES, "sim": np.zeros(0, np.float32)})
    nodes = concat(parts[n_edge_parts:], EMPTY_NODES)
    if len(nodes["doc"]):
        _, first = np.unique(nodes["doc"], return_index=True)
        nodes = {k: v[first] for k, v in nodes.items()}
    at = np.searchsorted(lab["doc"], nodes["doc"]) if len(lab["doc"]) else np.zeros(len(nodes["doc"]), np.int64)
    at = np.minimum(at, max(0, len(lab["doc"]) - 1))
    labelled = (lab["doc"][at] == nodes["doc"]) if len(lab["doc"]) else np.zeros(len(nodes["doc"]), bool)
    nodes = {k: v[labelled] for k, v in nodes.items()}  # documents all of whose edges failed have no label
    nodes["comp"] = lab["comp"][at[labelled]]
    edges["comp"] = lab["comp"][_lookup(lab["doc"], edges["u"])] if len(edges["u"]) else np.zeros(0, np.int64)
    return split(edges, node_partition(edges["comp"], partitions), partitions) + split(
        nodes, node_partition(nodes["comp"], partitions), partitions
    )


DECISION_SCHEMA = pa.schema(
    [
        ("_doc", pa.int64()),
        ("dup_reason", pa.int8()),
        ("dup_cluster", pa.string()),
        ("dup_cluster_size", pa.int64()),
        ("dup_similarity", pa.float32()),
        ("dup_keeper", pa.int64()),  # the keeper's document number (its input file and position)
    ]
)


def keepers(n: int, a: np.ndarray, b: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """The greedy keepers of a graph on nodes 0..n-1 (undirected edges a-b): in order of `rank` (0 first),
    a node is a keeper unless an edge joins it to an earlier keeper. Computed in rounds: every undecided
    node with no undecided better neighbor becomes a keeper, and its undecided neighbors are removed;
    this gives the same set as the sequential order."""
    state = np.zeros(n, np.int8)  # 0 undecided, 1 keeper, 2 removed
    while True:
        und = state == 0
        if not und.any():
            return state == 1
        live = und[a] & und[b]
        la, lb = a[live], b[live]
        beaten = np.zeros(n, bool)
        beaten[la[rank[lb] < rank[la]]] = True
        beaten[lb[rank[la] < rank[lb]]] = True
        new = und & ~beaten
        state[new] = 1
        hit = (new[a] & und[b]) | (new[b] & und[a])
        other = np.where(new[a[hit]], b[hit], a[hit])
        state[other[state[other] == 0]] = 2


def resolve_components(group_of: dict[int, int], groups: int, n_edge_parts: int, *parts: Frame) -> list[Any]:
    """Step 4 for one component partition: who is kept, and for each removed document its keeper (the
    best-ranked keeper an edge joins it to), the similarity of that edge and why (an identical text, the
    same URL, or near). Lone keepers (all of whose near copies became keepers too) get no decision: they
    are ordinary documents. Returns decision frames routed by file group, then a summary."""
    edges = concat(parts[:n_edge_parts], {**EMPTY_EDGES, "sim": np.zeros(0, np.float32), "comp": EMPTY_EDGES["u"]})
    nodes = concat(parts[n_edge_parts:], {**EMPTY_NODES, "comp": EMPTY_NODES["doc"]})
    summary = {"edges": int(len(edges["u"])), "documents": int(len(nodes["doc"]))}
    empty = {
        "doc": np.zeros(0, np.int64),
        "reason": np.zeros(0, np.int8),
        "cluster": np.zeros(0, object),
        "size": np.zeros(0, np.int64),
        "sim": np.zeros(0, np.float32),
        "keeper": np.zeros(0, np.int64),
    }
    if not len(nodes["doc"]):
        return split(empty, np.zeros(0, np.int64), groups) + [{**summary, "duplicates": 0, "clusters": 0}]
    _, first = np.unique(nodes["doc"], return_index=True)
    nodes = {k: v[first] for k, v in nodes.items()}
    doc = nodes["doc"]
    n = len(doc)
    a, b = np.searchsorted(doc, edges["u"]), np.searchsorted(doc, edges["v"])
    # Rank: best keep-score first (a missing score loses), then input order.
    s = np.where(np.isnan(nodes["score"]), -np.inf, nodes["score"])
    order = np.lexsort((doc, -s))
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n)
    keep = keepers(n, a, b, rank)
    # Each removed node's keeper: over edges from it to a keeper, the best-ranked keeper.
    da = np.concatenate([a, b])
    db = np.concatenate([b, a])
    sim2 = np.concatenate([edges["sim"], edges["sim"]])
    to_keeper = ~keep[da] & keep[db]
    da, db, sim2 = da[to_keeper], db[to_keeper], sim2[to_keeper]
    pick = np.lexsort((-sim2, rank[db], da))
    da, db, sim2 = da[pick], db[pick], sim2[pick]
    firsts = np.concatenate([[True], da[1:] != da[:-1]]) if len(da) else np.zeros(0, bool)
    removed, keeper, ksim = da[firsts], db[firsts], sim2[firsts]
    if len(removed) != int((~keep).sum()):
        raise RuntimeError("dedup: a removed document has no keeper")
    size = np.bincount(keeper, minlength=n) + 1
    twin = np.zeros(n, bool)
    ex = edges["kind"] == EDGE_EXACT
    twin[a[ex]] = twin[b[ex]] = True
    url = np.zeros(n, bool)
    ur = edges["kind"] == EDGE_URL
    url[a[ur]] = url[b[ur]] = True
    head = np.flatnonzero(keep & (size > 1))
    who = np.concatenate([head, removed])
    reason = np.concatenate(
        [np.zeros(len(head), np.int8), np.where(twin[removed], 1, np.where(url[removed], 3, 2)).astype(np.int8)]
    )
    cluster_of = np.concatenate([head, keeper])
    out = {
        "doc": doc[who],
        "reason": reason,
        "cluster": nodes["id"][cluster_of],
        "keeper": doc[cluster_of],
        "size": size[cluster_of].astype(np.int64),
        "sim": np.concatenate([np.full(len(head), np.nan, np.float32), ksim.astype(np.float32)]),
    }
    summary.update(duplicates=int(len(removed)), clusters=int(len(head)))
    return split(out, _groups_of(out["doc"], group_of), groups) + [summary]


def decision_path(layout: Any, ordinal: int) -> str:
    return layout.path("_work", "dedup", f"f{ordinal:05d}.parquet")


def write_decisions(layout: Any, ordinals: Sequence[int], *parts: Frame) -> list[int]:
    """Step 5 for one group of input files: each file's decisions, sorted by document, in a file of its own
    (none for a file without duplicates)."""
    d = concat(
        parts,
        {
            "doc": np.zeros(0, np.int64),
            "reason": np.zeros(0, np.int8),
            "cluster": np.zeros(0, object),
            "size": np.zeros(0, np.int64),
            "sim": np.zeros(0, np.float32),
            "keeper": np.zeros(0, np.int64),
        },
    )
    order = np.argsort(d["doc"], kind="stable")
    d = {k: v[order] for k, v in d.items()}
    ords = d["doc"] >> 32
    written = 0
    for o in ordinals:
        sel = ords == o
        path = decision_path(layout, o)
        if not sel.any():
            layout.remove_file(path)
            continue
        t = pa.table(
            {
                "_doc": d["doc"][sel],
                "dup_reason": d["reason"][sel],
                "dup_cluster": pa.array(d["cluster"][sel].tolist(), pa.string()),
                "dup_cluster_size": d["size"][sel],
                "dup_similarity": d["sim"][sel],
                "dup_keeper": d["keeper"][sel],
            },
            schema=DECISION_SCHEMA,
        )
        layout.write_table(path, t)
        written += int(sel.sum())
    return [written]


def read_decisions(layout: Any, ordinal: int) -> pa.Table | None:
    """One input file's dedup decisions (None when it has none)."""
    return layout.read_table(decision_path(layout, ordinal))
