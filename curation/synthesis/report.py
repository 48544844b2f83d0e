"""OUT/report.html of `curate synthesize`: the funnel per task, rejection reasons, failures and the cost."""

from __future__ import annotations

import html
from typing import Any

from curation.outputs import Layout
from curation.report import _barh, _table, save_plot


def write_synth_report(layout: Layout, s: dict[str, Any]) -> None:
    g = s["generation"]
    run = g["this_run"]
    reasons = list(s["by_reason"].items())[:15]
    reasons_png = save_plot(layout, "synth_reasons.png", _barh(reasons, "generations", "#c44e52")) if reasons else None
    units = s["units"]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>synthesis report: "
        f"{html.escape(s['job'])}</title><style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:right}"
        "td:first-child,th:first-child{text-align:left}</style></head><body>",
        f"<h1>Synthesis report: {html.escape(s['job'])}</h1>",
        f"<p>{s['input_records']:,} input documents, {s['selected_documents']:,} selected; {units:,} units "
        f"(document x task): <b>{s['kept']:,} kept</b> ({s['tokens']['kept']:,} Qwen tokens), {s['rejected']:,} "
        f"rejected by a check, {s['failed']:,} failed. Generator {html.escape(g['generator'])}.</p>",
        "<h2>Tasks</h2>",
        _table(
            [
                "task",
                "selected",
                "kept",
                "rejected",
                "failed",
                "kept share",
                "prompt tokens",
                "completion tokens",
                "kept tokens (Qwen)",
                "template",
            ],
            [
                [
                    k,
                    v["selected"],
                    v["kept"],
                    v["rejected"],
                    v["failed"],
                    f"{v['kept'] / v['units']:.0%}" if v["units"] else "-",
                    v["prompt_tokens"],
                    v["completion_tokens"],
                    v["kept_tokens"],
                    v["template_version"],
                ]
                for k, v in s["by_task"].items()
            ],
        ),
        "<h2>Rejection reasons</h2>",
        _table(
            ["reason", "generations", "share of units"],
            [[k, v, f"{v / units:.1%}" if units else "-"] for k, v in s["by_reason"].items()],
        ),
        f'<img src="{reasons_png}" alt="reasons">' if reasons_png else "",
    ]
    if s["by_error"]:
        parts += [
            "<h2>Failures</h2>",
            "<p>Units whose generation failed after the retries (see failed/).</p>",
            _table(["error", "units"], [[k, v] for k, v in s["by_error"].items()]),
        ]
    cost_rows = [
        ["requests (all runs)", g["requests"]],
        ["prompt tokens", g["prompt_tokens"]],
        ["completion tokens", g["completion_tokens"]],
        [
            "this run: generated / from the ledger / failed",
            f"{run['generated']:,} / {run['reused_from_ledger']:,} / {run['failed']:,}",
        ],
        ["this run: HTTP requests, retries", f"{run['requests']:,}, {run['retries']:,}"],
        ["this run: errors on the wire", ", ".join(f"{k} {v:,}" for k, v in run["errors"].items()) or "none"],
        ["this run: generation seconds", run["seconds"]],
        ["this run: completion tokens/s", run["completion_tokens_per_second"]],
        ["this run: units/s", run["units_per_second"]],
    ]
    if "estimated_cost" in g:
        cost_rows.append(["estimated cost (prices in the spec)", g["estimated_cost"]])
    parts += ["<h2>Generation and cost</h2>", _table(["what", "value"], cost_rows)]
    langs = sorted(s["by_lang"].items(), key=lambda kv: -kv[1].get("units", 0))
    parts += [
        "<h2>Languages (of the source documents)</h2>",
        _table(["language", "units", "kept"], [[k, v.get("units", 0), v.get("kept", 0)] for k, v in langs]),
        "</body></html>",
    ]
    layout.write_bytes(layout.path("report.html"), "\n".join(parts).encode())
