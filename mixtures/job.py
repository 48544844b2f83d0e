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

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import yaml

from curation.execution import LocalExecutor, RayExecutor, tables_with_actor
from curation.job import claim_output
from curation.outputs import Layout
from curation.progress import Progress
from curation.spec import SpecError, model_yaml
from mixtures.allocate import Allocation, allocate, natural_weights, temperature_weights, unimax_weights
from mixtures.pool import PoolIndexer, curated_files, part_paths
from mixtures.shards import MANIFEST_VERSION, blend_files
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


def build_mixture(executor, layout: Layout, prefix: str, files: list[str], parts: list[str],
                  available: dict[str, dict[str, int]], alloc: Allocation, job: MixJob, target: int, source: str,
                  mixture_id: str, progress: Progress, min_tokens: int = 0,
                  pool_seconds: float | None = None, compression: dict[str, Any] | None = None,
                  pack_len: int | None = None) -> dict[str, Any]:
    """Select, shuffle, write shards (and with `pack_len` packed sequences), manifest and blends under
    OUT/prefix, as steps over the pool parts (`mixtures.distributed`); returns the manifest."""
    from curation.exchange import Steps
    from mixtures import distributed as dist
    from mixtures.select import plan

    tokens_of = {b: v["tokens"] for b, v in available.items()}
    plans = plan(alloc.tokens, tokens_of, alloc.caps)
    root = layout.path("_work", "exchange", "mix-" + (prefix.strip("/") or "main"))
    layout.remove_dir(root)
    steps = Steps(executor.runner(), layout, root, progress=lambda m: progress.say(f"{prefix or ''}{m}"))
    t0 = time.monotonic()
    try:
        decisions, picks = dist.select_remainders(steps, layout, parts, plans, job.seed, min_tokens)
        selected = sum(d["full"] * tokens_of[b] + d["tokens"] for b, d in decisions.items())
        n_shards = dist.shard_count(selected, job.shard_tokens)
        progress.say(f"{prefix or 'main '}selection: {selected:,} tokens chosen in {len(decisions)} bucket(s) "
                     f"({time.monotonic() - t0:.1f}s); writing {n_shards} shard(s)")
        t1 = time.monotonic()
        shards, by_bucket, io, packed = dist.write_shards(steps, layout, prefix, files, parts, decisions, picks,
                                                          job.seed, n_shards, job.formats, min_tokens, pack_len,
                                                          progress.say)
    finally:
        layout.remove_dir(root)
    io["phase_seconds"] = {**({"pool": round(pool_seconds, 3)} if pool_seconds is not None else {}),
                           "select": round(t1 - t0, 3), "shards": round(time.monotonic() - t1, 3)}
    buckets = [{"name": b, "available_tokens": tokens_of[b], "allocated_tokens": alloc.tokens[b],
                "selected_tokens": by_bucket.get(b, {}).get("tokens", 0), "weight": alloc.weights[b],
                "requested_weight": alloc.requested[b], "weight_source": source,
                "epochs": by_bucket.get(b, {}).get("tokens", 0) / tokens_of[b] if tokens_of[b] else 0.0,
                "max_epochs": alloc.caps[b], "redistributed_tokens": alloc.redistributed.get(b, 0),
                "synthetic_tokens": by_bucket.get(b, {}).get("synthetic", 0)} for b in sorted(tokens_of)]
    achieved = int(sum(s["tokens"] for s in shards))
    synthetic_tokens = int(sum(v["synthetic"] for v in by_bucket.values()))
    manifest = {"schema_version": MANIFEST_VERSION, "mixture_id": mixture_id, "name": job.name,
                "tokenizer": {"name": TOKENIZER_NAME, "vocab_sha256": vocab_sha256()}, "seed": job.seed,
                "target_tokens": target, "achieved_tokens": achieved,
                # tokens of model-written documents (domain synthetic) and their share of the mixture
                "synthetic_tokens": synthetic_tokens,
                "synthetic_share": synthetic_tokens / achieved if achieved else 0.0,
                "rows": int(sum(s["rows"] for s in shards)),
                # documents per power-of-two bin of token length (shards' histograms summed)
                "length_histogram": _merge_counts([s.pop("length_histogram") for s in shards]),
                "pool_documents": sum(v["documents"] for v in available.values()), "bucket_by": job.bucket_by,
                "max_epochs": job.max_epochs, "redistribute": job.redistribute, "formats": job.formats,
                "buckets": buckets, "shards": shards, "inputs": files,
                # the shard step's bytes read (curated columns once, routed rows) and written (shards, token files)
                "io": io}
    if pack_len:
        manifest["packed"] = {"seq_len": pack_len, "sequences": sum(p["sequences"] for p in packed),
                              "files": [f for p in packed for f in p["files"]],
                              "dropped_tail_tokens": sum(p["dropped_tail_tokens"] for p in packed)}
        if any("token_files" in p for p in packed):
            manifest["packed"]["token_files"] = {f: [e for p in packed for e in p["token_files"][f]]
                                                 for f in packed[0]["token_files"]}
    if compression is not None:  # Qwen tokens per byte and per character of the pool, by language and bucket
        manifest["compression"] = compression
    manifest["blend_files"] = blend_files(layout, prefix, shards)
    layout.write_bytes(layout.path(f"{prefix}manifest.json"), json.dumps(manifest, indent=2).encode())
    return manifest


def _merge_counts(hists: list[dict[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for h in hists:
        for k, v in h.items():
            out[k] = out.get(k, 0) + v
    return dict(sorted(out.items(), key=lambda kv: int(kv[0].split("-")[0])))


def _available(pool: pa.Table) -> dict[str, int]:
    """Tokens per bucket of an in-memory pool (ablations)."""
    g = pool.group_by("bucket").aggregate([("n_tokens", "sum")])
    return dict(zip(g["bucket"].to_pylist(), g["n_tokens_sum"].to_pylist()))


def _alloc_for(job: MixJob, available: dict[str, int], target: int, max_epochs: float) -> tuple[Allocation, str]:
    caps = {b: job.max_epochs_by_bucket.get(b, max_epochs) for b in available}
    weights = _weights(job, available, caps)
    alloc = allocate(available, target=target, weights=weights, source=job.weight_source(), max_epochs=max_epochs,
                     max_epochs_by_bucket=job.max_epochs_by_bucket, redistribute=job.redistribute)
    return alloc, job.weight_source()


def build_pool(executor, layout: Layout, files: list[str], job: Any, progress: Progress | None = None) -> list[str]:
    """Each curated file's pool part, counted once: parts of files that did not change are reused."""
    with_ids = bool(getattr(job, "keeps_token_ids", False))  # ablation jobs count only
    parts = part_paths(layout, files, job.bucket_by, with_ids)
    missing = [i for i, p in enumerate(parts) if layout.fs.get_file_info(p).type != pafs.FileType.File]
    if missing:
        if progress is not None:
            progress.say(f"counting tokens of {len(missing)} curated file(s) ({len(files) - len(missing)} counted before)")
        t0 = time.monotonic()

        def report(done: list[pa.Table]) -> None:
            if progress is not None:
                n, el = sum(len(t) for t in done), time.monotonic() - t0
                docs = int(sum(t["rows"].to_numpy().sum() for t in done))
                eta = f", ETA {(len(missing) - n) * el / n:.0f}s" if n else ""
                progress.say(f"counting: {n}/{len(missing)} files, {docs:,} documents, {docs / el:,.0f}/s{eta}")

        tables_with_actor(executor, PoolIndexer, ([files[i] for i in missing], job.bucket_by, layout,
                                                   [parts[i] for i in missing], with_ids), len(missing), job.execution.actors,
                          report=report)
    return parts


def _load_or_build_pool(executor, layout: Layout, files: list[str], job: Any) -> pa.Table:
    """The whole pool in memory, sorted by (file, row): for ablations, which run on a sample-sized pool."""
    import pyarrow.parquet as pq

    tables = []
    for i, p in enumerate(build_pool(executor, layout, files, job)):
        t = pq.read_table(p, filesystem=layout.fs)
        tables.append(t.set_column(t.column_names.index("file"), "file", pa.array(np.full(len(t), i, np.int32))))
    return pa.concat_tables(tables).sort_by([("file", "ascending"), ("row", "ascending")])


def run_mix(job: MixJob, *, address: str | None = None, progress: Progress | None = None) -> dict[str, Any]:
    """Run a mixture job; returns the main manifest (also written to OUT/manifest.json)."""
    t0 = time.monotonic()
    files = curated_files(job.inputs)
    layout, lock = claim_output(job, model_yaml(job))
    with lock:
        return _run_mix(job, files, layout, address, progress or Progress(), t0)


def _run_mix(job: MixJob, files: list[str], layout: Layout, address: str | None, progress: Progress,
             t0: float) -> dict[str, Any]:
    from curation.dataset_card import mix_card

    executor = LocalExecutor(job) if job.execution.engine == "local" else RayExecutor(job, address)
    progress.say(f"mix {job.name!r}: {len(files)} curated file(s), target {job.target_tokens:,} tokens")
    layout.write_bytes(layout.path("README.md"), mix_card(job.name, None, job.long_context is not None))
    with executor:
        from curation.exchange import Steps
        from mixtures import distributed as dist

        t_pool = time.monotonic()
        parts = build_pool(executor, layout, files, job, progress)
        steps = Steps(executor.runner(), layout, layout.path("_work", "exchange", "pool"), progress=progress.say)
        try:
            available, compression = dist.pool_stats(steps, layout, parts)
            documents = sum(v["documents"] for v in available.values())
            repeats, examples = dist.repeated_ids(steps, layout, parts, documents)
        finally:
            layout.remove_dir(layout.path("_work", "exchange", "pool"))
        if repeats:
            raise SpecError([("inputs", f"document ids are not unique across the inputs ({repeats:,} ids repeat, "
                                        f"e.g. {', '.join(repr(i) for i in examples)}); mixture rows are named by id: "
                                        "give each source its own id_field or prefix, or curate the inputs in one job")])
        tokens = {b: v["tokens"] for b, v in available.items()}
        progress.say(f"pool: {documents:,} documents, {sum(tokens.values()):,} tokens in {len(tokens)} "
                     f"buckets ({time.monotonic() - t0:.1f}s)")
        alloc, source = _alloc_for(job, tokens, job.target_tokens, job.max_epochs)
        manifest = build_mixture(executor, layout, "", files, parts, available, alloc, job, job.target_tokens,
                                 source, _mixture_id(job, files, alloc.weights), progress,
                                 pool_seconds=time.monotonic() - t_pool, compression=compression)
        progress.say(f"main mixture: {manifest['achieved_tokens']:,} tokens in {len(manifest['shards'])} shard(s)")
        long_manifest = None
        if job.long_context is not None:
            from mixtures.long_context import build_long_context

            long_manifest = build_long_context(executor, layout, files, parts, job, progress)
    from mixtures.report import write_mix_report

    write_mix_report(layout, manifest, long_manifest)
    layout.write_bytes(layout.path("README.md"), mix_card(job.name, manifest, long_manifest is not None))
    progress.say(f"done in {time.monotonic() - t0:.1f}s: {layout.path('manifest.json')}")
    return manifest
