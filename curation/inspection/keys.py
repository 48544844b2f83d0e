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
