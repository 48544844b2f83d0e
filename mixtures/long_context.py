"""The long-context stage mixture (Qwen2 moved from 4K to 32K context with long documents at the end
of pretraining): only documents of at least `min_tokens`, their length distribution, and sequences
packed to `seq_len` tokens (documents joined with the end-of-text token, in the shuffled order). Each
shard task packs its own documents from the ids counting kept (`mixtures.shards.pack_shard`), so a
shard's tail shorter than `seq_len` is dropped (counted in `packed.dropped_tail_tokens`)."""

from __future__ import annotations

import json
from typing import Any

from curation.outputs import Layout
from curation.spec import SpecError


def build_long_context(executor, layout: Layout, files: list[str], parts: list[str], job, progress) -> dict[str, Any]:
    from curation.exchange import Steps
    from mixtures import distributed as dist
    from mixtures.build import _alloc_for, _mixture_id, build_mixture

    lc = job.long_context
    root = layout.path("_work", "exchange", "long-stats")
    try:
        available, compression = dist.pool_stats(Steps(executor.runner(), layout, root), layout, parts, lc.min_tokens)
    finally:
        layout.remove_dir(root)
    if not available:
        raise SpecError([("long_context.min_tokens", f"no document has {lc.min_tokens:,} tokens or more")])
    tokens = {b: v["tokens"] for b, v in available.items()}
    alloc, source = _alloc_for(
        job.model_copy(
            update={
                "weights": None,
                "weights_file": None,
                "temperature": None,
                "unimax": None,
                "max_epochs_by_bucket": {},
            }
        ),
        tokens,
        lc.target_tokens,
        lc.max_epochs,
    )
    manifest = build_mixture(
        executor,
        layout,
        "long_context/",
        files,
        parts,
        available,
        alloc,
        job,
        lc.target_tokens,
        "natural (long documents)",
        _mixture_id(job, files, alloc.weights, salt="long"),
        progress,
        min_tokens=lc.min_tokens,
        compression=compression,
        pack_len=lc.seq_len if lc.pack else None,
    )
    manifest["min_tokens"] = lc.min_tokens
    layout.write_bytes(layout.path("long_context/manifest.json"), json.dumps(manifest, indent=2).encode())
    progress.say(
        f"long-context mixture: {manifest['achieved_tokens']:,} tokens, {manifest['rows']:,} documents "
        f">= {lc.min_tokens:,} tokens"
        + (f", {manifest['packed']['sequences']:,} packed sequences of {lc.seq_len:,}" if lc.pack else "")
    )
    return manifest
