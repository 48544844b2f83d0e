"""The histograms a threshold sweep reads: per score column and language, documents and characters by score
bin among the rows a sweep counts. A leaf module (numpy and pyarrow only): the writer (curation.outputs)
counts them for every file it writes, `curate sweep` (curation.inspection.sweep) turns them into curves."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

BINS_PER_UNIT = 100
RULES = {"lang_score": "langid:low_score", "perplexity": "quality:perplexity"}


def rule_of(column: str) -> str:
    return RULES.get(column) or f"quality:{column.removeprefix('quality_')}"


def higher_is_better(column: str) -> bool:
    return column != "perplexity"


def score_columns(schema_names: list[str]) -> list[str]:
    return [c for c in schema_names if c.startswith("quality_") or c in RULES]


def bins(values: np.ndarray, column: str) -> np.ndarray:
    if column == "perplexity":  # perplexities run into the thousands: bins of 1 on a log10 scale x100
        values = np.log10(np.clip(values, 1e-9, None))
    return np.floor(values * BINS_PER_UNIT).astype(np.int64)


def bin_value(b: int, column: str) -> float:
    v = b / BINS_PER_UNIT
    return float(10**v) if column == "perplexity" else v


def table_histograms(t: pa.Table, reasons: np.ndarray, valid: np.ndarray) -> dict[str, Any]:
    """column -> lang -> {"docs": {bin: n}, "chars": {bin: n}} of the rows of `t` (`valid`: not
    quarantined; `reasons`: their final drop reasons, None for kept) that a sweep of that column counts:
    kept, or dropped by that column's rule alone. A pure function of one table: finalize_file runs it on
    every file it writes (stats.json `sweep_histograms`), `sweep_file` on files already written."""
    out: dict[str, Any] = {}
    cols = score_columns(t.column_names)
    if not cols or not len(t):
        return out
    langs = pc.fill_null(t["lang"], "und").to_numpy(zero_copy_only=False).astype(str)
    chars = t["n_chars"].to_numpy(zero_copy_only=False).astype(np.float64)
    for c in cols:
        v = t[c].to_numpy(zero_copy_only=False).astype(np.float64)
        eligible = valid & ((reasons == None) | (reasons == rule_of(c))) & ~np.isnan(v)  # noqa: E711 (objects)
        if not eligible.any():
            continue
        b, ln, ch = bins(v[eligible], c), langs[eligible], chars[eligible]
        for lang in np.unique(ln):
            m = ln == lang
            keys, inv = np.unique(b[m], return_inverse=True)
            d = out.setdefault(c, {}).setdefault(str(lang), {"docs": {}, "chars": {}})
            for k, n, x in zip(keys.tolist(), np.bincount(inv).tolist(), np.bincount(inv, weights=ch[m]).tolist()):
                d["docs"][str(k)] = d["docs"].get(str(k), 0) + int(n)
                d["chars"][str(k)] = d["chars"].get(str(k), 0) + int(x)
    return out
