"""One entry of a curate job's `inputs:`: where the records are, their format, and what they are."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from curation.io.instruction import InstructionSpec
from curation.specbase import Strict as _Strict


class InputSpec(_Strict):
    path: str = Field(description="file, folder or glob; local or s3:// / gs:// (pyarrow.fs)")
    format: str = Field(
        description="jsonl, parquet, text (one document per file), warc (WARC/WET), or a "
        "format an installed reader plugin registers (curation.io.formats)"
    )
    source: str = Field(description="a name for the records' origin: stats, mixture buckets and ids use it")
    domain: str = Field("web", description="web, code, math, books, ... (code and math get their own filters)")
    text_field: str = Field("text", description="the JSON field or Parquet column holding the text")
    url_field: str | None = Field(
        None,
        description="the JSON field or Parquet column holding each record's URL (jsonl, parquet): "
        "written as `url`, which stages.dedup.url dedups by (WARC inputs carry it already)",
    )
    id_field: str | None = Field(
        "id",
        description="the field holding the id; without one, an id is derived "
        "from source, file and position (stable across runs)",
    )
    max_records: int | None = Field(
        None,
        ge=1,
        description="read only the first this many records of each file (each split of a large one): a quick "
        "look at a big input, and the sample runs of `curate plan`",
    )
    sample_fraction: float | None = Field(
        None,
        gt=0,
        le=1,
        description="read a seeded share of each file's records (chosen by position; with max_records, "
        "until that many are kept)",
    )
    sample_seed: int = Field(0, description="the seed of sample_fraction")
    instruction: InstructionSpec | None = Field(
        None,
        description="JSONL instruction/chat records (messages, or prompt/response) rendered to text with "
        "a template (default ChatML); such an input's domain defaults to instruction",
    )

    @field_validator("format")
    @classmethod
    def _known_format(cls, v: str) -> str:
        import importlib.util

        from curation.io.formats import reader_for

        reader = reader_for(v)  # ValueError listing the known formats
        missing = [(m, req) for m, req in reader.requires if importlib.util.find_spec(m) is None]
        if missing:
            raise ValueError(
                f"format {v} needs {' and '.join(m for m, _ in missing)}: "
                f"pip install {' '.join(sorted({repr(r) for _, r in missing}))}"
            )
        return v

    @model_validator(mode="before")
    @classmethod
    def _instruction_domain(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("instruction") is not None and "domain" not in data:
            data = {**data, "domain": "instruction"}
        return data

    @model_validator(mode="after")
    def _instruction_format(self) -> "InputSpec":
        if self.instruction is not None and self.format != "jsonl":
            raise ValueError("instruction: records are read from JSONL inputs (format: jsonl)")
        if self.url_field is not None and self.format not in ("jsonl", "parquet"):
            raise ValueError(f"url_field: read from jsonl and parquet inputs; format {self.format} has its own")
        return self
