"""`curate sweep OUT`: how many documents and tokens each language keeps as a score threshold moves, from
a finished run's outputs, without running the job again (the Qwen2 team built a 7T and a relaxed 12T
corpus from one pipeline this way).

A threshold is swept over the score that every row keeps, kept or rejected: each quality classifier
(`quality_NAME`, rule `quality:NAME`, kept at score >= x), the language-ID score (`lang_score`, rule
`langid:low_score`) and KenLM perplexity (`perplexity`, `quality:perplexity`, kept at <= x). At threshold
x a document counts as kept when it is kept now or was dropped by that rule alone, and its score passes
x. Loosening is an upper bound: a document this rule dropped was not shown to the rules after it
(they ran on survivors only), while tightening is exact. Tokens are the documents' characters times
the language's Qwen BPE tokens per character, measured on the run's kept samples.

The histograms (bins of BINS_PER_UNIT per unit of score, per column and language) are counted by the job
as it writes each file (stats.json `sweep_histograms`: per-file bookkeeping merged like the funnel), so a
sweep reads one file; for outputs written before that, one task per input file reads only the score,
language, size and reason columns of its curated and rejected files.
"""

from __future__ import annotations

import html
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curation.inspection.histograms import (
    bin_value,
    bins,
    higher_is_better,
    rule_of,
    score_columns,
    table_histograms,
)
from curation.outputs import Layout


def sweep_file(layout: Layout, files: list[str]) -> dict[str, Any]:
    """`table_histograms` over one input file's curated and rejected files (score, language, size and
    reason columns only)."""
    from curation.outputs import merge_counts

    out: dict[str, Any] = {}
    for rel in files:
        pf = pq.ParquetFile(layout.path(rel), filesystem=layout.fs)
        names = pf.schema_arrow.names
        cols = score_columns(names)
        if not cols:
            continue
        t = pf.read(columns=["lang", "n_chars"] + (["drop_reason"] if "drop_reason" in names else []) + cols)
        reasons = (
            t["drop_reason"].to_numpy(zero_copy_only=False).astype(object)
            if "drop_reason" in names
            else np.full(len(t), None, dtype=object)
        )
        merge_counts(out, table_histograms(t, reasons, np.ones(len(t), bool)))
    return out


def _tokens_per_char(layout: Layout) -> dict[str, float]:
    """Qwen BPE tokens per character per language, on the run's kept samples (1/4 where none)."""
    from curation.inspection.samples import read_samples

    t = read_samples(layout)
    if t is None:
        return {}
    try:
        from mixtures.tokenizer import count_tokens
    except ImportError:
        return {}
    out = {}
    kept = t.filter(pc.is_null(t["drop_reason"]))
    for lang in set(kept["lang"].to_pylist()):
        texts = [x for x in kept.filter(pc.equal(kept["lang"], lang))["text"].to_pylist() if x]
        n_chars = sum(map(len, texts))
        if n_chars:
            out[str(lang)] = float(sum(count_tokens(texts))) / n_chars
    return out


def sweep(out: str | Layout, *, points: int = 21, threads: int = 4) -> dict[str, Any]:
    """Per score column and language: the current threshold, and documents and tokens kept at `points`
    thresholds across the scores seen."""
    import yaml

    from curation.outputs import merge_counts

    layout = out if isinstance(out, Layout) else Layout(out)
    stats = layout.read_json(layout.path("stats.json")) or {}
    merged: dict[str, Any] = stats.get("sweep_histograms") or {}
    if not merged:  # a run from before finalize counted them: read the score columns of its outputs
        by_file: dict[str, list[str]] = {}
        for sub in ("curated", "rejected"):
            for path in _recursive(layout, layout.path(sub)):
                rel = path[len(layout.root) + 1 :]
                by_file.setdefault(rel.rsplit("/", 1)[-1], []).append(rel)
        if not by_file:
            raise ValueError(f"{layout.uri} has no curated/ or rejected/ files (is it a finished curate output?)")
        with ThreadPoolExecutor(max(1, threads)) as pool:
            for part in pool.map(lambda files: sweep_file(layout, files), by_file.values()):
                merge_counts(merged, part)
    with layout.fs.open_input_stream(layout.path("job.yaml")) as f:
        spec = yaml.safe_load(f.read()) or {}
    from curation.spec import CurateJob

    job = CurateJob.model_validate(spec)
    ratio = _tokens_per_char(layout)
    result: dict[str, Any] = {"output": layout.uri, "tokens_estimated_from": "kept samples", "columns": {}}
    for c, by_lang in sorted(merged.items()):
        col: dict[str, Any] = {"rule": rule_of(c), "kept_when": ">=" if higher_is_better(c) else "<=", "languages": {}}
        for lang, d in sorted(by_lang.items()):
            keys = np.array(sorted(int(k) for k in d["docs"]), dtype=np.int64)
            docs = np.array([d["docs"][str(k)] for k in keys], dtype=np.int64)
            chars = np.array([d["chars"][str(k)] for k in keys], dtype=np.float64)
            current = _current(job, c, lang)
            lo, hi = bin_value(int(keys[0]), c), bin_value(int(keys[-1]) + 1, c)
            grid = np.linspace(lo, hi, max(2, points)).tolist() + ([current] if current is not None else [])
            tpc = ratio.get(lang, 0.25)
            curve = []
            for x in sorted({round(float(v), 2 if c != "perplexity" else 0) for v in grid}):
                edge = int(bins(np.array([x]), c)[0]) if x > 0 else -(1 << 62)
                # bins hold [b, b+1) / BINS_PER_UNIT: a grid point on a bin edge splits exactly
                sel = keys >= edge if higher_is_better(c) else keys < edge
                curve.append({"threshold": x, "documents": int(docs[sel].sum()), "tokens": int(chars[sel].sum() * tpc)})
            col["languages"][lang] = {
                "current_threshold": current,
                "eligible_documents": int(docs.sum()),
                "curve": curve,
            }
        result["columns"][c] = col
    return result


def _recursive(layout: Layout, base: str) -> list[str]:
    import pyarrow.fs as pafs

    try:
        infos = layout.fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
    except OSError:
        return []
    return sorted(i.path for i in infos if i.type == pafs.FileType.File and i.path.endswith(".parquet"))


def _current(job: Any, column: str, lang: str) -> float | None:
    st = job.stages
    if column == "lang_score":
        if st.langid is None:
            return None
        from curation.stages.langid import LangId
        from filters.langid import bundled_thresholds

        stage = LangId(st.langid)
        stage.model_thresholds = st.langid.model_thresholds()
        defaults = bundled_thresholds() if st.langid.model is None and st.langid.bundled_thresholds else {}
        return round(stage._min_score(lang, defaults), 4)
    if column == "perplexity":
        return None if st.quality is None or st.quality.perplexity is None else st.quality.perplexity.max_perplexity
    name = column.removeprefix("quality_")
    clf = st.quality.classifiers.get(name) if st.quality is not None else None
    return None if clf is None else clf.threshold(lang, "web")


def sweep_html(result: dict[str, Any]) -> str:
    """The report's section: per score column, a table per language of documents and tokens kept by threshold
    (the current threshold's row in bold)."""
    if not result["columns"]:
        return ""
    parts = [
        "<h2 id='sweeps'>Threshold sweeps</h2><p>Documents (and estimated Qwen BPE tokens) each language keeps "
        "as a score threshold moves, from this run's scores (<code>curate sweep OUT</code>; loosening is an "
        "upper bound: later rules did not see the documents a rule dropped).</p>"
    ]
    for c, col in result["columns"].items():
        parts.append(
            f"<h3>{html.escape(c)} (rule {html.escape(col['rule'])}, kept when score {col['kept_when']} x)</h3>"
        )
        for lang, d in col["languages"].items():
            cur = d["current_threshold"]
            rows = "".join(
                ("<tr style='font-weight:bold'>" if cur is not None and p["threshold"] == round(cur, 2) else "<tr>")
                + f"<td>{p['threshold']:.3g}</td><td>{p['documents']:,}</td><td>{p['tokens']:,}</td></tr>"
                for p in d["curve"]
            )
            parts.append(
                f"<details><summary>{html.escape(lang)}: {d['eligible_documents']:,} documents, current threshold "
                f"{cur}</summary><table><tr><th>x</th><th>documents</th><th>tokens (est.)</th></tr>"
                f"{rows}</table></details>"
            )
    return "\n".join(parts)
