"""The seed-free 64-bit hash of a document id that every index of a run is keyed by."""

from __future__ import annotations

from typing import Iterable

import numpy as np
import xxhash


def id_keys(ids: Iterable[str], count: int = -1) -> np.ndarray:
    """xxh3_64 of each id's UTF-8 bytes (lone surrogates kept): the lineage index's key, and the mixtures'
    `id_hash` (mixtures.pool.id_key), so a mixture row's shard is found from its id."""
    return np.fromiter(
        (xxhash.xxh3_64_intdigest(i.encode("utf-8", "surrogatepass")) for i in ids), dtype=np.uint64, count=count
    )


def seeded_keys(ids: Iterable[str], seed: int, count: int = -1) -> np.ndarray:
    """A seeded hash of each id: the order samples are drawn in (bottom-k per group), the same whatever
    the files or batches."""
    return np.fromiter(
        (xxhash.xxh3_64_intdigest(i.encode("utf-8", "surrogatepass"), seed=seed) for i in ids),
        dtype=np.uint64,
        count=count,
    )


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: a bijection of uint64 that spreads every input bit (wraps by design)."""
    x = x.astype(np.uint64, copy=True)
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def sampled_positions(positions: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Which records a seeded share `fraction` of a file keeps, decided by position alone (the same records
    however the file is batched)."""
    key = np.uint64(xxhash.xxh3_64_intdigest(f"{seed}\x00sample".encode()))
    h = mix64(np.asarray(positions, dtype=np.int64).astype(np.uint64) ^ key)
    return h < np.uint64(min(2**64 - 1, int(fraction * 2.0**64)))
