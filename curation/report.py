"""A short HTML report beside stats.json: the funnel, drop reasons, languages, domains, quality score
histograms, cluster sizes, and the samples of what each rule removed."""

from __future__ import annotations

import html
import io
from typing import Any

from curation.inspection.sample_html import SAMPLES_CSS, samples_section
from curation.inspection.samples import read_samples
from curation.outputs import Layout


def save_plot(layout: Layout, name: str, draw, figsize: tuple[float, float] = (7, 3.2)) -> str | None:
    """Draw a matplotlib figure with `draw(ax)` into OUT/name (PNG); None when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # the report still has its tables
        return None
    fig, ax = plt.subplots(figsize=figsize, dpi=100)
    draw(ax)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    layout.write_bytes(layout.path(name), buf.getvalue())
    return name


def _barh(items: list[tuple[str, float]], xlabel: str, color: str):
    def draw(ax):
        labels = [k for k, _ in items][::-1]
        ax.barh(labels, [v for _, v in items][::-1], color=color)
        ax.set_xlabel(xlabel)
        ax.tick_params(axis="y", labelsize=8)

    return draw


def _score_histogram(name: str, hist: dict[str, Any]):
    width = float(hist.get("bin_width", 0.05))

    def draw(ax):
        bottom: dict[float, int] = {}
        for side, color in (("kept", "#55a868"), ("rejected", "#c44e52")):
            bins = {float(k): v for k, v in (hist.get(side) or {}).items()}
            xs = sorted(bins)
            ax.bar(
                xs,
                [bins[x] for x in xs],
                width=width,
                align="edge",
                color=color,
                label=side,
                bottom=[bottom.get(x, 0) for x in xs],
            )
            for x in xs:
                bottom[x] = bottom.get(x, 0) + bins[x]
        ax.set_xlabel(name)
        ax.set_ylabel("documents")
        ax.legend()

    return draw


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(f'{c:,}' if isinstance(c, int) else str(c))}</td>" for c in r) + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def write_report(layout: Layout, stats: dict[str, Any]) -> None:
    """Write OUT/report.html and its PNG plots."""
    stages = stats["by_stage"]
    funnel_png = save_plot(
        layout, "funnel.png", _barh([(s["stage"], s["out"]) for s in stages], "records out", "#4c72b0")
    )
    reasons = list(stats["by_reason"].items())[:15]
    reasons_png = save_plot(layout, "drop_reasons.png", _barh(reasons, "documents", "#c44e52")) if reasons else None
    langs = sorted(stats["by_lang"].items(), key=lambda kv: -kv[1]["input"])[:30]
    langs_png = (
        save_plot(layout, "languages.png", _barh([(k, v["kept"]) for k, v in langs], "kept documents", "#55a868"))
        if langs
        else None
    )
    sizes = (stats.get("dedup") or {}).get("documents_by_cluster_size") or {}
    sizes_png = None
    if sizes:

        def draw(ax):
            ax.bar([int(k) for k in sizes], list(sizes.values()), color="#8172b2")
            ax.set_xlabel("duplicate cluster size")
            ax.set_ylabel("documents")
            ax.set_yscale("log")

        sizes_png = save_plot(layout, "cluster_sizes.png", draw)

    def img(p):
        return f'<img src="{p}" alt="{p}">' if p else ""

    total = stats["input_records"]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>curation report: "
        f"{html.escape(stats['job'])}</title><style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:right}"
        f"td:first-child,th:first-child{{text-align:left}}{SAMPLES_CSS}</style></head><body>",
        f"<h1>Curation report: {html.escape(stats['job'])}</h1>",
        f"<p>{stats['input_files']:,} input files, {total:,} records: <b>{stats['kept']:,} kept</b>, "
        f"{stats['rejected']:,} rejected, {stats['quarantined']:,} quarantined "
        f"({stats['wall_seconds']:.1f} s).</p>",
        "<h2>Funnel</h2>",
        _table(
            ["stage", "in", "out", "dropped", "seconds"],
            [[s["stage"], s["in"], s["out"], s["in"] - s["out"], s["seconds"]] for s in stages],
        ),
        img(funnel_png),
        "<h2>Drop reasons</h2>",
        _table(
            ["reason", "documents", "share of input"],
            [[k, v, f"{v / total:.1%}" if total else "-"] for k, v in stats["by_reason"].items()],
        ),
        img(reasons_png),
        "<h2>Languages</h2>",
        _table(
            ["language", "input", "kept", "kept share", "main drop reasons"],
            [
                [
                    k,
                    v["input"],
                    v["kept"],
                    f"{v['kept'] / v['input']:.0%}" if v["input"] else "-",
                    ", ".join(f"{r} {n:,}" for r, n in list(v.get("by_reason", {}).items())[:3]),
                ]
                for k, v in langs
            ],
        ),
        img(langs_png),
    ]
    domains = stats.get("by_domain") or {}
    if domains:
        parts += [
            "<h2>Domains</h2>",
            _table(
                ["domain", "input", "kept", "kept share"],
                [
                    [k, v["input"], v["kept"], f"{v['kept'] / v['input']:.0%}" if v["input"] else "-"]
                    for k, v in sorted(domains.items(), key=lambda kv: -kv[1]["input"])
                ],
            ),
        ]
    for name, hist in (stats.get("quality_scores") or {}).items():
        png = save_plot(layout, f"{name}.png", _score_histogram(name, hist))
        kept, rejected = (sum(hist.get(side, {}).values()) for side in ("kept", "rejected"))
        parts += [
            f"<h2>Scores: {html.escape(name)}</h2>",
            f"<p>{kept:,} kept and {rejected:,} rejected documents scored (every parsed document is, "
            "whichever stage dropped it).</p>",
            img(png),
        ]
    if stats.get("dedup"):
        d = stats["dedup"]
        parts += [
            "<h2>Duplicates</h2>",
            f"<p>{d['candidate_documents']:,} documents in {d['clusters']:,} duplicate clusters.</p>",
            img(sizes_png),
        ]
        a = d.get("against")
        if a:
            by = ", ".join(f"{html.escape(k)} {v:,}" for k, v in a["by_reason"].items()) or "none"
            parts.append(
                f"<p>Checked against {len(a['corpora'])} earlier corpus(es) "
                f"({html.escape(', '.join(a['corpora']))}): {a['duplicates']:,} documents repeat one of theirs "
                f"({by}); {a['index_keys_read']:,} index keys read.</p>"
            )
    if stats.get("index"):
        ix = stats["index"]
        parts.append(
            f"<p>Dedup index: {ix['documents']:,} kept documents, {ix['keys']:,} keys in "
            f"{ix['partitions']} partition(s) under index/ (for later jobs' stages.dedup.against).</p>"
        )
    if stats.get("sweep_histograms"):
        from curation.inspection.sweep import sweep, sweep_html

        try:
            parts.append(sweep_html(sweep(layout, points=11)))
        except (OSError, ValueError) as e:  # the report goes on without the section
            parts.append(f"<p>threshold sweeps unavailable: {html.escape(str(e))}</p>")
    samples = read_samples(layout)
    if samples is not None:
        parts.append(samples_section(samples.drop(["_skey", "_keeper"]).to_pylist()))
    parts.append("</body></html>")
    layout.write_bytes(layout.path("report.html"), "\n".join(parts).encode())
