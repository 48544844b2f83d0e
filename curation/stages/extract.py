"""Main text out of the HTML of WARC rows (filters/html_extract.py); other inputs pass through."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyarrow as pa
from pydantic import Field, model_validator

from curation.specbase import Strict
from curation.stages.base import Resources, Stage, alive_mask, with_reasons, with_texts


class ExtractSpec(Strict):
    """HTML to main text for WARC inputs (filters/html_extract.py); other inputs pass through."""

    extractor: Literal["trafilatura", "resiliparse"] = Field(
        "trafilatura", description="trafilatura (better main text) or resiliparse (about 10x faster)"
    )

    @model_validator(mode="after")
    def _installed(self) -> "ExtractSpec":
        import importlib.util

        needed = {"trafilatura": "trafilatura", "resiliparse": "resiliparse"}[self.extractor]
        if importlib.util.find_spec(needed) is None:
            raise ValueError(f"extractor {self.extractor} needs {needed}: pip install 'corpus-curation[warc]'")
        return self


class Extract(Stage):
    """Rows with a `content_type` column (WARC): an HTTP status outside 2xx drops the row as
    `extract:http_status`, content that is neither HTML nor plain text as `extract:not_html`, a page with no
    main text as `extract:empty`."""

    name = "extract"
    spec_model = ExtractSpec
    resources = Resources(pool="language")
    drop_reasons = ("extract:http_status", "extract:not_html", "extract:empty")
    description = "HTML to main text (trafilatura or resiliparse)"

    def setup(self) -> None:
        from filters.html_extract import load_extractor

        self.extractor = load_extractor(self.spec.extractor)

    def process(self, table: pa.Table) -> pa.Table:
        if "content_type" not in table.column_names:
            return table
        from filters.html_extract import is_html

        texts = table["text"].to_pylist()
        reasons = table["drop_reason"].to_pylist()
        types = table["content_type"].to_pylist()
        status = table["http_status"].to_pylist()
        for i in np.flatnonzero(alive_mask(table)):
            if status[i] is not None and not 200 <= status[i] < 300:
                reasons[i] = "extract:http_status"
            elif (types[i] or "").split(";")[0].strip().lower() == "text/plain":
                continue
            elif not is_html(types[i]):
                reasons[i] = "extract:not_html"
            else:
                texts[i] = self.extractor(texts[i]).strip()
                if not texts[i]:
                    reasons[i] = "extract:empty"
        return with_reasons(with_texts(table, texts), reasons)
