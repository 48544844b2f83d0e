"""`curate trace OUT ID`: one document's lineage, from a curate output's lineage index or a mixture's shards.

For a curate output: the input file and position, kept / rejected / quarantined, every stage's decision in
pipeline order (passed, dropped with the reason and its measure, or not reached), its scores, its
duplicate cluster and keeper, and the output file and row. For a mixture: the shard and row of each copy
(epoch, bucket, tokens), then the same lineage from the curate output the row came from. No full scan:
the lineage index is read by key (`curation.inspection.lineage`); a mixture row's shard is the seeded
hash of its id that placed it (`mixtures.select.seeded`), for each epoch up to the mixture's cap.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from curation.inspection.keys import id_keys
from curation.inspection.lineage import find_ids, find_positions, input_file_of, read_rows
from curation.outputs import Layout

EXCERPT = 300


class TraceError(ValueError):
    """The output or the document cannot be traced; the message says why."""


def _job_kind(layout: Layout) -> tuple[str, dict[str, Any]]:
    try:
        with layout.fs.open_input_stream(layout.path("job.yaml")) as f:
            spec = yaml.safe_load(f.read()) or {}
    except (FileNotFoundError, OSError):
        raise TraceError(f"{layout.uri} is not a job output (no job.yaml)") from None
    return str(spec.get("kind", "curate")), spec


def trace(
    out: str | Layout,
    doc_id: str | None = None,
    *,
    ordinal: int | None = None,
    position: int | None = None,
    excerpt: int = EXCERPT,
) -> dict:
    """The lineage of document `doc_id` (or of input file `ordinal`'s record at `position`) in output `out`
    (a folder, or a Layout: the service passes one that refuses links); `excerpt` characters of its text."""
    layout = out if isinstance(out, Layout) else Layout(out)
    kind, spec = _job_kind(layout)
    if kind == "mix":
        if doc_id is None:
            raise TraceError("a mixture row is traced by its document id")
        return _trace_mix(layout, doc_id, excerpt)
    if kind != "curate":
        raise TraceError(f"{layout.uri} holds a `{kind}` job; trace reads curate and mix outputs")
    return _trace_curate(layout, spec, doc_id, ordinal, position, excerpt)


def _trace_curate(
    layout: Layout, spec: dict[str, Any], doc_id: str | None, ordinal: int | None, position: int | None, excerpt: int
) -> dict[str, Any]:
    from curation.spec import CurateJob

    if not layout.list_files(layout.path("lineage")):
        raise TraceError(f"{layout.uri} has no lineage/ (written by curate jobs with inspection.lineage, the default)")
    if doc_id is not None:
        rows = find_ids(layout, [doc_id])
    elif ordinal is not None and position is not None:
        rows = find_positions(layout, ordinal, [position])
        rows = rows.append_column("ordinal", pa.array([ordinal] * len(rows), pa.int64()))
    else:
        raise TraceError("give a document id, or an input file and a position")
    if not len(rows):
        what = repr(doc_id) if doc_id is not None else f"input file {ordinal} position {position}"
        raise TraceError(f"no document {what} in {layout.uri}")
    job = CurateJob.model_validate(spec)
    return {
        "output": layout.uri,
        "kind": "curate",
        "records": [_record(layout, job, r, excerpt) for r in rows.to_pylist()],
    }


def _record(layout: Layout, job: Any, r: dict[str, Any], excerpt: int) -> dict[str, Any]:
    from curation.inspection.samples import explain
    from curation.stages.registry import funnel_order, funnel_row

    out: dict[str, Any] = {
        "id": r["id"],
        "input_file": input_file_of(layout, int(r["ordinal"])),
        "input_ordinal": int(r["ordinal"]),
        "position": int(r["position"]),
        "status": r["status"],
        "drop_reason": r["drop_reason"],
        "lang": r["lang"],
        "domain": r["domain"],
        "output_file": r["output"],
        "output_row": r["row"],
    }
    row: dict[str, Any] = {}
    if r["output"] is not None:
        got = read_rows(layout, r["output"], [int(r["row"])])
        row = got.to_pylist()[0] if len(got) else {}
    if r["status"] == "quarantined":
        out["error"] = row.get("error")
    out["scores"] = {
        k: v
        for k, v in row.items()
        if k not in ("id", "text", "raw", "drop_reason", "source", "domain", "lang", "input_file", "position")
        and not k.startswith("dup_")
        and not isinstance(v, (bytes, list, dict))
    }
    if row.get("text") is not None:
        out["text_excerpt"] = row["text"][:excerpt]
    measure = None
    if r["status"] == "rejected" and row:
        m = explain(job, pa.Table.from_pylist([{**row, "drop_reason": r["drop_reason"]}]))[0]
        if m is not None:
            measure = {"value": m.value, "threshold": m.threshold, "drops_when": m.drops_when}
    # every stage's decision, in pipeline order
    dropped_at = funnel_row(r["drop_reason"]) if r["drop_reason"] else None
    applies = _filter_domains()
    stages: list[dict[str, Any]] = []
    state = "quarantined" if r["status"] == "quarantined" else "passed"
    for name in funnel_order(job):
        if state == "quarantined":
            stages.append({"stage": name, "decision": "not run (quarantined when read)"})
        elif name == dropped_at:
            stages.append({"stage": name, "decision": "dropped", "reason": r["drop_reason"], "measure": measure})
            state = "after"
        elif state == "after":
            stages.append({"stage": name, "decision": "not reached"})
        elif name in applies and not applies[name](r["domain"]):
            stages.append({"stage": name, "decision": f"not applicable (domain {r['domain']})"})
        else:
            stages.append({"stage": name, "decision": "passed"})
    out["stages"] = stages
    if row.get("dup_of") is not None:  # a repeat of an earlier corpus's document (stages.dedup.against)
        sim = row.get("dup_similarity")
        out["duplicate_of_earlier"] = {
            "id": row["dup_of"],
            "corpus": row.get("dup_of_corpus"),
            "similarity": None if sim is None or math.isnan(sim) else sim,
        }
    if r["dup_cluster"] is not None:
        keeper = r["dup_keeper"]
        out["duplicate_cluster"] = {
            "keeper_id": r["dup_cluster"],
            "size": r["dup_cluster_size"],
            "similarity": None
            if r["dup_similarity"] is None or math.isnan(r["dup_similarity"])
            else r["dup_similarity"],
            "is_keeper": r["dup_cluster"] == r["id"],
            **_keeper_place(layout, keeper),
        }
    return out


def _keeper_place(layout: Layout, keeper: int | None) -> dict[str, Any]:
    if keeper is None:
        return {"keeper_input_file": None, "keeper_position": None}
    lin = find_positions(layout, int(keeper) >> 32, [int(keeper)], column="doc")
    return {
        "keeper_input_file": input_file_of(layout, int(keeper) >> 32),
        "keeper_position": lin["position"][0].as_py() if len(lin) else None,
    }


def _filter_domains() -> dict[str, Any]:
    """filter name -> whether it applies to a domain (filters with `domains` see only those; the web
    filters see every domain no filter claims)."""
    from filters.registry import all_filters, claimed_domains

    claimed = set(claimed_domains())
    out: dict[str, Any] = {}
    for name, klass in all_filters().items():
        mine = klass.domains
        out[name] = (lambda d, mine=mine: d in mine) if mine is not None else (lambda d: d not in claimed)
    return out


def _trace_mix(layout: Layout, doc_id: str, excerpt: int) -> dict[str, Any]:
    from mixtures.select import seeded

    manifest = None
    try:
        with layout.fs.open_input_stream(layout.path("manifest.json")) as f:
            manifest = json.loads(f.read())
    except (FileNotFoundError, OSError):
        raise TraceError(f"{layout.uri} has no manifest.json (the mixture did not finish)") from None
    shards = {s["path"]: s for s in manifest.get("shards") or [] if s}
    n = manifest.get("shard_count")
    key = id_keys([doc_id], 1)
    if n:
        # each copy (epoch e) went to the shard its seeded hash names; look in those shards only
        epochs = np.arange(max(1, math.ceil(float(manifest.get("max_epochs") or 1))) + 1)
        h = seeded(np.repeat(key, len(epochs)), int(manifest.get("seed", 0)), "shuffle", epochs)
        wanted = sorted({f"shards/shard-{int(j):05d}.parquet" for j in (h % np.uint64(n)).tolist()})
        paths = [p for p in wanted if p in shards]
    else:  # a manifest written before shard_count was recorded: every shard's id column
        paths = sorted(shards)
    copies = []
    for rel in paths:
        pf = pq.ParquetFile(layout.path(rel), filesystem=layout.fs)
        ids = pf.read(columns=["id"])["id"]
        hits = np.flatnonzero(pc.equal(ids.cast(pa.string()), doc_id).to_numpy(zero_copy_only=False))
        if len(hits):
            got = read_rows(layout, rel, hits.tolist(), ["row_id", "epoch", "bucket", "n_tokens", "lang", "domain"])
            for i, row in zip(hits.tolist(), got.to_pylist()):
                copies.append({"shard": rel, "row": int(i), **row})
    if not copies:
        raise TraceError(f"no row of document {doc_id!r} in mixture {layout.uri}")
    sources = sorted({r for r in (_curate_root(p) for p in manifest.get("inputs") or []) if r is not None})
    upstream = []
    for root in sources:
        try:
            got = trace(type(layout)(root), doc_id, excerpt=excerpt)
        except (TraceError, FileNotFoundError, OSError):
            continue
        upstream.extend(got["records"])
    return {"output": layout.uri, "kind": "mix", "id": doc_id, "copies": copies, "curated_from": upstream}


def _curate_root(path: str) -> str | None:
    """The curate output a curated file belongs to (the folder above its `curated/`)."""
    if "/curated/" not in path:
        return None
    return path.rsplit("/curated/", 1)[0]
