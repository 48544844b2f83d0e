"""URL filtering for inputs with a `url` column (WARC): block lists, allow lists, patterns (filters/urls.py)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from pydantic import Field, field_validator

from curation.specbase import Strict, local_file_error
from curation.stages.base import Resources, Stage, alive_mask, with_reasons


class UrlsSpec(Strict):
    """URL filtering for inputs with a `url` column (WARC); see filters/urls.py."""

    block_domains: list[str] = Field(default_factory=list, description="block-list files (domains, subdomains too)")
    allow_domains: list[str] | None = Field(None, description="allow-list files: when given, only these domains")
    block_patterns: list[str] = Field(default_factory=list, description="regular expressions searched in the URL")

    @field_validator("block_patterns")
    @classmethod
    def _compiles(cls, v: list[str]) -> list[str]:
        import re

        for p in v:
            try:
                re.compile(p)
            except re.error as e:
                raise ValueError(f"{p!r} is not a valid regular expression: {e}") from None
        return v

    @field_validator("block_domains", "allow_domains")
    @classmethod
    def _files_exist(cls, v: list[str] | None) -> list[str] | None:
        for path in v or []:
            if err := local_file_error(path, "domain list"):
                raise ValueError(err)
        return v


class Urls(Stage):
    """Rows whose `url` is on a block list, off the allow list or matches a pattern are dropped; rows
    without a URL pass. Before extraction: a blocked page is not worth extracting."""

    name = "urls"
    spec_model = UrlsSpec
    resources = Resources(pool="language", model=False)
    drop_reasons = ("url:blocked_domain", "url:not_allowed", "url:pattern")
    description = "drop pages by domain lists and URL patterns"

    def reads(self) -> list[tuple[str, str]]:
        return [(f"block_domains.{i}", p) for i, p in enumerate(self.spec.block_domains)] + [
            (f"allow_domains.{i}", p) for i, p in enumerate(self.spec.allow_domains or [])
        ]

    def funnel(self) -> list[str]:
        return ["url"]  # the reasons' prefix

    def setup(self) -> None:
        from filters.urls import UrlFilter, read_domain_list

        st = self.spec
        block = frozenset().union(*(read_domain_list(p) for p in st.block_domains))
        allow = (
            frozenset().union(*(read_domain_list(p) for p in st.allow_domains))
            if st.allow_domains is not None
            else None
        )
        self.url_filter = UrlFilter(block, allow, st.block_patterns)

    def process(self, table: pa.Table) -> pa.Table:
        if "url" not in table.column_names:
            return table
        found = table["url"].to_pylist()
        reasons = table["drop_reason"].to_pylist()
        for i in np.flatnonzero(alive_mask(table)):
            reasons[i] = self.url_filter.check(found[i]) or reasons[i]
        return with_reasons(table, reasons)
