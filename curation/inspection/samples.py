"""Samples of what each rule removed: `OUT/samples/part-00000.parquet`.

For every (drop reason, language) group, and every kept language (`drop_reason` null), the
`inspection.samples_per_group` documents with the smallest seeded hash of their id: a deterministic
sample, the same however the inputs are split or the job is scheduled. Each sampled rejected document
carries the rule's measured value and threshold (`Stage.explain`, `filters.base.Measure`); a sampled
duplicate carries its keeper (id, input position, text excerpt) and their similarity.

Built without anything growing with the corpus: each input file's write task keeps its own bottom-k per
group (`SampleCollector`, k rows per group, measured once per file), files are merged k-per-group in a
tree of tasks (`merge_samples`, FANIN files each), and the last merge looks up the keepers of its
duplicate samples in the lineage index.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curation.inspection.keys import seeded_keys
from curation.stages.dedup import DEDUP_FUNNEL

FANIN = 64  # sample files merged per task
SAMPLES_FILE = "samples/part-00000.parquet"
DUP_REASONS = tuple(DEDUP_FUNNEL)  # within the job and of earlier corpora (whose keepers are elsewhere)
SAMPLE_SCHEMA = pa.schema(
    [
        ("drop_reason", pa.string()),
        ("lang", pa.string()),
        ("id", pa.string()),
        ("text", pa.large_string()),
        ("n_chars", pa.int64()),
        ("source", pa.string()),
        ("domain", pa.string()),
        ("input_file", pa.string()),
        ("position", pa.int64()),
        ("value", pa.float64()),
        ("threshold", pa.float64()),
        ("drops_when", pa.string()),
        ("dup_cluster", pa.string()),
        ("dup_similarity", pa.float32()),
        ("keeper_input_file", pa.string()),
        ("keeper_position", pa.int64()),
        ("keeper_text", pa.large_string()),
        ("_skey", pa.uint64()),
        ("_keeper", pa.int64()),
    ]
)
_CANDIDATE_COLUMNS = (
    "id",
    "text",
    "n_chars",
    "source",
    "domain",
    "lang",
    "drop_reason",
    "dup_cluster",
    "dup_similarity",
)


def _bottom_k(t: pa.Table, k: int) -> pa.Table:
    """The k rows of smallest `_skey` in each (drop_reason, lang) group."""
    if len(t) == 0:
        return t
    reason = pc.fill_null(t["drop_reason"], "\x00kept").to_numpy(zero_copy_only=False).astype(str)
    lang = pc.fill_null(t["lang"], "und").to_numpy(zero_copy_only=False).astype(str)
    group = np.char.add(np.char.add(reason, "\x01"), lang)
    _, code = np.unique(group, return_inverse=True)
    order = np.lexsort((t["_skey"].to_numpy(), code))
    sorted_code = code[order]
    first = np.searchsorted(sorted_code, sorted_code, side="left")
    rank = np.arange(len(order)) - first
    return t.take(pa.array(np.sort(order[rank < k])))


class SampleCollector:
    """One input file's candidates: its bottom-k per group, over all its parts."""

    def __init__(self, job: Any, input_uri: str, min_scores: dict[str, dict[str, float]] | None):
        self.job, self.input_uri, self.min_scores = job, input_uri, min_scores
        self.k = job.inspection.samples_per_group
        self.kept: pa.Table | None = None

    def add(self, t: pa.Table, quarantined: np.ndarray, keeper: np.ndarray) -> None:
        if self.k == 0:
            return
        rows = np.flatnonzero(~quarantined)
        if not len(rows):
            return
        part = t.take(pa.array(rows))
        cols = {c: part[c] for c in _CANDIDATE_COLUMNS if c in part.column_names}
        cols["position"] = part["position"].cast(pa.int64())
        cols["_skey"] = pa.array(
            seeded_keys(part["id"].cast(pa.string()).to_pylist(), self.job.inspection.seed, len(part)), pa.uint64()
        )
        cols["_keeper"] = pa.array(keeper[rows], pa.int64())
        scores = [c for c in part.column_names if c.startswith("quality_") or c in ("lang_score", "perplexity")]
        for c in scores:
            cols[c] = part[c]
        cand = _bottom_k(pa.table(cols), self.k)
        if self.kept is not None:
            cand = _bottom_k(pa.concat_tables([self.kept, cand], promote_options="permissive"), self.k)
        self.kept = cand

    def close(self, layout: Any, ordinal: int) -> str | None:
        """Measure the file's sampled rejections, cut texts to excerpts, write `_work/samples/fNNNNN.parquet`."""
        path = layout.path("_work", "samples", f"f{ordinal:05d}.parquet")
        if self.kept is None or not len(self.kept):
            layout.remove_file(path)
            return None
        t = self.kept
        measures = explain(self.job, t, self.min_scores)
        excerpt = self.job.inspection.excerpt_chars
        out = pa.table(
            {
                "drop_reason": t["drop_reason"],
                "lang": t["lang"],
                "id": t["id"].cast(pa.string()),
                "text": pc.utf8_slice_codeunits(t["text"].cast(pa.large_string()), 0, excerpt),
                "n_chars": t["n_chars"].cast(pa.int64()),
                "source": t["source"],
                "domain": t["domain"],
                "input_file": pa.array([self.input_uri] * len(t), pa.string()),
                "position": t["position"],
                "value": pa.array([_num(m.value) if m else None for m in measures], pa.float64()),
                "threshold": pa.array([_num(m.threshold) if m else None for m in measures], pa.float64()),
                "drops_when": pa.array([m.drops_when if m else None for m in measures], pa.string()),
                "dup_cluster": t["dup_cluster"],
                "dup_similarity": t["dup_similarity"],
                "keeper_input_file": pa.nulls(len(t), pa.string()),
                "keeper_position": pa.nulls(len(t), pa.int64()),
                "keeper_text": pa.nulls(len(t), pa.large_string()),
                "_skey": t["_skey"],
                "_keeper": t["_keeper"],
            },
            schema=SAMPLE_SCHEMA,
        )
        layout.mkdir(path.rsplit("/", 1)[0])
        pq.write_table(out, path + ".tmp", filesystem=layout.fs, compression="zstd")
        layout.fs.move(path + ".tmp", path)
        return path


def _num(v: Any) -> float | None:
    if v is None:
        return None
    v = float(v)
    return None if np.isnan(v) else v


def explain(job: Any, rows: pa.Table, min_scores: dict[str, dict[str, float]] | None = None) -> list[Any]:
    """The measure behind each row's drop reason, asked of the stage that owns the reason; duplicates
    and keep_top_fraction are decided after the stages, so they are measured here."""
    from curation.stages import registry
    from filters.base import Measure

    reasons = rows["drop_reason"].to_pylist()
    out: list[Any] = [None] * len(rows)
    minhash = job.stages.dedup.minhash if job.stages.dedup is not None else None
    sims = rows["dup_similarity"].to_pylist() if "dup_similarity" in rows.column_names else [None] * len(rows)
    langs = rows["lang"].to_pylist()
    domains = rows["domain"].to_pylist()
    by_owner: dict[str, list[int]] = {}
    for i, r in enumerate(reasons):
        if r is None:
            continue
        if r in DUP_REASONS:
            threshold = 1.0 if minhash is None else minhash.verify_threshold
            out[i] = Measure(sims[i], threshold, ">=") if r.startswith("minhash_") else Measure(None, None)
        elif r.endswith(":top_fraction") and min_scores:
            col = "quality_" + r.split(":")[1]
            limit = min_scores.get(col, {}).get(f"{langs[i] or 'und'}/{domains[i]}")
            score = rows[col][i].as_py() if col in rows.column_names else None
            out[i] = Measure(score, limit, "<")
        else:
            by_owner.setdefault(registry.funnel_row(r), []).append(i)
    if not by_owner:
        return out
    for stage in registry.plan(job):
        mine = [i for row in stage.funnel() for i in by_owner.get(row, [])]
        if not mine:
            continue
        try:
            got = stage.explain(rows.take(pa.array(mine)))
        except Exception:  # a measure is a nicety of the report: a stage that cannot give one gives none
            continue
        for i, m in zip(mine, got):
            out[i] = m
    return out


def merge_samples(layout: Any, paths: Sequence[str], k: int, dest: str) -> str | None:
    """One merge task: the bottom-k per group of some sample files, written to `dest`."""
    tables = []
    for p in paths:
        try:
            tables.append(pq.read_table(p, filesystem=layout.fs, schema=SAMPLE_SCHEMA))
        except (FileNotFoundError, OSError):
            continue
    if not tables:
        return None
    t = _bottom_k(pa.concat_tables(tables), k)
    layout.mkdir(dest.rsplit("/", 1)[0])
    pq.write_table(t, dest + ".tmp", filesystem=layout.fs, compression="zstd")
    layout.fs.move(dest + ".tmp", dest)
    return dest


def finish_samples(layout: Any, paths: Sequence[str], k: int, excerpt: int) -> int:
    """The last merge: bottom-k per group of the remaining files, the duplicates' keepers filled in from
    the lineage index, sorted by reason, language and hash, written to OUT/samples/. Returns the rows."""
    from curation.inspection.lineage import find_positions, input_file_of, read_rows

    dest = layout.path(SAMPLES_FILE)
    tables = [pq.read_table(p, filesystem=layout.fs, schema=SAMPLE_SCHEMA) for p in paths]
    t = _bottom_k(pa.concat_tables(tables), k) if tables else SAMPLE_SCHEMA.empty_table()
    keeper = t["_keeper"].to_numpy(zero_copy_only=False)
    reasons = t["drop_reason"].to_pylist()
    k_file: list[str | None] = [None] * len(t)
    k_pos: list[int | None] = [None] * len(t)
    k_text: list[str | None] = [None] * len(t)
    want = [i for i in range(len(t)) if reasons[i] in DUP_REASONS and keeper[i] >= 0]
    by_file: dict[int, list[int]] = {}
    for i in want:
        by_file.setdefault(int(keeper[i]) >> 32, []).append(i)
    for ordinal, rows in sorted(by_file.items()):
        lin = find_positions(layout, ordinal, sorted({int(keeper[i]) for i in rows}), column="doc")
        where = {
            d: (p, o, r)
            for d, p, o, r in zip(
                lin["doc"].to_pylist(), lin["position"].to_pylist(), lin["output"].to_pylist(), lin["row"].to_pylist()
            )
        }
        uri = input_file_of(layout, ordinal)
        for i in rows:
            found = where.get(int(keeper[i]))
            if found is None:
                continue
            k_file[i], k_pos[i] = uri, found[0]
            if found[1] is not None:
                text = read_rows(layout, found[1], [found[2]], ["text"])["text"]
                k_text[i] = text[0].as_py()[:excerpt] if len(text) else None
    t = t.set_column(t.schema.get_field_index("keeper_input_file"), "keeper_input_file", pa.array(k_file, pa.string()))
    t = t.set_column(t.schema.get_field_index("keeper_position"), "keeper_position", pa.array(k_pos, pa.int64()))
    t = t.set_column(t.schema.get_field_index("keeper_text"), "keeper_text", pa.array(k_text, pa.large_string()))
    if len(t):  # kept samples (no reason) last
        t = t.sort_by([("drop_reason", "ascending"), ("lang", "ascending"), ("_skey", "ascending")])
    layout.mkdir(dest.rsplit("/", 1)[0])
    pq.write_table(t, dest + ".tmp", filesystem=layout.fs, compression="zstd")
    layout.fs.move(dest + ".tmp", dest)
    return len(t)


def build_samples(executor: Any, layout: Any, paths: list[str], k: int, excerpt: int) -> int:
    """Merge the per-file sample files in rounds of FANIN per task, then finish on one task."""
    level = 0
    while len(paths) > FANIN:
        groups = [paths[i : i + FANIN] for i in range(0, len(paths), FANIN)]
        args = [
            (layout, g, k, layout.path("_work", "samples", f"merge-{level}-{j:05d}.parquet"))
            for j, g in enumerate(groups)
        ]
        paths = [p for p in executor.map(merge_samples, args) if p is not None]
        level += 1
    return int(executor.map(finish_samples, [(layout, paths, k, excerpt)])[0])


def read_samples(layout: Any) -> pa.Table | None:
    try:
        return pq.read_table(layout.path(SAMPLES_FILE), filesystem=layout.fs)
    except (FileNotFoundError, OSError):
        return None
