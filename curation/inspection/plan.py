"""`curate plan JOB.yaml`: what a curate job will keep and cost, projected from runs of it on a seeded sample.

1. The inputs are listed as the job lists them (`discover`). Every file's records: its Parquet footer, one
   for a text file, else its lines (exact for a sampled file that fits in PREFIX_BYTES uncompressed; else
   lines per uncompressed byte x size x compression ratio, measured on its first PREFIX_BYTES, or its
   input entry's).
2. Up to FILES_SAMPLED files are chosen (seeded), each with a quota in proportion to its records; a seeded
   choice of that many records of its first PREFIX_BYTES is written to a sample file (JSONL lines as they
   are, Parquet rows), so the runs read only the sample and their every cost scales with it.
3. The job runs on the sample with its own stages, engine and cluster: cold on the whole sample (the fixed
   cost: starting Ray, loading models, warming a process), then warm on the whole sample and on a quarter,
   REPEATS times each, interleaved. The per-record time is the stages' own measured compute (summed over
   workers, the write phase included) over the cluster's CPUs, from the fastest whole run; the slope
   between the two sizes is reported beside it (on sub-second runs it is the noisier of the two, and on
   Ray a sample never reaches the pipeline's steady state).
4. Kept documents: each sampled file's kept share (from its lineage), the other files their input entry's;
   wall = fixed (with starting Python and importing the pipeline, as `curate run` does) + per-record x
   records x (the runs' CPUs / the CPUs projected for); CPU seconds per stage,
   output and work bytes scale with records; memory is the largest peak RSS of this process and its
   descendants (the local Ray cluster's workers) during the runs.

What a sample cannot show is said in `caveats`: near-duplicates grow with the corpus (the duplicate shares
of both sample sizes are given so the trend is visible), and a file is sampled over its head.
"""

from __future__ import annotations

import dataclasses
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curation.execution import shared_cluster
from curation.inspection.plan_mix import head_row_groups

FILES_SAMPLED = 16
PREFIX_BYTES = 64 << 20  # uncompressed bytes of each sampled file read to count its lines (and sampled from)
LINE_FORMATS = ("jsonl",)  # formats with one record per line
REPEATS = 2  # warm pairs of runs (whole sample, quarter)


def _open_prefix(f: Any) -> tuple[Any, Any]:
    """(the stored stream, the decompressed stream) of a file, by its extension."""
    from curation.io.sources import filesystem_for

    fs, path = filesystem_for(f.uri)
    name = f.path.lower()
    codec = "gzip" if name.endswith(".gz") else "zstd" if name.endswith((".zst", ".zstd")) else None
    raw = fs.open_input_file(path)
    return raw, (pa.CompressedInputStream(raw, codec) if codec else raw)


def _probe(f: Any) -> dict[str, Any]:
    """A file's first PREFIX_BYTES (uncompressed): its compression ratio, and for line-based formats the lines
    in it (exact when the whole file fits). Parquet files are counted by their footers instead."""
    raw, stream = _open_prefix(f)
    out = lines = 0
    whole = False
    with raw:
        while out < PREFIX_BYTES:
            chunk = stream.read(1 << 20)
            if not chunk:
                whole = True
                break
            out += len(chunk)
            lines += chunk.count(b"\n")
        used = raw.tell()
    return {"ratio": out / max(1, used), "lines": lines, "bytes": out, "whole": whole}


def _parquet_rows(f: Any) -> int | None:
    if f.format != "parquet":
        return None
    from curation.io.sources import filesystem_for

    fs, path = filesystem_for(f.uri)
    meta = pq.ParquetFile(path, filesystem=fs).metadata
    if f.split is not None:
        a, b = f.split
        return sum(meta.row_group(g).num_rows for g in range(a, min(b, meta.num_row_groups)))
    return meta.num_rows


class _PeakRSS:
    """The largest resident set of this process and its descendants, polled while a run goes on."""

    def __init__(self) -> None:
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "_PeakRSS":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self._poll()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self._poll()

    def _poll(self) -> None:
        me = os.getpid()
        children: dict[int, list[int]] = {}
        try:
            for entry in os.listdir("/proc"):
                if entry.isdigit():
                    try:
                        with open(f"/proc/{entry}/stat", "rb") as f:
                            ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
                    except (OSError, ValueError, IndexError):
                        continue
                    children.setdefault(ppid, []).append(int(entry))
        except OSError:
            return
        todo, seen = [me], set()
        while todo:
            pid = todo.pop()
            if pid in seen:
                continue
            seen.add(pid)
            todo += children.get(pid, [])
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            self.peak_kb = max(self.peak_kb, int(line.split()[1]))
            except (OSError, ValueError):
                continue


def _dir_bytes(root: Path, *subs: str) -> int:
    total = 0
    for sub in subs:
        for p in (root / sub).rglob("*"):
            if p.is_file():
                total += p.stat().st_size
    return total


def plan_job(
    spec_path: str,
    *,
    sample: int = 2000,
    cpus: int | None = None,
    seed: int = 0,
    work: str | None = None,
    address: str | None = None,
) -> dict[str, Any]:
    """The projection (see the module docstring) as a dict; `work` keeps the sample runs' outputs."""
    import yaml

    with open(spec_path, encoding="utf-8") as f:
        data = yaml.safe_load(f) or {}
    if isinstance(data, dict) and data.get("kind") == "plan":  # a plan job's spec: its job and options
        sample, seed, cpus = data.get("sample", sample), data.get("seed", seed), data.get("cpus", cpus)
        data = data.get("job") or {}
    if isinstance(data, dict) and data.get("kind") == "mix":
        from curation.inspection.plan_mix import plan_mix

        return plan_mix(data, sample=sample, cpus=cpus, seed=seed)
    from curation.spec import parse_spec

    job = parse_spec(data)
    return plan_curate(job, sample=sample, cpus=cpus, seed=seed, work=work, address=address)


def plan_curate(
    job: Any, *, sample: int = 2000, cpus: int | None = None, seed: int = 0, work: str | None = None, address=None
) -> dict[str, Any]:
    from curation.io.sources import discover

    t_plan = time.monotonic()
    files = discover(job)
    if not files:
        raise ValueError("the job's inputs name no files")
    # one entry per distinct file (a large file's splits share its path; the sample reads its head)
    first_of: dict[str, int] = {}
    stored: dict[str, int] = {}
    for i, f in enumerate(files):
        first_of.setdefault(f.uri, i)
        stored[f.uri] = stored.get(f.uri, 0) + (f.bytes_to_read or 0)
    rng = random.Random(seed)
    chosen = sorted(rng.sample(sorted(first_of), min(FILES_SAMPLED, len(first_of))))
    entry = {u: files[first_of[u]].input_index for u in first_of}
    fmt = {u: files[first_of[u]].format for u in first_of}
    probe = {u: _probe(files[first_of[u]]) for u in chosen}
    rows_of = {u: _parquet_rows_whole(files[first_of[u]]) for u in first_of}
    # records of every file: Parquet footers; one per file for text; else lines (exact when a sampled file
    # was read whole, else its lines per uncompressed byte, else its input entry's, else the sample's)
    per_byte: dict[int, list[float]] = {}
    ext_ratio: dict[str, list[float]] = {}
    for u in chosen:
        per_byte.setdefault(entry[u], []).append(probe[u]["lines"] / max(1, probe[u]["bytes"]))
        ext_ratio.setdefault(Path(u).suffix.lower(), []).append(probe[u]["ratio"])
    all_per_byte = float(np.median([x for v in per_byte.values() for x in v])) if per_byte else 1e-3
    records: dict[str, float] = {}
    for u in first_of:
        known = rows_of[u]
        if known is not None:
            records[u] = float(known)
        elif fmt[u] == "text":
            records[u] = 1.0
        elif u in probe and probe[u]["whole"]:
            records[u] = float(probe[u]["lines"])
        else:
            r = probe[u]["ratio"] if u in probe else float(np.median(ext_ratio.get(Path(u).suffix.lower(), [1.0])))
            b = (
                probe[u]["lines"] / max(1, probe[u]["bytes"])
                if u in probe
                else float(np.median(per_byte.get(entry[u], [all_per_byte])))
            )
            records[u] = max(1.0, stored[u] * r * b)
    root = Path(work) if work else Path(tempfile.mkdtemp(prefix="curate-plan-"))
    try:
        quota = _quotas({u: records[u] for u in chosen}, sample)
        # the sample records of each file, extracted once (a seeded choice over its first PREFIX_BYTES, all
        # of it when it fits): the runs read only them, so their every cost scales with the sample
        picks: dict[str, dict[str, Any]] = {}
        for k, u in enumerate(chosen):
            picks[u] = _extract(files[first_of[u]], quota[u], seed, root / "sample" / f"{k:05d}")

        def inputs(part: str) -> dict[str, dict[str, Any]]:
            return {u: p[part] for u, p in picks.items()}

        # cold on the whole sample (the fixed cost: starting Ray, loading models, a process's first run
        # warming its allocator and caches), then REPEATS warm pairs: the whole sample and a quarter
        cold = _sample_run(job, files, first_of, inputs("whole"), root / "cold", address)
        wholes, quarters = [], []
        with shared_cluster(job, address):
            for k in range(REPEATS):
                wholes.append(_sample_run(job, files, first_of, inputs("whole"), root / f"whole{k}", address))
                quarters.append(_sample_run(job, files, first_of, inputs("quarter"), root / f"quarter{k}", address))
        whole = min(wholes, key=lambda r: r["wall"])  # the figures that scale with records: the fastest
        quarter = min(quarters, key=lambda r: r["wall"])
    finally:
        if not work:
            shutil.rmtree(root, ignore_errors=True)

    total_records = sum(records.values())
    # kept: each sampled file's own share, the others their input entry's (else the sample's)
    entry_share: dict[int, list[int]] = {}
    for u, (k, n) in whole["kept_by_file"].items():
        e = entry_share.setdefault(entry[u], [0, 0])
        e[0] += k
        e[1] += n
    overall = whole["kept"] / max(1, whole["records"])
    kept = 0.0
    for u, n in records.items():
        if u in whole["kept_by_file"]:
            k, m = whole["kept_by_file"][u]
            kept += n * k / max(1, m)
        else:
            k, m = entry_share.get(entry[u], (overall, 1))
            kept += n * k / max(1, m)
    n2, n3 = whole["records"], quarter["records"]
    here_cpus = whole["cpus"]
    target_cpus = cpus or here_cpus
    # Two estimates of the per-record time: the slope of each warm pair (whole minus quarter over their
    # records; the median of the pairs), and the stages' own compute (summed over workers, the write
    # phase included) over the cluster's CPUs. The compute is the one used: on Ray a sample this small
    # never reaches the pipeline's steady state (actor pools start and grow per run), and in one process
    # the slope of sub-second runs moved by 30% between plans of the same job where the compute moved
    # by 10% (bench/plan.py); the slope is reported beside it.
    slopes = [(w["wall"] - q["wall"]) / max(1, w["records"] - q["records"]) for w, q in zip(wholes, quarters)]
    by_slope = float(np.median(slopes))
    if by_slope <= 0:  # the runs too close to tell apart: the whole run's time, all of it per record
        by_slope = whole["wall"] / max(1, n2)
    by_compute = sum(whole["stage_seconds"].values()) / max(1, n2) / max(1, here_cpus)
    per_record = by_compute
    fixed = max(0.0, cold["wall"] - per_record * cold["records"]) + _startup_seconds()
    wall = fixed + per_record * total_records * here_cpus / target_cpus
    scale_up = total_records / max(1, n2)
    return {
        "job": job.name,
        "input_files": len(files),
        "input_bytes": int(sum(stored.values())),
        "input_records": int(round(total_records)),
        "kept_documents": int(round(kept)),
        "kept_tokens": int(round(kept * whole["kept_tokens_per_doc"])),
        "kept_share": kept / max(1.0, total_records),
        "wall_seconds": round(wall, 1),
        "cpus": target_cpus,
        "fixed_seconds": round(fixed, 2),
        "seconds_per_record": per_record,
        "seconds_per_record_by": {"two_runs": by_slope, "stage_compute": by_compute},
        "cpu_seconds_by_stage": {k: round(v * scale_up, 1) for k, v in whole["stage_seconds"].items()},
        "peak_worker_rss_mb": round(max(r["peak_rss_mb"] for r in (cold, *wholes, *quarters)), 1),
        "output_bytes": int(whole["output_bytes"] * scale_up),
        "work_bytes": int(whole["work_bytes"] * scale_up),
        "sample": {
            "files": len(chosen),
            "records": {"cold": cold["records"], "whole": n2, "quarter": n3},
            "wall_seconds": {
                "cold": round(cold["wall"], 2),
                "whole": round(whole["wall"], 2),
                "quarter": round(quarter["wall"], 2),
            },
            "duplicate_share": {"quarter": quarter["dup_share"], "whole": whole["dup_share"]},
            "seed": seed,
        },
        "caveats": [
            "near-duplicates grow with the corpus: the sample's duplicate share "
            f"({quarter['dup_share']:.2%} at {n3:,} records, {whole['dup_share']:.2%} at {n2:,}) is a lower bound",
            f"each sampled file is sampled over its first {PREFIX_BYTES >> 20} MB (uncompressed)",
        ],
        "plan_seconds": round(time.monotonic() - t_plan, 1),
    }


def _startup_seconds() -> float:
    """What `curate run` spends before its first job: starting Python and importing the pipeline (the
    sample runs happen in this process, which has paid it)."""
    t0 = time.monotonic()
    subprocess.run(
        [sys.executable, "-c", "import curation.cli, curation.job, curation.execution, curation.stages.registry"],
        check=False,
        capture_output=True,
    )
    return time.monotonic() - t0


def _quotas(weights: dict[str, float], total: float) -> dict[str, int]:
    w = sum(weights.values())
    return {u: max(1, round(total * x / w)) for u, x in weights.items()}


def _parquet_rows_whole(f: Any) -> int | None:
    return _parquet_rows(dataclasses.replace(f, split=None)) if f.format == "parquet" else None


def _extract(f: Any, n: int, seed: int, dest: Path) -> dict[str, dict[str, Any]]:
    """The sample of one file as input options: {"whole": {...}, "quarter": {...}}, each a `path` (and
    `max_records`). JSONL and Parquet: a seeded choice of n records of its first PREFIX_BYTES written to
    `dest` (the quarter a subset of the whole); other formats: the file's first records."""
    rng = random.Random(f"{seed}\x00{f.uri}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if f.format == "jsonl" and f.instruction is None:
        lines = [x for x in _prefix_lines(f) if x.strip()]
        order = rng.sample(range(len(lines)), min(n, len(lines)))
        out = {}
        for part, take in (("whole", order), ("quarter", order[: max(1, len(order) // 4)])):
            path = dest.with_name(f"{dest.name}-{part}.jsonl")
            with open(path, "wb") as w:
                for i in sorted(take):
                    w.write(lines[i].rstrip(b"\n") + b"\n")
            out[part] = {"path": str(path), "max_records": None}
        return out
    if f.format == "parquet":
        from curation.io.sources import filesystem_for

        fs, stored = filesystem_for(f.uri)
        pf = pq.ParquetFile(stored, filesystem=fs)
        t = pf.read_row_groups(head_row_groups(pf, nbytes=PREFIX_BYTES))
        order = rng.sample(range(len(t)), min(n, len(t)))
        out = {}
        for part, take in (("whole", order), ("quarter", order[: max(1, len(order) // 4)])):
            p = dest.with_name(f"{dest.name}-{part}.parquet")
            pq.write_table(t.take(sorted(take)), p)
            out[part] = {"path": str(p), "max_records": None}
        return out
    return {
        "whole": {"path": f.uri, "max_records": n},
        "quarter": {"path": f.uri, "max_records": max(1, n // 4)},
    }


def _prefix_lines(f: Any) -> list[bytes]:
    """The lines of a file's first PREFIX_BYTES (uncompressed; a cut last line is left out)."""
    raw, stream = _open_prefix(f)
    buf = bytearray()
    ended = False
    with raw:
        while len(buf) < PREFIX_BYTES:
            chunk = stream.read(1 << 20)
            if not chunk:
                ended = True
                break
            buf += chunk
    lines = bytes(buf).split(b"\n")
    return lines if ended else lines[:-1]


def _sample_run(
    job: Any, files: list, first_of: dict[str, int], picks: dict[str, dict[str, Any]], out: Path, address: Any
) -> dict:
    """One run of the job on the sampled files (`picks[uri]`: the input's path and max_records), measured."""
    import yaml

    from curation.inspection.lineage import input_file_of, lineage_files
    from curation.job import run_job
    from curation.outputs import Layout
    from curation.progress import Progress
    from curation.spec import parse_spec, resolved_yaml

    inputs = []
    origin = {}
    for u, pick in sorted(picks.items()):
        spec = job.inputs[files[first_of[u]].input_index].model_dump(mode="json")
        spec.update(pick)
        inputs.append(spec)
        origin[pick["path"]] = u
    sub = yaml.safe_load(resolved_yaml(job))
    sub.update(inputs=inputs, output=str(out), name=f"{job.name} (plan sample)")
    sub["execution"] = {**sub["execution"], "split_bytes": None}
    spec = parse_spec(sub)
    if out.exists():
        shutil.rmtree(out)
    with _PeakRSS() as rss:
        t0 = time.monotonic()
        stats = run_job(spec, address=address, progress=Progress(enabled=False))
        wall = time.monotonic() - t0
    import pyarrow.dataset as ds

    layout = Layout(str(out))
    kept_by_file: dict[str, list[int]] = {}
    for path in lineage_files(layout):
        ordinal = int(path.rsplit("part-", 1)[1].split(".")[0])
        status = pq.read_table(path, columns=["status"])["status"].to_pylist()
        read = input_file_of(layout, ordinal) or ""
        e = kept_by_file.setdefault(origin.get(read, read), [0, 0])
        e[0] += sum(s == "kept" for s in status)
        e[1] += len(status)
    kept_tokens_per_doc = 0.0
    if stats["kept"]:
        from mixtures.tokenizer import count_tokens

        t = ds.dataset(str(out / "curated"), format="parquet", partitioning="hive").to_table(columns=["text"])
        kept_tokens_per_doc = float(np.sum(count_tokens(t["text"].to_pylist()))) / len(t)
    stage_seconds: dict[str, float] = {}
    for s in stats["by_stage"]:
        stage_seconds[s["stage"]] = stage_seconds.get(s["stage"], 0.0) + float(s["seconds"])
    dups = sum(v for k, v in stats["by_reason"].items() if k.endswith("_duplicate"))
    return {
        "records": stats["input_records"],
        "input_bytes": stats["input_bytes"],
        "kept": stats["kept"],
        "kept_by_file": kept_by_file,
        "kept_tokens_per_doc": kept_tokens_per_doc,
        "wall": wall,
        "stage_seconds": stage_seconds,
        "cpus": int(stats.get("cluster_cpus") or 1),
        "peak_rss_mb": rss.peak_kb / 1024,
        "output_bytes": _dir_bytes(out, "curated", "rejected", "quarantine", "lineage", "samples"),
        "work_bytes": _dir_bytes(out, "_work"),
        "dup_share": dups / max(1, stats["input_records"]),
    }
