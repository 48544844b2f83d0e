"""Proxy language models for mixture ablations, behind one interface: train on bytes, report loss.

`ByteNgramLM` is a hashed byte n-gram model with hierarchical additive smoothing (each order backs off to
the one below it, with `beta` pseudo-counts): counting is a few numpy `bincount` passes, so one proxy on
a few MB trains and evaluates in a fraction of a second, and a swarm of hundreds of mixtures is cheap.
Loss is cross-entropy in bits per byte on the validation bytes. Written here because no maintained
package trains byte n-gram models on numpy arrays in-process (KenLM builds ARPA files through a binary).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

SEPARATOR = 0  # a NUL byte between documents: contexts never span two documents' text


class Proxy(Protocol):
    def fit(self, docs: Sequence[bytes]) -> "Proxy": ...

    def loss(self, docs: Sequence[bytes]) -> float: ...


def _join(docs: Sequence[bytes]) -> np.ndarray:
    if not docs:
        return np.zeros(0, dtype=np.int64)
    return np.frombuffer(b"\x00" + b"\x00".join(docs) + b"\x00", dtype=np.uint8).astype(np.int64)


@dataclass
class ByteNgramLM:
    """Byte n-gram LM: order-n contexts hashed into 2**log2_buckets counters per order."""

    order: int = 4
    log2_buckets: int = 22
    beta: float = 2.0

    def _context_hashes(self, x: np.ndarray) -> list[np.ndarray]:
        """For each context length k = 1..order-1, a hash of the k bytes before each position."""
        out = []
        h = np.zeros(len(x), dtype=np.int64)
        for k in range(1, self.order):
            prev = np.zeros(len(x), dtype=np.int64)
            prev[k:] = x[:-k] if k < len(x) else prev[k:]
            h = (h * 1_000_003 + prev + 1) & 0x7FFF_FFFF_FFFF
            out.append(h.copy())
        return out

    def fit(self, docs: Sequence[bytes]) -> "ByteNgramLM":
        x = _join(docs)
        size = 1 << self.log2_buckets
        mask = size - 1
        self.unigram = np.bincount(x, minlength=256).astype(np.float64)
        self.total = float(self.unigram.sum())
        self.joint, self.context = [], []
        for h in self._context_hashes(x):
            self.joint.append(np.bincount(((h * 257 + x) * 0x9E3779B1) & mask, minlength=size).astype(np.float32))
            self.context.append(np.bincount((h * 0x9E3779B1) & mask, minlength=size).astype(np.float32))
        return self

    def loss(self, docs: Sequence[bytes]) -> float:
        """Bits per byte on `docs` (the separators are not scored)."""
        x = _join(docs)
        if len(x) == 0:
            return float("nan")
        mask = (1 << self.log2_buckets) - 1
        p = (self.unigram[x] + 1.0) / (self.total + 256.0)
        for h, joint, context in zip(self._context_hashes(x), self.joint, self.context):
            c_joint = joint[((h * 257 + x) * 0x9E3779B1) & mask]
            c_ctx = context[(h * 0x9E3779B1) & mask]
            p = (c_joint + self.beta * p) / (c_ctx + self.beta)
        scored = x != SEPARATOR
        return float(-np.log2(p[scored]).mean())


PROXIES = {"ngram": ByteNgramLM}
