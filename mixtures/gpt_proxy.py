"""A tiny byte-level causal transformer as a mixture proxy (PyTorch, optional: `pip install torch`).

About 0.1M parameters by default (2 layers, width 64, context 64), trained for one pass over
`train_bytes` bytes of windows drawn from the proxy's training set (about 1,000 steps of 16 windows for
1 MB), on one CPU core in about 15 s, or on a GPU when one is there. Deterministic for a seed on the CPU (one thread, deterministic algorithms).
Loss is bits per byte on the target, like the n-gram proxy, so the two are interchangeable in a swarm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from mixtures.proxy import _join


@dataclass
class TinyGPT:
    d_model: int = 64
    layers: int = 2
    heads: int = 2
    context: int = 64
    batch: int = 16
    train_bytes: int = 1_000_000
    lr: float = 1e-2
    eval_bytes: int = 200_000  # per target group
    seed: int = 0
    device: str = "auto"

    def _model(self, torch):
        nn = torch.nn

        class Block(nn.Module):
            def __init__(s, d: int, h: int):
                super().__init__()
                s.ln1, s.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
                s.attn = nn.MultiheadAttention(d, h, batch_first=True)
                s.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

            def forward(s, x, mask):
                a = s.ln1(x)
                x = x + s.attn(a, a, a, attn_mask=mask, need_weights=False)[0]
                return x + s.mlp(s.ln2(x))

        class GPT(nn.Module):
            def __init__(s):
                super().__init__()
                s.tok = nn.Embedding(256, self.d_model)
                s.pos = nn.Embedding(self.context, self.d_model)
                s.blocks = nn.ModuleList(Block(self.d_model, self.heads) for _ in range(self.layers))
                s.ln = nn.LayerNorm(self.d_model)
                s.head = nn.Linear(self.d_model, 256, bias=False)
                s.head.weight = s.tok.weight  # tied, as GPT-2

            def forward(s, idx):
                t = idx.shape[1]
                x = s.tok(idx) + s.pos(torch.arange(t, device=idx.device))
                mask = torch.triu(torch.ones(t, t, dtype=torch.bool, device=idx.device), 1)
                for b in s.blocks:
                    x = b(x, mask)
                return s.head(s.ln(x))

        return GPT()

    def _torch(self):
        try:
            import torch
        except ImportError as exc:
            raise ImportError("the gpt proxy needs PyTorch: pip install torch (or use proxy: ngram)") from exc
        return torch

    def fit(self, docs: Sequence[bytes]) -> "TinyGPT":
        torch = self._torch()
        dev = ("cuda" if torch.cuda.is_available() else "cpu") if self.device == "auto" else self.device
        if dev == "cpu":
            torch.set_num_threads(1)
            torch.use_deterministic_algorithms(True)
        torch.manual_seed(self.seed)
        data = _join(docs)
        if len(data) <= self.context + 1:
            raise ValueError(f"{len(data)} training bytes: fewer than one context window")
        self.dev, self.torch = dev, torch
        self.net = self._model(torch).to(dev)
        opt = torch.optim.AdamW(self.net.parameters(), lr=self.lr, weight_decay=0.01)
        steps = max(1, self.train_bytes // (self.batch * self.context))
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min(1.0, (s + 1) / 20) * 0.5 * (1 + math.cos(math.pi * s / steps))
        )
        rng = np.random.default_rng(self.seed)
        x_all = torch.from_numpy(data.astype(np.int64))
        for _ in range(steps):
            starts = torch.from_numpy(rng.integers(0, len(data) - self.context - 1, self.batch))
            idx = starts[:, None] + torch.arange(self.context + 1)
            chunk = x_all[idx].to(dev)
            logits = self.net(chunk[:, :-1])
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 256), chunk[:, 1:].reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        return self

    def loss(self, docs: Sequence[bytes]) -> float:
        """Bits per byte on `docs` (the first `eval_bytes`), predicted in non-overlapping windows."""
        torch = self.torch
        data = _join(docs)[: self.eval_bytes + 1]
        n = (len(data) - 1) // self.context
        if n == 0:
            return float("nan")
        x = torch.from_numpy(data[: n * self.context + 1].astype(np.int64))
        inp = x[:-1].reshape(n, self.context)
        tgt = x[1:].reshape(n, self.context)
        total = 0.0
        self.net.eval()
        with torch.no_grad():
            for i in range(0, n, 64):
                logits = self.net(inp[i : i + 64].to(self.dev))
                total += torch.nn.functional.cross_entropy(
                    logits.reshape(-1, 256), tgt[i : i + 64].reshape(-1).to(self.dev), reduction="sum"
                ).item()
        return total / (n * self.context) / math.log(2)
