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


def route_copies(file_uri: str, file_no: int, part: pa.Table, epochs: np.ndarray, seed: int, shards: int
                 ) -> list[Any]:
    """Map task of the shard step: one curated file, read once, gives its selected copies (`epochs[i]`
    copies of pool row i, epochs 0, 1, ...) their text and metadata. Each copy's seeded hash of (id,
    epoch) names its shard (hash mod shards) and its place there. Returns the copies routed by shard,
    then per bucket (tokens, synthetic tokens, rows) taken from this file, and the bytes read (the
    compressed column chunks of the curated file)."""
    from mixtures.select import seeded

    take = np.repeat(np.arange(len(part)), epochs)
    starts = np.cumsum(epochs) - epochs
    epoch = np.arange(len(take)) - np.repeat(starts, epochs)
    picked = part.take(pa.array(take))
    fs, path = filesystem_for(file_uri)
    columns = ["id", "text", "source", "domain", "lang"]
    rows = picked["row"].to_numpy()  # ascending: the part is in row order
    pieces, read_bytes = [], 0
    with fs.open_input_file(path) as f:
        # One row group at a time, and only those holding a selected row: a task holds a row group and
        # the rows it takes, not the file.
        pf = pq.ParquetFile(f)
        meta = pf.metadata
        wanted = [i for i in range(meta.num_columns) if meta.schema.column(i).name in columns]
        start = 0
        for g in range(meta.num_row_groups):
            end = start + meta.row_group(g).num_rows
            a, b = np.searchsorted(rows, [start, end])
            if b > a:
                rg = pf.read_row_group(g, columns=columns)
                pieces.append(rg.take(pa.array(rows[a:b] - start)))
                read_bytes += sum(meta.row_group(g).column(i).total_compressed_size for i in wanted)
            start = end
    data = (pa.concat_tables(pieces, promote_options="permissive") if pieces
            else pq.read_schema(f"{path}", filesystem=fs).empty_table().select(columns))
    h = seeded(picked["id_hash"].to_numpy(), seed, "shuffle", epoch)
    ids = picked["id"].cast(pa.string())
    row_id = pc.binary_join_element_wise(ids, pa.array(epoch.astype(str), pa.string()), "@")
    # curated files from different writers may type text as string or large_string (and ids likewise)
    t = pa.table({"_h": pa.array(h), "_file": pa.array(np.full(len(take), file_no, np.int64)),
                  "_row": picked["row"], "row_id": row_id, "id": ids, "text": data["text"].cast(pa.large_string()),
                  "source": data["source"], "domain": data["domain"], "lang": data["lang"],
                  "bucket": picked["bucket"], "n_tokens": picked["n_tokens"], "epoch": pa.array(epoch.astype(np.int32))})
    shard = (h % np.uint64(max(1, shards))).astype(np.int64)
    order = np.argsort(shard, kind="stable")
    bounds = np.searchsorted(shard[order], np.arange(shards + 1))
    t = t.take(pa.array(order))
    counts: dict[str, tuple[int, int, int]] = {}
    if len(picked):
        g = picked.group_by("bucket").aggregate([("n_tokens", "sum"), ("n_tokens", "count")])
        syn = picked.filter(picked["synthetic"]).group_by("bucket").aggregate([("n_tokens", "sum")])
        syn_of = dict(zip(syn["bucket"].to_pylist(), syn["n_tokens_sum"].to_pylist()))
        counts = {b: (int(n), int(syn_of.get(b, 0)), int(c)) for b, n, c in
                  zip(g["bucket"].to_pylist(), g["n_tokens_sum"].to_pylist(), g["n_tokens_count"].to_pylist())}
    return [t.slice(bounds[i], bounds[i + 1] - bounds[i]) for i in range(shards)] + [counts, read_bytes]


def write_shard(layout: Layout, prefix: str, rel: str, formats: Sequence[str], *pieces: pa.Table) -> list[Any]:
    """Reduce task of the shard step: one shard at OUT/prefix/rel from its copies (`route_copies` of every
    curated file), in the order of their seeded hashes (ties: file, row, epoch); and in the token
    `formats` (megatron, numpy: `mixtures.token_files`) the same documents as token ids, under megatron/
    and numpy/ beside shards/. Paths in the returned entry are relative to the manifest's folder
    (OUT/prefix); None for a shard no copy landed in (nothing written). Then the bytes of routed rows
    read."""
    pieces = tuple(p for p in pieces if len(p))
    if not pieces:
        return [None, 0]
    read_bytes = sum(p.nbytes for p in pieces)
    data = pa.concat_tables(pieces, promote_options="permissive")
    data = data.take(pc.sort_indices(data, sort_keys=[("_h", "ascending"), ("_file", "ascending"),
                                                      ("_row", "ascending"), ("epoch", "ascending")]))
    table = data.select(SHARD_COLUMNS)
    path = layout.path(prefix + rel)
    layout.mkdir(path.rsplit("/", 1)[0])
    write_parquet(layout, path, table)
    with layout.fs.open_input_stream(path) as f:
        blob = f.read()
    entry = {"path": rel, "rows": len(table), "tokens": int(np.sum(table["n_tokens"].to_numpy())),
             "bytes": len(blob), "sha256": hashlib.sha256(blob).hexdigest()}
    if set(formats) - {"parquet"}:
        entry["token_files"] = _token_files(layout, prefix, rel, table, formats)
    return [entry, read_bytes]


def _token_files(layout: Layout, prefix: str, rel: str, table: pa.Table, formats: Sequence[str]) -> dict[str, Any]:
    from mixtures import token_files
    from mixtures.tokenizer import encode, eot_token

    docs = encode(table["text"].to_pylist())
    counted = np.fromiter((len(d) for d in docs), np.int64, len(docs))
    if not np.array_equal(counted, table["n_tokens"].to_numpy()):
        raise RuntimeError(f"{rel}: token ids disagree with the pool's counts (was the pool counted with "
                           "another vocabulary?)")
    ids, lengths = token_files.flatten(docs, eot_token())
    stem = rel.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    out: dict[str, Any] = {}
    common = {"tokens": int(len(ids)), "documents": len(docs), "end_of_document": eot_token()}
    if "megatron" in formats:
        name = f"megatron/{stem}"
        files = token_files.write_megatron(layout, layout.path(prefix + name), ids, lengths)
        out["megatron"] = {"prefix": name, **common, "dtype": "int32",
                           "files": [{"path": name + f.pop("suffix"), **f} for f in files]}
    if "numpy" in formats:
        name = f"numpy/{stem}.npy"
        files = token_files.write_numpy(layout, layout.path(prefix + name), ids, lengths,
                                        table["row_id"].to_pylist())
        out["numpy"] = {"path": name, **common, "dtype": "uint32",
                        "files": [{"path": name[: -len(".npy")] + f.pop("suffix"), **f} for f in files]}
    return out


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
    hf = {"data_files": [base + s["path"] for s in shards], "rows": sum(s["rows"] for s in shards),
          "usage": "datasets.load_dataset('parquet', data_files=data_files, split='train') gives the mixture's "
                   "rows in their mixed order (add streaming=True to stream them); the shards are already "
                   "shuffled, so no interleaving is needed"}
    layout.write_bytes(layout.path(prefix + paths["hf_interleave"]), json.dumps(hf, indent=2).encode())
    return paths
