"""`curate synthesize`: select -> prompt -> generate -> check -> write, with a ledger for resume.

Layout of OUT:
  job.yaml                                 the resolved spec
  curated/lang=XX/part-FFFFF-CCCCC.parquet kept generations (domain synthetic; FFFFF input file, CCCCC chunk)
  rejected/part-FFFFF-CCCCC.parquet        generations that failed a check, with drop_reason
  failed/part-FFFFF-CCCCC.parquet          units whose generation failed, with the error
  stats.json, report.html, progress.json
  _work/ledger/ (finished generations of unfinished chunks), _work/done/ (markers with counts)

A unit is one (document, task). Input files are read in order, in batches; the selected units are cut
into chunks of `execution.chunk_size`, the unit of output files, done markers and ledger files. The
generator's threads are kept busy across chunk boundaries (several chunks are open at once), and a chunk
is checked and written as soon as its last unit is answered. Counts add up by construction and are
checked: every selected unit is kept, rejected with a reason or failed with an error.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter, deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import xxhash

from curation.io.sources import filesystem_for
from curation.job import JobError, claim_output, write_progress
from curation.outputs import CURATED_COLUMNS, Layout, _Sink, merge_counts
from curation.progress import Progress
from curation.spec import model_yaml
from curation.synthesis.checks import TaskChecks, check_generations
from curation.synthesis.generators import Generation, Unit, build_generator
from curation.synthesis.ledger import ChunkLedger
from curation.synthesis.spec import SelectSpec, SynthesizeJob
from curation.synthesis.templates import Template, resolve

STATS_VERSION = 1
SYNTH_COLUMNS = [
    "n_tokens",
    "task",
    "template",
    "template_version",
    "generator",
    "source_id",
    "source_corpus",
    "source_domain",
    "finish_reason",
    "prompt_tokens",
    "completion_tokens",
    "copy_share",
]
FAILED_COLUMNS = [
    "id",
    "task",
    "template_version",
    "generator",
    "source_id",
    "source_corpus",
    "source_lang",
    "error",
    "attempts",
]
_READ_COLUMNS = ("id", "text", "source", "domain", "lang", "drop_reason")


def input_files(job: SynthesizeJob) -> list[str]:
    """The curated Parquet files of the inputs, and their rejected/ files when a task takes rejected
    documents (sorted within each input, inputs in order)."""
    from mixtures.pool import curated_files

    files = curated_files(job.inputs)
    if any(t.select.rejected_reasons for t in job.tasks.values()):
        for spec in job.inputs:
            rejected = spec.rstrip("/") + "/rejected"
            fs, path = filesystem_for(rejected)
            if fs.get_file_info(path).type == pafs.FileType.Directory:
                files += curated_files([rejected])
    return files


# ------------------------------------------------------------------------------------------------
# Selection: a pure function of a batch of input rows
# ------------------------------------------------------------------------------------------------


def _sample_key(task: str, doc_id: str) -> float:
    return xxhash.xxh64_intdigest(f"{task}\x00{doc_id}".encode()) / 2.0**64


def select_rows(batch: pa.Table, task: str, sel: SelectSpec, taken_before: int) -> tuple[np.ndarray, list[str | None]]:
    """(mask of the rows `task` takes, the first selection rule each other row fails) for one batch;
    `taken_before` counts the task's documents in earlier batches (max_documents)."""
    n = len(batch)
    why = np.full(n, None, dtype=object)

    def fail(mask: Any, reason: str) -> None:
        m = np.asarray(mask, dtype=bool)
        why[m & np.equal(why, None)] = reason

    def col(name: str) -> list[Any]:
        return batch[name].to_pylist() if name in batch.column_names else [None] * n

    texts = batch["text"]
    fail(pc.is_null(texts).to_numpy(zero_copy_only=False), "select:no_text")
    dropped = col("drop_reason")
    fail([r is not None and r not in sel.rejected_reasons for r in dropped], "select:rejected")
    for key, rule in (("domain", sel.domains), ("lang", sel.languages), ("source", sel.sources)):
        if rule is not None:
            fail([v not in rule for v in col(key)], f"select:{key}")
    for name, band in sel.quality.items():
        c = f"quality_{name}"
        if c not in batch.column_names:
            fail(np.ones(n, bool), f"select:quality_{name}:missing")
            continue
        v = batch[c].to_numpy(zero_copy_only=False).astype(np.float64)
        bad = np.isnan(v)
        if band.min is not None:
            bad |= v < band.min
        if band.max is not None:
            bad |= v >= band.max
        fail(bad, f"select:quality_{name}")
    chars = pc.fill_null(pc.utf8_length(texts), 0).to_numpy(zero_copy_only=False)
    fail(chars < sel.min_chars, "select:too_short")
    if sel.max_chars is not None:
        fail(chars > sel.max_chars, "select:too_long")
    if sel.fraction < 1:
        ids = col("id")
        fail([_sample_key(task, str(i)) >= sel.fraction for i in ids], "select:sample")
    take = np.equal(why, None)
    if sel.max_documents is not None:
        room = max(0, sel.max_documents - taken_before)
        over = np.flatnonzero(take)[room:]
        why[over] = "select:max_documents"
        take[over] = False
    return take, why.tolist()


def cut_source(text: str, limit: int) -> str:
    """At most `limit` characters, ending at the last paragraph (else line, else sentence) break."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    for sep in ("\n\n", "\n", ". ", "。"):
        k = head.rfind(sep)
        if k >= limit // 2:
            return head[: k + len(sep)].rstrip()
    return head


def unit_key(task: str, template: Template, generator_fp: str, doc_id: str, text: str) -> str:
    return xxhash.xxh3_128_hexdigest(json.dumps([task, template.version_id, generator_fp, doc_id, text]).encode())


# ------------------------------------------------------------------------------------------------
# Chunks
# ------------------------------------------------------------------------------------------------


@dataclass
class _Chunk:
    ordinal: int
    index: int
    rows: list[dict[str, Any]]  # one per unit: key, task, id, text, source, domain, lang, messages
    results: dict[str, Any] = field(default_factory=dict)  # key -> ledger record or Generation (failed)
    ledger: ChunkLedger | None = None
    queue: deque = field(default_factory=deque)  # units still to send
    reused: int = 0
    n_keys: int = 0  # distinct unit keys (set when opened)

    @property
    def name(self) -> str:
        return f"f{self.ordinal:05d}-c{self.index:05d}"

    def complete(self) -> bool:
        return len(self.results) == self.n_keys and not self.queue


@dataclass
class _FileSelection:
    input_rows: int = 0
    selected_documents: int = 0
    selected: Counter = field(default_factory=Counter)  # task -> units
    not_selected: dict[str, Counter] = field(default_factory=dict)  # task -> reason -> documents


def iter_chunks(
    job: SynthesizeJob,
    uri: str,
    ordinal: int,
    templates: dict[str, Template],
    generator_fp: str,
    taken: Counter,
    sel_out: _FileSelection,
) -> Iterator[_Chunk]:
    """The chunks of one input file, in order; `taken` (task -> documents so far) is advanced and
    `sel_out` filled as the file is read (complete once the iterator ends)."""
    fs, path = filesystem_for(uri)
    names = pq.read_schema(path, filesystem=fs).names
    if "text" not in names or "id" not in names:
        raise JobError(f"{uri} has no id/text columns: not a curated output")
    quality_cols = {f"quality_{q}" for t in job.tasks.values() for q in t.select.quality}
    cols = [c for c in names if c in _READ_COLUMNS or c in quality_cols]
    buf: list[dict[str, Any]] = []
    index = 0
    for rb in pq.ParquetFile(path, filesystem=fs).iter_batches(batch_size=2000, columns=cols):
        batch = pa.Table.from_batches([rb])
        sel_out.input_rows += len(batch)
        masks = {}
        for name, task in job.tasks.items():
            take, why = select_rows(batch, name, task.select, taken[name])
            masks[name] = take
            taken[name] += int(take.sum())
            sel_out.selected[name] += int(take.sum())
            sel_out.not_selected.setdefault(name, Counter()).update(r for r in why if r is not None)
        any_take = np.zeros(len(batch), bool)
        for m in masks.values():
            any_take |= m
        sel_out.selected_documents += int(any_take.sum())
        if not any_take.any():
            continue
        data = {
            c: batch[c].to_pylist() if c in batch.column_names else [None] * len(batch)
            for c in ("id", "text", "source", "domain", "lang")
        }
        for i in np.flatnonzero(any_take):
            for name, task in job.tasks.items():
                if not masks[name][i]:
                    continue
                text = cut_source(data["text"][i], task.max_source_chars)
                doc_id = str(data["id"][i])
                tpl = templates[name]
                buf.append(
                    {
                        "key": unit_key(name, tpl, generator_fp, doc_id, text),
                        "task": name,
                        "id": doc_id,
                        "text": text,
                        "source": data["source"][i],
                        "domain": data["domain"][i],
                        "lang": data["lang"][i],
                        "messages": tpl.messages(text, data["lang"][i]),
                    }
                )
                if len(buf) == job.execution.chunk_size:
                    yield _Chunk(ordinal, index, buf)
                    index += 1
                    buf = []
    if buf:
        yield _Chunk(ordinal, index, buf)


# ------------------------------------------------------------------------------------------------
# Checking and writing a chunk
# ------------------------------------------------------------------------------------------------


def _error_kind(error: str) -> str:
    """A short class for an error message: `HTTP 400`, `timeout`, `connection`, ..."""
    head = error.split(":", 1)[0]
    if head.startswith("HTTP "):
        return head
    if error.startswith("no answer within"):
        return "timeout"
    if error.startswith("connection failed"):
        return "connection"
    return head[:40]


def finalize_chunk(
    layout: Layout,
    job: SynthesizeJob,
    chunk: _Chunk,
    checks: dict[str, TaskChecks],
    lid: Any,
    templates: dict[str, Template],
) -> dict[str, Any]:
    """Check the chunk's generations, write its curated / rejected / failed files and return its counts."""
    from mixtures.tokenizer import count_tokens

    gen_name = job.generator.name()
    ok = [r for r in chunk.rows if isinstance(chunk.results[r["key"]], dict)]
    bad = [r for r in chunk.rows if not isinstance(chunk.results[r["key"]], dict)]
    counts: dict[str, Any] = {
        "units": len(chunk.rows),
        "kept": 0,
        "rejected": 0,
        "failed": len(bad),
        "reused": chunk.reused,
        "by_reason": Counter(),
        "by_error": Counter(),
        "by_task": {},
        "by_lang": {},
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "kept_tokens": 0,
        "requests": 0,
        "by_task_reason": {},
        "files": [],
    }
    for r in chunk.rows:
        bt = counts["by_task"].setdefault(r["task"], Counter())
        bt["units"] += 1
        res = chunk.results[r["key"]]
        rec = res if isinstance(res, dict) else res.to_record() | {"requests": res.requests}
        for k in ("prompt_tokens", "completion_tokens"):
            counts[k] += int(rec.get(k) or 0)
            bt[k] += int(rec.get(k) or 0)
        counts["requests"] += int(rec.get("requests", rec.get("attempts", 0)) or 0)
    name = f"part-{chunk.ordinal:05d}-{chunk.index:05d}.parquet"
    sinks: list[tuple[str, _Sink]] = []

    def write(rel: str, table: pa.Table) -> None:
        s = _Sink(layout, layout.path(rel))
        s.write(table)
        sinks.append((rel, s))

    if bad:
        errors = [chunk.results[r["key"]].error for r in bad]
        failed = pa.table(
            {
                "id": [f"{r['task']}:{r['id']}" for r in bad],
                "task": [r["task"] for r in bad],
                "template_version": [templates[r["task"]].version_id for r in bad],
                "generator": [gen_name] * len(bad),
                "source_id": [r["id"] for r in bad],
                "source_corpus": [r["source"] for r in bad],
                "source_lang": [r["lang"] for r in bad],
                "error": errors,
                "attempts": pa.array([chunk.results[r["key"]].attempts for r in bad], pa.int32()),
            }
        )
        write(f"failed/{name}", failed.select(FAILED_COLUMNS))
        counts["by_error"].update(_error_kind(e) for e in errors)
        for r in bad:
            counts["by_task"][r["task"]]["failed"] += 1
    if ok:
        recs = [chunk.results[r["key"]] for r in ok]
        t = pa.table(
            {
                "id": [f"{r['task']}:{r['id']}" for r in ok],
                "text": pa.array([x["text"] for x in recs], pa.large_string()),
                "source": [job.tasks[r["task"]].source or f"synthetic-{r['task']}" for r in ok],
                "domain": ["synthetic"] * len(ok),
                "task": [r["task"] for r in ok],
                "template": [templates[r["task"]].name for r in ok],
                "template_version": [templates[r["task"]].version_id for r in ok],
                "generator": [gen_name] * len(ok),
                "source_id": [r["id"] for r in ok],
                "source_corpus": [r["source"] for r in ok],
                "source_domain": [r["domain"] for r in ok],
                "source_lang": [r["lang"] for r in ok],
                "source_text": pa.array([r["text"] for r in ok], pa.large_string()),
                "finish_reason": [x.get("finish_reason") for x in recs],
                "prompt_tokens": pa.array([int(x.get("prompt_tokens") or 0) for x in recs], pa.int64()),
                "completion_tokens": pa.array([int(x.get("completion_tokens") or 0) for x in recs], pa.int64()),
            }
        )
        t = check_generations(t, checks, lid)
        n = len(t)
        t = t.append_column("n_chars", pc.utf8_length(t["text"]).cast(pa.int64()))
        t = t.append_column("n_tokens", pa.array(count_tokens(t["text"].to_pylist()), pa.int64()))
        t = t.append_column("dup_cluster", pa.nulls(n, pa.string()))
        t = t.append_column("dup_cluster_size", pa.array(np.ones(n, np.int64)))
        t = t.append_column("dup_similarity", pa.nulls(n, pa.float32()))
        reasons = t["drop_reason"].to_pylist()
        kept_mask = np.array([r is None for r in reasons])
        cols = CURATED_COLUMNS + SYNTH_COLUMNS
        if (~kept_mask).any():
            rej = t.filter(pa.array(~kept_mask))
            write(f"rejected/{name}", rej.select(cols + ["drop_reason"]))
        kept = t.filter(pa.array(kept_mask)).select(cols)
        langs = kept["lang"].to_pylist()
        for lang in sorted({x or "und" for x in langs}):
            mask = pa.array([(x or "und") == lang for x in langs])
            write(f"curated/lang={lang}/{name}", kept.filter(mask))
        tasks = t["task"].to_pylist()
        ntok = t["n_tokens"].to_numpy()
        for i, r in enumerate(reasons):
            bt = counts["by_task"][tasks[i]]
            bl = counts["by_lang"].setdefault(ok[i]["lang"] or "und", Counter())
            bl["units"] += 1
            if r is None:
                counts["kept"] += 1
                counts["kept_tokens"] += int(ntok[i])
                bt["kept"] += 1
                bt["kept_tokens"] += int(ntok[i])
                bl["kept"] += 1
            else:
                counts["rejected"] += 1
                counts["by_reason"][r] += 1
                bt["rejected"] += 1
                counts["by_task_reason"].setdefault(tasks[i], Counter())[r] += 1
    for r in bad:
        counts["by_lang"].setdefault(r["lang"] or "und", Counter())["units"] += 1
    for rel, s in sinks:
        if s.close():  # False: nothing was written (no empty files)
            counts["files"].append(rel)
    return _plain(counts)


def _plain(x: Any) -> Any:
    """Counters and nested dicts as plain JSON-able dicts."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    return x


# ------------------------------------------------------------------------------------------------
# The driver
# ------------------------------------------------------------------------------------------------


def _file_marker(layout: Layout, ordinal: int) -> str:
    return layout.path("_work", "done", f"f{ordinal:05d}.json")


def _chunk_marker(layout: Layout, name: str) -> str:
    return layout.path("_work", "done", f"{name}.json")


@dataclass
class _OpenFile:
    uri: str
    selection: _FileSelection
    ended: bool = False
    pending: set = field(default_factory=set)
    chunks: list = field(default_factory=list)


class _Run:
    """The state of one run: open files and chunks, requests in flight, counts so far."""

    def __init__(
        self,
        job: SynthesizeJob,
        layout: Layout,
        files: list[str],
        generator: Any,
        templates: dict[str, Template],
        checks: dict[str, TaskChecks],
        lid: Any,
        progress: Progress,
    ):
        self.job, self.layout, self.files, self.gen = job, layout, files, generator
        self.templates, self.checks, self.lid, self.progress = templates, checks, lid, progress
        self.generator_fp = job.generator.fingerprint()
        self.taken: Counter = Counter()
        self.done_files: dict[int, dict[str, Any]] = {}
        self.open_files: dict[int, _OpenFile] = {}
        self.open_chunks: dict[str, _Chunk] = {}
        self.exhausted = False
        self.live = Counter()  # this run: generated, failed, reused, kept, rejected, completion_tokens
        self.consecutive_failures = 0
        self.last_error = ""
        self.held: dict[str, _Chunk] = {}  # complete chunks with failures, written when the failing stops
        self._events = self._chunk_events()

    # -- chunks in, in input order --------------------------------------------------------------
    def _chunk_events(self) -> Iterator[_Chunk]:
        for ordinal, uri in enumerate(self.files):
            marker = self.layout.read_json(_file_marker(self.layout, ordinal))
            if marker is not None:
                self.taken.update(marker["selection"]["selected"])
                self.done_files[ordinal] = marker
                continue
            of = self.open_files[ordinal] = _OpenFile(uri, _FileSelection())
            for ch in iter_chunks(self.job, uri, ordinal, self.templates, self.generator_fp, self.taken, of.selection):
                done = self.layout.read_json(_chunk_marker(self.layout, ch.name))
                if done is not None:
                    of.chunks.append(done)
                    continue
                of.pending.add(ch.name)
                yield ch
            of.ended = True
            self._maybe_close_file(ordinal)
        self.exhausted = True

    def open_next(self) -> bool:
        """Open the next chunk: its ledger answers what was generated before; False when none is left."""
        ch = next(self._events, None)
        if ch is None:
            return False
        ch.ledger = ChunkLedger(self.layout, ch.name, self.job.execution.ledger_flush_s)
        before = ch.ledger.load()
        seen = set()
        for r in ch.rows:
            if r["key"] in seen:
                continue
            seen.add(r["key"])
            if r["key"] in before:
                ch.results[r["key"]] = before[r["key"]]
                ch.reused += 1
            else:
                ch.queue.append(r)
        ch.n_keys = len(seen)
        self.live["reused"] += ch.reused
        self.open_chunks[ch.name] = ch
        self._maybe_finalize(ch)
        return True

    def next_batch(self) -> tuple[_Chunk, list[Unit]] | None:
        for ch in self.open_chunks.values():
            if ch.queue:
                rows = [ch.queue.popleft() for _ in range(min(self.gen.batch_size, len(ch.queue)))]
                return ch, [Unit(r["key"], r["messages"]) for r in rows]
        return None

    # -- results ---------------------------------------------------------------------------------
    def record(self, ch: _Chunk, gens: list[Generation]) -> None:
        streak = self.consecutive_failures
        for g in gens:
            if g.error is None:
                rec = g.to_record() | {"requests": g.requests}
                ch.ledger.append(rec)
                ch.results[g.key] = rec
                self.live["generated"] += 1
                self.live["completion_tokens"] += g.completion_tokens
                self.consecutive_failures = 0
            else:
                ch.results[g.key] = g
                self.live["failed"] += 1
                self.consecutive_failures += 1
                self.last_error = g.error
        self._maybe_finalize(ch)
        if streak and not self.consecutive_failures:
            self.release_held()

    def release_held(self) -> None:
        """Write the chunks held back during a run of failures."""
        streak, self.consecutive_failures = self.consecutive_failures, 0
        for ch in list(self.held.values()):
            self._maybe_finalize(ch)
        self.consecutive_failures = streak

    def _maybe_finalize(self, ch: _Chunk) -> None:
        if not ch.complete():
            return
        if self.consecutive_failures and any(not isinstance(v, dict) for v in ch.results.values()):
            # The generator is failing right now (a server down?): write nothing final yet. The chunk is
            # written once a generation succeeds again or the job ends; if the failures stop the job, a
            # rerun asks its failed units again.
            self.held[ch.name] = ch
            return
        self.held.pop(ch.name, None)
        counts = finalize_chunk(self.layout, self.job, ch, self.checks, self.lid, self.templates)
        self.layout.write_bytes(_chunk_marker(self.layout, ch.name), json.dumps(counts).encode())
        ch.ledger.delete()
        del self.open_chunks[ch.name]
        self.live["kept"] += counts["kept"]
        self.live["rejected"] += counts["rejected"]
        of = self.open_files[ch.ordinal]
        of.pending.discard(ch.name)
        of.chunks.append(counts)
        self._maybe_close_file(ch.ordinal)

    def _maybe_close_file(self, ordinal: int) -> None:
        of = self.open_files.get(ordinal)
        if of is None or not of.ended or of.pending:
            return
        s = of.selection
        marker = {
            "input": of.uri,
            "selection": {
                "input_rows": s.input_rows,
                "selected_documents": s.selected_documents,
                "selected": dict(s.selected),
                "not_selected": {k: dict(v) for k, v in s.not_selected.items()},
            },
            "chunks": of.chunks,
        }
        self.layout.write_bytes(_file_marker(self.layout, ordinal), json.dumps(marker).encode())
        self.done_files[ordinal] = marker
        del self.open_files[ordinal]

    def close(self) -> None:
        for ch in self.open_chunks.values():
            ch.ledger.close()


def run_synthesize(
    job: SynthesizeJob, *, address: str | None = None, progress: Progress | None = None
) -> dict[str, Any]:
    """Run a synthesis job to completion (or resume one) and return its stats (also OUT/stats.json)."""
    t_start = time.monotonic()
    files = input_files(job)
    layout, lock = claim_output(job, model_yaml(job))
    with lock:
        return _run_synthesize(job, files, layout, address, progress or Progress(), t_start)


def _run_synthesize(
    job: SynthesizeJob, files: list, layout: Layout, address: str | None, progress: Progress, t_start: float
) -> dict[str, Any]:
    from contextlib import nullcontext

    templates = {name: resolve(t.template, name) for name, t in job.tasks.items()}
    checks = {name: TaskChecks.build(t.checks, templates[name]) for name, t in job.tasks.items()}
    lid = None
    if any(t.checks.language_match for t in job.tasks.values()):
        from filters.langid import LanguageIdentifier

        lid = LanguageIdentifier()
    uses_ray = job.generator.kind == "hf" and job.execution.engine == "ray"
    if uses_ray:
        from curation.execution import executor_for

        executor_cm: Any = executor_for(job, address)
    else:
        executor_cm = nullcontext(None)
    progress.say(
        f"synthesize {job.name!r}: {len(files)} input file(s), tasks {', '.join(job.tasks)}, "
        f"generator {job.generator.name()}, output {layout.uri}"
    )
    with executor_cm as executor:
        try:
            gen = build_generator(job.generator, executor)
        except (ImportError, ValueError, OSError) as e:
            raise JobError(f"generator: {e}") from None
        run = _Run(job, layout, files, gen, templates, checks, lid, progress)
        t_gen = time.monotonic()
        try:
            _drive(run, layout)
        finally:
            run.close()
            gen.close()
        gen_seconds = time.monotonic() - t_gen
    stats = _stats(job, files, run, gen, gen_seconds, time.monotonic() - t_start)
    layout.remove_dir(layout.path("_work", "ledger"))  # every chunk is written (a kill can leave one behind)
    layout.write_bytes(layout.path("stats.json"), json.dumps(stats, indent=2).encode())
    from curation.synthesis.report import write_synth_report

    write_synth_report(layout, stats)
    write_progress(layout, "done", units=stats["units"], kept=stats["kept"])
    progress.say(
        f"done in {stats['wall_seconds']:.1f}s: {stats['units']:,} units = kept {stats['kept']:,} + "
        f"rejected {stats['rejected']:,} + failed {stats['failed']:,}; {stats['tokens']['kept']:,} kept "
        f"tokens; {layout.path('stats.json')}"
    )
    return stats


def _drive(run: _Run, layout: Layout) -> None:
    gen, job = run.gen, run.job
    max_open = max(2, math.ceil(2 * gen.concurrency * gen.batch_size / job.execution.chunk_size) + 1)
    in_flight: dict[Future, _Chunk] = {}
    pool = ThreadPoolExecutor(max_workers=gen.concurrency, thread_name_prefix="synth")
    t0 = time.monotonic()

    last_write = [0.0]

    def report(force: bool = False) -> None:
        lv = run.live
        secs = max(time.monotonic() - t0, 1e-9)

        def line() -> str:
            return (
                f"generated {lv['generated']:,} ({lv['reused']:,} from the ledger), failed {lv['failed']:,}; "
                f"written: kept {lv['kept']:,}, rejected {lv['rejected']:,}; in flight {len(in_flight)}; "
                f"{lv['completion_tokens'] / secs:,.0f} completion tokens/s"
            )

        run.progress.tick(line, force)
        if force or time.monotonic() - last_write[0] >= 2.0:
            last_write[0] = time.monotonic()
            write_progress(
                layout,
                "generate",
                generated=lv["generated"],
                reused=lv["reused"],
                failed=lv["failed"],
                kept=lv["kept"],
                rejected=lv["rejected"],
                in_flight=len(in_flight),
            )

    try:
        stopping = False
        while True:
            while not stopping and len(in_flight) < gen.concurrency:
                nxt = run.next_batch()
                if nxt is None:
                    if len(run.open_chunks) - len(run.held) < max_open and run.open_next():
                        continue
                    break
                ch, units = nxt
                in_flight[pool.submit(gen.generate, units)] = ch
            if not in_flight:
                if stopping:
                    break
                if run.open_next():
                    continue
                run.release_held()  # nothing left to ask: the failures are final
                if run.open_chunks:
                    raise JobError(f"internal error: chunks {sorted(run.open_chunks)} neither sent nor written")
                break
            done, _ = wait(list(in_flight), timeout=2.0, return_when=FIRST_COMPLETED)
            for f in done:
                run.record(in_flight.pop(f), f.result())
            if run.consecutive_failures >= job.generator.stop_after_failures:
                stopping = True
            report()
        if stopping:
            raise JobError(
                f"the generator failed {run.consecutive_failures} requests in a row (last error: "
                f"{run.last_error}); stopped. The generations so far are kept in the ledger: run the "
                "same command again to resume once the server is healthy"
            )
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    report(force=True)


def _stats(
    job: SynthesizeJob, files: list[str], run: _Run, gen: Any, gen_seconds: float, wall: float
) -> dict[str, Any]:
    if run.open_files or len(run.done_files) != len(files):
        raise JobError(f"internal error: {len(files) - len(run.done_files)} input file(s) not finished")
    sel: dict[str, Any] = {}
    totals: dict[str, Any] = {}
    for ordinal in sorted(run.done_files):
        m = run.done_files[ordinal]
        merge_counts(sel, m["selection"])
        for c in m["chunks"]:
            merge_counts(totals, {k: v for k, v in c.items() if k != "files"})
    files_written = sorted(f for m in run.done_files.values() for c in m["chunks"] for f in c["files"])
    units, kept = totals.get("units", 0), totals.get("kept", 0)
    rejected, failed = totals.get("rejected", 0), totals.get("failed", 0)
    selected = sel.get("selected", {})
    if units != kept + rejected + failed or units != sum(selected.values()):
        raise JobError(
            f"counts do not add up: {sum(selected.values())} selected units, {units} = kept {kept} + "
            f"rejected {rejected} + failed {failed}?"
        )
    by_task = {}
    for name in job.tasks:
        t = totals.get("by_task", {}).get(name, {})
        by_task[name] = {
            "selected": selected.get(name, 0),
            **{
                k: t.get(k, 0)
                for k in ("units", "kept", "rejected", "failed", "prompt_tokens", "completion_tokens", "kept_tokens")
            },
            "by_reason": totals.get("by_task_reason", {}).get(name, {}),
            "not_selected": sel.get("not_selected", {}).get(name, {}),
            "template_version": run.templates[name].version_id,
        }
    live = run.live
    price = job.generator.price
    prompt_t, completion_t = totals.get("prompt_tokens", 0), totals.get("completion_tokens", 0)
    generation = {
        "generator": job.generator.name(),
        "api": job.generator.api if job.generator.kind == "openai" else None,
        "requests": totals.get("requests", 0),
        "prompt_tokens": prompt_t,
        "completion_tokens": completion_t,
        "this_run": {
            "generated": live["generated"],
            "failed": live["failed"],
            "reused_from_ledger": live["reused"],
            "completion_tokens": live["completion_tokens"],
            "seconds": round(gen_seconds, 3),
            "completion_tokens_per_second": round(live["completion_tokens"] / gen_seconds, 2)
            if gen_seconds > 0
            else 0.0,
            "units_per_second": round((live["generated"] + live["failed"]) / gen_seconds, 3)
            if gen_seconds > 0
            else 0.0,
            **gen.stats.to_dict(),
        },
    }
    if price is not None:
        generation["estimated_cost"] = round(
            prompt_t / 1e6 * price.prompt_per_million + completion_t / 1e6 * price.completion_per_million, 4
        )
    return {
        "kind": "synthesize",
        "stats_version": STATS_VERSION,
        "job": job.name,
        "input_files": len(files),
        "input_records": sel.get("input_rows", 0),
        "selected_documents": sel.get("selected_documents", 0),
        "units": units,
        "kept": kept,
        "rejected": rejected,
        "failed": failed,
        "by_reason": dict(sorted(totals.get("by_reason", {}).items(), key=lambda kv: -kv[1])),
        "by_error": totals.get("by_error", {}),
        "by_task": by_task,
        "by_lang": totals.get("by_lang", {}),
        "tokens": {"prompt": prompt_t, "completion": completion_t, "kept": totals.get("kept_tokens", 0)},
        "generation": generation,
        "files": files_written,
        "wall_seconds": round(wall, 3),
    }
