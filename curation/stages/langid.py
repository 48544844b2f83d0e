"""Language ID with fastText (filters/langid.py): `lang` and `lang_score`, and the language policy."""

from __future__ import annotations

from typing import Any, Literal, cast

import numpy as np
import pyarrow as pa
from pydantic import Field, model_validator

from curation.specbase import KeyErrors, Strict
from curation.stages.base import Resources, Stage, alive_mask, set_column, values, with_reasons, with_texts
from filters.language_pairs import DEFAULT_PAIRS


class LangIdSpec(Strict):
    model: str | None = Field(
        None,
        description="path to a fastText LID model; default: bundled lid.176.ftz. Labels may be ISO 639-1 (lid.176) "
        "or ISO 639-3 + script (GlotLID: __label__zsm_Latn), mapped to the job's codes (ms) with the script in "
        "the column lang_script",
    )
    thresholds_file: str | None = Field(
        None,
        description="YAML {language: minimum score} for this model (after min_score_by_lang, before min_score), "
        "e.g. FineWeb-2's per-language GlotLID cut-offs",
    )
    min_score: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="drop (langid:low_score) below this probability, for languages with no per-language threshold",
    )
    min_score_by_lang: dict[str, float] = Field(
        default_factory=dict,
        description="minimum score per label; labels not named here take the bundled "
        "table (filters/lid_thresholds.yaml, bundled model only), then min_score",
    )
    bundled_thresholds: bool = Field(
        True,
        description="use filters/lid_thresholds.yaml for labels not in min_score_by_lang (ignored with a "
        "custom model); false: min_score for all of them",
    )
    zawgyi: Literal["convert", "drop", "keep"] | None = Field(
        None,
        description="documents labelled `my` in legacy Zawgyi encoding: converted to Unicode, dropped "
        "(langid:zawgyi) or kept as they are; null: convert when python-myanmar is installed, "
        "else drop",
    )
    other_languages: Literal["drop", "keep", "other"] = Field(
        "drop", description="what happens to documents outside `languages`: dropped, kept, or kept as lang=other"
    )
    sample_chars: int = Field(2000, gt=0, description="characters predicted on (first and middle chunks)")
    pairs: list[str] = Field(
        default_factory=lambda: list(DEFAULT_PAIRS),
        description="language pairs the model confuses, decided again by vocabulary for documents it labels "
        "with either (filters/language_pairs.py: ms/id, lid.176 labels most Malay text id; ceb/tl, it labels "
        "a third of Cebuano tl); their score is the model's probability of the pair; [] for none",
    )
    min_script_share: float | None = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="drop (langid:script_mismatch) when fewer of the letters are in the "
        "label's scripts; null turns the check off",
    )

    @model_validator(mode="after")
    def _files_exist(self) -> "LangIdSpec":
        from curation.specbase import local_file_error

        for key, what in (("model", "language-ID model"), ("thresholds_file", "thresholds file")):
            path = getattr(self, key)
            if path is not None and (err := local_file_error(path, what)):
                raise KeyErrors([(key, err)])
        return self

    @model_validator(mode="after")
    def _known_pairs(self) -> "LangIdSpec":
        from filters.language_pairs import pairs_for

        try:
            pairs_for(self.pairs)
        except ValueError as e:
            raise KeyErrors([("pairs", str(e))]) from None
        return self

    def model_thresholds(self) -> dict[str, float]:
        """The thresholds file's table (empty without one); its errors name the file."""
        if self.thresholds_file is None:
            return {}
        import yaml

        with open(self.thresholds_file, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
        if not isinstance(data, dict) or not all(isinstance(v, (int, float)) for v in data.values()):
            raise ValueError(f"{self.thresholds_file}: expected a mapping of language -> minimum score")
        return {str(k): float(v) for k, v in data.items()}

    @model_validator(mode="after")
    def _resolve_zawgyi(self) -> "LangIdSpec":
        from filters.zawgyi import converter_available, default_policy

        if self.zawgyi is None:
            self.zawgyi = default_policy()
        elif self.zawgyi == "convert" and not converter_available():
            raise ValueError("zawgyi: convert needs the python-myanmar package (use drop or keep)")
        return self


class LangId(Stage):
    """`lang` and `lang_score` for every parsed row; low scores and unwanted languages are dropped. Code
    documents (domain `code`, declared or tagged) get `lang` code, no score, and are not dropped.

    The minimum score of a label is `min_score_by_lang`, else the bundled per-language table
    (filters/lid_thresholds.yaml; bundled model only), else `min_score`. Rows labelled `my` in legacy
    Zawgyi encoding are converted to Unicode (and re-scored), dropped (`langid:zawgyi`) or kept, as
    `zawgyi` says (filters/zawgyi.py)."""

    name = "langid"
    spec_model = LangIdSpec
    resources = Resources(pool="language")
    adds = ("lang", "lang_score")
    drop_reasons = ("langid:low_score", "langid:not_target_language", "langid:script_mismatch", "langid:zawgyi")
    description = "language ID (fastText lid.176 by default) and the language policy"

    def reads(self) -> list[tuple[str, str]]:
        return [(k, getattr(self.spec, k)) for k in ("model", "thresholds_file") if getattr(self.spec, k)]

    def score_columns(self) -> list[str]:
        # lang and lang_score are core columns of every output; a custom model's script (GlotLID labels
        # carry one; null for models whose labels do not) is written too
        return ["lang_script"] if self.spec.model else []

    def setup(self) -> None:
        from filters.langid import LanguageIdentifier

        self.lid = LanguageIdentifier(self.spec.model, self.spec.sample_chars, self.spec.pairs)
        self.model_thresholds = self.spec.model_thresholds()

    def _min_score(self, lang: str, defaults: dict[str, float]) -> float:
        """The job's minimum score for a label: min_score_by_lang, the model's thresholds file, the bundled
        table (lid.176), then min_score."""
        spec = self.spec
        got = spec.min_score_by_lang.get(lang, self.model_thresholds.get(lang))
        return float(got if got is not None else defaults.get(lang, spec.min_score))

    def explain(self, rows: pa.Table) -> list[Any]:
        from filters.base import Measure
        from filters.langid import bundled_thresholds, sample_text
        from filters.scripts import script_shares

        spec = self.spec
        if not hasattr(self, "model_thresholds"):
            self.model_thresholds = spec.model_thresholds()
        defaults = bundled_thresholds() if spec.model is None and spec.bundled_thresholds else {}
        out: list[Any] = []
        for text, lang, score, reason in zip(
            rows["text"].to_pylist(),
            values(rows, "lang", None),
            values(rows, "lang_score", None),
            rows["drop_reason"].to_pylist(),
        ):
            if reason == "langid:low_score" and lang is not None:
                out.append(Measure(score, self._min_score(lang, defaults), "<"))
            elif reason == "langid:script_mismatch" and text is not None and lang is not None:
                share = script_shares([sample_text(text, spec.sample_chars)], [lang])[0]
                out.append(Measure(share, spec.min_script_share, "<"))
            elif reason in ("langid:not_target_language", "langid:zawgyi"):
                out.append(Measure(None, None))
            else:
                out.append(None)
        return out

    def process(self, table: pa.Table) -> pa.Table:
        from filters.langid import bundled_thresholds, sample_text
        from filters.scripts import script_shares

        spec = self.spec
        texts = table["text"].to_pylist()
        parsed = [i for i, t in enumerate(texts) if t is not None]
        langs: list[str | None] = [None] * len(texts)
        scripts: list[str | None] = [None] * len(texts)
        scores = np.full(len(texts), np.nan, dtype=np.float32)
        samples: dict[int, str] = {i: sample_text(cast(str, texts[i]), spec.sample_chars) for i in parsed}
        if parsed:
            pl, ps, psc = self.lid.predict_scripts([texts[i] for i in parsed], list(samples.values()))
            for j, i in enumerate(parsed):
                langs[i], scripts[i] = pl[j], psc[j]
            scores[parsed] = ps
        alive = alive_mask(table)
        reasons = table["drop_reason"].to_pylist()
        zawgyi_policy = spec.zawgyi or "keep"
        rewritten = False
        if zawgyi_policy != "keep":
            from filters.zawgyi import is_zawgyi, zawgyi_to_unicode

            zg = [i for i in map(int, np.flatnonzero(alive)) if langs[i] == "my" and is_zawgyi(samples[i])]
            if zg and zawgyi_policy == "drop":
                for i in zg:
                    reasons[i] = "langid:zawgyi"
                alive[zg] = False
            elif zg:
                for i in zg:
                    texts[i] = zawgyi_to_unicode(texts[i])
                rewritten = True
                pl, ps = self.lid.predict([texts[i] for i in zg])
                for j, i in enumerate(zg):
                    langs[i] = pl[j]
                    samples[i] = sample_text(texts[i], spec.sample_chars)
                scores[zg] = ps
        defaults = bundled_thresholds() if spec.model is None and spec.bundled_thresholds else {}
        targets = self.job.target_languages
        domains = values(table, "domain", "web")
        # The policy per distinct label, then applied to the rows with numpy: no Python per row.
        rows = np.flatnonzero(alive)
        is_code = np.fromiter((domains[i] == "code" for i in rows), dtype=bool, count=len(rows))
        for i in rows[is_code].tolist():  # a programming language, not a natural one: no language policy
            langs[i], scores[i] = "code", np.nan
        rows = rows[~is_code]
        labels = [cast(str, langs[i]) for i in rows]  # alive rows all have a text, so a label
        distinct, which = np.unique(np.array(labels, dtype=object), return_inverse=True)
        outside = np.array([targets is not None and lang not in targets for lang in distinct], dtype=bool)
        # float32 as the scores: the comparison a float32 score and a Python float made before (NEP 50)
        limit = np.array([self._min_score(str(lang), defaults) for lang in distinct], dtype=np.float32)
        not_target = outside[which] if spec.other_languages == "drop" else np.zeros(len(rows), bool)
        low = ~not_target & (scores[rows] < limit[which])
        for i in rows[not_target].tolist():
            reasons[i] = "langid:not_target_language"
        for i in rows[low].tolist():
            reasons[i] = "langid:low_score"
        if spec.other_languages == "other":
            for i in rows[outside[which]].tolist():
                langs[i] = "other"
        passed = ~not_target & ~low
        # rows whose script share decides, with their label (also where it became `other`)
        check: list[tuple[int, str]] = (
            [(int(i), labels[j]) for j, i in zip(np.flatnonzero(passed).tolist(), rows[passed].tolist())]
            if spec.min_script_share is not None
            else []
        )
        if check:  # one batched pass over the samples the model saw
            shares = script_shares([samples[i] for i, _ in check], [lang for _, lang in check])
            for (i, _), share in zip(check, shares):
                if share is not None and share < cast(float, spec.min_script_share):
                    reasons[i] = "langid:script_mismatch"
        table = set_column(table, "lang", langs, pa.string())
        table = set_column(table, "lang_score", pa.array(scores, mask=np.isnan(scores)), pa.float32())
        if spec.model:
            table = set_column(table, "lang_script", scripts, pa.string())
        if rewritten:
            table = with_texts(table, texts)
        return with_reasons(table, reasons)
