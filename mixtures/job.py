"""`curate mix`: pool -> weights -> allocation -> selection -> shuffled shards + manifest + blends + report.

Layout of OUT:
  manifest.json, shards/shard-NNNNN.parquet, blend/{megatron_data_path.txt, hf_interleave.json},
  report.html + mix_tokens.png, and with `long_context`: long_context/ (the same, plus packed/).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs

from curation.execution import executor_for, tables_with_actor
from curation.job import claim_output, write_progress
from curation.outputs import Layout
from curation.progress import Progress
from curation.spec import SpecError, model_yaml
from mixtures.build import _alloc_for, _available, _mixture_id, _weights, build_mixture  # noqa: F401
from mixtures.pool import PoolIndexer, curated_files, part_paths
from mixtures.spec import MixJob


def build_pool(executor, layout: Layout, files: list[str], job: Any, progress: Progress | None = None) -> list[str]:
    """Each curated file's pool part, counted once: parts of files that did not change are reused."""
    with_ids = bool(getattr(job, "keeps_token_ids", False))  # ablation jobs count only
    parts = part_paths(layout, files, job.bucket_by, with_ids)
    missing = [i for i, p in enumerate(parts) if layout.fs.get_file_info(p).type != pafs.FileType.File]
    if missing:
        if progress is not None:
            progress.say(
                f"counting tokens of {len(missing)} curated file(s) ({len(files) - len(missing)} counted before)"
            )
        t0 = time.monotonic()

        def report(done: list[pa.Table]) -> None:
            if progress is not None:
                n, el = sum(len(t) for t in done), time.monotonic() - t0
                docs = int(sum(t["rows"].to_numpy().sum() for t in done))
                eta = f", ETA {(len(missing) - n) * el / n:.0f}s" if n else ""
                progress.say(f"counting: {n}/{len(missing)} files, {docs:,} documents, {docs / el:,.0f}/s{eta}")

        tables_with_actor(
            executor,
            PoolIndexer,
            ([files[i] for i in missing], job.bucket_by, layout, [parts[i] for i in missing], with_ids),
            len(missing),
            job.execution.actors,
            report=report,
        )
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


def _run_mix(
    job: MixJob, files: list[str], layout: Layout, address: str | None, progress: Progress, t0: float
) -> dict[str, Any]:
    from curation.dataset_card import mix_card

    executor = executor_for(job, address)
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
            raise SpecError(
                [
                    (
                        "inputs",
                        f"document ids are not unique across the inputs ({repeats:,} ids repeat, "
                        f"e.g. {', '.join(repr(i) for i in examples)}); mixture rows are named by id: "
                        "give each source its own id_field or prefix, or curate the inputs in one job",
                    )
                ]
            )
        tokens = {b: v["tokens"] for b, v in available.items()}
        progress.say(
            f"pool: {documents:,} documents, {sum(tokens.values()):,} tokens in {len(tokens)} "
            f"buckets ({time.monotonic() - t0:.1f}s)"
        )
        alloc, source = _alloc_for(job, tokens, job.target_tokens, job.max_epochs)
        # Where the mixture stands per bucket (the service's /metrics serves it while the job runs).
        write_progress(layout, "mixture", documents=documents, pool_tokens=tokens, allocated_tokens=alloc.tokens)
        manifest = build_mixture(
            executor,
            layout,
            "",
            files,
            parts,
            available,
            alloc,
            job,
            job.target_tokens,
            source,
            _mixture_id(job, files, alloc.weights),
            progress,
            pool_seconds=time.monotonic() - t_pool,
            compression=compression,
        )
        progress.say(f"main mixture: {manifest['achieved_tokens']:,} tokens in {len(manifest['shards'])} shard(s)")
        write_progress(
            layout,
            "long_context" if job.long_context is not None else "report",
            documents=documents,
            pool_tokens=tokens,
            allocated_tokens=alloc.tokens,
        )
        long_manifest = None
        if job.long_context is not None:
            from mixtures.long_context import build_long_context

            long_manifest = build_long_context(executor, layout, files, parts, job, progress)
    from mixtures.report import write_mix_report

    write_mix_report(layout, manifest, long_manifest)
    layout.write_bytes(layout.path("README.md"), mix_card(job.name, manifest, long_manifest is not None))
    write_progress(
        layout,
        "done",
        achieved_tokens=manifest["achieved_tokens"],
        allocated_tokens={b["name"]: b["allocated_tokens"] for b in manifest["buckets"]},
    )
    progress.say(f"done in {time.monotonic() - t0:.1f}s: {layout.path('manifest.json')}")
    return manifest
