"""Benchmark decontamination (filters/decontam.py): documents sharing an n-gram with a test item."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pyarrow as pa
from pydantic import Field, field_validator

from curation.specbase import Strict, checked_names
from curation.stages.base import Resources, Stage, alive_mask, set_column, with_reasons


class BenchmarkSpec(Strict):
    path: str = Field(description="JSONL (plain/.gz/.zst) or Parquet file(s) of the benchmark's test items; globs")
    text_field: str = Field("text", description="the field holding an item's text")


class DecontamSpec(Strict):
    """Benchmark decontamination (filters/decontam.py): documents sharing an n-gram with a test item."""

    benchmarks: dict[str, BenchmarkSpec] = Field(
        min_length=1, description="NAME -> test items; drops are decontam:NAME"
    )
    ngram: int = Field(13, ge=5, le=50, description="n-gram length in words (characters for unspaced scripts)")
    min_item_units: int = Field(13, ge=1, description="shorter items are skipped (they match common phrases)")
    action: Literal["drop", "flag"] = Field(
        "drop", description="drop: reason decontam:NAME; flag: kept, with the benchmarks in `contaminated_by`"
    )

    @field_validator("benchmarks")
    @classmethod
    def _names(cls, v: dict[str, BenchmarkSpec]) -> dict[str, BenchmarkSpec]:
        return checked_names(v, r"[a-z0-9_\-]{1,40}", "benchmark names must be lower-case letters, digits, _ and -")


def build_decontaminator(spec: DecontamSpec) -> Any:
    """The benchmarks' n-gram indexes, read with the job's own readers (unreadable items are skipped)."""
    from curation.train_quality import iter_texts
    from filters.decontam import BenchmarkIndex, Decontaminator

    indexes = []
    for name, b in spec.benchmarks.items():
        ix = BenchmarkIndex(name, spec.ngram, spec.min_item_units)
        ix.add_items(t for t, _ in iter_texts([b.path], b.text_field))
        indexes.append(ix)
    return Decontaminator(indexes)


class Decontam(Stage):
    """Surviving rows that share an n-gram with a benchmark item: dropped as `decontam:NAME` (the first
    benchmark hit), or kept with `contaminated_by` listing the benchmarks (action: flag)."""

    name = "decontam"
    spec_model = DecontamSpec
    resources = Resources(pool="quality")
    adds = ("contaminated_by",)
    drop_reasons = ("decontam:NAME",)
    description = "drop (or flag) documents that share an n-gram with a benchmark's test items"

    def reads(self) -> list[tuple[str, str]]:
        return [(f"benchmarks.{n}.path", b.path) for n, b in self.spec.benchmarks.items()]

    def setup(self) -> None:
        self.decontaminator = build_decontaminator(self.spec)

    def process(self, table: pa.Table) -> pa.Table:
        texts = table["text"].to_pylist()
        reasons = table["drop_reason"].to_pylist()
        flagged: list[str | None] = [None] * len(texts)
        for i in np.flatnonzero(alive_mask(table)):
            hits = self.decontaminator.hits(texts[i])
            if hits:
                if self.spec.action == "drop":
                    reasons[i] = f"decontam:{hits[0]}"
                else:
                    flagged[i] = ",".join(hits)
        if self.spec.action == "flag":
            table = set_column(table, "contaminated_by", flagged, pa.string())
        return with_reasons(table, reasons)
