"""Which documents a mixture takes: whole epochs of a bucket, then a remainder chosen in seeded-hash
order of the document ids (the same choice however the pool is sharded or ordered), then a shuffle.

`select` does it on one in-memory pool (the reference, and what ablations use); the mix job does the
same per pool part and per bucket (`bucket_histogram`, `cut_bucket`, `finish_bucket`,
`selected_copies`) so no process holds the pool. Hashes are numpy mixes of a seed-free 64-bit hash of
each id computed once when the pool is counted (`mixtures.pool.id_key`): no per-document Python here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import xxhash

from curation.inspection.keys import mix64 as _mix64

BIN_BITS = 12  # remainder selection works on 4,096 hash bins per bucket (driver memory: buckets x bins)
BINS = 1 << BIN_BITS
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def id_hashes(ids: list[str], seed: int, salt: str) -> np.ndarray:
    """A seeded hash of each id string (held-out sets of ablations)."""
    prefix = f"{seed}\x00{salt}\x00".encode()
    return np.fromiter(
        (xxhash.xxh3_64_intdigest(prefix + i.encode("utf-8", "surrogatepass")) for i in ids),
        dtype=np.uint64,
        count=len(ids),
    )


def seeded(id_hash: np.ndarray, seed: int, salt: str, epoch: np.ndarray | None = None) -> np.ndarray:
    """The seeded hash of each id (and epoch: a repeated document's copies get distinct hashes)."""
    key = np.uint64(xxhash.xxh3_64_intdigest(f"{seed}\x00{salt}".encode()))
    x = np.asarray(id_hash, dtype=np.uint64) ^ key
    if epoch is not None:
        x = x + np.asarray(epoch, dtype=np.uint64) * _GOLDEN
    return _mix64(x)


def plan(
    alloc: dict[str, int], available: dict[str, int], caps: dict[str, float] | None = None
) -> dict[str, tuple[int, int, float]]:
    """Per bucket: (full epochs, remainder tokens, room the epoch cap leaves for the remainder)."""
    out = {}
    for b, want in sorted(alloc.items()):
        have = available.get(b, 0)
        if want <= 0 or have == 0:
            continue
        full, rest = divmod(int(want), have)
        out[b] = (full, rest, (caps or {}).get(b, float("inf")) * have - full * have)
    return out


def select(pool: pa.Table, alloc: dict[str, int], seed: int, caps: dict[str, float] | None = None) -> pa.Table:
    """(pool_index, epoch) of every selected copy, on one in-memory pool sorted by (file, row). Each bucket
    gets floor(alloc / available) full passes, then a remainder filled in seeded-hash order (`_fill`);
    documents are never split."""
    buckets = pool["bucket"].to_numpy(zero_copy_only=False)
    tokens = pool["n_tokens"].to_numpy()
    h = seeded(pool["id_hash"].to_numpy(), seed, "select")
    available = {}
    for b in np.unique(buckets).tolist():
        available[b] = int(tokens[buckets == b].sum())
    out_idx, out_epoch = [], []
    for b, (full, rest, room) in plan(alloc, available, caps).items():
        idx = np.flatnonzero(buckets == b)
        for e in range(full):
            out_idx.append(idx)
            out_epoch.append(np.full(len(idx), e, np.int32))
        if rest:
            order = idx[np.argsort(h[idx], kind="stable")]
            take = _fill(tokens[order], rest, room)
            if len(take):
                out_idx.append(order[take])
                out_epoch.append(np.full(len(take), full, np.int32))
    if not out_idx:
        return pa.table({"pool_index": pa.array([], pa.int64()), "epoch": pa.array([], pa.int32())})
    return pa.table(
        {"pool_index": pa.array(np.concatenate(out_idx).astype(np.int64)), "epoch": pa.array(np.concatenate(out_epoch))}
    )


def _fill(sizes: np.ndarray, rest: int, room: float = float("inf")) -> np.ndarray:
    """Positions to take, in hash order: the longest prefix that fits, then every later document that
    still fits (first fit), so the remainder is met from below to within the smallest leftover
    document; then that smallest document too if it lands closer to the remainder and stays within
    `room` (the epoch cap). Large documents in small buckets are where the last step matters."""
    cum = np.cumsum(sizes)
    m = int(np.searchsorted(cum, rest, side="right"))  # documents [0, m) fit entirely
    picked = list(range(m))
    gap = rest - (int(cum[m - 1]) if m else 0)
    if gap > 0 and m < len(sizes):
        tail = sizes[m:]
        for j in np.flatnonzero(tail <= gap).tolist():  # only documents that could fit at all
            t = int(tail[j])
            if t <= gap:
                picked.append(m + j)
                gap -= t
                if gap == 0:
                    break
    if gap > 0:
        left = np.setdiff1d(np.arange(len(sizes)), picked)
        if len(left):
            j = int(left[np.argmin(sizes[left])])
            if sizes[j] - gap < gap and rest - gap + sizes[j] <= room:
                picked.append(j)
    return np.array(picked, dtype=np.int64)


# --- The same selection per pool part and per bucket (the mix job). Frames are dicts of numpy arrays. ---


def _bucket_of(t: pa.Table, buckets: list[str]) -> np.ndarray:
    """Index of each row's bucket in `buckets` (-1 for other buckets)."""
    import pyarrow.compute as pc

    return pc.index_in(t["bucket"], value_set=pa.array(buckets, pa.string())).fill_null(-1).to_numpy()


def _bins(h: np.ndarray) -> np.ndarray:
    return (h >> np.uint64(64 - BIN_BITS)).astype(np.int64)


def bucket_histogram(t: pa.Table, buckets: list[str], seed: int) -> list[dict[str, np.ndarray]]:
    """Per bucket (in `buckets`), over the hash bins of this part's documents: tokens, documents and the
    smallest document, for the bins that have any."""
    j = _bucket_of(t, buckets)
    h = seeded(t["id_hash"].to_numpy(), seed, "select")
    bins, n = _bins(h), t["n_tokens"].to_numpy()
    out = []
    for b in range(len(buckets)):
        m = j == b
        bb, nn = bins[m], n[m]
        cnt = np.bincount(bb, minlength=BINS)
        tok = np.bincount(bb, weights=nn, minlength=BINS)
        mn = np.full(BINS, np.iinfo(np.int64).max, np.int64)
        np.minimum.at(mn, bb, nn)
        nz = np.flatnonzero(cnt)
        out.append({"bin": nz, "tokens": tok[nz].astype(np.int64), "count": cnt[nz].astype(np.int64), "min": mn[nz]})
    return out


def merge_histograms(*frames: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One bucket's dense histogram from the parts' sparse ones."""
    bins = np.concatenate([f["bin"] for f in frames]) if frames else np.zeros(0, np.int64)
    tok = np.concatenate([f["tokens"] for f in frames]) if frames else np.zeros(0, np.int64)
    cnt = np.concatenate([f["count"] for f in frames]) if frames else np.zeros(0, np.int64)
    mn = np.full(BINS, np.iinfo(np.int64).max, np.int64)
    if len(bins):
        np.minimum.at(mn, bins, np.concatenate([f["min"] for f in frames]))
    # token sums per bin stay far below 2^53, where float64 bincount is exact
    return {
        "tokens": np.bincount(bins, weights=tok, minlength=BINS).astype(np.int64),
        "count": np.bincount(bins, weights=cnt, minlength=BINS).astype(np.int64),
        "min": mn,
    }


def boundary_bin(tokens_per_bin: np.ndarray, rest: int) -> tuple[int, int]:
    """(k, tokens of bins < k): the bin in which the longest hash-order prefix that fits `rest` ends."""
    cum = np.cumsum(tokens_per_bin)
    k = int(np.searchsorted(cum, rest, side="right"))
    return k, int(cum[k - 1]) if k else 0


def rows_in_bins(
    t: pa.Table, file_no: int, buckets: list[str], lo: list[int], hi: list[int], max_tokens: list[int], seed: int
) -> list[dict[str, np.ndarray]]:
    """Per bucket: this part's documents in hash bins lo..hi with at most max_tokens tokens (h, file, row, n)."""
    j = _bucket_of(t, buckets)
    h = seeded(t["id_hash"].to_numpy(), seed, "select")
    bins, n, row = _bins(h), t["n_tokens"].to_numpy(), t["row"].to_numpy()
    out = []
    for b in range(len(buckets)):
        m = (j == b) & (bins >= lo[b]) & (bins <= hi[b]) & (n <= max_tokens[b])
        out.append({"h": h[m], "file": np.full(int(m.sum()), file_no, np.int64), "row": row[m], "n": n[m]})
    return out


def _in_order(frames: tuple[dict[str, np.ndarray], ...]) -> dict[str, np.ndarray]:
    keys = ("h", "file", "row", "n")
    f = {k: np.concatenate([x[k] for x in frames]) if frames else np.zeros(0, np.int64) for k in keys}
    order = np.lexsort((f["row"], f["file"], f["h"]))  # hash order; ties in pool order, as `select`
    return {k: v[order] for k, v in f.items()}


def _first_fit(n: np.ndarray, gap: int) -> tuple[list[int], int]:
    picked = []
    for j in np.flatnonzero(n <= gap).tolist():
        if n[j] <= gap:
            picked.append(j)
            gap -= int(n[j])
            if gap == 0:
                break
    return picked, gap


def cut_bucket(rest: int, before: int, *frames: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """The prefix and the first fit inside one bucket's boundary bin (`_fill` up to the bins after it).
    Returns the last prefix document (h, file, row; None when the prefix ends before the bin), the
    documents first fit took, the gap left and the bin's untaken documents that could still matter."""
    f = _in_order(frames)
    cum = np.cumsum(f["n"])
    m = int(np.searchsorted(cum, rest - before, side="right"))
    gap = rest - before - (int(cum[m - 1]) if m else 0)
    picked, gap_after = _first_fit(f["n"][m:], gap) if gap > 0 else ([], 0)
    took = np.array([m + p for p in picked], np.int64)
    left = np.setdiff1d(np.arange(m, len(f["n"])), took)
    left = left[f["n"][left] < 2 * gap_after]
    cut = (int(f["h"][m - 1]), int(f["file"][m - 1]), int(f["row"][m - 1])) if m else None
    return [
        {
            "cut": cut,
            "picks": {"file": f["file"][took], "row": f["row"][took]},
            "gap": gap_after,
            "tokens": rest - gap_after,
            "left": {k: v[left] for k, v in f.items()},
        }
    ]


def finish_bucket(
    rest: int, room: float, gap: int, left: dict[str, np.ndarray], *frames: dict[str, np.ndarray]
) -> list[dict[str, Any]]:
    """`_fill` after the boundary bin: first fit over the later bins' small documents, then the smallest
    document left if taking it lands closer to the remainder within the cap. Candidates are the boundary
    bin's untaken documents (`left`, earlier in hash order) and the later bins' documents under 2 x gap:
    no larger document can be taken by either rule."""
    f = _in_order(frames)
    picked, gap = _first_fit(f["n"], gap) if gap > 0 else ([], gap)
    files, rows = [f["file"][picked]], [f["row"][picked]]
    if gap > 0:
        rest_left = np.setdiff1d(np.arange(len(f["n"])), np.array(picked, np.int64))
        n = np.concatenate([left["n"], f["n"][rest_left]])
        if len(n):
            j = int(np.argmin(n))
            if n[j] - gap < gap and rest - gap + n[j] <= room:
                src_file = np.concatenate([left["file"], f["file"][rest_left]])
                src_row = np.concatenate([left["row"], f["row"][rest_left]])
                files.append(src_file[j : j + 1])
                rows.append(src_row[j : j + 1])
                gap -= int(n[j])
    return [{"picks": {"file": np.concatenate(files), "row": np.concatenate(rows)}, "gap": gap}]


def selected_epochs(
    t: pa.Table, file_no: int, decisions: dict[str, dict[str, Any]], picks: np.ndarray, seed: int
) -> np.ndarray:
    """How many copies of each row of this part the mixture takes: `full` epochs of its bucket, plus one
    if the remainder selection took it (inside the hash prefix, or one of `picks`, the rows of this file
    that first fit or the last step took)."""
    buckets = sorted(decisions)
    j = _bucket_of(t, buckets)
    out = np.zeros(len(t), np.int64)
    if not len(t):
        return out
    h = seeded(t["id_hash"].to_numpy(), seed, "select")
    bins, row = _bins(h), t["row"].to_numpy()
    picked = np.isin(row, picks)
    for b, name in enumerate(buckets):
        d = decisions[name]
        m = j == b
        sel = np.zeros(len(t), bool)
        if d["rest"]:
            k, cut = d["k"], d["cut"]
            sel = bins < k
            if cut is not None:
                ch, cf, cr = np.uint64(cut[0]), cut[1], cut[2]
                sel |= (bins == k) & ((h < ch) | ((h == ch) & ((file_no < cf) | ((file_no == cf) & (row <= cr)))))
            sel |= picked
        out[m] = d["full"] + sel[m]
    return out
