"""Where every input record of a curate job went: `OUT/lineage/part-NNNNN.parquet`, one file per input file
(its ordinal), written by the same task that writes the file's outputs.

A row per input record: its id and position in the input (the reader's: the line number, from 1, of a
JSONL file, the byte offset of the line in a split one, the row of a Parquet file; as in quarantine/), its
document number (`doc`: input ordinal << 32 | record index, what dedup decisions name), kept / rejected / quarantined, the drop reason,
language and domain, the output file and row it was written to, and its duplicate cluster (keeper id,
size, similarity, and the keeper's document number). Rows are sorted by `key` (the id's xxh3 hash,
`curation.inspection.keys`) in row groups of LINEAGE_ROW_GROUP rows, so finding an id reads each file's
footer and at most one row group of the files whose key range holds it (Parquet statistics), never the
documents; from an input position, the file is known and one row group is read. Two runs of the same
inputs are compared file by file (`curation.inspection.diff`).
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from curation.inspection.keys import id_keys

LINEAGE_ROW_GROUP = 65_536
LINEAGE_SCHEMA = pa.schema(
    [
        ("key", pa.uint64()),
        ("id", pa.string()),
        ("position", pa.int64()),
        ("doc", pa.int64()),
        ("status", pa.string()),
        ("drop_reason", pa.string()),
        ("lang", pa.string()),
        ("domain", pa.string()),
        ("output", pa.string()),
        ("row", pa.int64()),
        ("dup_cluster", pa.string()),
        ("dup_cluster_size", pa.int64()),
        ("dup_similarity", pa.float32()),
        ("dup_keeper", pa.int64()),
    ]
)


def lineage_path(layout: Any, ordinal: int) -> str:
    return layout.path("lineage", f"part-{ordinal:05d}.parquet")


class LineageWriter:
    """Collects one input file's lineage rows as its parts are written, then writes them sorted by key.
    Holds the file's bookkeeping only (about 100 bytes per record, no text)."""

    def __init__(self, layout: Any, ordinal: int, input_uri: str):
        self.layout, self.ordinal, self.input_uri = layout, ordinal, input_uri
        self.parts: list[pa.Table] = []

    def add(
        self,
        t: pa.Table,
        status: np.ndarray,
        output: np.ndarray,
        row: np.ndarray,
        keeper: np.ndarray,
    ) -> None:
        """One annotated part (`t` with its final drop reasons and dup columns); `status` 0 kept, 1 rejected,
        2 quarantined; `output`/`row`: where each row was written."""
        ids = t["id"].cast(pa.string())
        self.parts.append(
            pa.table(
                {
                    "key": pa.array(id_keys(ids.to_pylist(), len(t)), pa.uint64()),
                    "id": ids,
                    "position": t["position"].cast(pa.int64()),
                    "doc": t["_doc"],
                    "status": pa.array(
                        np.array(["kept", "rejected", "quarantined"], dtype=object)[status], pa.string()
                    ),
                    "drop_reason": t["drop_reason"],
                    "lang": t["lang"],
                    "domain": t["domain"],
                    "output": pa.array(output, pa.string()),
                    "row": pa.array(row, pa.int64()),
                    "dup_cluster": t["dup_cluster"],
                    "dup_cluster_size": t["dup_cluster_size"],
                    "dup_similarity": t["dup_similarity"],
                    "dup_keeper": pa.array(keeper, pa.int64(), mask=keeper < 0),
                },
                schema=LINEAGE_SCHEMA,
            )
        )

    def close(self) -> str | None:
        path = lineage_path(self.layout, self.ordinal)
        if not self.parts:
            self.layout.remove_file(path)
            return None
        t = pa.concat_tables(self.parts)
        t = t.take(pc.sort_indices(t, [("key", "ascending"), ("position", "ascending")]))
        t = t.replace_schema_metadata({"input_file": self.input_uri, "ordinal": str(self.ordinal)})
        self.layout.mkdir(path.rsplit("/", 1)[0])
        pq.write_table(
            t, path + ".tmp", filesystem=self.layout.fs, compression="zstd", row_group_size=LINEAGE_ROW_GROUP
        )
        self.layout.fs.move(path + ".tmp", path)
        return path


def lineage_files(layout: Any) -> list[str]:
    return [p for p in layout.list_files(layout.path("lineage")) if p.endswith(".parquet")]


def find_ids(layout: Any, ids: list[str]) -> pa.Table:
    """The lineage rows of these ids (several rows for an id that occurs in several inputs), each with the
    input file's ordinal (`ordinal`) and path (`input_file`)."""
    files = lineage_files(layout)
    if not files or not ids:
        return LINEAGE_SCHEMA.append(pa.field("ordinal", pa.int64())).empty_table()
    keys = pa.array(id_keys(ids, len(ids)), pa.uint64())
    dataset = ds.dataset(files, format="parquet", filesystem=layout.fs, schema=LINEAGE_SCHEMA)
    found = []
    for frag in dataset.get_fragments():
        t = frag.to_table(filter=pc.is_in(ds.field("key"), keys) & pc.is_in(ds.field("id"), pa.array(ids)))
        if len(t):
            ordinal = int(frag.path.rsplit("part-", 1)[1].split(".")[0])
            found.append(t.append_column("ordinal", pa.array([ordinal] * len(t), pa.int64())))
    if not found:
        return LINEAGE_SCHEMA.append(pa.field("ordinal", pa.int64())).empty_table()
    return pa.concat_tables(found)


def find_positions(layout: Any, ordinal: int, positions: list[int], column: str = "position") -> pa.Table:
    """The lineage rows of these positions (or document numbers, `column="doc"`) of one input file."""
    path = lineage_path(layout, ordinal)
    try:
        t = pq.read_table(
            path, filesystem=layout.fs, filters=pc.is_in(ds.field(column), pa.array(positions, pa.int64()))
        )
    except (FileNotFoundError, OSError):
        return LINEAGE_SCHEMA.empty_table()
    return t


def input_file_of(layout: Any, ordinal: int) -> str | None:
    try:
        meta = pq.read_schema(lineage_path(layout, ordinal), filesystem=layout.fs).metadata or {}
    except (FileNotFoundError, OSError):
        return None
    return meta.get(b"input_file", b"").decode() or None


def read_rows(layout: Any, rel: str, rows: list[int], columns: list[str] | None = None) -> pa.Table:
    """Rows of an output file by their index, reading only the row groups that hold them."""
    pf = pq.ParquetFile(layout.path(rel), filesystem=layout.fs)
    starts = np.cumsum([0] + [pf.metadata.row_group(g).num_rows for g in range(pf.num_row_groups)])
    names = [c for c in (columns or pf.schema_arrow.names) if c in pf.schema_arrow.names]
    out = []
    for r in rows:
        g = int(np.searchsorted(starts, r, side="right")) - 1
        if 0 <= g < pf.num_row_groups:
            out.append(pf.read_row_group(g, columns=names).slice(r - int(starts[g]), 1))
    return pa.concat_tables(out) if out else pf.schema_arrow.empty_table().select(names)


def iter_lineage(layout: Any, ordinal: int, columns: list[str] | None = None) -> Iterator[pa.Table]:
    """One input file's lineage, row group by row group."""
    pf = pq.ParquetFile(lineage_path(layout, ordinal), filesystem=layout.fs)
    for g in range(pf.num_row_groups):
        yield pf.read_row_group(g, columns=columns)
