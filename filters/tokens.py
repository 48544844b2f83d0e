"""Segment once: the tokens of a batch, computed by the first filter that needs them and shared by the rest.

Gopher quality, Gopher repetition and FineWeb each segmented every document again (together about 2.5
passes of the word regex, most of their time). `batch_tokens(texts, langs)` returns the tokens of
`segmentation.tokenize` for a whole batch as arrays (filters/kernels.py's compiled pass): per token the
xxh3_64 of its text as written, its length in code points and whether it is a symbol (every character in
Gopher's SYMBOL_CHARS) or has a letter; per document an offset. It keeps the last batch it computed, so a
later filter handed the same text objects (the stage passes the survivors of the filter before) gathers
their rows instead of segmenting again; a text rewritten in between (C4 drops lines) is segmented anew.

None where the kernels are not built or a document's language has a registered segmenter: the filters
then take their per-document Python path, with the same decisions.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from filters.kernels import T_LETTER, T_SYMBOL, kernels
from filters.kernels import tokens as kernel_tokens
from filters.segmentation import tokenize_mode


@dataclass
class TokenBatch:
    """Tokens of n documents: document i's are rows offsets[i]:offsets[i + 1]."""

    hashes: np.ndarray  # uint64
    lengths: np.ndarray  # uint32
    flags: np.ndarray  # uint8, T_SYMBOL | T_LETTER
    offsets: np.ndarray  # int64, n + 1

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def per_doc(self, values: np.ndarray) -> np.ndarray:
        """The sum of a per-token array over each document's tokens (int64)."""
        cs = np.zeros(len(values) + 1, dtype=np.int64)
        np.cumsum(values, out=cs[1:])
        return cs[self.offsets[1:]] - cs[self.offsets[:-1]]

    @property
    def n_tokens(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def is_symbol(self) -> np.ndarray:
        return (self.flags & T_SYMBOL) != 0

    @property
    def has_letter(self) -> np.ndarray:
        return (self.flags & T_LETTER) != 0

    def take(self, rows: Sequence[int] | np.ndarray) -> TokenBatch:
        """The documents `rows`, in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        starts, ends = self.offsets[rows], self.offsets[rows + 1]
        sizes = ends - starts
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        at = np.repeat(starts - offsets[:-1], sizes) + np.arange(offsets[-1], dtype=np.int64)
        return TokenBatch(self.hashes[at], self.lengths[at], self.flags[at], offsets)

    @staticmethod
    def concat(parts: Sequence[TokenBatch]) -> TokenBatch:
        shift = np.cumsum([0] + [p.offsets[-1] for p in parts[:-1]])
        offsets = np.concatenate([parts[0].offsets[:1]] + [p.offsets[1:] + s for p, s in zip(parts, shift)])
        return TokenBatch(
            np.concatenate([p.hashes for p in parts]),
            np.concatenate([p.lengths for p in parts]),
            np.concatenate([p.flags for p in parts]),
            offsets,
        )


def _segment(texts: list[str], modes: list[int]) -> TokenBatch:
    got = kernel_tokens(list(texts), [bool(m) for m in modes])
    assert got is not None
    return TokenBatch(*got)


class _Last(threading.local):
    """The last batch segmented (per thread: a Ray actor may run batches on several)."""

    texts: list[str] | None = None
    modes: list[int] | None = None
    batch: TokenBatch | None = None
    row: dict[int, int] | None = None


_last = _Last()


def batch_tokens(texts: Sequence[str], langs: Sequence[str | None]) -> TokenBatch | None:
    """The tokens of `texts` (each with its language's segmentation), or None (see the module docstring)."""
    if kernels() is None:
        return None
    modes = [tokenize_mode(lang) for lang in langs]
    if None in modes:
        return None
    m = [int(x) for x in modes if x is not None]
    last = _last
    if last.row is not None and last.texts is not None and last.modes is not None and last.batch is not None:
        found = [last.row.get(id(t), -1) for t in texts]
        rows = [
            r if r >= 0 and last.texts[r] is t and last.modes[r] == mode else -1 for r, t, mode in zip(found, texts, m)
        ]
        missing = [i for i, r in enumerate(rows) if r < 0]
        if len(missing) <= len(texts) // 2:  # most of them segmented already (else: a new batch)
            if not missing:
                return last.batch.take(rows)
            fresh = _segment([texts[i] for i in missing], [m[i] for i in missing])
            pool = TokenBatch.concat([last.batch, fresh])
            base = len(last.batch)
            for j, i in enumerate(missing):
                rows[i] = base + j
            return pool.take(rows)
    batch = _segment(list(texts), m)
    last.texts, last.modes, last.batch = list(texts), m, batch
    last.row = {id(t): i for i, t in enumerate(last.texts)}
    return batch
