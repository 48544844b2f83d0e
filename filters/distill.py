"""Distil a slow, strong scorer into a fast fastText classifier (the FineWeb-Edu recipe).

1. Sample documents (reservoir sampling while streaming, so the corpus can be any size).
2. Score them with the strong scorer: any Python callable ``texts -> scores`` (``module:function``), or
   a local Hugging Face causal LM prompted for an educational-value grade (``hf:PATH``; GPU when there is
   one; needs the optional ``torch`` and ``transformers``).
3. Cut the scores into ``grades`` equal-width grades and train a fastText model on them; a model with
   numeric labels scores as its expected grade (filters/fasttext_quality.py), so its output is on the
   same ordinal scale as the scorer's.
4. Check it on held-out documents (Spearman correlation with the scorer, written beside the model) and
   apply it at scale as a `stages.quality.classifiers` entry.
"""

from __future__ import annotations

import importlib
import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from filters.fasttext_quality import FastTextScorer, TrainParams, is_test_group, train_fasttext
from filters.metrics import spearman

Scorer = Callable[[list[str]], Sequence[float]]

# FineWeb-Edu's additive prompt, shortened: the model answers with one digit, and the score is the
# expectation of that digit under the model's next-token distribution (not a sampled answer).
EDU_PROMPT = (
    "Below is an extract from a web page. Evaluate whether the page has high educational value and could be "
    "useful in an educational setting for teaching from primary school to grade school levels, on a scale "
    "from 0 (no educational value, e.g. advertisements, navigation, boilerplate) to 5 (outstanding, like a "
    "well-written textbook chapter).\n\nExtract: {text}\n\nEducational score (0-5): "
)


class HFCausalLMScorer:
    """Educational-value grades (0 to 5) from a local Hugging Face causal LM (a folder the user gives)."""

    def __init__(
        self,
        model_path: str,
        prompt: str = EDU_PROMPT,
        max_chars: int = 3000,
        batch_size: int = 8,
        device: str | None = None,
    ):
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:
            raise ImportError(
                f"hf: scorers need torch and transformers: pip install torch transformers ({exc})"
            ) from exc
        if not Path(model_path).is_dir():
            raise FileNotFoundError(f"Hugging Face model folder not found: {model_path}")
        self.torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(model_path, local_files_only=True)
        self.tokenizer.padding_side = "left"  # the next token follows the prompt's last token
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        self.model = AutoModelForCausalLM.from_pretrained(model_path, local_files_only=True, torch_dtype=dtype)
        self.model.to(self.device).eval()
        self.prompt, self.max_chars, self.batch_size = prompt, max_chars, batch_size
        ids = [self.tokenizer.encode(str(d), add_special_tokens=False) for d in range(6)]
        if any(len(i) != 1 for i in ids):
            raise ValueError(f"{model_path}: the digits 0-5 are not single tokens in this tokenizer")
        self.digit_ids = [i[0] for i in ids]

    def __call__(self, texts: list[str]) -> list[float]:
        torch = self.torch
        out: list[float] = []
        grades = torch.arange(6, dtype=torch.float32)
        for start in range(0, len(texts), self.batch_size):
            prompts = [self.prompt.format(text=t[: self.max_chars]) for t in texts[start : start + self.batch_size]]
            enc = self.tokenizer(prompts, return_tensors="pt", padding=True).to(self.device)
            with torch.no_grad():
                logits = self.model(**enc).logits[:, -1, :]
            p = torch.softmax(logits[:, self.digit_ids].float(), dim=-1).cpu()
            out += (p * grades).sum(dim=-1).tolist()
        return out


def load_scorer(ref: str) -> Scorer:
    """`module:function` (a callable, or a class built with no arguments) or `hf:MODEL_FOLDER`."""
    if ref.startswith("hf:"):
        return HFCausalLMScorer(ref[3:])
    module, _, name = ref.partition(":")
    if not module or not name:
        raise ValueError(f"scorer {ref!r}: expected module:function or hf:MODEL_FOLDER")
    obj = getattr(importlib.import_module(module), name)
    if isinstance(obj, type):
        obj = obj()
    if not callable(obj):
        raise ValueError(f"scorer {ref!r} is not callable")
    return obj


def reservoir_sample(items: Iterable, k: int, seed: int = 0) -> list:
    """k items drawn uniformly from a stream of unknown length (Algorithm R), in stream order."""
    rng = random.Random(seed)
    chosen: list[tuple[int, object]] = []
    for n, item in enumerate(items):
        if n < k:
            chosen.append((n, item))
        else:
            j = rng.randrange(n + 1)
            if j < k:
                chosen[j] = (n, item)
    return [item for _, item in sorted(chosen, key=lambda x: x[0])]


def score_all(scorer: Scorer, texts: list[str], batch_size: int = 64, log=print) -> tuple[np.ndarray, float]:
    """The scorer's scores for `texts` (batched, with progress) and its documents per second."""
    out: list[float] = []
    t0 = time.perf_counter()
    last = t0
    for start in range(0, len(texts), batch_size):
        batch = texts[start : start + batch_size]
        got = list(scorer(batch))
        if len(got) != len(batch):
            raise ValueError(f"the scorer returned {len(got)} scores for {len(batch)} documents")
        out += got
        if time.perf_counter() - last > 10:
            last = time.perf_counter()
            log(f"scored {len(out):,}/{len(texts):,} documents ({len(out) / (last - t0):.1f}/s)")
    scores = np.asarray(out, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(scores))
    if len(bad):
        raise ValueError(f"the scorer returned {len(bad)} non-finite scores (first for document {bad[0]})")
    return scores, len(texts) / max(time.perf_counter() - t0, 1e-9)


def to_grades(scores: np.ndarray, lo: float, hi: float, grades: int) -> np.ndarray:
    """Equal-width grades 0..grades-1 over [lo, hi] (clipped)."""
    if hi <= lo:
        return np.zeros(len(scores), dtype=np.int64)
    return np.clip(np.rint((scores - lo) / (hi - lo) * (grades - 1)), 0, grades - 1).astype(np.int64)


@dataclass
class DistillReport:
    spearman: float
    n_train: int
    n_test: int
    grades: int
    score_min: float
    score_max: float
    grade_counts: dict
    scorer: str
    scorer_docs_per_second: float
    student_docs_per_second: float
    params: dict
    seconds: float

    def line(self) -> str:
        return (
            f"held-out Spearman {self.spearman:.3f} between the scorer and the distilled classifier on "
            f"{self.n_test} documents (trained on {self.n_train}); scorer {self.scorer_docs_per_second:,.1f} "
            f"docs/s, classifier {self.student_docs_per_second:,.0f} docs/s"
        )


def distill(
    texts: Sequence[str],
    groups: Sequence[str],
    scorer: Scorer,
    output: str,
    *,
    scorer_name: str = "",
    grades: int = 6,
    test_fraction: float = 0.2,
    params: TrainParams | None = None,
    batch_size: int = 64,
    log=print,
) -> DistillReport:
    """Score `texts`, train the graded fastText model on the training groups, measure it on the others,
    and write `output` and `output + '.json'`."""
    t0 = time.perf_counter()
    params = params or TrainParams()
    texts = list(texts)
    if len(texts) < 10:
        raise ValueError(f"{len(texts)} documents to distil from: too few")
    log(f"scoring {len(texts):,} documents with {scorer_name or 'the scorer'}")
    scores, scorer_rate = score_all(scorer, texts, batch_size, log)
    test = np.array([is_test_group(g, test_fraction, params.seed) for g in groups])
    if test.all() or not test.any():
        raise ValueError("the split left no training or no held-out documents; sample more groups")
    lo, hi = float(scores[~test].min()), float(scores[~test].max())
    g = to_grades(scores, lo, hi, grades)
    train_idx, test_idx = np.flatnonzero(~test), np.flatnonzero(test)
    train_fasttext([texts[i] for i in train_idx], [str(x) for x in g[train_idx]], output, params)
    student = FastTextScorer(output)
    s0 = time.perf_counter()
    predicted = student.scores([texts[i] for i in test_idx])
    student_rate = len(test_idx) / max(time.perf_counter() - s0, 1e-9)
    rho = spearman(scores[test_idx], predicted)
    report = DistillReport(
        spearman=rho if math.isfinite(rho) else float("nan"),
        n_train=len(train_idx),
        n_test=len(test_idx),
        grades=grades,
        score_min=lo,
        score_max=hi,
        grade_counts={str(k): int(v) for k, v in zip(*np.unique(g[train_idx], return_counts=True))},
        scorer=scorer_name,
        scorer_docs_per_second=round(scorer_rate, 2),
        student_docs_per_second=round(student_rate, 1),
        params=asdict(params),
        seconds=round(time.perf_counter() - t0, 2),
    )
    Path(str(output) + ".json").write_text(json.dumps(asdict(report), indent=2) + "\n", encoding="utf-8")
    log(report.line())
    log(f"wrote {output} and {output}.json (grades 0-{grades - 1} = scores {lo:.3g} to {hi:.3g})")
    return report
