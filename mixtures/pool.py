"""The pool a mixture draws from: every curated document with its bucket and Qwen token count.

The pool is data, not driver memory: one part per curated file under `OUT/_work/pool/` (row, id, a
64-bit hash of the id, bucket, n_tokens, synthetic), written by the counting actors (the tokenizer is
loaded once per actor) and named by the file's size and modification time, so a rerun counts only
files that changed. A curated file that already carries `n_tokens` is not counted again. Texts stay in
the curated files and are read once, when shards are written.

When the mixture is also written as token ids (Megatron or numpy files, packed long-context rows), the
counting pass keeps the ids it computes (`token_ids`, in row groups of `PART_ROW_GROUP` documents): the
shard step reads them for the rows it takes instead of tokenizing the text a second time.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from curation.io.sources import _glob_regex, _split_glob, filesystem_for
from curation.spec import SpecError

POOL_SCHEMA = pa.schema(
    [
        ("file", pa.int32()),
        ("row", pa.int64()),
        ("id", pa.string()),
        ("id_hash", pa.uint64()),
        ("bucket", pa.string()),
        ("lang", pa.string()),
        ("n_tokens", pa.int64()),
        ("n_bytes", pa.int64()),
        ("n_chars", pa.int64()),
        ("synthetic", pa.bool_()),
    ]
)
POOL_VERSION = 3  # part of the pool parts' names: bump when POOL_SCHEMA changes
TOKEN_IDS = pa.field("token_ids", pa.large_list(pa.int32()))  # int32: the vocabulary exceeds 65,535
PART_ROW_GROUP = 2000  # documents per row group of a part: the shard step reads ids a row group at a time


def pool_schema(with_ids: bool) -> pa.Schema:
    return POOL_SCHEMA.append(TOKEN_IDS) if with_ids else POOL_SCHEMA


def curated_files(inputs: list[str]) -> list[str]:
    """The curated Parquet files of the inputs: a curate output folder (its curated/ part), a folder
    of Parquet files, or a glob; sorted, so the pool's order does not depend on listing order."""
    out: list[str] = []
    for i, spec in enumerate(inputs):
        fs, path = filesystem_for(spec)
        scheme = spec.split("://", 1)[0] + "://" if "://" in spec else ""
        base, pattern = _split_glob(path)
        info = fs.get_file_info(base)
        if info.type == pafs.FileType.NotFound:
            raise SpecError([(f"inputs.{i}", f"{spec!r} does not exist")])
        if info.type == pafs.FileType.File:
            found = [base]
        else:
            if pattern is None and fs.get_file_info(base + "/curated").type == pafs.FileType.Directory:
                base = base + "/curated"
            elif pattern is None and any(
                fs.get_file_info(base + "/" + m).type != pafs.FileType.NotFound for m in ("job.yaml", "rejected")
            ):
                # A curate output without curated/ (unfinished, or nothing kept): its rejected/ and _work/
                # files are not mixture material.
                raise SpecError(
                    [
                        (
                            f"inputs.{i}",
                            f"{spec!r} is a job output with no curated/ folder (the job "
                            "has not finished, or kept nothing)",
                        )
                    ]
                )
            infos = fs.get_file_info(pafs.FileSelector(base, recursive=True))
            # "_" and "." names are files still being written (curation.outputs.in_progress_name) or work
            # folders, skipped at every level as pyarrow.dataset does
            found = sorted(
                fi.path
                for fi in infos
                if fi.type == pafs.FileType.File
                and fi.path.endswith(".parquet")
                and not any(part.startswith(("_", ".")) for part in fi.path[len(base) :].split("/"))
                and (pattern is None or _glob_regex(pattern).match(fi.path[len(base) :].lstrip("/")))
            )
        if not found:
            raise SpecError([(f"inputs.{i}", f"no curated Parquet files in {spec!r}")])
        out += [scheme + p for p in found]
    return sorted(set(out), key=out.index)


def part_paths(layout: Any, files: list[str], bucket_by: list[str], with_ids: bool = False) -> list[str]:
    """Where each curated file's pool part lives: named by the file as it is now (size, mtime), the
    buckets, the vocabulary and whether it keeps the token ids."""
    import hashlib
    import json

    from mixtures.tokenizer import vocab_sha256

    out = []
    for f in files:
        fs, path = filesystem_for(f)
        info = fs.get_file_info(path)
        key = json.dumps(
            {
                "file": f,
                "size": info.size,
                "mtime": info.mtime_ns,
                "bucket_by": bucket_by,
                "vocab": vocab_sha256(),
                "pool": POOL_VERSION,
                **({"ids": True} if with_ids else {}),
            },
            sort_keys=True,
        )
        out.append(layout.path("_work", "pool", hashlib.sha256(key.encode()).hexdigest()[:20] + ".parquet"))
    return out


class PoolIndexer:
    """Ray Data actor: one curated file in, its pool part written (with token counts); a row (file, rows) out."""

    def __init__(self, files: list[str], bucket_by: list[str], layout: Any, parts: list[str], with_ids: bool = False):
        from mixtures.tokenizer import qwen_encoding

        qwen_encoding()  # load the vocabulary once per actor
        self.files, self.bucket_by, self.layout, self.parts, self.with_ids = files, bucket_by, layout, parts, with_ids

    def __call__(self, batch: dict[str, Any]) -> pa.Table:
        rows = []
        for i in batch["i"]:
            t = index_file(self.files[int(i)], int(i), self.bucket_by, self.with_ids)
            path = self.parts[int(i)]
            self.layout.mkdir(path.rsplit("/", 1)[0])
            pq.write_table(
                t, path + ".tmp", filesystem=self.layout.fs, compression="zstd", row_group_size=PART_ROW_GROUP
            )
            self.layout.fs.move(path + ".tmp", path)
            rows.append(len(t))
        return pa.table({"file": pa.array(batch["i"], pa.int64()), "rows": pa.array(rows, pa.int64())})


def read_part(layout: Any, path: str, columns: list[str] | None = None, min_tokens: int = 0) -> pa.Table:
    """One pool part: the given columns of its documents of at least `min_tokens` tokens."""
    cols = None if columns is None else list(dict.fromkeys(columns + (["n_tokens"] if min_tokens else [])))
    t = pq.read_table(path, columns=cols, filesystem=layout.fs)
    if min_tokens:
        t = t.filter(pc.greater_equal(t["n_tokens"], min_tokens))
    return t if columns is None else t.select(columns)


def id_key(ids: list[str]) -> np.ndarray:
    """The seed-free 64-bit hash of each id (xxh3), computed once when the pool is counted; the seeded
    hashes selection and shuffling use are mixed from it with numpy (`mixtures.select.seeded`). The same
    key as a curate run's lineage index (`curation.inspection.keys.id_keys`)."""
    from curation.inspection.keys import id_keys

    return id_keys(ids, len(ids))


def index_file(uri: str, file_no: int, bucket_by: list[str], with_ids: bool = False) -> pa.Table:
    from mixtures.tokenizer import count_tokens, encode_arrow

    fs, path = filesystem_for(uri)
    schema = pq.read_schema(path, filesystem=fs)
    missing = [c for c in ("id", "text", *bucket_by) if c not in schema.names]
    if missing:
        raise SpecError([("inputs", f"{uri} lacks column(s) {missing}: not a curated output")])
    has_counts = "n_tokens" in schema.names
    has_domain = "domain" in schema.names
    has_lang = "lang" in schema.names
    cols = list(
        dict.fromkeys(
            ["id", "text", *bucket_by]
            + (["n_tokens"] if has_counts else [])
            + (["domain"] if has_domain else [])
            + (["lang"] if has_lang else [])
        )
    )
    parts = []
    row = 0
    schema = pool_schema(with_ids)
    for batch in pq.ParquetFile(path, filesystem=fs).iter_batches(batch_size=PART_ROW_GROUP, columns=cols):
        n = batch.num_rows
        text = batch.column("text")
        extra = {}
        if with_ids:  # the ids are what counting computes anyway: keep them for the token files
            extra["token_ids"] = ids_ = encode_arrow(text.to_pylist())
            tokens = pc.list_value_length(ids_).to_numpy()
        elif has_counts:
            tokens = batch.column("n_tokens").to_numpy(zero_copy_only=False)
        else:
            tokens = count_tokens(text.to_pylist())
        keys = [pc.cast(batch.column(c), pa.string()).fill_null("None") for c in bucket_by]
        bucket = keys[0] if len(keys) == 1 else pc.binary_join_element_wise(*keys, "/")
        ids = batch.column("id").cast(pa.string())
        parts.append(
            pa.table(
                {
                    "file": pa.array(np.full(n, file_no, np.int32)),
                    "row": pa.array(np.arange(row, row + n, dtype=np.int64)),
                    "id": ids,
                    "id_hash": pa.array(id_key(ids.to_pylist()), pa.uint64()),
                    "bucket": bucket,
                    "lang": (
                        pc.cast(batch.column("lang"), pa.string()).fill_null("und")
                        if has_lang
                        else pa.array(["und"] * n, pa.string())
                    ),
                    "n_tokens": pa.array(np.asarray(tokens, dtype=np.int64)),
                    # the tokenizer's compression per language and bucket (tokens per byte, per char)
                    "n_bytes": pc.binary_length(text).fill_null(0).cast(pa.int64()),
                    "n_chars": pc.utf8_length(text).fill_null(0).cast(pa.int64()),
                    # model-written documents (curate synthesize): the manifest reports their share
                    "synthetic": (
                        pc.equal(batch.column("domain"), "synthetic").fill_null(False)
                        if has_domain
                        else pa.array(np.zeros(n, bool))
                    ),
                    **extra,
                },
                schema=schema,
            )
        )
        row += n
    return pa.concat_tables(parts) if parts else schema.empty_table()
