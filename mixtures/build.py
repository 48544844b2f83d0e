"""One mixture from a counted pool: weights -> allocation -> selection -> shuffled shards, manifest and
blend files under OUT/prefix. `curate mix` builds the main mixture and the long-context one with it."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml

from curation.outputs import Layout
from curation.progress import Progress
from curation.spec import SpecError
from mixtures.allocate import Allocation, allocate, natural_weights, temperature_weights, unimax_weights
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
    key = json.dumps(
        {
            "files": files,
            "weights": weights,
            "seed": job.seed,
            "target": job.target_tokens,
            "bucket_by": job.bucket_by,
            "tokenizer": vocab_sha256(),
            "caps": job.max_epochs,
            "caps_by": job.max_epochs_by_bucket,
            "long": salt,
        },
        sort_keys=True,
    )
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def build_mixture(
    executor,
    layout: Layout,
    prefix: str,
    files: list[str],
    parts: list[str],
    available: dict[str, dict[str, int]],
    alloc: Allocation,
    job: MixJob,
    target: int,
    source: str,
    mixture_id: str,
    progress: Progress,
    min_tokens: int = 0,
    pool_seconds: float | None = None,
    compression: dict[str, Any] | None = None,
    pack_len: int | None = None,
) -> dict[str, Any]:
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
        progress.say(
            f"{prefix or 'main '}selection: {selected:,} tokens chosen in {len(decisions)} bucket(s) "
            f"({time.monotonic() - t0:.1f}s); writing {n_shards} shard(s)"
        )
        t1 = time.monotonic()
        shards, by_bucket, io, packed = dist.write_shards(
            steps,
            layout,
            prefix,
            files,
            parts,
            decisions,
            picks,
            job.seed,
            n_shards,
            job.formats,
            min_tokens,
            pack_len,
            progress.say,
        )
    finally:
        layout.remove_dir(root)
    io["phase_seconds"] = {
        **({"pool": round(pool_seconds, 3)} if pool_seconds is not None else {}),
        "select": round(t1 - t0, 3),
        "shards": round(time.monotonic() - t1, 3),
    }
    buckets = [
        {
            "name": b,
            "available_tokens": tokens_of[b],
            "allocated_tokens": alloc.tokens[b],
            "selected_tokens": by_bucket.get(b, {}).get("tokens", 0),
            "weight": alloc.weights[b],
            "requested_weight": alloc.requested[b],
            "weight_source": source,
            "epochs": by_bucket.get(b, {}).get("tokens", 0) / tokens_of[b] if tokens_of[b] else 0.0,
            "max_epochs": alloc.caps[b],
            "redistributed_tokens": alloc.redistributed.get(b, 0),
            "synthetic_tokens": by_bucket.get(b, {}).get("synthetic", 0),
        }
        for b in sorted(tokens_of)
    ]
    achieved = int(sum(s["tokens"] for s in shards))
    synthetic_tokens = int(sum(v["synthetic"] for v in by_bucket.values()))
    manifest = {
        "schema_version": MANIFEST_VERSION,
        "mixture_id": mixture_id,
        "name": job.name,
        "tokenizer": {"name": TOKENIZER_NAME, "vocab_sha256": vocab_sha256()},
        "seed": job.seed,
        "target_tokens": target,
        "achieved_tokens": achieved,
        # tokens of model-written documents (domain synthetic) and their share of the mixture
        "synthetic_tokens": synthetic_tokens,
        "synthetic_share": synthetic_tokens / achieved if achieved else 0.0,
        "rows": int(sum(s["rows"] for s in shards)),
        # documents per power-of-two bin of token length (shards' histograms summed)
        "length_histogram": _merge_counts([s.pop("length_histogram") for s in shards]),
        "pool_documents": sum(v["documents"] for v in available.values()),
        "bucket_by": job.bucket_by,
        "max_epochs": job.max_epochs,
        "redistribute": job.redistribute,
        "formats": job.formats,
        "buckets": buckets,
        "shards": shards,
        # shards the rows were hashed over (empty ones are not written): a row's shard follows from its id
        "shard_count": n_shards,
        "inputs": files,
        # the shard step's bytes read (curated columns once, routed rows) and written (shards, token files)
        "io": io,
    }
    if pack_len:
        manifest["packed"] = {
            "seq_len": pack_len,
            "sequences": sum(p["sequences"] for p in packed),
            "files": [f for p in packed for f in p["files"]],
            "dropped_tail_tokens": sum(p["dropped_tail_tokens"] for p in packed),
        }
        if any("token_files" in p for p in packed):
            manifest["packed"]["token_files"] = {
                f: [e for p in packed for e in p["token_files"][f]] for f in packed[0]["token_files"]
            }
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
    alloc = allocate(
        available,
        target=target,
        weights=weights,
        source=job.weight_source(),
        max_epochs=max_epochs,
        max_epochs_by_bucket=job.max_epochs_by_bucket,
        redistribute=job.redistribute,
    )
    return alloc, job.weight_source()
