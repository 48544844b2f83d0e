"""The long-context stage mixture (Qwen2 moved from 4K to 32K context with long documents at the end
of pretraining): only documents of at least `min_tokens`, their length distribution, and sequences
packed to `seq_len` tokens (documents joined with the end-of-text token, in the shuffled order)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curation.io.sources import filesystem_for
from curation.outputs import Layout
from curation.spec import SpecError
from mixtures.tokenizer import encode, eot_token


def length_histogram(tokens: np.ndarray) -> dict[str, int]:
    """Counts per power-of-two bin of token length, e.g. "8192-16383"."""
    out: dict[str, int] = {}
    for t in sorted(tokens.tolist()):
        lo = 1 << max(0, int(t).bit_length() - 1)
        key = f"{lo}-{2 * lo - 1}"
        out[key] = out.get(key, 0) + 1
    return out


def build_long_context(executor, layout: Layout, files: list[str], parts: list[str], job, progress) -> dict[str, Any]:
    from curation.exchange import Steps
    from mixtures import distributed as dist
    from mixtures.job import _alloc_for, _mixture_id, build_mixture

    lc = job.long_context
    root = layout.path("_work", "exchange", "long-stats")
    try:
        available, compression = dist.pool_stats(Steps(executor.runner(), layout, root), layout, parts, lc.min_tokens)
    finally:
        layout.remove_dir(root)
    if not available:
        raise SpecError([("long_context.min_tokens", f"no document has {lc.min_tokens:,} tokens or more")])
    tokens = {b: v["tokens"] for b, v in available.items()}
    alloc, source = _alloc_for(job.model_copy(update={"weights": None, "weights_file": None, "temperature": None,
                                                      "unimax": None, "max_epochs_by_bucket": {}}),
                               tokens, lc.target_tokens, lc.max_epochs)
    manifest = build_mixture(executor, layout, "long_context/", files, parts, available, alloc, job, lc.target_tokens,
                             "natural (long documents)", _mixture_id(job, files, alloc.weights, salt="long"), progress,
                             min_tokens=lc.min_tokens, compression=compression)
    lengths = np.concatenate([pq.read_table(layout.path("long_context/" + s["path"]), columns=["n_tokens"],
                                            filesystem=layout.fs)["n_tokens"].to_numpy() for s in manifest["shards"]])
    manifest["min_tokens"] = lc.min_tokens
    manifest["length_histogram"] = length_histogram(lengths)
    if lc.pack:
        manifest["packed"] = pack(layout, manifest, lc.seq_len, formats=job.formats)
    import json

    layout.write_bytes(layout.path("long_context/manifest.json"), json.dumps(manifest, indent=2).encode())
    progress.say(f"long-context mixture: {manifest['achieved_tokens']:,} tokens, {len(lengths):,} documents "
                 f">= {lc.min_tokens:,} tokens" + (f", {manifest['packed']['sequences']:,} packed sequences of "
                                                  f"{lc.seq_len:,}" if lc.pack else ""))
    return manifest


def pack(layout: Layout, manifest: dict[str, Any], seq_len: int, rows_per_file: int = 512,
         formats: Sequence[str] = ("parquet",)) -> dict[str, Any]:
    """Concatenate the mixture's documents (each followed by end-of-text) into sequences of exactly
    `seq_len` token ids; the tail that does not fill a sequence is dropped and reported. With token
    `formats`, each packed file also as a Megatron dataset (one sequence per document) or a numpy token
    file beside it."""
    from mixtures import token_files

    token_out: dict[str, list[dict[str, Any]]] = {f: [] for f in formats if f != "parquet"}
    eot = eot_token()
    buf: list[int] = []
    owners: list[str] = []
    seqs, seq_docs, files, n_seq = [], [], [], 0

    def flush(final: bool = False) -> None:
        nonlocal seqs, seq_docs
        if seqs and (final or len(seqs) >= rows_per_file):
            rel = f"packed/packed-{len(files):05d}.parquet"  # relative to long_context/, like the shards
            layout.mkdir(layout.path("long_context/packed"))
            pq.write_table(pa.table({"input_ids": pa.array(seqs, pa.list_(pa.int32())),
                                     "row_ids": pa.array(seq_docs, pa.list_(pa.string()))}),
                           layout.path("long_context/" + rel), filesystem=layout.fs, compression="zstd")
            files.append(rel)
            ids = np.asarray(seqs, dtype=np.int64).reshape(-1)
            lengths = np.full(len(seqs), seq_len, np.int64)
            stem = rel[: -len(".parquet")]
            if "megatron" in token_out:
                entries = token_files.write_megatron(layout, layout.path("long_context/" + stem), ids, lengths)
                token_out["megatron"].append({"prefix": stem, "sequences": len(seqs),
                                              "files": [{"path": stem + e.pop("suffix"), **e} for e in entries]})
            if "numpy" in token_out:
                entries = token_files.write_numpy(layout, layout.path("long_context/" + stem + ".npy"), ids, lengths,
                                                  [",".join(d) for d in seq_docs])
                token_out["numpy"].append({"path": stem + ".npy", "sequences": len(seqs),
                                           "files": [{"path": stem + e.pop("suffix"), **e} for e in entries]})
            seqs, seq_docs = [], []

    for shard in manifest["shards"]:
        fs, path = filesystem_for(layout.path("long_context/" + shard["path"]))
        for batch in pq.ParquetFile(path, filesystem=fs).iter_batches(batch_size=256, columns=["row_id", "text"]):
            for rid, ids in zip(batch.column("row_id").to_pylist(), encode(batch.column("text").to_pylist())):
                buf.extend(ids)
                buf.append(eot)
                owners.append(rid)
                while len(buf) >= seq_len:
                    seqs.append(buf[:seq_len])
                    seq_docs.append(owners)
                    buf = buf[seq_len:]
                    owners = [rid] if buf else []
                    n_seq += 1
                flush()
    flush(final=True)
    out = {"seq_len": seq_len, "sequences": n_seq, "files": files, "dropped_tail_tokens": len(buf)}
    if token_out:
        out["token_files"] = token_out
    return out
