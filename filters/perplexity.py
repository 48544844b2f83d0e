"""Perplexity under a KenLM model the user provides (CCNet's way of scoring web text against Wikipedia).

Optional: needs the ``kenlm`` Python module (``pip install kenlm``, built from source) and a model file;
the job fails up front with that message when either is missing, and without
``stages.quality.perplexity`` nothing here is imported. Text is scored per line (as CCNet), lower-cased
with whitespace collapsed; a model trained on SentencePiece pieces wants the same tokenization applied
beforehand, which is the user's choice of model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np


class KenLMPerplexity:
    def __init__(self, model_path: str | Path):
        try:
            import kenlm
        except ImportError as exc:
            raise ImportError(
                "stages.quality.perplexity needs the kenlm module: pip install kenlm "
                f"(or leave the perplexity entry out) ({exc})"
            ) from exc
        if not Path(model_path).is_file():
            raise FileNotFoundError(f"KenLM model not found: {model_path}")
        self.model = kenlm.Model(str(model_path))

    def perplexity(self, text: str) -> float:
        log10, n_tokens = 0.0, 0
        for line in text.split("\n"):
            line = " ".join(line.lower().split())
            if line:
                log10 += self.model.score(line)
                n_tokens += len(line.split()) + 1  # </s>
        return float(10.0 ** (-log10 / n_tokens)) if n_tokens else float("nan")

    def scores(self, texts: Sequence[str | None]) -> np.ndarray:
        return np.array([self.perplexity(t) if t is not None else np.nan for t in texts], dtype=np.float32)
