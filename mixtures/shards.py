"""Writing a mixture: zstd Parquet shards in the shuffled order, the manifest, trainer blend files."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curation.io.sources import filesystem_for
from curation.outputs import Layout, in_progress_name

SHARD_COLUMNS = ["row_id", "id", "text", "source", "domain", "lang", "bucket", "n_tokens", "epoch"]
MANIFEST_VERSION = 1


def write_shard(layout: Layout, prefix: str, rel: str, files: list[str], rows: pa.Table) -> dict[str, Any]:
    """One shard at OUT/prefix/rel: the selected rows (file, row, row_id, bucket, n_tokens, epoch), in
    order, with their text and metadata read back from the curated files. `path` in the returned
    entry is relative to the manifest's folder (OUT/prefix)."""
    file_no = rows["file"].to_numpy()
    src_row = rows["row"].to_numpy()
    pieces = []
    positions = []
    for f in np.unique(file_no):
        sel = np.flatnonzero(file_no == f)
        fs, path = filesystem_for(files[int(f)])
        t = pq.read_table(path, columns=["id", "text", "source", "domain", "lang"], filesystem=fs)
        pieces.append(t.take(pa.array(src_row[sel])))
        positions.append(sel)
    # curated files from different writers may type text as string or large_string (and ids likewise)
    data = pa.concat_tables(pieces, promote_options="permissive")
    data = data.take(pa.array(np.argsort(np.concatenate(positions), kind="stable")))
    table = pa.table({"row_id": rows["row_id"], "id": data["id"].cast(pa.string()),
                      "text": data["text"].cast(pa.large_string()), "source": data["source"],
                      "domain": data["domain"], "lang": data["lang"], "bucket": rows["bucket"],
                      "n_tokens": rows["n_tokens"], "epoch": rows["epoch"]})
    path = layout.path(prefix + rel)
    layout.mkdir(path.rsplit("/", 1)[0])
    pq.write_table(table, in_progress_name(path), filesystem=layout.fs, compression="zstd", row_group_size=20_000)
    layout.fs.move(in_progress_name(path), path)  # a shard under its final name is always whole
    with layout.fs.open_input_stream(path) as f:
        blob = f.read()
    return {"path": rel, "rows": len(table), "tokens": int(np.sum(rows["n_tokens"].to_numpy())),
            "bytes": len(blob), "sha256": hashlib.sha256(blob).hexdigest()}


def blend_files(layout: Layout, prefix: str, shards: list[dict[str, Any]]) -> dict[str, str]:
    """Megatron-style weighted data paths and HF `interleave_datasets` probabilities, with shard paths
    relative to the manifest's folder. Shards are already mixed, so each shard's weight is its share
    of the tokens."""
    total = sum(s["tokens"] for s in shards) or 1
    weights = [s["tokens"] / total for s in shards]
    megatron = " ".join(f"{w:.8f} {s['path']}" for w, s in zip(weights, shards))
    hf = {"data_files": [s["path"] for s in shards], "probabilities": weights,
          "usage": "datasets.interleave_datasets([load_dataset('parquet', data_files=f, split='train', streaming=True)"
                   " for f in data_files], probabilities=probabilities, seed=SEED)"}
    paths = {"megatron": "blend/megatron_data_path.txt", "hf_interleave": "blend/hf_interleave.json"}
    layout.write_bytes(layout.path(prefix + paths["megatron"]), (megatron + "\n").encode())
    layout.write_bytes(layout.path(prefix + paths["hf_interleave"]), json.dumps(hf, indent=2).encode())
    return paths
