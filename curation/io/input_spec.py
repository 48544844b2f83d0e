"""One entry of a curate job's `inputs:`: where the records are, their format, and what they are."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from curation.io.instruction import InstructionSpec
from curation.specbase import Strict as _Strict


class InputSpec(_Strict):
    path: str = Field(description="file, folder or glob; local or s3:// / gs:// (pyarrow.fs)")
    format: Literal["jsonl", "parquet", "text", "warc"]
    source: str
    domain: str = "web"
    text_field: str = "text"
    id_field: str | None = "id"
    instruction: InstructionSpec | None = Field(
        None, description="JSONL instruction/chat records (messages, or prompt/response) rendered to text with "
                          "a template (default ChatML); such an input's domain defaults to instruction")

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
        return self
