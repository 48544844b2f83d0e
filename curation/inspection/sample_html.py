"""The samples of what each rule removed as HTML: grouped by drop reason, each with its language, the
rule's value and threshold, the text excerpt, and for duplicates the keeper beside it; a search box
filters them in the page (no script from elsewhere). Used by report.html and the web console."""

from __future__ import annotations

import html
from typing import Any

SAMPLES_CSS = (
    ".sample{border:1px solid #ddd;margin:.4em 0;padding:.3em .6em}.sample pre{white-space:pre-wrap;"
    "max-height:14em;overflow:auto;background:#f7f7f7;margin:.3em 0;text-align:left}.pair{display:flex;gap:1em}"
    ".pair>div{flex:1;min-width:0}.meta{color:#555;font-size:90%}"
)
SAMPLES_SCRIPT = (
    "<script>function filterSamples(q){q=q.toLowerCase();document.querySelectorAll('.sample').forEach("
    "function(e){e.style.display=e.textContent.toLowerCase().indexOf(q)<0?'none':''});}</script>"
)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    return f"{v:,.0f}" if float(v).is_integer() and abs(v) >= 10 else f"{v:.4g}"


def measure_text(row: dict[str, Any]) -> str:
    """'value 23 < threshold 50' for a row with a measure, '' otherwise."""
    if row.get("value") is None or row.get("threshold") is None:
        return ""
    return f"value {_fmt(row['value'])} {row.get('drops_when') or '?'} threshold {_fmt(row['threshold'])}"


def sample_card(row: dict[str, Any], link: str | None = None) -> str:
    meta = [f"lang <b>{html.escape(str(row.get('lang') or 'und'))}</b>", f"id {html.escape(str(row['id']))}"]
    m = measure_text(row)
    if m:
        meta.append(html.escape(m))
    if row.get("n_chars") is not None:
        meta.append(f"{row['n_chars']:,} chars")
    if row.get("input_file"):
        meta.append(f"{html.escape(str(row['input_file']))}:{row.get('position')}")
    if link:
        meta.append(f'<a href="{html.escape(link)}">lineage</a>')
    body = f"<pre>{html.escape(row.get('text') or '')}</pre>"
    if row.get("keeper_text") is not None or row.get("dup_cluster"):
        sim = row.get("dup_similarity")
        body = (
            "<div class='pair'><div><div class='meta'>this document</div>"
            f"{body}</div><div><div class='meta'>its keeper {html.escape(str(row.get('dup_cluster')))}"
            f"{'' if sim is None else f', similarity {sim:.3f}'}</div>"
            f"<pre>{html.escape(row.get('keeper_text') or '(keeper not found)')}</pre></div></div>"
        )
    return f"<div class='sample'><div class='meta'>{' · '.join(meta)}</div>{body}</div>"


def samples_section(rows: list[dict[str, Any]], link_for=None) -> str:
    """<h2>Samples</h2> with one collapsible group per drop reason (kept documents last)."""
    if not rows:
        return ""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(r.get("drop_reason") or "(kept)", []).append(r)
    order = sorted(groups, key=lambda g: (g == "(kept)", g))
    parts = [
        "<h2 id='samples'>Samples</h2><p>Up to the job's <code>inspection.samples_per_group</code> documents per "
        "drop reason and language (a seeded, deterministic sample), with the rule's value and threshold; "
        "near-duplicates beside their keeper.</p>",
        "<input type='search' id='sample-search' placeholder='search samples' oninput='filterSamples(this.value)'>",
    ]
    for g in order:
        items = groups[g]
        langs = sorted({str(r.get("lang") or "und") for r in items})
        cards = "".join(sample_card(r, link_for(r) if link_for else None) for r in items)
        parts.append(
            f"<details class='reason' data-reason='{html.escape(g)}'><summary><b>{html.escape(g)}</b> "
            f"{len(items)} sample(s), languages {html.escape(', '.join(langs))}</summary>{cards}</details>"
        )
    return "\n".join(parts) + SAMPLES_SCRIPT
