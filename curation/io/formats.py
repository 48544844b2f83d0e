"""Input formats by job-spec name (`inputs[].format`): the built-in readers, then those installed packages register.

A package registers a reader with an entry point in the group `corpus_curation.readers`, e.g.
`[project.entry-points."corpus_curation.readers"] csv = "my_pkg.readers:CsvReader"`; the entry point's name is
the format's name in a spec (`format: csv`) and must equal the class's `name`. A reader turns one input file
into RAW_SCHEMA batches through a `curation.io.batches.BatchBuilder`, so ids, document numbers, quarantine
rows and batch cuts are the same for every format, and resume, splits and accounting need nothing from it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Iterator

import pyarrow as pa

from curation.io.batches import BatchBuilder, Reader, ReadLimits
from curation.io.files import InputFile
from curation.io.readers import JsonlReader, ParquetReader, TextReader, WarcReader

__all__ = ["READER_GROUP", "Reader", "ReadSummary", "all_readers", "builtin_readers", "read_file", "reader_for"]

READER_GROUP = "corpus_curation.readers"


def builtin_readers() -> dict[str, type[Reader]]:
    return {c.name: c for c in (JsonlReader, ParquetReader, TextReader, WarcReader)}


@functools.lru_cache(maxsize=1)
def all_readers() -> dict[str, type[Reader]]:
    """Every format a spec can name: built-in first, then plugins (a plugin may not reuse a built-in name)."""
    from filters.registry import load_entry_points

    out = builtin_readers()
    for name, cls in load_entry_points(READER_GROUP, Reader).items():
        if name in out:
            raise TypeError(f"reader plugin {cls.__module__}.{cls.__qualname__} reuses the built-in name {name!r}")
        out[name] = cls
    return out


def reader_for(name: str) -> type[Reader]:
    """The reader of a format; an unknown name is a ValueError listing the known ones."""
    readers = all_readers()
    if name not in readers:
        raise ValueError(f"unknown input format {name!r}; known formats: {', '.join(readers)}")
    return readers[name]


@dataclass
class ReadSummary:
    blank_lines: int = 0


def read_file(f: InputFile, limits: ReadLimits, summary: ReadSummary | None = None) -> Iterator[pa.Table]:
    """Stream one input file as RAW_SCHEMA batches.

    A file that cannot be read or decoded part way (truncated gzip, not Parquet at all) ends with one
    quarantine row at position -1 naming the error, after the records read before it.
    """
    batches = _read_file(f, limits, summary)
    if f.sample is not None:
        batches = _sampled(batches, *f.sample)
    if f.max_records is not None:
        batches = _first_records(batches, f.max_records)
    yield from batches


def _sampled(batches: Iterator[pa.Table], fraction: float, seed: int) -> Iterator[pa.Table]:
    """A seeded share of the records, chosen by position (quarantine rows for the file itself stay)."""
    from curation.inspection.keys import sampled_positions

    for t in batches:
        pos = t["position"].to_numpy(zero_copy_only=False)
        keep = sampled_positions(pos, fraction, seed) | (pos < 0)
        if keep.any():
            yield t.filter(pa.array(keep))


def _first_records(batches: Iterator[pa.Table], n: int) -> Iterator[pa.Table]:
    """The first n records of a file's batches (the reader is closed there: nothing past them is read)."""
    for t in batches:
        if len(t) >= n:
            yield t.slice(0, n)
            close = getattr(batches, "close", None)
            if close is not None:
                close()
            return
        n -= len(t)
        yield t


def _read_file(f: InputFile, limits: ReadLimits, summary: ReadSummary | None) -> Iterator[pa.Table]:
    b = BatchBuilder(f, limits)
    try:
        yield from reader_for(f.format)().read(f, b, limits)
    except (OSError, pa.ArrowException, EOFError, ValueError) as e:
        b.add(-1, None, None, f"file unreadable: {type(e).__name__}: {e} (records before this point were read)")
    if len(b):
        yield b.flush()
    if summary is not None:
        summary.blank_lines += b.blank_lines
