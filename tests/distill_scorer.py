"""A scorer for `curate distill-quality --scorer tests.distill_scorer:TeacherScorer` in the tests: a
fastText model (trained by the test, path in CURATION_TEST_TEACHER) that scores P(main text)."""

from __future__ import annotations

import os

from filters.fasttext_quality import FastTextScorer


class TeacherScorer:
    def __init__(self) -> None:
        self.model = FastTextScorer(os.environ["CURATION_TEST_TEACHER"])

    def __call__(self, texts: list[str]) -> list[float]:
        return self.model.scores(texts).tolist()
