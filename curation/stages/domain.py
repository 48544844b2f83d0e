"""Domain tagging (web / code / math / other) with a fastText model (filters/domain.py)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from pydantic import Field, field_validator

from curation.specbase import Strict, local_file_error
from curation.stages.base import Resources, Stage, set_column, values


class DomainSpec(Strict):
    """Domain tagging (web / code / math / other) with a fastText model; see filters/domain.py."""

    model: str | None = Field(None, description="fastText domain model; default: the bundled filters/models/domain.ftz")
    min_score: float = Field(0.5, ge=0.0, le=1.0, description="below this the document is tagged `other`")
    retag: list[str] = Field(
        default_factory=lambda: ["web"],
        description="declared input domains the tag replaces (others are trusted as given)",
    )

    @field_validator("model")
    @classmethod
    def _model_exists(cls, v: str | None) -> str | None:
        if v is not None and (err := local_file_error(v, "domain model")):
            raise ValueError(err)
        return v


class Domain(Stage):
    """`domain` from the tagger for parsed rows whose declared domain is in `retag` (default: web);
    `domain_score` is the tagger's confidence (null where the declared domain was kept). Before language
    ID: source code has no natural language to identify."""

    name = "domain"
    spec_model = DomainSpec
    resources = Resources(pool="language")
    adds = ("domain_score",)
    description = "tag documents web / code / math / other with a fastText model"

    def reads(self) -> list[tuple[str, str]]:
        return [("model", self.spec.model)] if self.spec.model else []

    def setup(self) -> None:
        from filters.domain import DomainTagger

        self.tagger = DomainTagger(self.spec.model, self.spec.min_score)

    def process(self, table: pa.Table) -> pa.Table:
        texts = table["text"].to_pylist()
        declared = values(table, "domain", "web")
        retag = set(self.spec.retag)
        idx = [i for i, t in enumerate(texts) if t is not None and declared[i] in retag]
        scores = np.full(len(texts), np.nan, dtype=np.float32)
        if idx:
            tags, sc = self.tagger.tag([texts[i] for i in idx])
            for j, i in enumerate(idx):
                declared[i] = tags[j]
            scores[idx] = sc
        table = set_column(table, "domain", declared, pa.string())
        return set_column(table, "domain_score", pa.array(scores, mask=np.isnan(scores)), pa.float32())
