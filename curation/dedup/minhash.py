"""MinHash signatures and LSH band keys, computed for a whole batch with numpy.

Compatible with `datasketch.MinHash(scheme="affine32")` (datasketch >= 2.0's default): the same
permutations drawn from the seed, the same MurmurHash3 pre-mix and affine maps mod 2^32. A shingle's
32-bit hash is `shingle_hash32` below, so `to_datasketch(sig)` or a `datasketch.MinHash(hashfunc=
shingle_hash32)` fed the same shingles gives the same signature, and datasketch's LSH indexes can be
used against our signatures (e.g. to dedup a new crawl against an earlier corpus).

Why by hand: datasketch hashes each shingle with a Python call and updates one document at a time
(0.3 to 13 MB/s). Here the compiled kernel (filters/kernels.py) segments, hashes, combines n-grams and
permutes a whole batch in C; without it (no compiler at install, or a registered segmenter) word hashes
are cached, n-grams are combined with vector arithmetic and the permutations run over a whole batch at
once in numpy. Both give the same signatures (tests/test_text_kernels.py).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import xxhash

from filters.kernels import kernels
from filters.segmentation import shingle_mode, shingle_units

SCHEME = "affine32"  # recorded in outputs: signatures of other schemes are not comparable
_POLY = np.uint64(0x9E3779B97F4A7C15)  # odd multiplier for the n-gram polynomial
_MAX_SHINGLES_PER_CHUNK = 1 << 16  # bounds the (num_perm x shingles) temporary to ~30 MB


def _fmix32(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def _fmix64(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> np.uint64(33))


def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The (a, b) parameters datasketch draws for scheme affine32 with this seed."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


def _ngram_hashes(word_hashes: np.ndarray, n: int) -> np.ndarray:
    """32-bit hashes of the word n-grams (one shingle of all words when there are fewer than n)."""
    k = max(1, len(word_hashes) - n + 1)
    m = min(n, len(word_hashes))
    h = np.zeros(k, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(m):
            h = h * _POLY + word_hashes[j : j + k]
    return ((h >> np.uint64(32)) ^ (h & np.uint64(0xFFFFFFFF))).astype(np.uint32)


def shingle_hash32(shingle: bytes | str) -> int:
    """The hash of one shingle (its words joined by single spaces), for use as datasketch's hashfunc."""
    if isinstance(shingle, bytes):
        shingle = shingle.decode("utf-8")
    wh = np.array(
        [xxhash.xxh3_64_intdigest(w.encode("utf-8", "surrogatepass")) for w in shingle.split(" ")], dtype=np.uint64
    )
    return int(_ngram_hashes(wh, len(wh))[0])


class _WordHashCache(dict):
    """word -> xxh3_64 of its UTF-8 bytes, computed on first use."""

    def __missing__(self, word: str) -> int:
        h = self[word] = xxhash.xxh3_64_intdigest(word.encode("utf-8", "surrogatepass"))
        return h


class MinHasher:
    """Signatures and band keys for batches of texts; holds the permutations and a word-hash cache."""

    def __init__(self, ngram: int = 5, bands: int = 14, rows: int = 8, seed: int = 1):
        self.ngram, self.bands, self.rows, self.seed = ngram, bands, rows, seed
        self.num_perm = bands * rows
        a, b = permutations(self.num_perm, seed)
        self._a, self._b = a[:, None], b[:, None]
        self._a_bytes, self._b_bytes = a.tobytes(), b.tobytes()
        self._cache = _WordHashCache()
        gen = np.random.RandomState(seed + 7919)
        self._band_mult = gen.randint(1, 1 << 62, (bands, rows), dtype=np.uint64) * np.uint64(2) + np.uint64(1)

    def _word_hashes(self, words: list[str]) -> np.ndarray:
        cache = self._cache
        if len(cache) > 2_000_000:
            cache.clear()
        # map() over the dict's C-level __getitem__: no Python frame per word on cache hits.
        return np.fromiter(map(cache.__getitem__, words), dtype=np.uint64, count=len(words))

    def shingles(self, text: str, lang: str | None = None) -> np.ndarray:
        """32-bit shingle hashes of one document: n-grams of words, or of characters for languages
        written without spaces (empty for a document without any)."""
        ws = shingle_units(text, lang)
        if not ws:
            return np.zeros(0, dtype=np.uint32)
        return _ngram_hashes(self._word_hashes(ws), self.ngram)

    def signatures(self, texts: Sequence[str], langs: Sequence[str | None] | None = None) -> np.ndarray:
        """(len(texts), num_perm) uint32 signatures; a document without words gets all 0xFFFFFFFF."""
        langs = langs if langs is not None else [None] * len(texts)
        out = np.full((len(texts), self.num_perm), 0xFFFFFFFF, dtype=np.uint32)
        k = kernels()
        modes = [shingle_mode(lang) for lang in langs] if k is not None else []
        if k is not None and None not in modes:
            sig = k.minhash(list(texts), bytes(modes), self.ngram, self._a_bytes, self._b_bytes)
            return np.frombuffer(sig, dtype=np.uint32).reshape(len(texts), self.num_perm).copy()
        chunk: list[np.ndarray] = []
        idx: list[int] = []
        size = 0
        for i, (t, lang) in enumerate(zip(texts, langs)):
            sh = self.shingles(t, lang)
            if len(sh) == 0:
                continue
            chunk.append(sh)
            idx.append(i)
            size += len(sh)
            if size >= _MAX_SHINGLES_PER_CHUNK:
                self._permute_into(out, chunk, idx)
                chunk, idx, size = [], [], 0
        if chunk:
            self._permute_into(out, chunk, idx)
        return out

    def _permute_into(self, out: np.ndarray, chunk: list[np.ndarray], idx: list[int]) -> None:
        hv = _fmix32(np.concatenate(chunk))
        offsets = np.zeros(len(chunk), dtype=np.int64)
        np.cumsum([len(c) for c in chunk[:-1]], out=offsets[1:])
        phv = self._a * hv[None, :] + self._b  # uint32 arithmetic wraps: this is mod 2^32
        out[idx] = np.minimum.reduceat(phv, offsets, axis=1).T

    def band_keys(self, signatures: np.ndarray) -> np.ndarray:
        """(n, bands) uint64 keys; two documents share band i's key iff their rows in band i are equal
        (up to 64-bit hash collisions)."""
        n = len(signatures)
        sig = signatures.reshape(n, self.bands, self.rows).astype(np.uint64)
        with np.errstate(over="ignore"):
            h = (sig * self._band_mult[None, :, :]).sum(axis=2, dtype=np.uint64)
            h = _fmix64(h + np.arange(self.bands, dtype=np.uint64)[None, :])
        return h


def to_datasketch(signature: np.ndarray, seed: int = 1):
    """A datasketch.MinHash holding this signature (same permutations, scheme affine32)."""
    from datasketch import MinHash

    return MinHash(seed=seed, hashvalues=signature.astype(np.uint32), scheme=SCHEME)


def exact_keys(texts: Sequence[str]) -> np.ndarray:
    """(n, 2) uint64: the 128-bit xxh3 hash of each (normalized) text."""
    out = np.empty((len(texts), 2), dtype=np.uint64)
    for i, t in enumerate(texts):
        d = xxhash.xxh3_128_intdigest(t.encode("utf-8", "surrogatepass"))
        out[i, 0] = d >> 64
        out[i, 1] = d & 0xFFFFFFFFFFFFFFFF
    return out
