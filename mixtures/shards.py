"""Writing a mixture: zstd Parquet shards in the shuffled order, the manifest, trainer blend files."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curation.io.sources import filesystem_for
from curation.outputs import Layout, write_parquet

SHARD_COLUMNS = ["row_id", "id", "text", "source", "domain", "lang", "bucket", "n_tokens", "epoch"]
MANIFEST_VERSION = 1


def take_rows(source: Any, rows: np.ndarray, columns: list[str]) -> tuple[pa.Table, int]:
    """The given rows (ascending, repeats allowed) of a Parquet file, one row group at a time and only
    those holding a taken row, so a task holds a row group and what it takes, not the file; and the
    compressed bytes of the column chunks read."""
    pf = pq.ParquetFile(source)
    meta = pf.metadata
    wanted = [i for i in range(meta.num_columns) if meta.schema.column(i).path.split(".")[0] in columns]
    pieces, read_bytes, start = [], 0, 0
    for g in range(meta.num_row_groups):
        end = start + meta.row_group(g).num_rows
        a, b = np.searchsorted(rows, [start, end])
        if b > a:
            pieces.append(pf.read_row_group(g, columns=columns).take(pa.array(rows[a:b] - start)))
            read_bytes += sum(meta.row_group(g).column(i).total_compressed_size for i in wanted)
        start = end
    if not pieces:
        return pf.schema_arrow.empty_table().select(columns), 0
    return pa.concat_tables(pieces, promote_options="permissive"), read_bytes


def route_copies(
    file_uri: str,
    file_no: int,
    part: pa.Table,
    epochs: np.ndarray,
    seed: int,
    shards: int,
    ids_part: tuple[Any, str] | None = None,
) -> list[Any]:
    """Map task of the shard step: one curated file, read once, gives its selected copies (`epochs[i]`
    copies of pool row i, epochs 0, 1, ...) their text and metadata, and with `ids_part` (filesystem,
    path of the file's pool part) the token ids counting kept. Each copy's seeded hash of (id, epoch)
    names its shard (hash mod shards) and its place there. Returns the copies routed by shard, then per
    bucket (tokens, synthetic tokens, rows) taken from this file, and the bytes read (the compressed
    column chunks of the curated file and of the ids)."""
    from mixtures.select import seeded

    take = np.repeat(np.arange(len(part)), epochs)
    starts = np.cumsum(epochs) - epochs
    epoch = np.arange(len(take)) - np.repeat(starts, epochs)
    picked = part.take(pa.array(take))
    fs, path = filesystem_for(file_uri)
    rows = picked["row"].to_numpy()  # ascending: the part is in row order
    with fs.open_input_file(path) as f:
        data, read_bytes = take_rows(f, rows, ["id", "text", "source", "domain", "lang"])
    extra = {}
    if ids_part is not None:
        with ids_part[0].open_input_file(ids_part[1]) as f:
            ids, n = take_rows(f, rows, ["token_ids"])
        read_bytes += n
        extra["_ids"] = ids["token_ids"]
    h = seeded(picked["id_hash"].to_numpy(), seed, "shuffle", epoch)
    ids = picked["id"].cast(pa.string())
    row_id = pc.binary_join_element_wise(ids, pa.array(epoch.astype(str), pa.string()), "@")
    # curated files from different writers may type text as string or large_string (and ids likewise)
    t = pa.table(
        {
            "_h": pa.array(h),
            "_file": pa.array(np.full(len(take), file_no, np.int64)),
            "_row": picked["row"],
            "row_id": row_id,
            "id": ids,
            "text": data["text"].cast(pa.large_string()),
            "source": data["source"],
            "domain": data["domain"],
            "lang": data["lang"],
            "bucket": picked["bucket"],
            "n_tokens": picked["n_tokens"],
            "epoch": pa.array(epoch.astype(np.int32)),
            **extra,
        }
    )
    shard = (h % np.uint64(max(1, shards))).astype(np.int64)
    order = np.argsort(shard, kind="stable")
    bounds = np.searchsorted(shard[order], np.arange(shards + 1))
    t = t.take(pa.array(order))
    counts: dict[str, tuple[int, int, int]] = {}
    if len(picked):
        g = picked.group_by("bucket").aggregate([("n_tokens", "sum"), ("n_tokens", "count")])
        syn = picked.filter(picked["synthetic"]).group_by("bucket").aggregate([("n_tokens", "sum")])
        syn_of = dict(zip(syn["bucket"].to_pylist(), syn["n_tokens_sum"].to_pylist()))
        counts = {
            b: (int(n), int(syn_of.get(b, 0)), int(c))
            for b, n, c in zip(g["bucket"].to_pylist(), g["n_tokens_sum"].to_pylist(), g["n_tokens_count"].to_pylist())
        }
    return [t.slice(bounds[i], bounds[i + 1] - bounds[i]) for i in range(shards)] + [counts, read_bytes]


def write_shard(
    layout: Layout, prefix: str, rel: str, formats: Sequence[str], pack_len: int | None, *pieces: pa.Table
) -> list[Any]:
    """Reduce task of the shard step: one shard at OUT/prefix/rel from its copies (`route_copies` of every
    curated file), in the order of their seeded hashes (ties: file, row, epoch); in the token `formats`
    (megatron, numpy: `mixtures.token_files`) the same documents as token ids, under megatron/ and numpy/
    beside shards/; with `pack_len`, the shard's documents packed into sequences of that many ids
    (`pack_shard`). Ids come from the pieces (kept by counting), not from tokenizing again. Paths in
    the returned entry are relative to the manifest's folder (OUT/prefix); None for a shard no copy
    landed in (nothing written). Then the bytes of routed rows read, and the packed part (or None)."""
    pieces = tuple(p for p in pieces if len(p))
    if not pieces:
        return [None, 0, None]
    read_bytes = sum(p.nbytes for p in pieces)
    data = pa.concat_tables(pieces, promote_options="permissive")
    data = data.take(
        pc.sort_indices(
            data, sort_keys=[("_h", "ascending"), ("_file", "ascending"), ("_row", "ascending"), ("epoch", "ascending")]
        )
    )
    table = data.select(SHARD_COLUMNS)
    path = layout.path(prefix + rel)
    layout.mkdir(path.rsplit("/", 1)[0])
    write_parquet(layout, path, table)
    with layout.fs.open_input_stream(path) as f:
        blob = f.read()
    lengths = table["n_tokens"].to_numpy()
    entry = {
        "path": rel,
        "rows": len(table),
        "tokens": int(np.sum(lengths)),
        "bytes": len(blob),
        "sha256": hashlib.sha256(blob).hexdigest(),
        "length_histogram": length_histogram(lengths),
    }
    packed = None
    if set(formats) - {"parquet"} or pack_len:
        from mixtures.token_files import flatten_arrow
        from mixtures.tokenizer import eot_token

        if "_ids" not in data.column_names:
            raise RuntimeError(f"{rel}: the pool parts hold no token ids (counted for a Parquet-only mixture)")
        ids, doc_lengths = flatten_arrow(data["_ids"], eot_token())
        if not np.array_equal(doc_lengths - 1, lengths):
            raise RuntimeError(f"{rel}: token ids disagree with the pool's counts")
        del data
        if set(formats) - {"parquet"}:
            entry["token_files"] = _token_files(layout, prefix, rel, ids, doc_lengths, table["row_id"], formats)
        if pack_len:
            packed = pack_shard(layout, prefix, rel, ids, doc_lengths, table["row_id"], pack_len, formats)
    return [entry, read_bytes, packed]


def length_histogram(tokens: np.ndarray) -> dict[str, int]:
    """Documents per power-of-two bin of token length, e.g. "8192-16383" (merged by summing)."""
    t = np.asarray(tokens, np.int64)
    lo = np.ones(len(t), np.int64) << np.maximum(0, np.floor(np.log2(np.maximum(t, 1))).astype(np.int64))
    los, counts = np.unique(lo, return_counts=True)
    return {f"{int(x)}-{2 * int(x) - 1}": int(c) for x, c in zip(los, counts)}


def _token_files(
    layout: Layout, prefix: str, rel: str, ids: np.ndarray, lengths: np.ndarray, row_ids: Any, formats: Sequence[str]
) -> dict[str, Any]:
    from mixtures import token_files
    from mixtures.tokenizer import eot_token

    stem = rel.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    out: dict[str, Any] = {}
    common = {"tokens": int(len(ids)), "documents": len(lengths), "end_of_document": eot_token()}
    if "megatron" in formats:
        name = f"megatron/{stem}"
        files = token_files.write_megatron(layout, layout.path(prefix + name), ids, lengths)
        out["megatron"] = {
            "prefix": name,
            **common,
            "dtype": "int32",
            "files": [{"path": name + f.pop("suffix"), **f} for f in files],
        }
    if "numpy" in formats:
        name = f"numpy/{stem}.npy"
        files = token_files.write_numpy(layout, layout.path(prefix + name), ids, lengths, row_ids)
        out["numpy"] = {
            "path": name,
            **common,
            "dtype": "uint32",
            "files": [{"path": name[: -len(".npy")] + f.pop("suffix"), **f} for f in files],
        }
    return out


def pack_shard(
    layout: Layout,
    prefix: str,
    rel: str,
    ids: np.ndarray,
    lengths: np.ndarray,
    row_ids: Any,
    seq_len: int,
    formats: Sequence[str],
    rows_per_file: int = 512,
) -> dict[str, Any]:
    """One shard's documents (each followed by end-of-text, in the shard's order) cut into sequences of
    exactly `seq_len` ids, under packed/ (relative to the manifest's folder): Parquet rows
    (input_ids, row_ids of the documents each sequence holds part of) and, with token `formats`, a
    Megatron dataset (one sequence per document) or numpy token file per packed file. The shard's tail
    that does not fill a sequence is dropped and counted: at most seq_len - 1 ids per shard."""
    from mixtures import token_files

    n_seq = len(ids) // seq_len
    ends = np.cumsum(lengths)
    starts = ends - lengths
    # documents overlapping sequence s: those starting before its end and ending after its start
    first = np.searchsorted(ends, np.arange(n_seq) * seq_len, side="right")
    last = np.searchsorted(starts, (np.arange(n_seq) + 1) * seq_len, side="left")
    stem = rel.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    names = row_ids.combine_chunks() if isinstance(row_ids, pa.ChunkedArray) else row_ids
    files, token_out = [], {f: [] for f in formats if f != "parquet"}
    for k, s0 in enumerate(range(0, n_seq, rows_per_file)):
        s1 = min(n_seq, s0 + rows_per_file)
        block = ids[s0 * seq_len : s1 * seq_len].astype(np.int32)
        owners_off = np.concatenate([[0], np.cumsum(last[s0:s1] - first[s0:s1])]).astype(np.int32)
        owner_rows = np.concatenate([np.arange(a, b) for a, b in zip(first[s0:s1], last[s0:s1])])
        name = f"packed/{stem}-{k:04d}"
        layout.mkdir(layout.path(prefix + "packed"))
        table = pa.table(
            {
                "input_ids": pa.FixedSizeListArray.from_arrays(pa.array(block), seq_len).cast(pa.list_(pa.int32())),
                "row_ids": pa.ListArray.from_arrays(pa.array(owners_off), names.take(pa.array(owner_rows, pa.int64()))),
            }
        )
        pq.write_table(table, layout.path(prefix + name + ".parquet"), filesystem=layout.fs, compression="zstd")
        files.append(name + ".parquet")
        seq_lengths = np.full(s1 - s0, seq_len, np.int64)
        if "megatron" in token_out:
            entries = token_files.write_megatron(layout, layout.path(prefix + name), block, seq_lengths)
            token_out["megatron"].append(
                {
                    "prefix": name,
                    "sequences": s1 - s0,
                    "files": [{"path": name + e.pop("suffix"), **e} for e in entries],
                }
            )
        if "numpy" in token_out:
            joined = [",".join(r) for r in table["row_ids"].to_pylist()]
            entries = token_files.write_numpy(layout, layout.path(prefix + name + ".npy"), block, seq_lengths, joined)
            token_out["numpy"].append(
                {
                    "path": name + ".npy",
                    "sequences": s1 - s0,
                    "files": [{"path": name + e.pop("suffix"), **e} for e in entries],
                }
            )
    return {
        "sequences": n_seq,
        "files": files,
        "dropped_tail_tokens": int(len(ids) - n_seq * seq_len),
        **({"token_files": token_out} if token_out else {}),
    }


def blend_files(layout: Layout, prefix: str, shards: list[dict[str, Any]]) -> dict[str, str]:
    """Trainer blend files. Shards are already mixed, so each shard's weight is its share of the tokens.

    - `megatron_data_path.txt` (with the megatron format): `WEIGHT PREFIX ...` for Megatron-LM's
      `--data-path`, with absolute prefixes of the .bin/.idx pairs (a relative path would resolve against
      the trainer's working folder, not the mixture's).
    - `hf_interleave.json`: the shards in order, with the call that reads exactly the mixture
      (`usage`); paths are absolute."""
    total = sum(s["tokens"] for s in shards) or 1
    weights = [s["tokens"] / total for s in shards]
    base = layout.uri + "/" + prefix if "://" in layout.uri else layout.path(prefix)
    paths = {"hf_interleave": "blend/hf_interleave.json"}
    if shards and "megatron" in shards[0].get("token_files", {}):
        megatron = " ".join(f"{w:.8f} {base}{s['token_files']['megatron']['prefix']}" for w, s in zip(weights, shards))
        paths["megatron"] = "blend/megatron_data_path.txt"
        layout.write_bytes(layout.path(prefix + paths["megatron"]), (megatron + "\n").encode())
    hf = {
        "data_files": [base + s["path"] for s in shards],
        "rows": sum(s["rows"] for s in shards),
        "usage": "datasets.load_dataset('parquet', data_files=data_files, split='train') gives the mixture's "
        "rows in their mixed order (add streaming=True to stream them); the shards are already "
        "shuffled, so no interleaving is needed",
    }
    layout.write_bytes(layout.path(prefix + paths["hf_interleave"]), json.dumps(hf, indent=2).encode())
    return paths
