"""`curate mix`: pool -> weights -> allocation -> selection -> shuffled shards + manifest + blends + report.

Layout of OUT:
  manifest.json, shards/shard-NNNNN.parquet, blend/{megatron_data_path.txt, hf_interleave.json},
  report.html + mix_tokens.png, and with `long_context`: long_context/ (the same, plus packed/).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml

from curation.execution import LocalExecutor, RayExecutor, tables_with_actor
from curation.job import claim_output
from curation.outputs import Layout
from curation.progress import Progress
from curation.spec import SpecError, model_yaml
from mixtures.allocate import Allocation, allocate, natural_weights, temperature_weights, unimax_weights
from mixtures.pool import POOL_VERSION, PoolIndexer, curated_files
from mixtures.select import cut_shards, row_ids, select, shuffle_order
from mixtures.shards import MANIFEST_VERSION, blend_files, write_shard
from mixtures.spec import MixJob
from mixtures.tokenizer import TOKENIZER_NAME, vocab_sha256


def _weights(job: MixJob, available: dict[str, int], caps: dict[str, float]) -> dict[str, float]:
    src = job.weight_source()
    if src == "weights":
        return dict(job.weights)
    if src == "weights_file":
        try:
            data = yaml.safe_load(Path(job.weights_file).read_text(encoding="utf-8"))
        except OSError as e:
            raise SpecError([("weights_file", f"cannot read {job.weights_file}: {e.strerror or e}")]) from None
        except yaml.YAMLError as e:
            raise SpecError([("weights_file", f"{job.weights_file} is not valid YAML: {e}")]) from None
        if not isinstance(data, dict) or not isinstance(data.get("weights"), dict):
            raise SpecError([("weights_file", f"{job.weights_file} has no `weights:` mapping")])
        return {str(k): float(v) for k, v in data["weights"].items()}
    if src == "temperature":
        return temperature_weights(available, job.bucket_by, job.temperature.alpha)
    if src == "unimax":
        return unimax_weights(available, job.target_tokens, caps)
    return natural_weights(available)


def _mixture_id(job: MixJob, files: list[str], weights: dict[str, float], salt: str = "") -> str:
    key = json.dumps({"files": files, "weights": weights, "seed": job.seed, "target": job.target_tokens,
                      "bucket_by": job.bucket_by, "tokenizer": vocab_sha256(), "caps": job.max_epochs,
                      "caps_by": job.max_epochs_by_bucket, "long": salt}, sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def build_mixture(executor, layout: Layout, prefix: str, files: list[str], pool: pa.Table, alloc: Allocation,
                  job: MixJob, target: int, source: str, mixture_id: str) -> dict[str, Any]:
    """Select, shuffle, write shards, manifest and blends under OUT/prefix; returns the manifest."""
    sel = select(pool, alloc.tokens, job.seed, alloc.caps)
    idx = sel["pool_index"].to_numpy()
    epochs = sel["epoch"].to_numpy()
    picked = pool.take(pa.array(idx))
    rids = row_ids(picked["id"].to_pylist(), epochs)
    order = shuffle_order(rids, job.seed)
    rows = pa.table({"file": picked["file"], "row": picked["row"], "row_id": pa.array(rids, pa.string()),
                     "bucket": picked["bucket"], "n_tokens": picked["n_tokens"],
                     "epoch": pa.array(epochs, pa.int32())}).take(pa.array(order))
    synthetic = picked["synthetic"].to_numpy(zero_copy_only=False)
    synthetic_by_bucket: dict[str, int] = {}
    for b, t, syn in zip(picked["bucket"].to_pylist(), picked["n_tokens"].to_numpy().tolist(), synthetic.tolist()):
        if syn:
            synthetic_by_bucket[b] = synthetic_by_bucket.get(b, 0) + t
    bounds = cut_shards(rows["n_tokens"].to_numpy(), job.shard_tokens)
    shards = executor.map(write_shard, [(layout, prefix, f"shards/shard-{i:05d}.parquet", files,
                                         rows.slice(a, b - a)) for i, (a, b) in enumerate(bounds)])
    available = _available(pool)
    selected: dict[str, int] = {}
    for b, t in zip(rows["bucket"].to_pylist(), rows["n_tokens"].to_numpy().tolist()):
        selected[b] = selected.get(b, 0) + t
    buckets = [{"name": b, "available_tokens": available[b], "allocated_tokens": alloc.tokens[b],
                "selected_tokens": selected.get(b, 0), "weight": alloc.weights[b],
                "requested_weight": alloc.requested[b], "weight_source": source,
                "epochs": selected.get(b, 0) / available[b] if available[b] else 0.0, "max_epochs": alloc.caps[b],
                "redistributed_tokens": alloc.redistributed.get(b, 0),
                "synthetic_tokens": synthetic_by_bucket.get(b, 0)} for b in sorted(available)]
    achieved = int(sum(s["tokens"] for s in shards))
    synthetic_tokens = int(sum(synthetic_by_bucket.values()))
    manifest = {"schema_version": MANIFEST_VERSION, "mixture_id": mixture_id, "name": job.name,
                "tokenizer": {"name": TOKENIZER_NAME, "vocab_sha256": vocab_sha256()}, "seed": job.seed,
                "target_tokens": target, "achieved_tokens": achieved,
                # tokens of model-written documents (domain synthetic) and their share of the mixture
                "synthetic_tokens": synthetic_tokens,
                "synthetic_share": synthetic_tokens / achieved if achieved else 0.0,
                "rows": int(sum(s["rows"] for s in shards)), "pool_documents": len(pool), "bucket_by": job.bucket_by,
                "max_epochs": job.max_epochs, "redistribute": job.redistribute, "buckets": buckets, "shards": shards,
                "inputs": files}
    manifest["blend_files"] = blend_files(layout, prefix, shards)
    layout.write_bytes(layout.path(f"{prefix}manifest.json"), json.dumps(manifest, indent=2).encode())
    return manifest


def _available(pool: pa.Table) -> dict[str, int]:
    out: dict[str, int] = {}
    for b, t in zip(pool["bucket"].to_pylist(), pool["n_tokens"].to_numpy().tolist()):
        out[b] = out.get(b, 0) + t
    return out


def _alloc_for(job: MixJob, available: dict[str, int], target: int, max_epochs: float) -> tuple[Allocation, str]:
    caps = {b: job.max_epochs_by_bucket.get(b, max_epochs) for b in available}
    weights = _weights(job, available, caps)
    alloc = allocate(available, target=target, weights=weights, source=job.weight_source(), max_epochs=max_epochs,
                     max_epochs_by_bucket=job.max_epochs_by_bucket, redistribute=job.redistribute)
    return alloc, job.weight_source()


def _pool_key(files: list[str], job: MixJob) -> str:
    """Identifies a pool: the curated files as they are now (size, mtime), the buckets, the vocabulary."""
    from curation.io.sources import filesystem_for

    stamp = []
    for f in files:
        fs, path = filesystem_for(f)
        info = fs.get_file_info(path)
        stamp.append([f, info.size, info.mtime_ns])
    key = json.dumps({"files": stamp, "bucket_by": job.bucket_by, "vocab": vocab_sha256(), "pool": POOL_VERSION},
                     sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _load_or_build_pool(executor, layout: Layout, files: list[str], job: MixJob) -> pa.Table:
    """The pool index, counted once: cached under OUT/_work/ and reused while the inputs are unchanged."""
    import pyarrow.parquet as pq

    cache = layout.path("_work", f"pool-{_pool_key(files, job)}.parquet")
    try:
        return pq.read_table(cache, filesystem=layout.fs)
    except (FileNotFoundError, OSError):
        pass
    pool = tables_with_actor(executor, PoolIndexer, (files, job.bucket_by), len(files), job.execution.actors)
    pool = pool.sort_by([("file", "ascending"), ("row", "ascending")])
    layout.mkdir(layout.path("_work"))
    pq.write_table(pool, cache + ".tmp", filesystem=layout.fs, compression="zstd")
    layout.fs.move(cache + ".tmp", cache)
    return pool


def run_mix(job: MixJob, *, address: str | None = None, progress: Progress | None = None) -> dict[str, Any]:
    """Run a mixture job; returns the main manifest (also written to OUT/manifest.json)."""
    t0 = time.monotonic()
    files = curated_files(job.inputs)
    layout, lock = claim_output(job, model_yaml(job))
    with lock:
        return _run_mix(job, files, layout, address, progress or Progress(), t0)


def _run_mix(job: MixJob, files: list[str], layout: Layout, address: str | None, progress: Progress,
             t0: float) -> dict[str, Any]:
    executor = LocalExecutor(job) if job.execution.engine == "local" else RayExecutor(job, address)
    progress.say(f"mix {job.name!r}: {len(files)} curated file(s), target {job.target_tokens:,} tokens")
    with executor:
        pool = _load_or_build_pool(executor, layout, files, job)
        ids = pool["id"]
        if len(pool) and pa.compute.count_distinct(ids).as_py() != len(pool):
            counts = pa.table({"id": ids}).group_by("id").aggregate([("id", "count")])
            repeated = counts.filter(pa.compute.greater(counts["id_count"], 1))
            examples = ", ".join(repr(i) for i in repeated["id"].to_pylist()[:5])
            raise SpecError([("inputs", f"document ids are not unique across the inputs ({len(repeated):,} ids "
                                        f"repeat, e.g. {examples}); mixture rows are named by id: give each source "
                                        "its own id_field or prefix, or curate the inputs in one job")])
        available = _available(pool)
        progress.say(f"pool: {len(pool):,} documents, {sum(available.values()):,} tokens in {len(available)} "
                     f"buckets ({time.monotonic() - t0:.1f}s)")
        alloc, source = _alloc_for(job, available, job.target_tokens, job.max_epochs)
        manifest = build_mixture(executor, layout, "", files, pool, alloc, job, job.target_tokens, source,
                                 _mixture_id(job, files, alloc.weights))
        progress.say(f"main mixture: {manifest['achieved_tokens']:,} tokens in {len(manifest['shards'])} shard(s)")
        long_manifest = None
        if job.long_context is not None:
            from mixtures.long_context import build_long_context

            long_manifest = build_long_context(executor, layout, files, pool, job, progress)
    from mixtures.report import write_mix_report

    write_mix_report(layout, manifest, long_manifest)
    progress.say(f"done in {time.monotonic() - t0:.1f}s: {layout.path('manifest.json')}")
    return manifest
