"""What the service's inspection routes read from a job's output: samples, lineage, documents, diffs. Every
path goes through `SafeLayout`, which refuses links and paths that leave the output folder (a user who
can write into a root could plant `OUT/lineage/part-00000.parquet -> /elsewhere`, or a lineage row naming
`../../other/curated/...`)."""

from __future__ import annotations

import os
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from curation.io.policy import is_uri
from curation.outputs import Layout

DOCUMENT_COLUMNS = ["id", "lang", "domain", "source", "drop_reason", "n_chars", "text", "error"]


class SafeLayout(Layout):
    """A Layout whose every path stays inside the real output folder, through no link."""

    def path(self, *parts: str) -> str:
        p = super().path(*parts)
        if is_uri(self.uri):
            if ".." in "/".join(parts).split("/"):
                raise FileNotFoundError(f"{p} leaves the job's output")
            return p
        self._check(p)
        return p

    def _check(self, p: str) -> None:
        root = os.path.normpath(self.root)
        normal = os.path.normpath(p)
        if normal != root and not normal.startswith(root.rstrip(os.sep) + os.sep):
            raise FileNotFoundError(f"{p} leaves the job's output")
        rel = os.path.relpath(normal, root)
        real_root = os.path.realpath(root)
        expected = real_root if rel == "." else os.path.join(real_root, rel)
        if os.path.lexists(normal) and os.path.realpath(normal) != expected:
            raise FileNotFoundError(f"{p} is a link")

    def list_files(self, path: str) -> list[str]:
        out = []
        for p in super().list_files(self.path(*_rel(self, path))):
            try:
                self._check(p)
            except FileNotFoundError:
                continue
            out.append(p)
        return out


def _rel(layout: Layout, path: str) -> list[str]:
    rel = path[len(layout.root) :].strip("/") if path.startswith(layout.root) else path
    return [x for x in rel.split("/") if x]


def samples(layout: SafeLayout, reason: str | None, lang: str | None, q: str | None, limit: int) -> dict[str, Any]:
    from curation.inspection.samples import read_samples

    t = read_samples(layout)
    if t is None:
        return {"samples": [], "reasons": {}}
    t = t.drop(["_skey", "_keeper"])
    reasons: dict[str, int] = {}
    for r in t["drop_reason"].to_pylist():
        reasons[r or "(kept)"] = reasons.get(r or "(kept)", 0) + 1
    if reason is not None:
        t = (
            t.filter(pc.is_null(t["drop_reason"]))
            if reason == "(kept)"
            else t.filter(pc.equal(t["drop_reason"], reason))
        )
    if lang is not None:
        t = t.filter(pc.equal(t["lang"], lang))
    if q:
        t = t.filter(pc.match_substring(pc.utf8_lower(t["text"]), q.lower()))
    return {"samples": t.slice(0, limit).to_pylist(), "reasons": reasons}


def documents(
    layout: SafeLayout,
    status: str,
    *,
    lang: str | None,
    reason: str | None,
    domain: str | None,
    source: str | None,
    limit: int,
    offset: int,
    excerpt: int = 400,
) -> dict[str, Any]:
    """A page of the curated, rejected or quarantined documents matching the filters (scanning stops once
    the page is full)."""
    sub = {"kept": "curated", "rejected": "rejected", "quarantined": "quarantine"}[status]
    files = _files_under(layout, sub)
    if not files:
        return {"documents": [], "offset": offset, "limit": limit}
    dataset = ds.dataset(files, format="parquet", filesystem=layout.fs)
    names = dataset.schema.names
    expr = None
    for col, value in (("lang", lang), ("drop_reason", reason), ("domain", domain), ("source", source)):
        if value is not None and col in names:
            e = ds.field(col) == value
            expr = e if expr is None else expr & e
    cols = [c for c in DOCUMENT_COLUMNS if c in names]
    got: list[pa.Table] = []
    seen = 0
    for batch in dataset.scanner(columns=cols, filter=expr, batch_size=1024).to_batches():
        if not batch.num_rows:
            continue
        t = pa.Table.from_batches([batch])
        if seen + len(t) <= offset:
            seen += len(t)
            continue
        start = max(0, offset - seen)
        got.append(t.slice(start))
        seen += len(t)
        if sum(len(x) for x in got) >= limit:
            break
    rows = pa.concat_tables(got).slice(0, limit).to_pylist() if got else []
    for r in rows:
        if r.get("text") is not None:
            r["text"] = r["text"][:excerpt]
    return {"documents": rows, "offset": offset, "limit": limit}


def _files_under(layout: SafeLayout, sub: str) -> list[str]:
    import pyarrow.fs as pafs

    base = layout.path(sub)
    try:
        infos = layout.fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
    except OSError:
        return []
    out = []
    for i in infos:
        if i.type != pafs.FileType.File or not i.path.endswith(".parquet") or "/." in i.path:
            continue
        if not is_uri(layout.uri):
            try:
                layout._check(i.path)
            except FileNotFoundError:
                continue
        out.append(i.path)
    return sorted(out)
