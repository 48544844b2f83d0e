"""Language identification with fastText (lid.176.ftz by default, bundled as package data).

The model is loaded once per process (once per Ray actor); prediction runs on a whole batch in one
call into fastText's C++ code. Long documents are sampled (the first chunk and one from the
middle): a boilerplate header alone would mislabel a page, and predicting on megabytes wastes time.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Sequence

import numpy as np
import regex

_KANA = regex.compile(r"[\p{Hiragana}\p{Katakana}]")
_HAN = regex.compile(r"\p{Han}")

BUNDLED_MODEL = "lid.176.ftz"


def bundled_model_path() -> Path:
    """Path of the bundled lid.176.ftz (CC BY-SA 3.0, see filters/models/NOTICE.md)."""
    return Path(str(resources.files("filters") / "models" / BUNDLED_MODEL))


def sample_text(text: str, sample_chars: int) -> str:
    """What the model sees: newlines folded (fastText predicts one line), long texts sampled."""
    if len(text) > sample_chars:
        half = sample_chars // 2
        mid = len(text) // 2
        text = text[:half] + " " + text[mid:mid + half]
    return text.replace("\n", " ").replace("\r", " ")


class LanguageIdentifier:
    """fastText language ID over batches: labels (ISO 639 codes as the model names them) and scores."""

    def __init__(self, model_path: str | Path | None = None, sample_chars: int = 2000):
        import fasttext

        path = Path(model_path) if model_path else bundled_model_path()
        if not path.is_file():
            raise FileNotFoundError(f"language-ID model not found: {path}")
        fasttext.FastText.eprint = lambda *a, **k: None  # silence the load-time warning per actor
        self.model = fasttext.load_model(str(path))
        self.model_path = str(path)
        self.sample_chars = sample_chars

    def predict(self, texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
        if not texts:
            return [], np.zeros(0, dtype=np.float32)
        labels, scores = self.model.predict([sample_text(t, self.sample_chars) for t in texts], k=1)
        langs = [lab[0].removeprefix("__label__") if lab else "und" for lab in labels]
        for i, lang in enumerate(langs):
            # lid.176 calls short Chinese passages Japanese; Japanese prose without any kana does
            # not occur, so a Han-only "ja" text is Chinese.
            if lang == "ja" and not _KANA.search(texts[i]) and _HAN.search(texts[i]):
                langs[i] = "zh"
        # fastText's softmax can overshoot 1.0 by a hair; keep scores probabilities.
        score = np.clip(np.array([s[0] if len(s) else 0.0 for s in scores], dtype=np.float32), 0.0, 1.0)
        return langs, score
