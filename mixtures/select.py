"""Which documents a mixture takes: whole epochs of a bucket, then a remainder chosen by a seeded hash
of the document id (the same choice however the pool is sharded or ordered), then a global shuffle."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import xxhash


def id_hashes(ids: list[str], seed: int, salt: str) -> np.ndarray:
    prefix = f"{seed}\x00{salt}\x00".encode()
    return np.fromiter((xxhash.xxh3_64_intdigest(prefix + i.encode("utf-8", "surrogatepass")) for i in ids),
                       dtype=np.uint64, count=len(ids))


def select(pool: pa.Table, alloc: dict[str, int], seed: int, caps: dict[str, float] | None = None) -> pa.Table:
    """(pool_index, epoch) of every selected copy. Each bucket gets floor(alloc / available) full
    passes, then a remainder filled in seeded-hash order (`_fill`); documents are never split."""
    buckets = pool["bucket"].to_numpy(zero_copy_only=False)
    tokens = pool["n_tokens"].to_numpy()
    ids = pool["id"].to_pylist()
    out_idx, out_epoch = [], []
    for b, want in sorted(alloc.items()):
        idx = np.flatnonzero(buckets == b)
        have = int(tokens[idx].sum())
        if want <= 0 or have == 0:
            continue
        full, rest = divmod(int(want), have)
        for e in range(full):
            out_idx.append(idx)
            out_epoch.append(np.full(len(idx), e, np.int32))
        if rest:
            order = idx[np.argsort(id_hashes([ids[i] for i in idx], seed, "select"), kind="stable")]
            room = (caps or {}).get(b, float("inf")) * have - full * have  # what the epoch cap leaves
            take = _fill(tokens[order], rest, room)
            if len(take):
                out_idx.append(order[take])
                out_epoch.append(np.full(len(take), full, np.int32))
    if not out_idx:
        return pa.table({"pool_index": pa.array([], pa.int64()), "epoch": pa.array([], pa.int32())})
    return pa.table({"pool_index": pa.array(np.concatenate(out_idx).astype(np.int64)),
                     "epoch": pa.array(np.concatenate(out_epoch))})


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


def row_ids(ids: list[str], epochs: np.ndarray) -> list[str]:
    """Distinct ids for repeated documents: `id@epoch`."""
    return [f"{i}@{e}" for i, e in zip(ids, epochs.tolist())]


def shuffle_order(rids: list[str], seed: int) -> np.ndarray:
    """A global order that depends only on the row ids and the seed."""
    return np.argsort(id_hashes(rids, seed, "shuffle"), kind="stable")


def cut_shards(tokens: np.ndarray, shard_tokens: int) -> list[tuple[int, int]]:
    """[start, end) row ranges of consecutive shards of about `shard_tokens` tokens (documents never split)."""
    bounds, start, acc = [], 0, 0
    for i, t in enumerate(tokens.tolist()):
        acc += t
        if acc >= shard_tokens:
            bounds.append((start, i + 1))
            start, acc = i + 1, 0
    if start < len(tokens):
        bounds.append((start, len(tokens)))
    return bounds
