"""OUT/report.html of `curate ablate`: predicted vs. actual loss, weights per bucket, confirmation runs."""

from __future__ import annotations

import html
from typing import Any

from curation.outputs import Layout
from curation.report import _table, save_plot


def write_ablate_report(layout: Layout, r: dict[str, Any]) -> None:
    fit = [m for m in r["mixtures"] if m["split"] == "fit"]
    held = [m for m in r["mixtures"] if m["split"] == "heldout"]
    buckets = list(r["weights"])

    def scatter(ax):
        ax.scatter(
            [m["loss"] for m in fit],
            [m["predicted"] for m in fit],
            s=8,
            color="#bbbbbb",
            label="fit mixtures (in sample)",
        )
        ax.scatter(
            [m["loss"] for m in held],
            [m["predicted"] for m in held],
            s=14,
            color="#4c72b0",
            label=f"held-out mixtures (Spearman {r['heldout_spearman']:.3f})",
        )
        lo = min(m["loss"] for m in r["mixtures"])
        hi = max(m["loss"] for m in r["mixtures"])
        ax.plot([lo, hi], [lo, hi], color="#999999", linewidth=0.8)
        ax.set_xlabel("actual proxy loss (bits/byte)")
        ax.set_ylabel("predicted")
        ax.legend(fontsize=8)

    def weights(ax):
        import numpy as np

        x = np.arange(len(buckets))
        for k, (name, color) in enumerate((("natural", "#999999"), ("uniform", "#dd8452"), ("weights", "#55a868"))):
            ax.bar(
                x + (k - 1) * 0.27,
                [r[name][b] for b in buckets],
                width=0.27,
                color=color,
                label="proposal" if name == "weights" else name,
            )
        ax.plot(x, [r["caps"][b] for b in buckets], "k_", markersize=14, label="epoch cap")
        ax.set_xticks(x, buckets, rotation=30, fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_ylabel("weight")
        ax.legend(fontsize=8)

    def confirmation(ax):
        c = r["confirmation"]
        for name, color in (("proposal", "#55a868"), ("uniform", "#dd8452"), ("natural", "#999999")):
            ax.plot(c["seeds"], c[name], "o-", color=color, label=name)
        ax.set_xlabel("seed")
        ax.set_ylabel("target loss (bits/byte)")
        ax.legend(fontsize=8)

    pngs = [
        save_plot(layout, "ablate_predicted.png", scatter),
        save_plot(layout, "ablate_weights.png", weights),
        save_plot(layout, "ablate_confirmation.png", confirmation),
    ]
    img = "".join(f'<img src="{p}" alt="{p}">' for p in pngs if p)
    gates = r["gates"]
    rows = [
        [
            b,
            f"{r['natural'][b]:.3f}",
            f"{r['uniform'][b]:.3f}",
            f"{r['weights'][b]:.3f}",
            f"{r['caps'][b]:.3f}",
            r["bucket_tokens"][b],
        ]
        for b in buckets
    ]
    vs = [
        [name, f"{v['mean_gain']:.4f}", f"{v['stderr']:.4f}", v["seeds"], "yes" if v["passed"] else "no"]
        for name, v in (("uniform", r["vs_uniform"]), ("natural", r["vs_natural"]))
    ]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>ablation</title><style>body{font-family:sans-serif;"
        "max-width:60em;margin:2em auto}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
        "padding:.2em .6em;text-align:right}td:first-child,th:first-child{text-align:left}</style></head><body>",
        "<h1>Mixture ablation</h1>",
        f"<p>{len(r['mixtures'])} proxies ({r['n_fit']} fit, {r['n_heldout']} held out), regressor "
        f"<b>{html.escape(r['regressor'])}</b> (cross-validated Spearman: "
        + ", ".join(f"{html.escape(k)} {v:.3f}" for k, v in r["cv_spearman"].items())
        + f"). Held-out Spearman <b>{r['heldout_spearman']:.3f}</b> (linear baseline "
        f"{r['linear_heldout_spearman']:.3f}). Gates: "
        + ", ".join(f"{html.escape(k)} {'passed' if v else 'NOT passed'}" for k, v in gates.items())
        + f". {len(r['failed'])} failed proxy run(s).</p>",
        "<h2>Weights</h2>",
        _table(["bucket", "natural", "uniform", "proposal", "cap", "tokens"], rows),
        "<h2>Confirmation (paired by seed; gain = baseline loss - proposal loss)</h2>",
        _table(["vs", "mean gain", "stderr", "seeds", "> 2 stderr"], vs),
        img,
        "</body></html>",
    ]
    layout.write_bytes(layout.path("report.html"), "\n".join(parts).encode())
