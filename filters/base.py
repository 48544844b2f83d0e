"""What every heuristic filter is: a base class that owns the batch loop, and the result of a batch.

A filter is a dataclass subclass of `Filter` whose fields are its rule thresholds (defaulting to the
published values, so a job spec's options map onto them one to one and are validated by them); it writes
only `check(text, lang)`, the rule for one document. The stage that runs filters (curation/stages/filters.py)
owns the rest: which rows each filter sees (`domains`), timings, and the drop reasons in `stats.json`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Sequence


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


@dataclass(frozen=True)
class Measure:
    """What one rule measured on one document, for the samples of what each rule removed and the threshold
    sweeps: the value, the threshold it was held to, and the side that drops (`drops_when` "<": the
    document goes when value < threshold; ">": when above). A yes/no rule (a page with "lorem ipsum")
    has value and threshold None."""

    value: float | None
    threshold: float | None
    drops_when: str | None = None


class Filter:
    """Base of the heuristic filters (built in and plugins).

    - `name`: its key under `stages.filters` and the prefix of its drop reasons ("NAME:rule").
    - `domains`: the document domains it applies to; None (the web filters) means every domain that no
      registered filter claims for itself (code and math have rules of their own).
    - `rewrites`: `check` returns (reason, new text) instead of a reason.
    - `reasons`: the reasons it can give, for docs and reports.
    """

    name: ClassVar[str]
    domains: ClassVar[frozenset[str] | None] = None
    rewrites: ClassVar[bool] = False
    reasons: ClassVar[tuple[str, ...]] = ()

    def check(self, text: str, lang: str | None = None):  # -> str | None, or (str | None, str) when rewriting
        raise NotImplementedError

    def explain(self, text: str, lang: str | None, reason: str) -> Measure | None:
        """The value and threshold behind `reason` for a document this filter dropped with it (the text it
        saw). Runs only on the few documents a job samples, so it may recompute what `check` measured;
        None where the filter does not say."""
        return None

    def __call__(self, texts: Sequence[str], langs: Sequence[str | None]) -> FilterResult:
        check = self.check
        if not self.rewrites:
            return FilterResult([check(t, lang) for t, lang in zip(texts, langs)])
        reasons: list[str | None] = []
        new_texts: list[str] = []
        for text, lang in zip(texts, langs):
            reason, new_text = check(text, lang)
            reasons.append(reason)
            new_texts.append(new_text)
        return FilterResult(reasons, new_texts)
