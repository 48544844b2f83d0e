"""Model-based quality: scorers (fastText built in, plugins through filters/scorers.py) and KenLM perplexity."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
from pydantic import Field, ValidationError, field_validator, model_validator

from curation.specbase import KeyErrors, Strict, checked_names, key_errors, local_file_error
from curation.stages.base import Resources, Stage, alive_mask, set_column, values, with_reasons

if TYPE_CHECKING:
    from filters.scorers import Scorer

SCORE_PREFIX = "quality_"


class ClassifierSpec(Strict):
    """One quality scorer (a fastText classifier by default): its score goes to the column `quality_NAME`
    for every row."""

    scorer: str = Field(
        "fasttext",
        description="fasttext, or a scorer an installed plugin registers "
        "(group corpus_curation.scorers, filters/scorers.py)",
    )
    model: str | None = Field(
        None,
        description="the scorer's model file (fastText: from `curate train-quality`, "
        "`curate distill-quality`, or DCLM's)",
    )
    positive_label: str | None = Field(
        None,
        description="fastText: the label whose probability is the score; default __label__hq (graded models "
        "with numeric labels score as the expected grade)",
    )
    options: dict[str, Any] = Field(default_factory=dict, description="a plugin scorer's own options")
    min_score: float | None = Field(None, description="drop (quality:NAME) below this score; null keeps all")
    min_score_by_lang: dict[str, float] = Field(default_factory=dict, description="per-language minimum")
    min_score_by_domain: dict[str, float] = Field(default_factory=dict, description="per-domain minimum")
    keep_top_fraction: float | None = Field(
        None,
        gt=0.0,
        le=1.0,
        description="keep only this best-scoring share of the surviving documents of each "
        "(language, domain) group (quality:NAME:top_fraction)",
    )

    @field_validator("scorer")
    @classmethod
    def _known_scorer(cls, v: str) -> str:
        from filters.scorers import all_scorers

        if v not in all_scorers():
            raise ValueError(f"unknown scorer {v!r}; known scorers: {', '.join(all_scorers())}")
        return v

    @field_validator("model")
    @classmethod
    def _model_exists(cls, v: str | None) -> str | None:
        if v is not None and (err := local_file_error(v, "quality model")):
            raise ValueError(err)
        return v

    @model_validator(mode="after")
    def _scorer_options(self) -> "ClassifierSpec":
        cls = self.scorer_class()
        if cls.needs_model and self.model is None:
            raise KeyErrors([("model", f"scorer {self.scorer} needs a model file")])
        if self.positive_label is not None and self.scorer != "fasttext":
            raise KeyErrors([("positive_label", "only for scorer fasttext (a plugin scorer takes options:)")])
        try:
            self.scorer_options()
        except ValidationError as e:
            raise KeyErrors(
                [(f"options.{path}" if path != "(top level)" else "options", msg) for path, msg in key_errors(e)]
            ) from None
        return self

    def scorer_class(self) -> type[Scorer]:
        from filters.scorers import all_scorers

        return all_scorers()[self.scorer]

    def scorer_options(self) -> Any:
        """The options validated by the scorer's own model (fastText's: positive_label)."""
        opts = {"positive_label": self.positive_label, **self.options} if self.scorer == "fasttext" else self.options
        return self.scorer_class().options_model.model_validate(opts)

    def reads(self) -> list[tuple[str, str]]:
        out = [("model", self.model)] if self.model is not None else []
        return out + [(f"options.{k}", p) for k, p in self.scorer_class().reads(self.scorer_options())]

    def threshold(self, lang: str | None, domain: str | None) -> float | None:
        """The minimum score for a document: by language, then by domain, then min_score."""
        if lang in self.min_score_by_lang:
            return self.min_score_by_lang[lang]
        if domain in self.min_score_by_domain:
            return self.min_score_by_domain[domain]
        return self.min_score


class PerplexitySpec(Strict):
    """KenLM perplexity (optional; needs the kenlm package and a model the user gives)."""

    model: str = Field(description="KenLM model (.arpa or .bin)")
    max_perplexity: float | None = Field(None, gt=0, description="drop (quality:perplexity) above this")

    @field_validator("model")
    @classmethod
    def _model_exists(cls, v: str) -> str:
        import importlib.util

        if err := local_file_error(v, "KenLM model"):
            raise ValueError(err)
        if importlib.util.find_spec("kenlm") is None:
            raise ValueError(
                "perplexity scoring needs the kenlm module (pip install kenlm); "
                "leave stages.quality.perplexity out to run without it"
            )
        return v


class QualitySpec(Strict):
    """Model-based quality filters (after the heuristic filters)."""

    classifiers: dict[str, ClassifierSpec] = Field(
        default_factory=dict, description="NAME -> scorer; each writes quality_NAME and may drop quality:NAME"
    )
    perplexity: PerplexitySpec | None = None
    dedup_keep: str | None = Field(
        None,
        description="a classifier NAME: the best-scoring member of a duplicate cluster is kept "
        "(default: the first in input order)",
    )

    @field_validator("classifiers")
    @classmethod
    def _names(cls, v: dict[str, ClassifierSpec]) -> dict[str, ClassifierSpec]:
        return checked_names(v, r"[a-z0-9_]{1,40}", "classifier names must be lower-case letters, digits and _")

    @model_validator(mode="after")
    def _keep_names_a_classifier(self) -> "QualitySpec":
        if self.dedup_keep is not None and self.dedup_keep not in self.classifiers:
            raise ValueError(
                f"dedup_keep: {self.dedup_keep!r} is not one of the classifiers "
                f"({', '.join(self.classifiers) or 'none'})"
            )
        return self


class Quality(Stage):
    """`quality_NAME` for every parsed row (kept or rejected: thresholds can be tuned afterwards), and
    `perplexity` with a KenLM model; surviving rows below a classifier's threshold are dropped as
    `quality:NAME` (above the perplexity limit: `quality:perplexity`)."""

    name = "quality"
    spec_model = QualitySpec
    resources = Resources(pool="quality")
    drop_reasons = ("quality:NAME", "quality:perplexity", "quality:NAME:top_fraction")
    description = "fastText quality classifiers and KenLM perplexity"

    @classmethod
    def active(cls, spec: Any) -> bool:
        return spec is not None and (bool(spec.classifiers) or spec.perplexity is not None)

    def reads(self) -> list[tuple[str, str]]:
        out = [(f"classifiers.{n}.{k}", p) for n, c in self.spec.classifiers.items() for k, p in c.reads()]
        if self.spec.perplexity is not None:
            out.append(("perplexity.model", self.spec.perplexity.model))
        return out

    def late_funnel(self) -> list[str]:
        # keep_top_fraction ranks the documents that survived dedup, so it comes last
        return ["top_fraction"] if any(c.keep_top_fraction for c in self.spec.classifiers.values()) else []

    def score_columns(self) -> list[str]:
        return [SCORE_PREFIX + n for n in self.spec.classifiers] + (
            ["perplexity"] if self.spec.perplexity is not None else []
        )

    def setup(self) -> None:
        self.scorers = {}
        for name, c in self.spec.classifiers.items():
            scorer = c.scorer_class()(c.model, c.scorer_options())
            scorer.setup()
            self.scorers[name] = scorer
        self.perplexity = None
        if self.spec.perplexity is not None:
            from filters.perplexity import KenLMPerplexity

            self.perplexity = KenLMPerplexity(self.spec.perplexity.model)

    def explain(self, rows: pa.Table) -> list[Any]:
        from filters.base import Measure

        langs = values(rows, "lang", None)
        domains = values(rows, "domain", "web")
        out: list[Any] = []
        for i, reason in enumerate(rows["drop_reason"].to_pylist()):
            name = (reason or "").split(":")[1] if (reason or "").count(":") == 1 else None
            if reason == "quality:perplexity" and self.spec.perplexity is not None:
                out.append(Measure(values(rows, "perplexity", None)[i], self.spec.perplexity.max_perplexity, ">"))
            elif name is not None and name in self.spec.classifiers:
                clf = self.spec.classifiers[name]
                out.append(
                    Measure(values(rows, SCORE_PREFIX + name, None)[i], clf.threshold(langs[i], domains[i]), "<")
                )
            else:
                out.append(None)
        return out

    def process(self, table: pa.Table) -> pa.Table:
        texts = table["text"].to_pylist()
        alive = alive_mask(table)
        reasons = table["drop_reason"].to_pylist()
        langs = values(table, "lang", None)
        domains = values(table, "domain", "web")
        for name, scorer in self.scorers.items():
            t0 = time.perf_counter()
            scores = scorer.scores(texts)
            clf = self.spec.classifiers[name]
            for i in np.flatnonzero(alive):
                limit = clf.threshold(langs[i], domains[i])
                if limit is not None and not scores[i] >= limit:
                    reasons[i] = f"quality:{name}"
                    alive[i] = False
            table = set_column(table, SCORE_PREFIX + name, pa.array(scores, mask=np.isnan(scores)), pa.float32())
            self.timings[SCORE_PREFIX + name] = time.perf_counter() - t0
        if self.perplexity is not None:
            ppl = self.perplexity.scores(texts)
            limit = self.spec.perplexity.max_perplexity
            if limit is not None:
                for i in np.flatnonzero(alive):
                    if not ppl[i] <= limit:
                        reasons[i] = "quality:perplexity"
            table = set_column(table, "perplexity", pa.array(ppl, mask=np.isnan(ppl)), pa.float32())
        return with_reasons(table, reasons)
