"""The interface every heuristic filter implements: a batch of texts in, one decision per text out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence


@dataclass
class FilterResult:
    """Decisions for one batch.

    reasons[i] is None when text i passes, else the first failing rule as
    "<filter name>:<rule>" (e.g. "gopher_quality:word_count"), the `drop_reason` written to
    `rejected/`. texts is None unless the filter rewrites text (C4 drops lines, as the reference does);
    then texts[i] is the new text of every passing document (and the input text otherwise).
    """

    reasons: list[str | None]
    texts: list[str] | None = None


class BatchFilter(Protocol):
    """A heuristic filter. Implementations are dataclasses whose fields are the rule thresholds,
    defaulting to the published values, so a job spec's options map onto them one to one."""

    name: str

    def __call__(self, texts: Sequence[str], langs: Sequence[str | None]) -> FilterResult: ...
