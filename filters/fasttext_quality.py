"""fastText quality classifiers: apply one to a batch of texts, or train one from labelled texts.

A model trained here has the labels ``__label__hq`` / ``__label__lq``; its score is P(hq). Models from
elsewhere work too: DCLM's (``__label__hq`` / ``__label__cc``) with the default positive label, others by
naming theirs. Models whose labels are all numbers (``__label__0`` .. ``__label__5``, what distillation
trains on a scorer's grades) score as the expected grade, sum(p_k * k).
"""

from __future__ import annotations

import json
import os
import random
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

POSITIVE_LABEL = "__label__hq"
NEGATIVE_LABEL = "__label__lq"
# fastText sees one line per document; past a few thousand words the prediction no longer moves,
# and a huge document would cost time for nothing.
MAX_CHARS = 20_000


def prepare(text: str, max_chars: int = MAX_CHARS) -> str:
    """One lower-cased line of whitespace-separated tokens: what the classifiers train and predict on."""
    return " ".join(text[:max_chars].lower().split())


def load_fasttext(path: str | os.PathLike):
    """A fastText model, with a clear error for a missing or unreadable file."""
    import fasttext

    path = str(Path(path).expanduser())
    if not Path(path).is_file():
        raise FileNotFoundError(f"fastText model not found: {path}")
    fasttext.FastText.eprint = lambda *_: None  # load_model's deprecation notice on every actor
    try:
        return fasttext.load_model(path)
    except ValueError as exc:
        raise ValueError(f"{path} is not a fastText model ({exc})") from exc


class FastTextScorer:
    """Scores texts with a fastText classifier: P(positive label), or the expected grade of a graded model."""

    def __init__(self, path: str | os.PathLike, positive_label: str | None = None, max_chars: int = MAX_CHARS):
        self.model = load_fasttext(path)
        self.max_chars = max_chars
        labels = list(self.model.get_labels())
        self.labels = labels
        names = [lab.removeprefix("__label__") for lab in labels]
        self.grades: dict[str, float] | None = None
        if positive_label is None and all(_is_number(n) for n in names):
            self.grades = {lab: float(n) for lab, n in zip(labels, names)}
            self.positive = None
        else:
            positive = positive_label or POSITIVE_LABEL
            if not positive.startswith("__label__"):
                positive = "__label__" + positive
            if positive not in labels:
                raise ValueError(
                    f"{path}: no label {positive} (the model has {', '.join(labels)}); "
                    "name the positive one with positive_label"
                )
            self.positive = positive

    def scores(self, texts: Sequence[str | None]) -> np.ndarray:
        """One float per text (NaN for a missing text)."""
        out = np.full(len(texts), np.nan, dtype=np.float32)
        idx = [i for i, t in enumerate(texts) if t is not None]
        if not idx:
            return out
        labels, probs = self.model.predict([prepare(texts[i] or "", self.max_chars) for i in idx], k=-1)
        if self.grades is not None:
            grades = self.grades
            out[idx] = [sum(grades[lab] * p for lab, p in zip(ls, ps)) for ls, ps in zip(labels, probs)]
        else:
            pos = self.positive
            assert pos is not None  # set whenever grades is None
            out[idx] = [_prob_of(pos, ls, ps) for ls, ps in zip(labels, probs)]
        return out


def _prob_of(label: str, labels: Sequence[str], probs: Sequence[float]) -> float:
    for lab, p in zip(labels, probs):
        if lab == label:
            return min(1.0, float(p))  # fastText's softmax can round just above 1
    return 0.0


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


@dataclass
class TrainParams:
    """fastText supervised-training settings: word bigrams as DCLM, more epochs and a higher rate for the
    thousands (not millions) of documents a quality set usually has, and 200k hash buckets for the
    bigrams instead of fastText's 2M, so a model is ~50 MB instead of ~500 MB (64 dimensions)."""

    epoch: int = 20
    lr: float = 0.5
    word_ngrams: int = 2
    dim: int = 64
    min_count: int = 2
    bucket: int = 200_000
    minn: int = 0  # character n-grams (0: none, fastText's supervised default)
    maxn: int = 0
    threads: int = 1  # fastText is only deterministic on one thread
    seed: int = 0


_TRAIN_CHILD = """
import json, sys
import fasttext
path, output, kwargs = json.loads(sys.argv[1])
try:
    fasttext.train_supervised(input=path, verbose=0, **kwargs).save_model(output)
except RuntimeError as exc:
    print(exc)
    sys.exit(3)
"""


def train_fasttext(
    texts: Sequence[str], labels: Sequence[str], output: str | os.PathLike, params: TrainParams | None = None
) -> None:
    """Train a supervised fastText model on (text, label) pairs and save it to `output`. `params.lr`
    ends as the rate actually used (lowered if training diverged).

    Each training runs in a fresh Python process: once one training in a process has hit fastText's
    "Encountered NaN", every later one in that process does too (measured with fasttext-numpy2-wheel
    0.9.2: the first training of a process never did, later ones often), so a process is used once."""
    import subprocess
    import sys

    params = params or TrainParams()
    order = list(range(len(texts)))
    random.Random(params.seed).shuffle(order)  # fastText reads its file in order; mix the classes
    fd, path = tempfile.mkstemp(suffix=".txt", prefix="fasttext-train-")
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for i in order:
                label = labels[i] if labels[i].startswith("__label__") else "__label__" + labels[i]
                f.write(f"{label} {prepare(texts[i])}\n")
        # A rate too high for the data also diverges: halve it and try again, twice, then say so.
        for attempt in range(3):
            kwargs = dict(
                epoch=params.epoch,
                lr=params.lr,
                wordNgrams=params.word_ngrams,
                dim=params.dim,
                minCount=params.min_count,
                bucket=params.bucket,
                thread=params.threads,
                seed=params.seed,
                minn=params.minn,
                maxn=params.maxn,
            )
            run = subprocess.run(
                [sys.executable, "-c", _TRAIN_CHILD, json.dumps([path, str(output), kwargs])],
                capture_output=True,
                text=True,
            )
            if run.returncode == 0:
                return
            if run.returncode != 3:
                raise RuntimeError(f"fastText training failed: {run.stderr.strip()[-2000:]}")
            if attempt == 2:
                raise ValueError(
                    f"fastText training diverged ({run.stdout.strip()}) down to learning rate "
                    f"{params.lr}; use a lower --lr or more varied training text"
                )
            params.lr /= 2
    finally:
        os.unlink(path)


def is_test_group(group: str, test_fraction: float, seed: int = 0) -> bool:
    """Whether a group (a page, a source file...) is held out: a hash, so the split is stable and every
    document of a group lands on the same side."""
    return zlib.crc32(f"{seed}:{group}".encode()) % 10_000 < test_fraction * 10_000
