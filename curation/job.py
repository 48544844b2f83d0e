"""The curation job from spec to outputs: annotate -> dedup -> write, with resume and accounting.

1. Annotate: every input file streams through the per-document stages; each processed batch is
   persisted under `_work/`, and a file whose batches are all in gets a done marker holding its counts.
   A re-run skips files with a marker (and redoes files without one from scratch).
2. Dedup: band and exact keys of the surviving documents are shuffled and clustered.
3. Write: each input file's batches are split into curated / rejected / quarantine files.
Then `stats.json` and the report. The job fails, rather than reporting success, if the written
counts do not add up to the records read.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from collections import defaultdict
from typing import Any

import yaml

from curation import __version__
from curation.execution import executor_for
from curation.io.policy import active_policy, is_uri, require_declared_reads
from curation.io.readers import ReadLimits
from curation.io.sources import discover
from curation.outputs import SCORE_BIN, Layout, finalize_file, merge_counts, survivor_score_bins, top_fraction_threshold
from curation.progress import Progress, rate, summary_table
from curation.spec import CurateJob, resolved_yaml

STATS_VERSION = 1
PROGRESS_EVERY = 2.0  # seconds between OUT/progress.json snapshots


def write_progress(layout: Layout, phase: str, **info: Any) -> None:
    """OUT/progress.json: where a running job is (the API and dashboards read it); best effort."""
    try:
        layout.write_bytes(
            layout.path("progress.json"), json.dumps({"phase": phase, "updated": time.time(), **info}).encode()
        )
    except OSError:
        pass


class JobError(RuntimeError):
    """The job cannot run or did not finish correctly; the message says why."""


def check_output_folder(layout: Layout, job: Any, spec_yaml: str | None = None) -> None:
    """Refuse to mix two different jobs' results in one output folder (any job kind with a fingerprint). Both
    sides are compared as read back from YAML (`spec_yaml`, the job.yaml this run writes), so a default
    written as `100` and read back as `100.0` is the same spec."""
    try:
        with layout.fs.open_input_stream(layout.path("job.yaml")) as f:
            previous = yaml.safe_load(f.read())
    except (FileNotFoundError, OSError):
        return
    try:
        prev_fp = type(job).model_validate(previous).fingerprint()
    except Exception:
        prev_fp = None
    current = type(job).model_validate(yaml.safe_load(spec_yaml)) if spec_yaml is not None else job
    if prev_fp != current.fingerprint():
        raise JobError(
            f"output {layout.uri} already holds a job with a different spec (see its job.yaml); "
            "use a new output folder, or delete that one to start over"
        )


class OutputLock:
    """This job's hold on its output folder for as long as it runs: an exclusive `flock` on `OUT/.lock` for
    local outputs (released by the OS if the driver dies), so two jobs started together on one folder cannot
    both pass the spec check and write; the second is refused. Object stores have no such lock: the service
    refuses a second job on a folder in use, and a hand-run job relies on the spec check."""

    def __init__(self, layout: Layout):
        self.layout, self.fd = layout, None

    def __enter__(self) -> "OutputLock":
        if self.fd is not None or is_uri(self.layout.uri):
            return self  # held already (claim_output takes it; `with lock:` then keeps it until the end)
        try:
            os.makedirs(self.layout.root, exist_ok=True)
            self.fd = os.open(os.path.join(self.layout.root, ".lock"), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as e:
            raise JobError(f"cannot write to output {self.layout.uri}: {e}") from None
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            self.fd = None
            raise JobError(
                f"output {self.layout.uri} is in use by another running job; wait for it to end, or "
                "use another output folder"
            ) from None
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing releases the lock
            self.fd = None


def _refuse_links(layout: Layout) -> None:
    """Under a service's path policy: no symlink anywhere in a local output folder, where the job would write
    or delete through it (a user who can write into a root could plant `OUT/curated -> /elsewhere`)."""
    if active_policy() is None or is_uri(layout.uri) or not os.path.isdir(layout.root):
        return
    for folder, dirs, names in os.walk(layout.root):
        for name in dirs + names:
            if os.path.islink(os.path.join(folder, name)):
                raise JobError(
                    f"output {layout.uri}: {os.path.join(folder, name)} is a symbolic link; a job "
                    "under the service writes only real folders and files"
                )


def claim_output(job: Any, spec_yaml: str) -> tuple[Layout, OutputLock]:
    """Open a job's output for writing (every job kind): its declared reads and output allowed by the path
    policy in force, no links in the folder, the folder locked, no other spec's results in it, then
    `job.yaml` written. Use the lock as a context manager around the whole run."""
    require_declared_reads(job)
    layout = Layout(job.output)
    _refuse_links(layout)
    lock = OutputLock(layout).__enter__()
    try:
        check_output_folder(layout, job, spec_yaml)
        layout.write_bytes(layout.path("job.yaml"), spec_yaml.encode())
    except OSError as e:
        lock.__exit__()
        raise JobError(f"cannot write to output {layout.uri}: {e}") from None
    except BaseException:
        lock.__exit__()
        raise
    return layout, lock


def run_job(job: CurateJob, *, address: str | None = None, progress: Progress | None = None) -> dict[str, Any]:
    """Run a curation job to completion and return its stats (also written to OUT/stats.json)."""
    progress = progress or Progress()
    corpora = against_corpora(job)
    files = discover(job, progress)
    layout, lock = claim_output(job, resolved_yaml(job))
    with lock:
        return _run_job(job, files, layout, address, progress, corpora)


def against_corpora(job: CurateJob) -> list[tuple[str, str, str, int]]:
    """The earlier corpora of `stages.dedup.against` as (index uri, uid, name, bits), each index opened and
    its key parameters compared with the job's: an index this job cannot be checked against is refused
    here, before any work."""
    from curation.dedup import index

    spec = job.stages.dedup
    if spec is None or not spec.against:
        return []
    from curation.stages.dedup import Dedup

    if not Dedup.active(spec):
        raise JobError("stages.dedup.against needs at least one of exact, minhash or url dedup")
    own = Layout(job.output).uri + "/index"
    mine = index.params_of(spec)
    out: list[tuple[str, str, str, int]] = []
    for i, path in enumerate(spec.against):
        try:
            idx = index.DedupIndex.open(path)
        except index.DedupIndexError as e:
            raise JobError(f"stages.dedup.against[{i}]: {e}") from None
        except OSError as e:
            raise JobError(f"stages.dedup.against[{i}]: {path}: cannot be read ({e})") from None
        if Layout(idx.uri).uri == own:
            raise JobError(
                f"stages.dedup.against[{i}]: {path} is this job's own output; dedup within it is the default"
            )
        why = index.compatibility_problem(idx.params, mine)
        if why is not None:
            raise JobError(
                f"stages.dedup.against[{i}]: index {idx.uri} cannot be used: {why}. Run this job with the "
                "index's parameters, or rebuild the earlier corpus with this job's"
            )
        for c in idx.corpora:
            if c.get("output") == Layout(job.output).uri:
                raise JobError(
                    f"stages.dedup.against[{i}]: index {idx.uri} holds this job's own output (corpus "
                    f"{c['name']!r}, added {c.get('added')}): every document would be dropped as a repeat of itself"
                )
            if any(c["uid"] == o[1] for o in out):
                continue  # the same corpus through two indexes: checked once
            out.append((idx.uri, c["uid"], c["name"], idx.bits))
    return out


def _run_job(
    job: CurateJob, files: list, layout: Layout, address: str | None, progress: Progress, corpora: list | None = None
) -> dict[str, Any]:
    t_start = time.monotonic()
    limits = ReadLimits(job.execution.batch_size, job.execution.batch_bytes, job.stages.normalize.max_doc_bytes)
    executor = executor_for(job, address)
    progress.say(f"job {job.name!r}: {len(files)} input file(s), output {layout.uri}, engine {executor.name}")

    file_stats: dict[int, dict[str, Any]] = {}
    todo = []
    for f in files:
        marker = layout.read_json(layout.done_marker(f.ordinal))
        # Same name, same size and modification time: a file changed or restored since is read again.
        split = list(f.split) if f.split is not None else None
        if (
            marker is not None
            and marker.get("uri") == f.uri
            and marker.get("version") == f.version
            and marker.get("split") == split
            and marker.get("max_records") == f.max_records
            and marker.get("sample") == (list(f.sample) if f.sample is not None else None)
        ):
            file_stats[f.ordinal] = marker
        else:
            layout.remove_dir(layout.annotated_dir(f.ordinal))
            todo.append(f)
    if len(todo) < len(files):
        progress.say(f"resuming: {len(files) - len(todo)} file(s) already annotated, {len(todo)} to go")

    try:
        write_progress(layout, "starting", input_files=len(files))
        from curation.dataset_card import curate_card

        layout.write_bytes(layout.path("README.md"), curate_card(job.name))
        with executor:
            t0 = time.monotonic()
            _annotate(executor, job, layout, todo, limits, file_stats, progress)
            phases = {"annotate": time.monotonic() - t0}
            dedup = _dedup(executor, job, files, file_stats, progress)
            phases["dedup"] = float(dedup["seconds"]) if dedup is not None else 0.0
            if not corpora:  # an earlier run's matches must not outlive its `against`
                layout.remove_dir(layout.path("_work", "against"))
            if dedup is not None:
                dedup["against"] = _against(executor, job, files, file_stats, corpora or [], progress)
                if dedup["against"] is not None:
                    phases["against"] = float(dedup["against"]["seconds"])
            write_progress(layout, "write", input_files=len(files))
            progress.say("writing curated, rejected and quarantine files")
            t0 = time.monotonic()
            # An earlier run's stats must not sit beside files this run is rewriting (a driver killed here
            # would leave them describing a partial curated/): they go first, and come back at the end.
            for name in ("stats.json", "report.html"):
                layout.remove_file(layout.path(name))
            for sub in ("curated", "rejected", "quarantine"):
                layout.remove_dir(layout.path(sub))
            min_scores = _top_fraction_thresholds(executor, job, files, progress)
            from curation.stages.registry import output_columns

            columns = output_columns(job)
            layout.remove_dir(layout.path("lineage"))
            layout.remove_dir(layout.path("_work", "index_entries"))
            layout.remove_dir(layout.path("samples"))
            layout.remove_dir(layout.path("_work", "samples"))
            args = [(layout, f.ordinal, f.uri, min_scores, columns, job) for f in files]
            finals = executor.map(finalize_file, args)
            write_seconds = phases["write"] = time.monotonic() - t0
            _samples(executor, job, layout, finals, progress)
            written_index = _write_index(executor, job, layout, files, finals, progress)
            cluster_cpus = executor.cpus

        stats = _assemble_stats(job, files, file_stats, finals, dedup, write_seconds, time.monotonic() - t_start)
        stats["phase_seconds"] = {k: round(v, 3) for k, v in phases.items()}  # wall time of this run's phases
        stats["cluster_cpus"] = cluster_cpus  # what the job ran on (curate plan scales from it)
        stats["index"] = written_index
        layout.write_bytes(layout.path("stats.json"), json.dumps(stats, indent=2, sort_keys=False).encode())
        from curation.report import write_report

        write_report(layout, stats)
        layout.write_bytes(layout.path("README.md"), curate_card(job.name, stats))
    except OSError as e:  # a full disk, a read-only or vanished output, a lost object store
        raise JobError(
            f"I/O error, job stopped: {e}. Output {layout.uri}: files under their final names are "
            "complete (partial ones keep an .inprogress- name); input files already annotated are "
            "kept, so running the same command again resumes once the cause is fixed"
        ) from None
    if stats["input_records"] != stats["kept"] + stats["rejected"] + stats["quarantined"]:
        raise JobError(
            f"accounting error: {stats['input_records']} records read but {stats['kept']} kept + "
            f"{stats['rejected']} rejected + {stats['quarantined']} quarantined written"
        )
    write_progress(
        layout,
        "done",
        input_files=len(files),
        input_records=stats["input_records"],
        kept=stats["kept"],
        rejected=stats["rejected"],
        quarantined=stats["quarantined"],
    )
    progress.say("done\n" + summary_table(stats))
    return stats


def _annotate(
    executor, job: CurateJob, layout: Layout, todo, limits: ReadLimits, file_stats: dict, progress: Progress
) -> None:
    if not todo:
        return
    pending: dict[int, dict[str, Any]] = defaultdict(
        lambda: {"rows": 0, "file_rows": None, "blank_lines": 0, "stats": {}}
    )
    uris = {f.ordinal: f.uri for f in todo}
    versions = {f.ordinal: f.version for f in todo}
    splits = {f.ordinal: list(f.split) if f.split is not None else None for f in todo}
    limits_of = {f.ordinal: f.max_records for f in todo}
    samples_of = {f.ordinal: list(f.sample) if f.sample is not None else None for f in todo}
    t0 = time.monotonic()
    seen = 0
    done = 0
    stage_seconds: dict[str, float] = defaultdict(float)
    live: dict[str, Any] = {"records": 0, "quarantined": 0, "reasons": {}, "input_bytes": 0}  # this run so far

    sizes = {f.ordinal: f.bytes_to_read for f in todo}
    total_size = sum(sizes.values()) if all(v is not None for v in sizes.values()) else None

    def eta(el: float) -> str:
        # Share of the input's bytes behind us: whole files done, plus the text read so far of the others
        # (a fair measure for plain JSONL, capped at the file's size for compressed inputs).
        if not total_size or not seen:
            return ""
        behind = sum(
            sizes[o] if o in file_stats else min(sizes[o] or 0, pending[o]["stats"].get("input_bytes", 0))
            for o in sizes
            if o in file_stats or o in pending
        )
        share = min(1.0, behind / total_size)
        return f", ETA {el / share - el:,.0f}s" if share > 0.001 and done < len(todo) else ""

    def line() -> str:
        el = time.monotonic() - t0
        # Per stage: records per second of that stage's own compute (summed over actors).
        per_stage = ", ".join(f"{k} {rate(seen, v)}" for k, v in stage_seconds.items() if ":" not in k and v > 0)
        return f"annotate: {seen:,} records, {done}/{len(todo)} files, {rate(seen, el)}{eta(el)} [{per_stage}]"

    last_snapshot = 0.0

    def snapshot() -> None:
        from curation.stages import registry as stage_registry

        parsed = live["records"] - live["quarantined"]
        write_progress(
            layout,
            "annotate",
            input_files=len(uris),
            files_done=done,
            records=seen,
            quarantined=live["quarantined"],
            input_bytes=live["input_bytes"],
            # The funnel of the batches annotated by this run so far (dedup decides later): what the
            # service's /metrics serves per stage while the job runs.
            funnel=[
                {"stage": s, "in": i, "out": o}
                for s, i, o in stage_registry.funnel_counts(job, parsed, live["reasons"])
            ],
            by_reason=live["reasons"],
            stage_seconds={k: round(v, 3) for k, v in stage_seconds.items()},
            records_per_second=round(seen / max(time.monotonic() - t0, 1e-9), 1),
        )

    # Lines at a steady rate from the start, also while the first batches are still in the stages.
    ticking = threading.Event()

    def ticker() -> None:
        while not ticking.wait(progress.every):
            progress.tick(line)

    threading.Thread(target=ticker, daemon=True).start()
    try:
        for row in executor.annotate(todo, limits):
            p = pending[row["ordinal"]]
            p["rows"] += row["rows"]
            seen += row["rows"]
            merge_counts(p["stats"], row["stats"])
            merge_counts(
                live, {k: row["stats"].get(k, 0) for k in ("records", "quarantined", "reasons", "input_bytes")}
            )
            for k, v in row["stats"].get("timings", {}).items():
                stage_seconds[k] += v
            if row["file_rows"] >= 0:
                p["file_rows"] = row["file_rows"]
                p["blank_lines"] = row["blank_lines"]
            if p["file_rows"] is not None and p["rows"] == p["file_rows"]:
                marker = {
                    "uri": uris[row["ordinal"]],
                    "version": versions[row["ordinal"]],
                    "split": splits[row["ordinal"]],
                    "max_records": limits_of[row["ordinal"]],
                    "sample": samples_of[row["ordinal"]],
                    "records": p["rows"],
                    "blank_lines": p["blank_lines"],
                    "stats": p["stats"],
                }
                layout.write_bytes(layout.done_marker(row["ordinal"]), json.dumps(marker).encode())
                file_stats[row["ordinal"]] = marker
                done += 1
            progress.tick(line)
            if time.monotonic() - last_snapshot >= PROGRESS_EVERY:
                last_snapshot = time.monotonic()
                snapshot()
    finally:
        ticking.set()
    missing = [o for o in uris if o not in file_stats]
    if missing:
        raise JobError(f"annotation did not finish for input file(s) {[uris[o] for o in missing][:5]}")
    progress.say(line())
    snapshot()


# About 24 MB of shuffled keys per reducer (its sort peaks near 110 bytes per key, well under a stage
# actor's footprint); reducers read one range of each mapper's file, so more partitions cost reads, not
# driver memory.
KEYS_PER_PARTITION = 1_000_000
DOCS_PER_FILE_GROUP = 100_000  # documents whose keys, signatures and decisions one per-file-group task handles


def dedup_layout(records: int, files: int, partitions: int | None, groups: int | None = None) -> tuple[int, int]:
    """(shuffle partitions, file groups) for a corpus of `records` documents, sized by the data so each task's
    share stays about constant as the corpus grows; a small job gets one of each, not a graph of dozens of
    tiny tasks."""
    keys = 16 * records  # 14 bands, the exact hash and a URL at most
    p = partitions or max(1, -(-keys // KEYS_PER_PARTITION))
    g = max(1, min(files, groups or -(-records // DOCS_PER_FILE_GROUP)))
    return p, g


def _dedup(executor, job: CurateJob, files, file_stats: dict, progress: Progress) -> dict[str, Any] | None:
    """The dedup phase; its decisions land in files under _work/dedup/ (one per input file), and only
    counters come back."""
    spec = job.stages.dedup
    if spec is None or (spec.exact is None and spec.minhash is None and spec.url is None):
        return None
    t0 = time.monotonic()
    write_progress(executor.layout, "dedup", input_files=len(files))
    records = sum(int(file_stats[f.ordinal]["records"]) for f in files)
    partitions, groups = dedup_layout(records, len(files), spec.partitions, spec.file_groups)
    keep_by = job.stages.quality.dedup_keep if job.stages.quality is not None else None
    threshold = spec.minhash.verify_threshold if spec.minhash is not None else 1.0
    result = executor.dedup(
        [f.ordinal for f in files],
        partitions,
        groups,
        threshold=threshold,
        score_col=f"quality_{keep_by}" if keep_by else None,
        progress=progress.say,
        cluster_partitions=spec.partitions,
    )
    if keep_by is not None:
        progress.say(f"dedup: each cluster keeps its best quality_{keep_by} member")
    result["seconds"] = time.monotonic() - t0
    progress.say(
        f"dedup: {result['duplicates']:,} duplicates in {result['clusters']:,} clusters ({result['seconds']:.1f}s)"
    )
    return result


def _file_groups(job: CurateJob, files, file_stats: dict) -> list[list[int]]:
    """The dedup phase's groups of input files (the unit of its per-file steps)."""
    spec = job.stages.dedup
    records = sum(int(file_stats[f.ordinal]["records"]) for f in files)
    _, g = dedup_layout(records, len(files), spec.partitions if spec else None, spec.file_groups if spec else None)
    ordinals = [f.ordinal for f in files]
    return [ordinals[i::g] for i in range(g)]


def _keys_per_doc(job: CurateJob) -> int:
    spec = job.stages.dedup
    assert spec is not None
    return (spec.exact is not None) + (spec.url is not None) + (spec.minhash.bands if spec.minhash else 0)


def _against(executor, job: CurateJob, files, file_stats: dict, corpora: list, progress: Progress) -> dict | None:
    """The check against earlier corpora (curation.dedup.against); its decisions land in _work/against/."""
    if not corpora:
        return None
    from curation.dedup.against import run_against

    spec = job.stages.dedup
    assert spec is not None
    write_progress(executor.layout, "dedup against earlier corpora", input_files=len(files))
    records = sum(int(file_stats[f.ordinal]["records"]) for f in files)
    return run_against(
        executor.runner(),
        executor.layout,
        _file_groups(job, files, file_stats),
        corpora,
        new_keys=records * _keys_per_doc(job),
        threshold=spec.minhash.verify_threshold if spec.minhash is not None else 1.0,
        progress=progress.say,
    )


def _write_index(
    executor, job: CurateJob, layout: Layout, files, finals: list[dict], progress: Progress
) -> dict | None:
    """OUT/index/ from the kept documents' keys (curation.dedup.index), for later jobs' `against`."""
    spec = job.stages.dedup
    layout.remove_dir(layout.path("index"))
    from curation.dedup import index
    from curation.stages.dedup import Dedup

    if not Dedup.active(spec) or not spec.write_index:
        return None

    t0 = time.monotonic()
    kept = sum(int(f.get("kept", 0)) for f in finals)
    groups = _file_groups(
        job, files, {f.ordinal: {"records": int(fin.get("kept", 0))} for f, fin in zip(files, finals)}
    )
    info = index.build_index(
        executor.runner(),
        layout,
        groups,
        params=index.params_of(spec),
        name=spec.corpus or job.name,
        output=layout.uri,
        expected_keys=kept * _keys_per_doc(job),
        progress=progress.say,
    )
    layout.remove_dir(layout.path("_work", "index_entries"))
    info["seconds"] = round(time.monotonic() - t0, 3)
    progress.say(
        f"index: {info['documents']:,} kept documents, {info['keys']:,} keys in {info['partitions']} "
        f"partition(s) under {layout.uri}/index ({info['seconds']:.1f}s)"
    )
    return info


def _samples(executor, job: CurateJob, layout: Layout, finals: list[dict], progress: Progress) -> None:
    """OUT/samples/ from the per-file sample files (curation.inspection.samples)."""
    from curation.inspection.samples import build_samples

    paths = [f["sample_file"] for f in finals if f.get("sample_file")]
    if job.inspection.samples_per_group == 0 or not paths:
        return
    t0 = time.monotonic()
    n = build_samples(executor, layout, paths, job.inspection.samples_per_group, job.inspection.excerpt_chars)
    progress.say(f"samples: {n:,} documents sampled by drop reason and language ({time.monotonic() - t0:.1f}s)")


def _top_fraction_thresholds(executor, job: CurateJob, files, progress: Progress) -> dict[str, dict[str, float]] | None:
    """column -> "lang/domain" -> lowest kept score, for classifiers with keep_top_fraction."""
    q = job.stages.quality
    fractions = {
        f"quality_{n}": c.keep_top_fraction
        for n, c in (q.classifiers.items() if q else [])
        if c.keep_top_fraction is not None
    }
    if not fractions:
        return None
    per_file = executor.map(survivor_score_bins, [(executor.layout, f.ordinal, list(fractions)) for f in files])
    merged: dict[str, Any] = {}
    for d in per_file:
        merge_counts(merged, d)
    out = {
        col: {g: top_fraction_threshold(bins, fractions[col]) for g, bins in merged.get(col, {}).items()}
        for col in fractions
    }
    for col, by_group in out.items():
        progress.say(f"{col}: keeping the top {fractions[col]:.0%} of {len(by_group)} language/domain group(s)")
    return out


def _assemble_stats(
    job: CurateJob, files, file_stats: dict, finals: list[dict], dedup, write_seconds: float, wall: float
) -> dict[str, Any]:
    annotate: dict[str, Any] = {}
    records = 0
    blank = 0
    for o in sorted(file_stats):
        records += file_stats[o]["records"]
        blank += file_stats[o]["blank_lines"]
        merge_counts(annotate, file_stats[o]["stats"])
    total: dict[str, Any] = {}
    for fin in finals:
        merge_counts(total, {k: v for k, v in fin.items() if k != "files"})
    by_reason = dict(sorted(total.get("by_reason", {}).items(), key=lambda kv: (-kv[1], kv[0])))
    timings = annotate.get("timings", {})
    from curation.stages import registry as stage_registry

    quarantined = total.get("quarantined", 0)
    # The funnel: each stage's in/out among parsed records, in pipeline order (from the stage registry).
    order = stage_registry.funnel_order(job)
    seconds: dict[str, float] = {}
    for st in stage_registry.plan(job):
        rows = st.funnel()
        for row in rows:  # a stage of several rows (the filters) times each as NAME:ROW
            seconds[row] = timings.get(f"{st.name}:{row}", 0.0) if len(rows) > 1 else timings.get(st.name, 0.0)
    by_stage = [{"stage": "read", "in": records, "out": records - quarantined, "seconds": 0.0}]
    # Exact, MinHash and URL dedup share their key stage and shuffle: their time is split evenly.
    n_dedup = sum(s.endswith("_dedup") for s in order) or 1
    dedup_seconds = (float(dedup["seconds"]) if dedup is not None else 0.0) + timings.get("dedup", 0.0)
    for s, n_in, n_out in stage_registry.funnel_counts(job, records - quarantined, by_reason):
        sec = dedup_seconds / n_dedup if s.endswith("_dedup") else seconds.get(s, 0.0)
        by_stage.append({"stage": s, "in": n_in, "out": n_out, "seconds": round(sec, 3)})
    by_stage.append(
        {
            "stage": "write",
            "in": records,
            "out": total.get("kept", 0) + total.get("rejected", 0) + quarantined,
            "seconds": round(write_seconds + timings.get("write_annotated", 0.0), 3),
        }
    )
    langs = sorted(set(total.get("input_by_lang", {})) | set(total.get("kept_by_lang", {})))
    by_lang = {
        lang: {
            "input": total.get("input_by_lang", {}).get(lang, 0),
            "kept": total.get("kept_by_lang", {}).get(lang, 0),
            "by_reason": dict(
                sorted(total.get("reasons_by_lang", {}).get(lang, {}).items(), key=lambda kv: (-kv[1], kv[0]))
            ),
        }
        for lang in langs
    }
    minhash = job.stages.dedup.minhash if job.stages.dedup is not None else None
    return {
        "stats_version": STATS_VERSION,
        "curation_version": __version__,
        "job": job.name,
        "input_files": len(files),
        "input_records": records,
        "input_bytes": annotate.get("input_bytes", 0),
        "input_blank_lines": blank,
        "kept": total.get("kept", 0),
        "rejected": total.get("rejected", 0),
        "quarantined": quarantined,
        "by_reason": by_reason,
        "by_lang": by_lang,
        "by_domain": {
            d: {"input": n, "kept": total.get("kept_by_domain", {}).get(d, 0)}
            for d, n in sorted(total.get("input_by_domain", {}).items())
        },
        "by_stage": by_stage,
        "quality_scores": {
            name: {"bin_width": SCORE_BIN, **hist} for name, hist in sorted(total.get("score_histograms", {}).items())
        },
        # per score column and language, documents and characters by score bin among the rows a threshold
        # sweep counts (curation.inspection.sweep; `curate sweep OUT`)
        "sweep_histograms": total.get("sweep_histograms", {}),
        "dedup": None
        if dedup is None
        else {
            **{
                k: int(dedup[k])
                for k in (
                    "candidate_documents",
                    "clusters",
                    "duplicates",
                    "candidate_edges",
                    "rejected_edges",
                    "edges",
                    "edges_max_per_task",
                    "rounds",
                    "partitions",
                    "cluster_partitions",
                    "file_groups",
                )
            },
            "similarity_threshold": None if minhash is None else round(minhash.verify_threshold, 4),
            # the check against earlier corpora (stages.dedup.against), when the job has one
            "against": dedup.get("against"),
            "documents_by_cluster_size": dict(
                sorted(total.get("cluster_sizes", {}).items(), key=lambda kv: int(kv[0]))
            ),
            "minhash": None
            if minhash is None
            else {
                "scheme": "datasketch affine32",
                "num_perm": minhash.num_perm,
                "bands": minhash.bands,
                "rows": minhash.rows,
                "ngram": minhash.ngram,
                "seed": minhash.seed,
            },
        },
        "wall_seconds": round(wall, 2),
    }
