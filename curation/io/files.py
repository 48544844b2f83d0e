"""An input file as the readers see it, and the filesystem it lives on (local, s3://, gs:// via pyarrow.fs).

The layer below listing (`sources.py`) and reading (`readers.py`, the reader registry `formats.py`), so a
reader, built in or a plugin, needs nothing that knows how inputs are found.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

import pyarrow.fs as pafs

from curation.io.policy import require_allowed


class InputError(RuntimeError):
    """An input that cannot be read at all (fails the job before it starts)."""


@dataclass(frozen=True)
class InputFile:
    """One input file, numbered in a stable order (input entry, then path) so document numbers,
    output names and resume markers do not depend on listing order."""

    ordinal: int
    uri: str  # as given to filesystem_for (scheme kept for object stores)
    path: str  # path within its filesystem
    rel: str  # path relative to the input's base folder (used for text-folder ids)
    input_index: int
    format: str
    source: str
    domain: str
    text_field: str
    id_field: str | None
    version: str | None = None  # size and modification time when listed: resume re-reads a changed file
    # A part of a large file read as a task of its own (execution.split_bytes): [start, end) in bytes for
    # JSONL (the lines that start in it), in row groups for Parquet. Each split has its own ordinal.
    split: tuple[int, int] | None = None
    split_size: int | None = None  # about how many of the file's bytes the split covers
    max_records: int | None = None  # read only the first this many records (the input's `max_records`)
    sample: tuple[float, int] | None = None  # (share, seed): a seeded share of the records (`sample_fraction`)
    # an InstructionSpec: records are rendered to text (curation.io.instruction); not part of eq/hash
    instruction: Any = dataclasses.field(default=None, compare=False)
    url_field: str | None = None  # the field or column holding each record's URL (URL dedup)

    @property
    def bytes_to_read(self) -> int | None:
        """About how many stored bytes this read task covers (for progress)."""
        return self.split_size if self.split is not None else self.size

    @property
    def size(self) -> int | None:
        """Bytes on storage when listed (None if unknown)."""
        head = (self.version or "").split(":", 1)[0]
        return int(head) if head.isdigit() else None


def filesystem_for(uri: str) -> tuple[pafs.FileSystem, str]:
    """The pyarrow filesystem and in-filesystem path for a local path or URI; under a service's path policy
    (curation.io.policy) a path it does not allow raises PathRefused before anything is opened."""
    require_allowed(uri)
    if "://" not in uri:
        return pafs.LocalFileSystem(), os.path.abspath(uri)
    return pafs.FileSystem.from_uri(uri)
