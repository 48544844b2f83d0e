"""`curate diff OUT_A OUT_B`: two curate runs of the same inputs compared document by document.

A document's outcome is `kept` or its drop reason (or `quarantined`). The runs are matched by input file
(the path in each lineage file) and within a file by position, from the lineage indexes alone (about
100 bytes a document, no text): one task per input file, each returning its counts and a seeded
bottom-k of the documents that moved per transition (so the driver holds per-file bookkeeping, never a
list of documents). The sampled documents' texts are then read from the outputs, row by row.
"""

from __future__ import annotations

import html
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curation.inspection.keys import seeded_keys
from curation.inspection.lineage import input_file_of, lineage_files, lineage_path, read_rows
from curation.outputs import Layout

_COLUMNS = ["id", "position", "status", "drop_reason", "lang", "output", "row"]


class DiffError(ValueError):
    pass


def _outcomes(t: pa.Table) -> np.ndarray:
    status = t["status"].to_numpy(zero_copy_only=False).astype(object)
    reason = t["drop_reason"].to_numpy(zero_copy_only=False).astype(object)
    return np.where(status == "kept", "kept", np.where(status == "quarantined", "quarantined", reason)).astype(str)


def diff_file(a: Layout, b: Layout, ordinal_a: int, ordinal_b: int, k: int, moved_path: str | None) -> dict[str, Any]:
    """One input file's comparison: counts, by transition and language, and a bottom-k sample per transition."""
    ta = pq.read_table(lineage_path(a, ordinal_a), filesystem=a.fs, columns=_COLUMNS).sort_by("position")
    tb = pq.read_table(lineage_path(b, ordinal_b), filesystem=b.fs, columns=_COLUMNS).sort_by("position")
    pa_, pb_ = ta["position"].to_numpy(), tb["position"].to_numpy()
    common, ia, ib = np.intersect1d(pa_, pb_, assume_unique=True, return_indices=True)
    oa, ob = _outcomes(ta)[ia], _outcomes(tb)[ib]
    moved = np.flatnonzero(oa != ob)
    out: dict[str, Any] = {
        "documents": int(len(common)),
        "only_in_a": int(len(pa_) - len(common)),
        "only_in_b": int(len(pb_) - len(common)),
        "moved": int(len(moved)),
        "kept_only_in_a": int(np.sum((oa == "kept") & (ob != "kept"))),
        "kept_only_in_b": int(np.sum((ob == "kept") & (oa != "kept"))),
        "by_reason": {},
        "by_lang": {},
        "samples": [],
    }
    if not len(moved):
        return out
    ra, rb = ta.take(pa.array(ia[moved])), tb.take(pa.array(ib[moved]))
    trans = np.char.add(np.char.add(oa[moved], " -> "), ob[moved])
    langs = pc.fill_null(rb["lang"], "und").to_numpy(zero_copy_only=False).astype(str)
    for t_, n in zip(*np.unique(trans, return_counts=True)):
        out["by_reason"][str(t_)] = int(n)
    for lang, t_ in zip(langs, trans):
        d = out["by_lang"].setdefault(str(lang), {})
        d[str(t_)] = d.get(str(t_), 0) + 1
    ids = ra["id"].to_pylist()
    key = seeded_keys(ids, 0, len(ids))
    for t_ in np.unique(trans):
        sel = np.flatnonzero(trans == t_)
        for j in sel[np.argsort(key[sel])][:k].tolist():
            out["samples"].append(
                {
                    "transition": str(t_),
                    "id": ids[j],
                    "lang": langs[j],
                    "position": int(ra["position"][j].as_py()),
                    "a": {"output": ra["output"][j].as_py(), "row": ra["row"][j].as_py()},
                    "b": {"output": rb["output"][j].as_py(), "row": rb["row"][j].as_py()},
                    "_key": int(key[j]),
                }
            )
    if moved_path is not None:
        pq.write_table(
            pa.table(
                {
                    "id": ra["id"],
                    "position": ra["position"],
                    "outcome_a": pa.array(oa[moved], pa.string()),
                    "outcome_b": pa.array(ob[moved], pa.string()),
                    "lang": pa.array(langs, pa.string()),
                }
            ),
            moved_path,
        )
    return out


def _files(layout: Layout) -> dict[str, int]:
    """input file -> its ordinal in this run."""
    out = {}
    for path in lineage_files(layout):
        ordinal = int(path.rsplit("part-", 1)[1].split(".")[0])
        uri = input_file_of(layout, ordinal)
        if uri is not None:
            out[uri] = ordinal
    return out


def diff(
    out_a: str | Layout,
    out_b: str | Layout,
    *,
    samples: int = 5,
    moved_dir: str | None = None,
    threads: int = 4,
    excerpt: int = 600,
) -> dict[str, Any]:
    """The comparison of two curate outputs (see the module docstring). `moved_dir`: every moved document,
    one Parquet file per input file (id, position, outcome in A and in B, language)."""
    a = out_a if isinstance(out_a, Layout) else Layout(out_a)
    b = out_b if isinstance(out_b, Layout) else Layout(out_b)
    fa, fb = _files(a), _files(b)
    if not fa or not fb:
        missing = out_a if not fa else out_b
        raise DiffError(f"{missing} has no lineage/ (a curate output written with inspection.lineage)")
    shared = sorted(set(fa) & set(fb))
    if moved_dir is not None:
        import os

        os.makedirs(moved_dir, exist_ok=True)
    jobs = [
        (a, b, fa[u], fb[u], samples, None if moved_dir is None else f"{moved_dir}/part-{fa[u]:05d}.parquet")
        for u in shared
    ]
    with ThreadPoolExecutor(max(1, threads)) as pool:  # parquet decoding releases the GIL
        results = list(pool.map(lambda args: diff_file(*args), jobs))
    total: dict[str, Any] = {
        "a": a.uri,
        "b": b.uri,
        "input_files": len(shared),
        "input_files_only_in_a": sorted(set(fa) - set(fb)),
        "input_files_only_in_b": sorted(set(fb) - set(fa)),
        "documents": 0,
        "moved": 0,
        "kept_only_in_a": 0,
        "kept_only_in_b": 0,
        "only_in_a": 0,
        "only_in_b": 0,
        "by_reason": {},
        "by_lang": {},
    }
    picked: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        for key in ("documents", "moved", "kept_only_in_a", "kept_only_in_b", "only_in_a", "only_in_b"):
            total[key] += r[key]
        for t_, n in r["by_reason"].items():
            total["by_reason"][t_] = total["by_reason"].get(t_, 0) + n
        for lang, d in r["by_lang"].items():
            into = total["by_lang"].setdefault(lang, {})
            for t_, n in d.items():
                into[t_] = into.get(t_, 0) + n
        for s in r["samples"]:
            picked.setdefault(s["transition"], []).append(s)
    total["by_reason"] = dict(sorted(total["by_reason"].items(), key=lambda kv: (-kv[1], kv[0])))
    out_samples = []
    for t_, items in sorted(picked.items()):
        for s in sorted(items, key=lambda s: s["_key"])[:samples]:
            s.pop("_key")
            for side, layout in (("a", a), ("b", b)):
                where = s[side]
                if where["output"] is not None and where["row"] is not None:
                    got = read_rows(layout, where["output"], [int(where["row"])], ["text"])
                    text = got["text"][0].as_py() if len(got) and "text" in got.column_names else None
                    where["text_excerpt"] = text[:excerpt] if text else None
            out_samples.append(s)
    total["samples"] = out_samples
    return total


def diff_html(result: dict[str, Any]) -> str:
    """The comparison as a page: totals, transitions, languages, samples side by side."""
    rows = "".join(f"<tr><td>{html.escape(t)}</td><td>{n:,}</td></tr>" for t, n in result["by_reason"].items())
    langs = "".join(
        f"<tr><td>{html.escape(lang)}</td><td>{html.escape(', '.join(f'{t} {n:,}' for t, n in d.items()))}</td></tr>"
        for lang, d in sorted(result["by_lang"].items())
    )
    cards = "".join(
        "<div class='sample'><div class='meta'>"
        f"<b>{html.escape(s['transition'])}</b> · {html.escape(s['id'])} · lang {html.escape(s['lang'])}</div>"
        "<div class='pair'>"
        + "".join(
            f"<div><div class='meta'>{side.upper()}: {html.escape(str(s[side]['output']))}</div>"
            f"<pre>{html.escape(s[side].get('text_excerpt') or '')}</pre></div>"
            for side in ("a", "b")
        )
        + "</div></div>"
        for s in result["samples"]
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>curate diff</title><style>"
        "body{font-family:sans-serif;max-width:70em;margin:2em auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:.2em .6em}.pair{display:flex;gap:1em}.pair>div{flex:1;min-width:0}"
        "pre{white-space:pre-wrap;background:#f7f7f7;max-height:14em;overflow:auto}.meta{color:#555}"
        ".sample{border:1px solid #ddd;margin:.4em 0;padding:.3em}</style></head><body>"
        f"<h1>curate diff</h1><p>A: {html.escape(result['a'])}<br>B: {html.escape(result['b'])}</p>"
        f"<p>{result['documents']:,} documents in {result['input_files']:,} input files: "
        f"<b>{result['moved']:,} moved</b>, {result['kept_only_in_a']:,} kept only in A, "
        f"{result['kept_only_in_b']:,} kept only in B.</p>"
        f"<h2>By transition (A -> B)</h2><table>{rows}</table><h2>By language</h2><table>{langs}</table>"
        f"<h2>Samples</h2>{cards}</body></html>"
    )


def summary_json(result: dict[str, Any]) -> str:
    return json.dumps(result, indent=2, default=str)
