"""The batches every reader produces: the fixed raw schema, the limits that cut batches, and the builder a
reader fills record by record (readers.py for the built-in formats, warc.py, and reader plugins)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, ClassVar, Iterator

import pyarrow as pa

from curation.io.files import InputFile

RAW_QUARANTINE_LIMIT = 1 << 20  # raw bytes kept per quarantined record; the position locates the rest
RAW_SCHEMA = pa.schema(
    [
        ("_doc", pa.int64()),  # ordinal << 32 | position: a global, stable document number
        ("id", pa.string()),
        ("text", pa.large_string()),
        ("source", pa.string()),
        ("domain", pa.string()),
        # line number (JSONL, 1-based; the line's byte offset in a file read in splits), row (Parquet, 0-based),
        # 0 (text file)
        ("position", pa.int64()),
        ("error", pa.string()),  # set only for quarantined records
        ("raw", pa.binary()),
    ]
)


@dataclass
class ReadLimits:
    batch_size: int = 1000
    batch_bytes: int = 32_000_000
    max_doc_bytes: int = 8_000_000


def stable_id(source: str, uri: str, position: int) -> str:
    """Id for a record that has none: stable across runs and machines."""
    return hashlib.sha1(f"{source}\x00{uri}\x00{position}".encode()).hexdigest()[:20]


class BatchBuilder:
    """Records of one input file into fixed-schema batches (RAW_SCHEMA, plus a format's own columns):
    what a reader (built in or a plugin) fills and flushes."""

    def __init__(self, f: InputFile, limits: ReadLimits):
        self.f, self.limits = f, limits
        self.rows: dict[str, list[Any]] = {name: [] for name in RAW_SCHEMA.names}
        # Columns some formats carry on every row (WARC: url, date, ...): name -> Arrow type.
        self.extra_schema: pa.Schema | None = None
        self.extra: dict[str, list[Any]] = {}
        self.nbytes = 0
        self.blank_lines = 0

    def with_extra(self, schema: pa.Schema) -> "BatchBuilder":
        self.extra_schema = schema
        self.extra = {name: [] for name in schema.names}
        return self

    def __len__(self) -> int:
        return len(self.rows["_doc"])

    def add(
        self,
        position: int,
        id_: str | None,
        text: str | None,
        error: str | None = None,
        raw: bytes | None = None,
        extra: dict[str, Any] | None = None,
        index: int | None = None,
    ) -> None:
        """One record at `position`; `index` (a split's own record number) numbers the document instead
        when the position could pass 2^32 (byte offsets)."""
        for name, values in self.extra.items():
            values.append((extra or {}).get(name))
        r = self.rows
        r["_doc"].append((self.f.ordinal << 32) | ((position if index is None else index) & 0xFFFFFFFF))
        r["id"].append(id_ if id_ is not None else stable_id(self.f.source, self.f.uri, position))
        r["text"].append(text)
        r["source"].append(self.f.source)
        r["domain"].append(self.f.domain)
        r["position"].append(position)
        r["error"].append(error)
        if raw is not None and len(raw) > RAW_QUARANTINE_LIMIT:
            raw = raw[:RAW_QUARANTINE_LIMIT]
        r["raw"].append(raw)
        self.nbytes += len(text) if text else 0

    def full(self) -> bool:
        return len(self) >= self.limits.batch_size or self.nbytes >= self.limits.batch_bytes

    def flush(self) -> pa.Table:
        try:
            table = pa.Table.from_pydict(self.rows, schema=RAW_SCHEMA)
        except (pa.ArrowInvalid, UnicodeEncodeError):
            table = self._flush_checked()
        if self.extra_schema is not None:
            for fld in self.extra_schema:
                table = table.append_column(fld, pa.array(self.extra[fld.name], fld.type))
            self.extra = {name: [] for name in self.extra_schema.names}
        self.rows = {name: [] for name in RAW_SCHEMA.names}
        self.nbytes = 0
        return table

    def _flush_checked(self) -> pa.Table:
        # Only JSON escapes can smuggle lone surrogates into a str; find and quarantine those rows.
        r = self.rows
        for i, text in enumerate(r["text"]):
            if text is None:
                continue
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as e:
                r["error"][i] = f"text is not valid Unicode (lone surrogate at character {e.start})"
                r["raw"][i] = text.encode("utf-8", "surrogatepass")[:RAW_QUARANTINE_LIMIT]
                r["text"][i] = None
            if r["id"][i] is not None:
                r["id"][i] = r["id"][i].encode("utf-8", "replace").decode("utf-8")
        return pa.Table.from_pydict(r, schema=RAW_SCHEMA)


class Reader:
    """One input format. A subclass sets `name` (and `suffixes`) and writes `read`.

    `read` calls `builder.add(position, id, text)` for every record (`error=` and `raw=` to quarantine one
    it cannot parse), and yields `builder.flush()` whenever `builder.full()`; the caller flushes the rest.
    An exception out of `read` (OSError, ValueError, pyarrow errors) ends the file with one quarantine
    row naming it, after the records already added. `position` must grow with the record's place in the
    file (it numbers the document, and resume and the outputs' order rely on it).
    """

    name: ClassVar[str]
    # File names a folder input picks up (lower-cased suffix match); None: every file in the folder.
    suffixes: ClassVar[tuple[str, ...] | None] = None
    # (importable module, pip requirement) pairs a reader needs: a spec naming the format fails up front,
    # with the pip line, when one is missing.
    requires: ClassVar[tuple[tuple[str, str], ...]] = ()
    description: ClassVar[str] = ""

    def read(self, f: InputFile, builder: BatchBuilder, limits: ReadLimits) -> Iterator[pa.Table]:
        raise NotImplementedError
