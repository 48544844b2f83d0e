"""`curate plan MIX.yaml`: a mixture's tokens per bucket and cost, from a seeded sample of its curated files.

Rows per curated file come from the footers. A seeded choice of files (FILES_SAMPLED at most) gives a
seeded sample of rows (spread over each file's first row groups), whose bucket and Qwen BPE tokens are
measured; tokens per bucket are the rows of each file times its sampled buckets' mean tokens (files not
sampled take the sample's mix). The job's own allocation (`mixtures.build._alloc_for`) then gives the
tokens and rows each bucket contributes. Counting the pool is the cost that grows with the corpus:
its CPU seconds are the pool's characters over the tokenizer's measured characters per second; writing
shards is projected from the sample's Parquet bytes per token.
"""

from __future__ import annotations

import io
import random
import resource
import time
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

FILES_SAMPLED = 256  # curated files sampled (all of them when there are no more)
PREFIX_ROWS = 200_000  # rows of a file's first row groups the sample is drawn from


def head_row_groups(pf: pq.ParquetFile, *, rows: int | None = None, nbytes: int | None = None) -> list[int]:
    """A Parquet file's first row groups, up to `rows` rows or `nbytes` uncompressed bytes (at least one)."""
    groups, n, size = [], 0, 0
    for g in range(pf.num_row_groups):
        groups.append(g)
        n += pf.metadata.row_group(g).num_rows
        size += pf.metadata.row_group(g).total_byte_size
        if (rows is not None and n >= rows) or (nbytes is not None and size >= nbytes):
            break
    return groups


def plan_mix(data: dict[str, Any], *, sample: int = 2000, cpus: int | None = None, seed: int = 0) -> dict[str, Any]:
    import os

    from curation.io.sources import filesystem_for
    from mixtures.build import _alloc_for
    from mixtures.pool import curated_files
    from mixtures.spec import parse_mix_spec
    from mixtures.tokenizer import count_tokens

    t_plan = time.monotonic()
    job = parse_mix_spec(data)
    files = curated_files(job.inputs)
    if not files:
        raise ValueError("the mixture's inputs hold no curated files")
    rows = {}
    for u in files:
        fs, path = filesystem_for(u)
        rows[u] = pq.ParquetFile(path, filesystem=fs).metadata.num_rows
    rng = random.Random(seed)
    chosen = sorted(rng.sample(files, min(FILES_SAMPLED, len(files))))
    chosen_rows = sum(rows[u] for u in chosen) or 1
    quota = {u: max(1, round(sample * rows[u] / chosen_rows)) for u in chosen}  # rows in proportion
    cols = list(dict.fromkeys(["text", *job.bucket_by]))
    tokens_by_file: dict[str, dict[str, list[float]]] = {}
    chars = tokens_total = 0
    seconds = 0.0
    parquet_bytes = 0
    for u in chosen:
        fs, path = filesystem_for(u)
        pf = pq.ParquetFile(path, filesystem=fs)
        t = pf.read_row_groups(
            head_row_groups(pf, rows=PREFIX_ROWS), columns=[c for c in cols if c in pf.schema_arrow.names]
        )
        take = sorted(rng.sample(range(len(t)), min(quota[u], len(t))))
        t = t.take(pa.array(take, pa.int64()))
        texts = t["text"].to_pylist()
        t0 = time.process_time()
        counts = count_tokens(texts)
        seconds += time.process_time() - t0
        chars += sum(map(len, texts))
        tokens_total += int(np.sum(counts))
        keys = [pc.cast(t[c], pa.string()).fill_null("None") for c in job.bucket_by]
        bucket = keys[0] if len(keys) == 1 else pc.binary_join_element_wise(*keys, "/")
        d = tokens_by_file.setdefault(u, {})
        for b, c in zip(bucket.to_pylist(), counts.tolist()):
            d.setdefault(b, []).append(float(c))
        buf = io.BytesIO()
        pq.write_table(t.select(["text"]), buf, compression="zstd")
        parquet_bytes += buf.tell()
    # every file: its rows times its sample's tokens per row by bucket (unsampled: the sample's mix)
    mix: dict[str, float] = {}
    sampled_rows = sum(len(v) for d in tokens_by_file.values() for v in d.values())
    for d in tokens_by_file.values():
        for b, v in d.items():
            mix[b] = mix.get(b, 0.0) + sum(v) / max(1, sampled_rows)
    available: dict[str, float] = {}
    docs: dict[str, float] = {}
    for u, n in rows.items():
        d = tokens_by_file.get(u) or {}
        if d:
            m = sum(len(v) for v in d.values())
            for b, v in d.items():
                available[b] = available.get(b, 0.0) + n * sum(v) / m
                docs[b] = docs.get(b, 0.0) + n * len(v) / m
        else:
            for b, share in mix.items():
                available[b] = available.get(b, 0.0) + n * share
    avail_int = {b: int(round(v)) for b, v in available.items()}
    alloc, source = _alloc_for(job, avail_int, job.target_tokens, job.max_epochs)
    pool_chars = chars / max(1, sampled_rows) * sum(rows.values())
    count_cpu = seconds / max(1, chars) * pool_chars
    selected = sum(alloc.tokens.values())
    target_cpus = cpus or (1 if job.execution.engine == "local" else (os.cpu_count() or 1))
    bytes_per_token = parquet_bytes / max(1, tokens_total)
    return {
        "job": job.name,
        "kind": "mix",
        "input_files": len(files),
        "pool_documents": int(sum(rows.values())),
        "pool_tokens": int(sum(available.values())),
        "tokens_by_bucket": {
            b: {"available": avail_int[b], "allocated": int(alloc.tokens.get(b, 0)), "weight": alloc.weights.get(b)}
            for b in sorted(avail_int)
        },
        "weight_source": source,
        "kept_documents": int(
            round(sum(docs.get(b, 0.0) * alloc.tokens.get(b, 0) / max(1, avail_int[b]) for b in avail_int))
        ),
        "kept_tokens": int(selected),
        "cpu_seconds_by_stage": {"count": round(count_cpu, 1)},
        "wall_seconds": round(count_cpu / target_cpus, 1),
        "cpus": target_cpus,
        "peak_worker_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "output_bytes": int(selected * bytes_per_token),
        "sample": {"files": len(chosen), "rows": sampled_rows, "seed": seed},
        "caveats": [
            "the wall time counts the pool's tokenizing (the step that grows with the corpus), not Ray's start",
        ],
        "plan_seconds": round(time.monotonic() - t_plan, 1),
    }
