"""Token files trainers read directly: Megatron-LM indexed datasets and flat numpy token files.

Both hold each document's Qwen token ids followed by the end-of-document token (`<|endoftext|>`), in
the shard's order, so a trainer that reads them front to back sees the mixture as the Parquet shards
give it.

- **Megatron** (`PREFIX.bin` + `PREFIX.idx`), the format of `megatron.core.datasets.indexed_dataset`:
  `.bin` is the ids back to back (int32: the Qwen vocabulary does not fit uint16); `.idx` is the header
  `MMIDIDX\\x00\\x00`, version 1 (u64), the dtype code (u8, 4 = int32), the sequence count and the
  document count (u64 each), then the sequence lengths (int32), the byte offset of each sequence
  (int64) and the document boundaries (int64, 0 then one per document, as Megatron's builder writes
  them with one sequence per document). `--data-path PREFIX` reads it.
- **numpy** (`NAME.npy`): the ids as raw little-endian uint32 with no header, as OLMo-core and dolma
  memory-map them (`np.memmap(path, dtype=np.uint32, mode="r")`), with `NAME.index.parquet` giving
  each document's row id and [start, end) in tokens.

Written by hand: Megatron's own writer needs torch and megatron-core, which a curation cluster has no
use for; the format is small and fixed (tests read it back with a reader that follows it, and with
Megatron's when it is installed).
"""

from __future__ import annotations

import hashlib
import struct
from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

MEGATRON_HEADER = b"MMIDIDX\x00\x00"
MEGATRON_VERSION = 1
_MEGATRON_DTYPES = {4: np.int32, 8: np.uint16, 5: np.int64, 1: np.uint8}
FORMATS = ("parquet", "megatron", "numpy")


def flatten(docs: Sequence[Sequence[int]], eod: int) -> tuple[np.ndarray, np.ndarray]:
    """(all ids with `eod` after each document, tokens per document including its `eod`)."""
    lengths = np.fromiter((len(d) + 1 for d in docs), dtype=np.int64, count=len(docs))
    ids = np.empty(int(lengths.sum()), dtype=np.int64)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    for d, s in zip(docs, starts.tolist()):
        ids[s : s + len(d)] = d
    ids[ends - 1] = eod
    return ids, lengths


def flatten_arrow(docs: Any, eod: int) -> tuple[np.ndarray, np.ndarray]:
    """`flatten` of an Arrow list array (or chunked array) of ids, without a Python loop per document."""
    if isinstance(docs, pa.ChunkedArray):
        docs = pa.concat_arrays(docs.chunks) if docs.num_chunks else pa.array([], pa.large_list(pa.int32()))
    offsets = docs.offsets.to_numpy().astype(np.int64)
    values = docs.values.to_numpy()[offsets[0] : offsets[-1]] if len(docs) else np.zeros(0, np.int32)
    offsets -= offsets[0]
    ids = np.insert(values.astype(np.int32), offsets[1:], eod)
    return ids, np.diff(offsets) + 1


def megatron_index(lengths: np.ndarray, itemsize: int = 4, dtype_code: int = 4) -> bytes:
    n = len(lengths)
    pointers = np.zeros(n, dtype=np.int64)
    if n:
        pointers[1:] = np.cumsum(lengths[:-1].astype(np.int64)) * itemsize
    doc_idx = np.arange(n + 1, dtype=np.int64)
    return b"".join(
        [
            MEGATRON_HEADER,
            struct.pack("<Q", MEGATRON_VERSION),
            struct.pack("<B", dtype_code),
            struct.pack("<Q", n),
            struct.pack("<Q", n + 1),
            lengths.astype("<i4").tobytes(),
            pointers.astype("<i8").tobytes(),
            doc_idx.astype("<i8").tobytes(),
        ]
    )


def _write(layout: Any, path: str, blob: bytes) -> dict[str, Any]:
    layout.write_bytes(path, blob)
    return {"bytes": len(blob), "sha256": hashlib.sha256(blob).hexdigest()}


def write_megatron(layout: Any, prefix: str, ids: np.ndarray, lengths: np.ndarray) -> list[dict[str, Any]]:
    """PREFIX.bin and PREFIX.idx; their manifest entries (suffix, bytes, sha256)."""
    bin_ = _write(layout, prefix + ".bin", ids.astype("<i4").tobytes())
    idx = _write(layout, prefix + ".idx", megatron_index(lengths))
    return [{"suffix": ".bin", **bin_}, {"suffix": ".idx", **idx}]


def write_numpy(
    layout: Any, path: str, ids: np.ndarray, lengths: np.ndarray, row_ids: Sequence[str]
) -> list[dict[str, Any]]:
    """NAME.npy (raw uint32) and NAME.index.parquet; their manifest entries."""
    data = _write(layout, path, ids.astype("<u4").tobytes())
    ends = np.cumsum(lengths.astype(np.int64))
    index = pa.table(
        {"row_id": pa.array(list(row_ids), pa.string()), "start": pa.array(ends - lengths), "end": pa.array(ends)}
    )
    sink = pa.BufferOutputStream()
    pq.write_table(index, sink, compression="zstd")
    idx = _write(layout, path[: -len(".npy")] + ".index.parquet", sink.getvalue().to_pybytes())
    return [{"suffix": ".npy", **data}, {"suffix": ".index.parquet", **idx}]


def read_megatron(prefix: str) -> list[np.ndarray]:
    """Every document of a Megatron indexed dataset, read by the format above (not by Megatron's code)."""
    with open(prefix + ".idx", "rb") as f:
        blob = f.read()
    if blob[:9] != MEGATRON_HEADER:
        raise ValueError(f"{prefix}.idx is not a Megatron index")
    (version,) = struct.unpack_from("<Q", blob, 9)
    (code,) = struct.unpack_from("<B", blob, 17)
    n, n_docs = struct.unpack_from("<QQ", blob, 18)
    if version != MEGATRON_VERSION:
        raise ValueError(f"{prefix}.idx: index version {version}")
    at = 34
    lengths = np.frombuffer(blob, "<i4", n, at)
    at += 4 * n
    pointers = np.frombuffer(blob, "<i8", n, at)
    at += 8 * n
    doc_idx = np.frombuffer(blob, "<i8", n_docs, at)
    dtype = np.dtype(_MEGATRON_DTYPES[code]).newbyteorder("<")
    data = np.memmap(prefix + ".bin", dtype=dtype, mode="r")
    docs = []
    for d in range(n_docs - 1):
        seqs = range(int(doc_idx[d]), int(doc_idx[d + 1]))
        docs.append(np.concatenate([data[pointers[s] // dtype.itemsize :][: lengths[s]] for s in seqs]))
    return docs
