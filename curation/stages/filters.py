"""The heuristic filters (filters/: Gopher, C4, FineWeb, code, math, and plugins), run in the order the spec
lists them, each on the rows that survived the ones before."""

from __future__ import annotations

import dataclasses
import time
from typing import Any, cast

import numpy as np
import pyarrow as pa
from pydantic import RootModel, TypeAdapter, ValidationError, model_serializer, model_validator

from curation.specbase import KeyErrors
from curation.stages.base import Resources, Stage, alive_mask, values, with_reasons, with_texts


class FiltersSpec(RootModel[dict[str, dict[str, Any]]]):
    """One entry per heuristic filter, in the order they run; the options are the filter's thresholds
    (published defaults). `name:` with no options runs it with its defaults.

    The web filters apply to documents of every domain but code and math; `code` and `math` are the rules of
    those domains (filters/domain.py), applied to documents whose `domain` is code or math. Filters of
    installed plugins (entry points `corpus_curation.filters`) are named the same way."""

    root: dict[str, dict[str, Any]] = {}

    @model_validator(mode="before")
    @classmethod
    def _check_options(cls, data: Any) -> Any:
        from filters.registry import all_filters

        if isinstance(data, FiltersSpec):
            return data.root
        if not isinstance(data, dict):
            return data
        known = all_filters()
        errors = []
        out = {}
        for name, opts in data.items():
            if name not in known:
                errors.append((str(name), f"unknown key (filters: {', '.join(known)})"))
                continue
            opts = {} if opts is None else opts
            if not isinstance(opts, dict):
                raise KeyErrors([(name, f"expected a mapping of options, got {type(opts).__name__}")])
            klass = known[name]
            fields = {f.name for f in dataclasses.fields(cast(Any, klass)) if f.init}  # filters are dataclasses
            bad = [
                (f"{name}.{key}", f"unknown option (expected one of: {', '.join(sorted(fields))})")
                for key in opts
                if key not in fields
            ]
            if bad:
                errors += bad
                continue
            try:
                filt: Any = TypeAdapter(klass).validate_python(opts)
            except ValidationError as e:
                errors += [(f"{name}.{'.'.join(map(str, err['loc']))}", err["msg"]) for err in e.errors()]
                continue
            out[name] = {k: v for k, v in dataclasses.asdict(filt).items() if k in fields}
        if errors:
            raise KeyErrors(errors)
        return out

    @model_serializer(mode="plain")
    def _dump(self) -> dict[str, Any]:
        return dict(self.root)

    def enabled(self) -> list[tuple[str, dict[str, Any]]]:
        """(name, options) of each filter, in the order they run."""
        return list(self.root.items())

    def get(self, name: str) -> dict[str, Any] | None:
        return self.root.get(name)


class HeuristicFilters(Stage):
    """Each listed filter in order, on the rows that survived the ones before. A filter with `domains` sees
    only documents of those domains; the others see every domain no filter claims (filters/registry.py).
    Texts and reasons stay Python lists across the filters; Arrow columns are rebuilt once."""

    name = "filters"
    spec_model = FiltersSpec
    resources = Resources(pool="quality")
    description = "heuristic filters (Gopher quality and repetition, C4, FineWeb, code, math, plugins)"

    @classmethod
    def active(cls, spec: Any) -> bool:
        return spec is not None and bool(spec.enabled())

    def funnel(self) -> list[str]:
        return [name for name, _ in self.spec.enabled()]

    def setup(self) -> None:
        from filters.registry import all_filters, claimed_domains

        known = all_filters()
        self.filters = [known[name](**opts) for name, opts in self.spec.enabled()]
        self.claimed = list(claimed_domains())

    def process(self, table: pa.Table) -> pa.Table:
        alive = np.flatnonzero(alive_mask(table))
        texts = table["text"].to_pylist()
        langs = values(table, "lang", None)
        domains = np.array(values(table, "domain", "web"), dtype=object)
        reasons = table["drop_reason"].to_pylist()
        rewritten = False
        for filt in self.filters:
            if len(alive) == 0:
                break
            t0 = time.perf_counter()
            if filt.domains is not None:
                mine = np.isin(domains[alive], list(filt.domains))
            else:
                mine = ~np.isin(domains[alive], self.claimed)
            rows = alive[mine]
            res = filt([texts[i] for i in rows], [langs[i] for i in rows])
            dropped = np.zeros(len(texts), bool)
            for j, i in enumerate(rows):
                if res.reasons[j] is not None:
                    reasons[i] = res.reasons[j]
                    dropped[i] = True
                elif res.texts is not None and res.texts[j] is not texts[i]:
                    texts[i] = res.texts[j]
                    rewritten = True
            alive = alive[~dropped[alive]]
            self.timings[filt.name] = time.perf_counter() - t0
        table = with_reasons(table, reasons)
        return with_texts(table, texts) if rewritten else table

    def explain(self, rows: pa.Table) -> list[Any]:
        if not hasattr(self, "filters"):
            self.setup()
        by_name = {f.name: f for f in self.filters}
        texts = rows["text"].to_pylist()
        langs = values(rows, "lang", None)
        out: list[Any] = []
        for text, lang, reason in zip(texts, langs, rows["drop_reason"].to_pylist()):
            filt = by_name.get((reason or "").split(":", 1)[0])
            out.append(filt.explain(text, lang, reason) if filt is not None and text is not None else None)
        return out
