"""The output layout (SPEC "Outputs") and the writers that produce it.

OUT/
  job.yaml                              the resolved spec
  curated/lang=XX/part-NNNNN.parquet    kept documents (NNNNN: the input file's ordinal)
  rejected/part-NNNNN.parquet           dropped documents with drop_reason
  quarantine/part-NNNNN.parquet         unparseable records with the error, position and raw bytes
  stats.json, report.html, *.png
  _work/                                intermediate state for resume (annotated parts, markers)

Names are deterministic (input ordinal, position), and rows are written in input order, so a re-run
with the same spec produces identical files.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curation.layout import Layout

CURATED_COLUMNS = [
    "id",
    "text",
    "source",
    "domain",
    "lang",
    "lang_score",
    "n_chars",
    "dup_cluster",
    "dup_cluster_size",
    "dup_similarity",
]
REJECTED_COLUMNS = CURATED_COLUMNS + ["drop_reason"]
QUARANTINE_COLUMNS = ["id", "source", "domain", "input_file", "position", "error", "raw"]
# Row groups of about 64 MiB of text (SPEC: 64 to 256 MB in memory), or 1M rows of short documents. A write
# task buffers at most one row group per open file (a language of its input file, its rejected and
# quarantine files), and never more than the text of its input split.
_ROW_GROUP_ROWS = 1_000_000
_ROW_GROUP_BYTES = 64 << 20
DUP_REASONS = {1: "exact_duplicate", 2: "minhash_duplicate", 3: "url_duplicate"}


def write_annotated_part(layout: Layout, table: pa.Table, part: int) -> str | None:
    """Persist one processed batch under _work, named by its first document so reruns overwrite it."""
    if len(table) == 0:
        return None
    ordinal, pos = part >> 32, part & 0xFFFFFFFF
    d = layout.annotated_dir(ordinal)
    layout.mkdir(d)
    path = f"{d}/p{pos:010d}.parquet"
    pq.write_table(table, path + ".tmp", filesystem=layout.fs, compression="zstd")
    layout.fs.move(path + ".tmp", path)
    return path


def batch_stats(table: pa.Table) -> dict[str, Any]:
    """Counts of one processed batch, merged by the driver into the job's funnel."""
    quarantined = int(pc.sum(pc.is_valid(table["error"])).as_py() or 0) if len(table) else 0
    reasons = Counter(r for r in table["drop_reason"].to_pylist() if r is not None) if len(table) else Counter()
    timings = {c[3:]: float(pc.sum(table[c]).as_py() or 0.0) for c in table.column_names if c.startswith("_t_")}
    return {
        "records": len(table),
        "quarantined": quarantined,
        "reasons": dict(reasons),
        "timings": timings,
        "input_bytes": int(pc.sum(table["_in_bytes"]).as_py() or 0)
        if len(table) and "_in_bytes" in table.column_names
        else 0,
    }


def merge_counts(into: dict[str, Any], add: dict[str, Any]) -> dict[str, Any]:
    """Add nested counters (ints/floats in dicts) of `add` into `into`."""
    for k, v in add.items():
        if isinstance(v, dict):
            merge_counts(into.setdefault(k, {}), v)
        elif isinstance(v, (int, float)):
            into[k] = into.get(k, 0) + v
    return into


@dataclass
class FinalCounts:
    kept: int = 0
    rejected: int = 0
    quarantined: int = 0
    by_reason: Counter = field(default_factory=Counter)
    kept_by_lang: Counter = field(default_factory=Counter)
    input_by_lang: Counter = field(default_factory=Counter)
    reasons_by_lang: dict = field(default_factory=dict)  # lang -> Counter of drop reasons
    cluster_sizes: Counter = field(default_factory=Counter)
    input_by_domain: Counter = field(default_factory=Counter)
    kept_by_domain: Counter = field(default_factory=Counter)
    # quality_NAME -> "kept"/"rejected" -> histogram bin -> documents (bins of SCORE_BIN, see score_bins)
    score_histograms: dict = field(default_factory=dict)
    # score column -> lang -> docs/chars -> bin: what `curate sweep` needs (curation.inspection.sweep)
    sweep_histograms: dict = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kept": self.kept,
            "rejected": self.rejected,
            "quarantined": self.quarantined,
            "by_reason": dict(self.by_reason),
            "kept_by_lang": dict(self.kept_by_lang),
            "input_by_lang": dict(self.input_by_lang),
            "reasons_by_lang": {k: dict(v) for k, v in self.reasons_by_lang.items()},
            "cluster_sizes": {str(k): v for k, v in self.cluster_sizes.items()},
            "input_by_domain": dict(self.input_by_domain),
            "kept_by_domain": dict(self.kept_by_domain),
            "score_histograms": self.score_histograms,
            "sweep_histograms": self.sweep_histograms,
            "files": self.files,
        }


SCORE_BIN = 0.05  # histogram bin width of quality scores (probabilities, or grades up to 5)
SCORE_COLUMNS_PREFIX = "quality_"
# Reader columns written beside the documents (WARC inputs); the stages' own columns come from the stage
# registry (`curation.stages.registry.output_columns`), passed to finalize_file by the job.
EXTRA_SCORE_COLUMNS = ("url", "warc_date", "content_type", "http_status", "warc_digest")


def score_bins(scores: np.ndarray) -> dict[str, int]:
    """Histogram of scores as {bin start: count}, bins of SCORE_BIN from 0 (mergeable across files)."""
    scores = scores[~np.isnan(scores)]
    if not len(scores):
        return {}
    scores = np.clip(scores, 0, None)
    bins = np.floor(scores / SCORE_BIN).astype(np.int64)
    bins[(scores > 0) & (scores == np.floor(scores))] -= 1  # 1.0 (or a top grade) closes the bin below it
    bins, counts = np.unique(bins, return_counts=True)
    return {f"{b * SCORE_BIN:.2f}": int(c) for b, c in zip(bins, counts)}


def in_progress_name(path: str) -> str:
    """Where a file is written before it is complete: the same folder, a hidden name (".inprogress-"),
    which pyarrow.dataset, datasets and our own readers skip (datasets does not skip "_" names); renamed
    to `path` once closed, so a file under its final name is always whole (a full disk or a killed worker
    leaves only the in-progress name)."""
    folder, name = path.rsplit("/", 1)
    return f"{folder}/.inprogress-{name}"


class _Sink:
    """A Parquet file opened on first write (no empty files for languages a shard lacks), written under
    its in-progress name and renamed on close. Rows are buffered into row groups of _ROW_GROUP_ROWS rows,
    or fewer once their text reaches _ROW_GROUP_BYTES, cut by a scan over the rows alone: a file's layout
    depends only on its rows, not on how the annotate phase cut them into parts (which follows Ray
    Data's block boundaries)."""

    def __init__(self, layout: Layout, path: str, max_rows: int = _ROW_GROUP_ROWS):
        self.layout, self.path, self.writer = layout, path, None
        self.max_rows = max_rows
        self.pending: list[pa.Table] = []
        self.rows = self.nbytes = 0
        self.total = 0  # rows written so far: the next row's index in the file (the lineage index's `row`)

    def write(self, table: pa.Table) -> None:
        self.total += len(table)
        while len(table):
            body = next((c for c in ("text", "raw") if c in table.column_names), None)
            sizes = (
                np.cumsum(
                    pc.binary_length(table[body].cast(pa.large_binary())).fill_null(0).to_numpy(zero_copy_only=False)
                )
                if body
                else np.zeros(len(table), np.int64)
            )
            # The first row at which this row group is full, by rows or by text bytes.
            by_bytes = int(np.searchsorted(sizes, _ROW_GROUP_BYTES - self.nbytes, side="left")) + 1
            cut = min(len(table), self.max_rows - self.rows, by_bytes)
            head = table.slice(0, cut)
            self.pending.append(head)
            self.rows += cut
            self.nbytes += int(sizes[cut - 1])
            table = table.slice(cut)
            if self.rows >= self.max_rows or self.nbytes >= _ROW_GROUP_BYTES:
                self._flush()

    def _flush(self) -> None:
        if not self.pending:
            return
        t = pa.concat_tables(self.pending, promote_options="permissive")
        if self.writer is None:
            self.layout.mkdir(self.path.rsplit("/", 1)[0])
            self.writer = pq.ParquetWriter(
                in_progress_name(self.path),
                t.schema,
                filesystem=self.layout.fs,
                compression="zstd",
                write_page_index=True,
            )
        self.writer.write_table(t, row_group_size=len(t))
        self.pending, self.rows, self.nbytes = [], 0, 0

    def close(self) -> bool:
        self._flush()
        if self.writer is None:
            return False
        self.writer.close()
        self.layout.fs.move(in_progress_name(self.path), self.path)
        return True


def write_parquet(layout: Layout, path: str, table: pa.Table) -> None:
    """One Parquet file with `_Sink`'s row groups and page index, under its in-progress name until whole."""
    sink = _Sink(layout, path)
    sink.write(table)
    sink.close()


TOP_FRACTION_BIN = 0.001  # score resolution of keep_top_fraction thresholds


def _groups(t: pa.Table) -> list[str]:
    langs = t["lang"].to_pylist() if "lang" in t.column_names else ["und"] * len(t)
    return [f"{lang or 'und'}/{dom}" for lang, dom in zip(langs, t["domain"].to_pylist())]


def _with_docs(d: pa.Table | None) -> tuple[np.ndarray, pa.Table | None]:
    return (d["_doc"].to_numpy() if d is not None else np.zeros(0, np.int64)), d


def _dup_decisions(layout: Layout, ordinal: int) -> tuple[np.ndarray, pa.Table | None]:
    """(sorted documents with a dedup decision, the decisions) of one input file."""
    from curation.dedup import cluster

    return _with_docs(cluster.read_decisions(layout, ordinal))


def _earlier_decisions(layout: Layout, ordinal: int) -> tuple[np.ndarray, pa.Table | None]:
    """(sorted documents matching an earlier corpus, the matches) of one input file (`stages.dedup.against`)."""
    from curation.dedup import against

    return _with_docs(against.read_decisions(layout, ordinal))


def survivor_score_bins(layout: Layout, ordinal: int, columns: Sequence[str]) -> dict[str, dict[str, dict[str, int]]]:
    """column -> "lang/domain" -> {score bin: documents} over one file's documents that survived every
    stage and dedup: what keep_top_fraction ranks."""
    out: dict[str, dict[str, dict[str, int]]] = {c: {} for c in columns}
    docs, dec = _dup_decisions(layout, ordinal)
    dropped = docs[dec["dup_reason"].to_numpy() > 0] if dec is not None else docs
    dropped = np.concatenate([dropped, _earlier_decisions(layout, ordinal)[0]])
    for part in layout.list_files(layout.annotated_dir(ordinal)):
        t = pq.read_table(part, filesystem=layout.fs)
        alive = np.asarray(
            pc.and_(pc.is_null(t["error"]), pc.is_null(t["drop_reason"])).to_numpy(zero_copy_only=False), dtype=bool
        ) & ~np.isin(t["_doc"].to_numpy(), dropped)
        groups = np.array(_groups(t), dtype=object)
        for c in columns:
            vals = t[c].to_numpy(zero_copy_only=False).astype(np.float64)
            bins = np.floor(np.nan_to_num(vals, nan=-1.0) / TOP_FRACTION_BIN).astype(np.int64)
            for g in np.unique(groups[alive]):
                sel = alive & (groups == g)
                b, n = np.unique(bins[sel], return_counts=True)
                merge_counts(out[c].setdefault(g, {}), {str(k): int(v) for k, v in zip(b, n)})
    return out


def top_fraction_threshold(bins: dict[str, int], fraction: float) -> float:
    """The lowest score kept when keeping the best `fraction` of the documents counted in `bins`
    (whole bins: ties at the threshold's bin are kept, so slightly more than the fraction may stay)."""
    total = sum(bins.values())
    want, seen = fraction * total, 0
    for b in sorted((int(k) for k in bins), reverse=True):
        seen += bins[str(b)]
        if seen >= want - 1e-9:
            return b * TOP_FRACTION_BIN
    return -np.inf


def finalize_file(
    layout: Layout,
    ordinal: int,
    input_uri: str,
    min_scores: dict[str, dict[str, float]] | None = None,
    stage_columns: Sequence[str] = (),
    job: Any = None,
) -> dict[str, Any]:
    """Split one input file's annotated parts into curated / rejected / quarantine files, with its dedup
    decisions (its own decision file only). `stage_columns`: the columns the job's stages add that are
    written beside the documents (scores, flags).

    `min_scores` (column -> "lang/domain" -> lowest kept score) applies keep_top_fraction to the
    documents that survived everything else (`quality:NAME:top_fraction`). With the `job`, its inspection
    settings: the file's lineage (`curation.inspection.lineage`) and sample candidates
    (`curation.inspection.samples`) are written too."""
    from curation.inspection.histograms import table_histograms
    from curation.inspection.lineage import LineageWriter
    from curation.inspection.samples import SampleCollector

    counts = FinalCounts()
    lineage = LineageWriter(layout, ordinal, input_uri) if job is not None and job.inspection.lineage else None
    samples = SampleCollector(job, input_uri, min_scores) if job is not None else None
    dec_docs, dec = _dup_decisions(layout, ordinal)
    if dec is not None:
        dec_reason = dec["dup_reason"].to_numpy()
        dec_cluster = dec["dup_cluster"].to_pylist()
        dec_size = dec["dup_cluster_size"].to_numpy()
        dec_sim = dec["dup_similarity"].to_numpy(zero_copy_only=False)
        # decisions written before the keeper's document number was recorded have none
        dec_keeper = (
            dec["dup_keeper"].to_numpy(zero_copy_only=False)
            if "dup_keeper" in dec.column_names
            else np.full(len(dec), -1, np.int64)
        )
    from curation.dedup.index import ENTRY_COLUMNS, entries_path
    from curation.stages.dedup import Dedup

    dedup_spec = job.stages.dedup if job is not None else None
    against = dedup_spec is not None and bool(dedup_spec.against)
    ear_docs, ear = _earlier_decisions(layout, ordinal) if against else (np.zeros(0, np.int64), None)
    entries = (  # the kept documents' keys, for OUT/index/ (curation.dedup.index.build_index)
        _Sink(layout, entries_path(layout, ordinal), max_rows=1 << 16)  # row groups of 64k: rows carry a signature
        if Dedup.active(dedup_spec) and dedup_spec.write_index
        else None
    )
    sinks: dict[str, _Sink] = {}

    def sink(rel: str) -> _Sink:
        if rel not in sinks:
            sinks[rel] = _Sink(layout, layout.path(rel))
        return sinks[rel]

    name = f"part-{ordinal:05d}.parquet"
    for part in layout.list_files(layout.annotated_dir(ordinal)):
        t = pq.read_table(part, filesystem=layout.fs)
        n = len(t)
        docs = t["_doc"].to_numpy()
        reasons = t["drop_reason"].to_pylist()
        cluster = [None] * n
        size = np.ones(n, dtype=np.int64)
        similarity = np.full(n, np.nan, dtype=np.float32)
        keeper = np.full(n, -1, dtype=np.int64)
        if dec is not None and len(dec_docs):
            pos = np.minimum(np.searchsorted(dec_docs, docs), len(dec_docs) - 1)
            hit = np.flatnonzero(dec_docs[pos] == docs)
            for i in hit:
                j = pos[i]
                size[i] = dec_size[j]
                cluster[i] = dec_cluster[j]
                similarity[i] = dec_sim[j]
                keeper[i] = dec_keeper[j]
                r = int(dec_reason[j])
                if r:
                    reasons[i] = DUP_REASONS[r]
                counts.cluster_sizes[int(size[i])] += 1
        dup_of = dup_of_corpus = None
        if against:
            from curation.dedup.against import AGAINST_REASONS

            dup_of, dup_of_corpus = [None] * n, [None] * n
            if ear is not None and len(ear_docs):
                pos = np.minimum(np.searchsorted(ear_docs, docs), len(ear_docs) - 1)
                hit = np.flatnonzero(ear_docs[pos] == docs)
                e_reason, e_of, e_corpus = (ear[c].to_pylist() for c in ("reason", "dup_of", "dup_of_corpus"))
                e_sim = ear["similarity"].to_numpy(zero_copy_only=False)
                for i in hit:
                    j = pos[i]
                    reasons[i] = AGAINST_REASONS[e_reason[j]]
                    dup_of[i], dup_of_corpus[i] = e_of[j], e_corpus[j]
                    similarity[i] = e_sim[j]
                    keeper[i] = -1  # the document it repeats is in another corpus
        if min_scores:
            groups = _groups(t)
            errors = t["error"].to_pylist()
            for col, by_group in min_scores.items():
                vals = t[col].to_numpy(zero_copy_only=False).astype(np.float64)
                bins = np.floor(np.nan_to_num(vals, nan=-1.0) / TOP_FRACTION_BIN) * TOP_FRACTION_BIN
                reason = f"quality:{col.removeprefix(SCORE_COLUMNS_PREFIX)}:top_fraction"
                for i in range(n):
                    if reasons[i] is None and errors[i] is None:
                        limit = by_group.get(groups[i])
                        if limit is not None and (np.isnan(vals[i]) or bins[i] < limit - 1e-12):
                            reasons[i] = reason
        if "lang" not in t.column_names:
            t = t.append_column("lang", pa.array(["und"] * n, pa.string()))
            t = t.append_column("lang_score", pa.nulls(n, pa.float32()))
        t = t.set_column(t.column_names.index("drop_reason"), "drop_reason", pa.array(reasons, pa.string()))
        t = t.append_column("dup_cluster", pa.array(cluster, pa.string()))
        t = t.append_column("dup_cluster_size", pa.array(size, pa.int64()))
        t = t.append_column("dup_similarity", pa.array(similarity, pa.float32(), from_pandas=True))
        if dup_of is not None:
            t = t.append_column("dup_of", pa.array(dup_of, pa.string()))
            t = t.append_column("dup_of_corpus", pa.array(dup_of_corpus, pa.string()))

        is_q = np.asarray(pc.is_valid(t["error"]).to_numpy(zero_copy_only=False), dtype=bool)
        is_rej = np.array([r is not None for r in reasons]) & ~is_q
        is_kept = ~is_q & ~is_rej
        extras = [
            c
            for c in t.column_names
            if c.startswith(SCORE_COLUMNS_PREFIX) or c in EXTRA_SCORE_COLUMNS or c in stage_columns
        ]
        for c in extras:
            if c.startswith(SCORE_COLUMNS_PREFIX):
                values = t[c].to_numpy(zero_copy_only=False).astype(np.float64)
                hist = counts.score_histograms.setdefault(c, {})
                for side, mask in (("kept", is_kept), ("rejected", is_rej)):
                    merge_counts(hist.setdefault(side, {}), score_bins(values[mask]))
        out_file = np.full(n, None, dtype=object)  # where each row is written (the lineage index)
        out_row = np.full(n, -1, dtype=np.int64)

        def place(rel: str, mask: np.ndarray) -> None:
            where = np.flatnonzero(mask)
            out_row[where] = sink(rel).total + np.arange(len(where))
            out_file[where] = rel

        merge_counts(counts.sweep_histograms, table_histograms(t, np.array(reasons, dtype=object), ~is_q))
        doms = t["domain"].to_pylist()
        counts.input_by_domain.update(d for d, q in zip(doms, is_q) if not q)
        counts.kept_by_domain.update(d for d, k in zip(doms, is_kept) if k)
        if is_q.any():
            q = t.filter(pa.array(is_q))
            q = q.append_column("input_file", pa.array([input_uri] * len(q), pa.string()))
            place(f"quarantine/{name}", is_q)
            sink(f"quarantine/{name}").write(q.select(QUARANTINE_COLUMNS))
        langs = t["lang"].to_pylist()
        for i in np.flatnonzero(~is_q):
            counts.input_by_lang[langs[i] or "und"] += 1
        if is_rej.any():
            rej = t.filter(pa.array(is_rej))
            place(f"rejected/{name}", is_rej)
            sink(f"rejected/{name}").write(rej.select(REJECTED_COLUMNS + extras))
            counts.by_reason.update(r for r, m in zip(reasons, is_rej) if m)
            for i in np.flatnonzero(is_rej):
                counts.reasons_by_lang.setdefault(langs[i] or "und", Counter())[reasons[i]] += 1
        if is_kept.any():
            kept = t.filter(pa.array(is_kept)).select(CURATED_COLUMNS + extras)
            klangs = kept["lang"].to_pylist()
            all_langs = np.array(langs, dtype=object)
            for lang in sorted(set(klangs), key=lambda x: (x is None, x or "")):
                rel = f"curated/lang={lang or 'und'}/{name}"
                place(rel, is_kept & (all_langs == lang) if lang is not None else is_kept & _is_none(all_langs))
                sink(rel).write(kept.filter(pc.equal(kept["lang"], lang)) if lang is not None else kept)
                counts.kept_by_lang[lang or "und"] += klangs.count(lang)
        if entries is not None and is_kept.any():
            entries.write(t.filter(pa.array(is_kept)).select([c for c in ENTRY_COLUMNS if c in t.column_names]))
        counts.quarantined += int(is_q.sum())
        counts.rejected += int(is_rej.sum())
        counts.kept += int(is_kept.sum())
        if lineage is not None:
            status = np.where(is_q, 2, np.where(is_rej, 1, 0))
            lineage.add(t, status, out_file, out_row, keeper)
        if samples is not None:
            samples.add(t, is_q, keeper)
    for rel, s in sorted(sinks.items()):
        if s.close():
            counts.files.append(rel)
    if lineage is not None:
        lineage.close()
    if entries is not None:
        entries.close()
    out = counts.to_dict()
    if samples is not None:
        out["sample_file"] = samples.close(layout, ordinal)
    return out


def _is_none(values: np.ndarray) -> np.ndarray:
    return np.array([v is None for v in values], dtype=bool)
