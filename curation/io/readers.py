"""The built-in input formats (jsonl, parquet, text, warc): one input file in, fixed-schema record batches out.

Every record of the file comes out exactly once, either as a document or as a quarantine row that
carries the error, the position in the file and (up to a limit) the raw bytes. Nothing is skipped
silently: blank JSONL lines are not records, and are counted separately. Batches are cut at a fixed
number of records or bytes, so the same file always yields the same batches (resume relies on it).
"""

from __future__ import annotations

import gzip
import json
import zlib
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from curation.io.batches import RAW_QUARANTINE_LIMIT, RAW_SCHEMA, BatchBuilder, Reader, ReadLimits, stable_id  # noqa: F401
from curation.io.files import InputFile, filesystem_for

_READ_CHUNK = 8 << 20


class _Overlong(bytes):
    """The first bytes of a line longer than the limit; `size` is the whole line's length. Only this much is
    ever held, so one 2 GB line (a gzip bomb) costs a bounded buffer, not 2 GB."""

    size: int


def _iter_lines(stream, max_line: int | None = None) -> Iterator[bytes]:
    """Lines of a binary stream, read in chunks (a 50 MB line is one line, not a crash); a line over
    `max_line` bytes comes out as an _Overlong (its first RAW_QUARANTINE_LIMIT bytes) as soon as it is known
    to be too long, and the rest of it is skipped as it streams past."""
    pending = b""
    skipping: _Overlong | None = None  # the overlong line whose rest is still streaming past
    while True:
        chunk = stream.read(_READ_CHUNK)
        if not chunk:
            break
        if skipping is not None:
            end = chunk.find(b"\n")
            if end < 0:
                skipping.size += len(chunk)
                continue
            skipping.size += end
            yield skipping
            skipping, chunk = None, chunk[end + 1 :]
        pending += chunk
        lines = pending.split(b"\n")
        pending = lines.pop()
        yield from lines
        if max_line is not None and len(pending) > max_line:
            skipping = _Overlong(pending[:RAW_QUARANTINE_LIMIT])
            skipping.size = len(pending)
            pending = b""
    if skipping is not None:
        yield skipping
    elif pending:
        yield pending


class _GzipChunks:
    """A gzip stream read in large chunks. pyarrow's decompressing stream drops the whole chunk it was
    decoding when the file turns out truncated or corrupt; this hands back every byte decoded before
    the damage first, and raises (as OSError / EOFError) on the next read."""

    def __init__(self, raw):
        self._raw = raw
        self._gz = gzip.GzipFile(fileobj=raw, mode="rb")
        self._error: BaseException | None = None

    def read(self, n: int) -> bytes:
        if self._error is not None:
            raise self._error
        parts: list[bytes] = []
        size = 0
        while size < n:
            try:
                data = self._gz.read1(n - size)
            except (OSError, EOFError, zlib.error) as e:
                err = e if isinstance(e, (OSError, EOFError)) else OSError(f"corrupt gzip data: {e}")
                if not parts:
                    raise err from None
                self._error = err
                break
            if not data:
                break
            parts.append(data)
            size += len(data)
        return b"".join(parts)

    def __enter__(self) -> "_GzipChunks":
        return self

    def __exit__(self, *exc) -> None:
        self._gz.close()
        self._raw.close()


def _open_decompressed(fs, path: str):
    compression = _compression_for(path)
    if compression == "gzip":
        return _GzipChunks(fs.open_input_stream(path, compression=None))
    return fs.open_input_stream(path, compression=compression)


def _compression_for(path: str) -> str | None:
    p = path.lower()
    if p.endswith(".gz"):
        return "gzip"
    if p.endswith((".zst", ".zstd")):
        return "zstd"
    return None


URL_COLUMNS = pa.schema([("url", pa.string())])  # the input's url_field, for URL dedup


def _url_of(f: InputFile, obj: dict) -> dict[str, Any] | None:
    """The record's URL as the extra column (None when the input names no url_field)."""
    if f.url_field is None:
        return None
    u = obj.get(f.url_field)
    return {"url": u if isinstance(u, str) and u else None}


def _json_record(
    f: InputFile, line: bytes, limits: ReadLimits
) -> tuple[str | None, str | None, str | None, dict[str, Any] | None]:
    """(id, text, error, extra columns) for one JSONL line."""
    size = line.size if isinstance(line, _Overlong) else len(line)
    if size > limits.max_doc_bytes:
        return None, None, f"record is {size:,} bytes, over max_doc_bytes ({limits.max_doc_bytes:,})", None
    try:
        s = line.decode("utf-8")
    except UnicodeDecodeError as e:
        return None, None, f"invalid UTF-8 at byte {e.start} of the line", None
    if s.startswith("\ufeff"):  # a byte-order mark (files saved by some Windows tools) is not content
        s = s[1:]
    try:
        obj = json.loads(s)
    except json.JSONDecodeError as e:
        return None, None, f"broken JSON: {e.msg} at column {e.colno}", None
    except RecursionError:
        return None, None, "JSON nested too deeply to parse", None
    if not isinstance(obj, dict):
        return None, None, f"expected a JSON object, got {type(obj).__name__}", None
    id_ = None
    # A string or number names the record; anything else (null, a list, an object) gets a generated id.
    if (
        f.id_field is not None
        and isinstance(obj.get(f.id_field), (str, int, float))
        and not isinstance(obj.get(f.id_field), bool)
    ):
        id_ = str(obj[f.id_field])
    if f.instruction is not None:  # a chat or prompt/response record, rendered to one text
        text, why = f.instruction.render(obj)
        return id_, text, (f"instruction record: {why}" if why else None), _url_of(f, obj)
    if f.text_field not in obj:
        return id_, None, f"missing text field {f.text_field!r}", _url_of(f, obj)
    text = obj[f.text_field]
    if not isinstance(text, str):
        return id_, None, f"text field {f.text_field!r} is {type(text).__name__}, not a string", _url_of(f, obj)
    return id_, text, None, _url_of(f, obj)


class _LineRange:
    """The bytes of the lines that start in [start, end) of a seekable file: a line that crosses `start`
    belongs to the split before, one that crosses `end` is read to its end."""

    def __init__(self, fh, start: int, end: int):
        self.fh, self.end = fh, end
        self.pos = start
        self.done = False
        self.head = b""
        if start > 0:
            fh.seek(start - 1)
            self.pos = start - 1
            while True:  # skip the rest of the line that started before us
                chunk = fh.read(_READ_CHUNK)
                if not chunk:
                    self.done = True
                    break
                nl = chunk.find(b"\n")
                if nl >= 0:
                    self.pos += nl + 1
                    self.head = chunk[nl + 1 :]
                    break
                self.pos += len(chunk)
        else:
            fh.seek(0)
        self.first = self.pos  # byte offset of the first line of the range
        if self.first >= end:
            self.done = True  # a long line covers the whole range: no line starts in it

    def read(self, n: int) -> bytes:
        if self.done:
            return b""
        data, self.head = (self.head, b"") if self.head else (self.fh.read(n), b"")
        if not data:
            self.done = True
            return b""
        start, self.pos = self.pos, self.pos + len(data)
        if self.pos >= self.end:
            # Keep up to the newline that ends the line holding byte end-1; nothing after it is ours.
            nl = data.find(b"\n", max(0, self.end - 1 - start))
            if nl >= 0:
                self.done = True
                return data[: nl + 1]
        return data

    def __enter__(self) -> "_LineRange":
        return self

    def __exit__(self, *exc) -> None:
        self.fh.close()


def _read_jsonl(f: InputFile, b: BatchBuilder, limits: ReadLimits) -> Iterator[pa.Table]:
    if f.split is not None:
        yield from _read_jsonl_range(f, b, limits)
        return
    fs, path = filesystem_for(f.uri)
    if f.url_field is not None:
        b.with_extra(URL_COLUMNS)
    with _open_decompressed(fs, path) as stream:
        for lineno, line in enumerate(_iter_lines(stream, limits.max_doc_bytes), start=1):
            if not line.strip():
                b.blank_lines += 1
                continue
            id_, text, error, extra = _json_record(f, line, limits)
            b.add(lineno, id_, text, error, line if error else None, extra=extra)
            if b.full():
                yield b.flush()


def _read_jsonl_range(f: InputFile, b: BatchBuilder, limits: ReadLimits) -> Iterator[pa.Table]:
    """One split of a plain JSONL file; a record's position is the byte offset of its line (its line
    number would need every byte before it)."""
    fs, path = filesystem_for(f.uri)
    start, end = f.split  # type: ignore[misc]
    if f.url_field is not None:
        b.with_extra(URL_COLUMNS)
    with _LineRange(fs.open_input_file(path), start, end) as stream:
        offset = stream.first
        for index, line in enumerate(_iter_lines(stream, limits.max_doc_bytes), start=1):
            here = offset
            offset += (line.size if isinstance(line, _Overlong) else len(line)) + 1
            if not line.strip():
                b.blank_lines += 1
                continue
            id_, text, error, extra = _json_record(f, line, limits)
            b.add(here, id_, text, error, line if error else None, extra=extra, index=index)
            if b.full():
                yield b.flush()


def _read_parquet(f: InputFile, b: BatchBuilder, limits: ReadLimits) -> Iterator[pa.Table]:
    fs, path = filesystem_for(f.uri)
    with fs.open_input_file(path) as fh:
        pf = pq.ParquetFile(fh)
        schema = pf.schema_arrow
        groups = list(range(*f.split)) if f.split is not None else list(range(pf.metadata.num_row_groups))
        first = sum(pf.metadata.row_group(i).num_rows for i in range(groups[0])) if groups else 0
        rows = sum(pf.metadata.row_group(i).num_rows for i in groups)
        problem = None
        if f.text_field not in schema.names:
            problem = f"wrong schema: no column {f.text_field!r} (columns: {', '.join(schema.names)})"
        elif not (
            pa.types.is_string(schema.field(f.text_field).type)
            or pa.types.is_large_string(schema.field(f.text_field).type)
        ):
            problem = f"wrong schema: column {f.text_field!r} is {schema.field(f.text_field).type}, not a string"
        if problem:
            # Every row still has to be accounted for: one quarantine row per record, with its id
            # when the file has an id column.
            if f.id_field and f.id_field in schema.names:
                ids: Any = (
                    v
                    for batch in pf.iter_batches(batch_size=limits.batch_size, columns=[f.id_field], row_groups=groups)
                    for v in batch.column(0).to_pylist()
                )
            else:
                ids = (None for _ in range(rows))
            for pos, id_ in enumerate(ids, start=first):
                b.add(pos, None if id_ is None else str(id_), None, problem, index=pos - first)
                if b.full():
                    yield b.flush()
            return
        cols = [f.text_field] + ([f.id_field] if f.id_field and f.id_field in schema.names else [])
        with_url = f.url_field is not None and f.url_field in schema.names and f.url_field not in cols
        if f.url_field is not None:
            b.with_extra(URL_COLUMNS)
        pos = first
        for batch in pf.iter_batches(
            batch_size=limits.batch_size, columns=cols + ([f.url_field] if with_url else []), row_groups=groups
        ):
            texts = batch.column(f.text_field).to_pylist()
            ids = batch.column(f.id_field).to_pylist() if len(cols) > 1 else [None] * len(texts)
            urls = batch.column(f.url_field).to_pylist() if with_url else [None] * len(texts)
            for id_, text, url in zip(ids, texts, urls):
                id_ = None if id_ is None else str(id_)
                extra = {"url": str(url) if url else None} if f.url_field is not None else None
                if text is None:
                    b.add(pos, id_, None, f"text field {f.text_field!r} is null", extra=extra, index=pos - first)
                elif len(text) * 4 > limits.max_doc_bytes and len(text.encode("utf-8")) > limits.max_doc_bytes:
                    # (a character is 1 to 4 UTF-8 bytes: only texts that might be over are encoded)
                    b.add(
                        pos,
                        id_,
                        None,
                        f"record is {len(text.encode()):,} bytes, over max_doc_bytes ({limits.max_doc_bytes:,})",
                        text.encode("utf-8"),
                        extra=extra,
                        index=pos - first,
                    )
                else:
                    b.add(pos, id_, text, extra=extra, index=pos - first)
                pos += 1
                if b.full():
                    yield b.flush()


def _read_text(f: InputFile, b: BatchBuilder, limits: ReadLimits) -> Iterator[pa.Table]:
    fs, path = filesystem_for(f.uri)
    with fs.open_input_stream(path, compression=_compression_for(path)) as stream:
        data = stream.read(limits.max_doc_bytes + 1)
    if len(data) > limits.max_doc_bytes:
        b.add(0, f.rel, None, f"file is over max_doc_bytes ({limits.max_doc_bytes:,})", data)
    else:
        try:
            b.add(0, f.rel, data.decode("utf-8"))
        except UnicodeDecodeError as e:
            b.add(0, f.rel, None, f"invalid UTF-8 at byte {e.start}", data)
    yield from ()


def _read_warc(f: InputFile, b: BatchBuilder, limits: ReadLimits) -> Iterator[pa.Table]:
    from curation.io.warc import read_warc

    yield from read_warc(f, b, limits)


class JsonlReader(Reader):
    name = "jsonl"
    suffixes = (".jsonl", ".json", ".jsonl.gz", ".json.gz", ".jsonl.zst", ".json.zst", ".jsonl.zstd", ".ndjson")
    description = "one JSON object per line (gzip or zstd by suffix); text_field and id_field name the fields"

    def read(self, f: InputFile, builder: BatchBuilder, limits: ReadLimits) -> Iterator[pa.Table]:
        return _read_jsonl(f, builder, limits)


class ParquetReader(Reader):
    name = "parquet"
    suffixes = (".parquet", ".pq")
    description = "Parquet files, streamed by row group; text_field and id_field name the columns"

    def read(self, f: InputFile, builder: BatchBuilder, limits: ReadLimits) -> Iterator[pa.Table]:
        return _read_parquet(f, builder, limits)


class TextReader(Reader):
    name = "text"
    suffixes = None
    description = "one document per file (UTF-8); the id is the file's path under the input folder"

    def read(self, f: InputFile, builder: BatchBuilder, limits: ReadLimits) -> Iterator[pa.Table]:
        return _read_text(f, builder, limits)


class WarcReader(Reader):
    name = "warc"
    suffixes = (".warc", ".warc.gz", ".wet", ".wet.gz", ".warc.wet.gz")
    requires = (("fastwarc", "corpus-curation[warc]"), ("resiliparse", "corpus-curation[warc]"))
    description = "WARC responses (HTML, for stages.extract) and WET conversions, one row per record"

    def read(self, f: InputFile, builder: BatchBuilder, limits: ReadLimits) -> Iterator[pa.Table]:
        return _read_warc(f, builder, limits)
