"""The mixture report: target vs. achieved tokens per bucket (table and plot), long-context lengths."""

from __future__ import annotations

import html
from typing import Any

from curation.outputs import Layout
from curation.report import save_plot


def _png(layout: Layout, name: str, manifest: dict[str, Any]) -> str | None:
    buckets = manifest["buckets"]

    def draw(ax):
        names = [b["name"] for b in buckets][::-1]
        y = range(len(names))
        ax.barh(
            [i + 0.2 for i in y],
            [b["allocated_tokens"] for b in buckets][::-1],
            height=0.4,
            label="target",
            color="#bbbbbb",
        )
        ax.barh(
            [i - 0.2 for i in y],
            [b["selected_tokens"] for b in buckets][::-1],
            height=0.4,
            label="achieved",
            color="#4c72b0",
        )
        ax.set_yticks(list(y), names, fontsize=8)
        ax.set_xlabel("tokens")
        ax.legend()

    return save_plot(layout, name, draw, figsize=(8, max(2.5, 0.3 * len(buckets))))


def _section(title: str, m: dict[str, Any], png: str | None) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(b['name'])}</td><td>{b['available_tokens']:,}</td><td>{b['weight']:.4f}</td>"
        f"<td>{b['allocated_tokens']:,}</td><td>{b['selected_tokens']:,}</td><td>{b['epochs']:.2f}</td>"
        f"<td>{b['max_epochs']:g}</td></tr>"
        for b in m["buckets"]
    )
    out = (
        f"<h2>{html.escape(title)}</h2><p>{m['achieved_tokens']:,} of {m['target_tokens']:,} target tokens, "
        f"{m['rows']:,} rows in {len(m['shards'])} shards (seed {m['seed']}, mixture {m['mixture_id']}).</p>"
        "<table><tr><th>bucket</th><th>available</th><th>weight</th><th>target</th><th>achieved</th>"
        f"<th>epochs</th><th>cap</th></tr>{rows}</table>"
    )
    if png:
        out += f'<img src="{png}" alt="target vs achieved">'
    if "compression" in m:  # the figure the Qwen2 report compares tokenizers by
        out += "<h3>Qwen tokens per byte and per character (pool)</h3>"
        for key, label in (("by_lang", "language"), ("by_bucket", "bucket")):
            out += (
                f"<table><tr><th>{label}</th><th>documents</th><th>tokens</th><th>tokens / byte</th>"
                "<th>tokens / char</th></tr>"
                + "".join(
                    f"<tr><td>{html.escape(k)}</td><td>{v['documents']:,}</td><td>{v['tokens']:,}</td>"
                    f"<td>{v['tokens_per_byte'] or 0:.3f}</td><td>{v['tokens_per_char'] or 0:.3f}</td></tr>"
                    for k, v in m["compression"][key].items()
                )
                + "</table>"
            )
    if "length_histogram" in m:
        out += (
            "<h3>Document lengths (tokens)</h3><table><tr><th>tokens</th><th>documents</th></tr>"
            + "".join(f"<tr><td>{k}</td><td>{v:,}</td></tr>" for k, v in m["length_histogram"].items())
            + "</table>"
        )
    if "packed" in m:
        p = m["packed"]
        out += (
            f"<p>Packed: {p['sequences']:,} sequences of {p['seq_len']:,} tokens ({p['dropped_tail_tokens']:,} "
            "tail tokens dropped).</p>"
        )
    return out


def write_mix_report(layout: Layout, manifest: dict[str, Any], long_manifest: dict[str, Any] | None) -> None:
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>mixture report</title><style>"
        "body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:.2em .6em;text-align:right}td:first-child{text-align:left}"
        "</style></head><body><h1>Mixture report: " + html.escape(manifest["name"]) + "</h1>",
        _section("Main mixture", manifest, _png(layout, "mix_tokens.png", manifest)),
    ]
    if long_manifest is not None:
        parts.append(
            _section("Long-context mixture", long_manifest, _png(layout, "long_context/mix_tokens.png", long_manifest))
        )
    parts.append("</body></html>")
    layout.write_bytes(layout.path("report.html"), "\n".join(parts).encode())
