"""The pool a mixture draws from: every curated document with its bucket and Qwen token count.

Only ids, buckets and counts are kept in memory (about 50 bytes a document); texts stay in the
curated files and are read again when shards are written. Counting runs once per document, in an
actor pool (the tokenizer is loaded once per actor); a curated file that already carries `n_tokens`
is not counted again.
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

POOL_SCHEMA = pa.schema([("file", pa.int32()), ("row", pa.int64()), ("id", pa.string()), ("bucket", pa.string()),
                         ("n_tokens", pa.int64()), ("synthetic", pa.bool_())])
POOL_VERSION = 2  # part of the pool cache key: bump when POOL_SCHEMA changes


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
            elif pattern is None and any(fs.get_file_info(base + "/" + m).type != pafs.FileType.NotFound
                                         for m in ("job.yaml", "rejected")):
                # A curate output without curated/ (unfinished, or nothing kept): its rejected/ and _work/
                # files are not mixture material.
                raise SpecError([(f"inputs.{i}", f"{spec!r} is a job output with no curated/ folder (the job "
                                                 "has not finished, or kept nothing)")])
            infos = fs.get_file_info(pafs.FileSelector(base, recursive=True))
            # "_" and "." names are files still being written (curation.outputs.in_progress_name) or work
            # folders, skipped at every level as pyarrow.dataset does
            found = sorted(fi.path for fi in infos if fi.type == pafs.FileType.File and fi.path.endswith(".parquet")
                           and not any(part.startswith(("_", ".")) for part in fi.path[len(base):].split("/"))
                           and (pattern is None or _glob_regex(pattern).match(fi.path[len(base):].lstrip("/"))))
        if not found:
            raise SpecError([(f"inputs.{i}", f"no curated Parquet files in {spec!r}")])
        out += [scheme + p for p in found]
    return sorted(set(out), key=out.index)


class PoolIndexer:
    """Ray Data actor: one curated file in, its pool rows out (with token counts)."""

    def __init__(self, files: list[str], bucket_by: list[str]):
        from mixtures.tokenizer import qwen_encoding

        qwen_encoding()  # load the vocabulary once per actor
        self.files, self.bucket_by = files, bucket_by

    def __call__(self, batch: dict[str, Any]) -> pa.Table:
        return pa.concat_tables([index_file(self.files[int(i)], int(i), self.bucket_by) for i in batch["i"]])


def index_file(uri: str, file_no: int, bucket_by: list[str]) -> pa.Table:
    from mixtures.tokenizer import count_tokens

    fs, path = filesystem_for(uri)
    schema = pq.read_schema(path, filesystem=fs)
    missing = [c for c in ("id", "text", *bucket_by) if c not in schema.names]
    if missing:
        raise SpecError([("inputs", f"{uri} lacks column(s) {missing}: not a curated output")])
    has_counts = "n_tokens" in schema.names
    has_domain = "domain" in schema.names
    cols = list(dict.fromkeys(["id", *bucket_by] + (["n_tokens"] if has_counts else ["text"])
                              + (["domain"] if has_domain else [])))
    parts = []
    row = 0
    for batch in pq.ParquetFile(path, filesystem=fs).iter_batches(batch_size=2000, columns=cols):
        n = batch.num_rows
        tokens = (batch.column("n_tokens").to_numpy(zero_copy_only=False) if has_counts
                  else count_tokens(batch.column("text").to_pylist()))
        keys = [batch.column(c).to_pylist() for c in bucket_by]
        bucket = ["/".join(str(v) for v in vals) for vals in zip(*keys)]
        parts.append(pa.table({"file": pa.array(np.full(n, file_no, np.int32)),
                               "row": pa.array(np.arange(row, row + n, dtype=np.int64)),
                               "id": batch.column("id").cast(pa.string()), "bucket": pa.array(bucket, pa.string()),
                               "n_tokens": pa.array(np.asarray(tokens, dtype=np.int64)),
                               # model-written documents (curate synthesize): the manifest reports their share
                               "synthetic": (pc.equal(batch.column("domain"), "synthetic").fill_null(False)
                                             if has_domain else pa.array(np.zeros(n, bool)))},
                              schema=POOL_SCHEMA))
        row += n
    return pa.concat_tables(parts) if parts else POOL_SCHEMA.empty_table()
