"""Quality scorers by job-spec name (`stages.quality.classifiers.NAME.scorer`): fastText built in, then plugins.

A scorer turns a batch of texts into one float each; the quality stage writes it to `quality_NAME`, applies
the classifier's thresholds (`min_score`, per language and domain, `keep_top_fraction`) and can rank
duplicate clusters by it (`dedup_keep`), whatever model computes it. A package registers one with an entry
point in the group `corpus_curation.scorers` (`toxicity = "my_pkg.scoring:Toxicity"`); the entry point's
name is the `scorer:` value in a spec and must equal the class's `name`.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict

SCORER_GROUP = "corpus_curation.scorers"


class NoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Scorer:
    """Base of the quality scorers.

    - `name`: the `scorer:` value in a spec.
    - `options_model`: a pydantic model of its `options:` (validated when the spec is, unknown keys are
      errors naming `stages.quality.classifiers.NAME.options.KEY`).
    - `needs_model`: whether `model:` (a file, checked like every model path) is required.
    - `reads(options)`: other files it opens, as (option key, path): the service checks them against its
      roots at submission.
    - `setup()` loads what it needs, once per worker; `scores(texts)` is the batch rule (NaN for None).
    """

    name: ClassVar[str]
    options_model: ClassVar[type[BaseModel]] = NoOptions
    needs_model: ClassVar[bool] = True
    description: ClassVar[str] = ""

    def __init__(self, model: str | None, options: Any) -> None:
        self.model, self.options = model, options

    @classmethod
    def reads(cls, options: Any) -> list[tuple[str, str]]:
        return []

    def setup(self) -> None:
        pass

    def scores(self, texts: Sequence[str | None]) -> np.ndarray:
        raise NotImplementedError


class FastTextOptions(NoOptions):
    positive_label: str | None = None


class FastText(Scorer):
    """A fastText classifier: P(positive label), or the expected grade of a model with numeric labels."""

    name = "fasttext"
    options_model = FastTextOptions
    description = "fastText classifier (curate train-quality, curate distill-quality, DCLM's)"

    def setup(self) -> None:
        from filters.fasttext_quality import FastTextScorer

        assert self.model is not None
        self._scorer = FastTextScorer(self.model, self.options.positive_label)

    def scores(self, texts: Sequence[str | None]) -> np.ndarray:
        return self._scorer.scores(texts)


def builtin_scorers() -> dict[str, type[Scorer]]:
    return {FastText.name: FastText}


@functools.lru_cache(maxsize=1)
def all_scorers() -> dict[str, type[Scorer]]:
    """Every scorer a spec can name: built-in first, then plugins (a plugin may not reuse a built-in name)."""
    from filters.registry import load_entry_points

    out = builtin_scorers()
    for name, cls in load_entry_points(SCORER_GROUP, Scorer).items():
        if name in out:
            raise TypeError(f"scorer plugin {cls.__module__}.{cls.__qualname__} reuses the built-in name {name!r}")
        out[name] = cls
    return out
