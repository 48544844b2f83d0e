"""The dedup shuffle as pure functions: map documents to keyed records, partition, reduce to edges.

Each mapper hashes its documents' keys (the exact-text hash and one key per LSH band) into P
partitions; reducer j gets partition j from every mapper, so no process ever holds more than about
1/P of all keys. A reducer sorts its keys and, for each run of equal keys, emits star edges from
every member to the run's smallest document (and, for band runs, to the member before it). Edges are
far fewer than keys (only colliding documents produce any), and only they go on to verification and
clustering (`curation.dedup.cluster`).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

KEY_DTYPE = np.dtype([("k1", np.uint64), ("k2", np.uint64), ("doc", np.int64)])
_BAND_TAG = np.uint64(1 << 63)  # set in k2 for band keys, cleared for exact keys: the kinds never mix
_URL_TAG = np.uint64(1 << 62)  # set in k2 for URL keys (cleared in the other kinds)

EDGE_EXACT = 0
EDGE_BAND = 1
EDGE_URL = 2


def keyed_records(docs: np.ndarray, exact: np.ndarray | None, bands: np.ndarray | None) -> np.ndarray:
    """KEY_DTYPE records for a batch: one per document for exact keys, one per band for MinHash."""
    parts = []
    if exact is not None and len(docs):
        r = np.empty(len(docs), dtype=KEY_DTYPE)
        r["k1"], r["k2"], r["doc"] = exact[:, 0], exact[:, 1] & ~(_BAND_TAG | _URL_TAG), docs
        parts.append(r)
    if bands is not None and len(docs):
        n, b = bands.shape
        r = np.empty(n * b, dtype=KEY_DTYPE)
        r["k1"] = bands.reshape(-1)
        r["k2"] = np.tile(np.arange(b, dtype=np.uint64), n) | _BAND_TAG
        r["doc"] = np.repeat(docs, b)
        parts.append(r)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=KEY_DTYPE)


def url_records(docs: np.ndarray, url: np.ndarray) -> np.ndarray:
    """KEY_DTYPE records of URL keys (one per document with a URL)."""
    r = np.empty(len(docs), dtype=KEY_DTYPE)
    r["k1"], r["k2"], r["doc"] = url[:, 0], (url[:, 1] & ~(_BAND_TAG | _URL_TAG)) | _URL_TAG, docs
    return r


def _fixed(t: pa.Table, column: str) -> np.ndarray:
    width = t.schema.field(column).type.list_size
    return np.asarray(t[column].combine_chunks().flatten()).reshape(-1, width)


def table_key_records(t: pa.Table) -> np.ndarray:
    """KEY_DTYPE records of the rows of `t` (`_doc` and whichever of `_exact`, `_bands`, `_url` it has;
    a null key is a row the key does not cover: dropped before dedup, or without a URL)."""
    cols = t.column_names
    recs = []
    if "_url" in cols:
        u = t.filter(t["_url"].is_valid())
        if len(u):
            recs.append(url_records(u["_doc"].to_numpy(), _fixed(u, "_url")))
    key_col = "_exact" if "_exact" in cols else "_bands" if "_bands" in cols else None
    if key_col is not None:
        t = t.filter(t[key_col].is_valid())
        if len(t):
            exact = _fixed(t, "_exact") if "_exact" in cols else None
            bands = _fixed(t, "_bands") if "_bands" in cols else None
            recs.append(keyed_records(t["_doc"].to_numpy(), exact, bands))
    return np.concatenate(recs) if recs else np.zeros(0, dtype=KEY_DTYPE)


def annotated_key_records(layout: Any, ordinals: Sequence[int]) -> np.ndarray:
    """The key records of the surviving documents of some input files, from their annotated parts."""
    recs = []
    for o in ordinals:
        for part in layout.list_files(layout.annotated_dir(o)):
            schema = pq.read_schema(part, filesystem=layout.fs)
            cols = [c for c in ("_doc", "_exact", "_bands", "_url") if c in schema.names]
            recs.append(table_key_records(pq.read_table(part, columns=cols, filesystem=layout.fs)))
    return np.concatenate(recs) if recs else np.zeros(0, dtype=KEY_DTYPE)


def partition(records: np.ndarray, partitions: int) -> list[np.ndarray]:
    """Split records by key into `partitions` parts (equal keys always land in the same part)."""
    if partitions == 1:
        return [records]
    p = ((records["k1"] ^ (records["k2"] * np.uint64(0x9E3779B97F4A7C15))) % np.uint64(partitions)).astype(np.int64)
    order = np.argsort(p, kind="stable")
    bounds = np.searchsorted(p[order], np.arange(partitions + 1))
    return [records[order[bounds[i] : bounds[i + 1]]] for i in range(partitions)]


def key_kind(k2: np.ndarray) -> np.ndarray:
    """EDGE_EXACT, EDGE_BAND or EDGE_URL of each key, from the tag bits of its k2."""
    return np.where(k2 & _BAND_TAG, EDGE_BAND, np.where(k2 & _URL_TAG, EDGE_URL, EDGE_EXACT)).astype(np.int8)


def reduce_edges(parts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(u, v, kind) edges from one partition's records: u is a duplicate candidate of v = min(run)."""
    recs = np.concatenate(parts) if parts else np.zeros(0, dtype=KEY_DTYPE)
    if len(recs) < 2:
        z = np.zeros(0, dtype=np.int64)
        return z, z, np.zeros(0, dtype=np.int8)
    recs = recs[np.lexsort((recs["doc"], recs["k2"], recs["k1"]))]
    same = (recs["k1"][1:] == recs["k1"][:-1]) & (recs["k2"][1:] == recs["k2"][:-1])
    if not same.any():
        z = np.zeros(0, dtype=np.int64)
        return z, z, np.zeros(0, dtype=np.int8)
    # Index of the first record of each run, for every record.
    idx = np.arange(len(recs))
    run_start = np.maximum.accumulate(np.where(np.concatenate([[True], ~same]), idx, 0))
    member = np.concatenate([[False], same])
    u = recs["doc"][member]
    v = recs["doc"][run_start[member]]
    k2 = recs["k2"][member]
    kind = key_kind(k2)
    # Band runs also link each member to the one before it: an edge to the run's first document may fail
    # the signature check while two later members are near copies of each other.
    chain = member & (run_start != idx - 1) & ((recs["k2"] & _BAND_TAG) != 0)
    u = np.concatenate([u, recs["doc"][chain]])
    v = np.concatenate([v, recs["doc"][np.flatnonzero(chain) - 1]])
    kind = np.concatenate([kind, np.full(int(chain.sum()), EDGE_BAND, np.int8)])
    keep = u != v  # a document repeated in one run (same band twice) is not its own duplicate
    return u[keep], v[keep], kind[keep]
