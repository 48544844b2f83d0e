"""Paths of a folder a job reads or writes (an output, an index), on any pyarrow filesystem; the
writers of what goes in them are in `curation.outputs`."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from curation.io.sources import filesystem_for


class Layout:
    """Paths of one job's output, on any pyarrow filesystem."""

    def __init__(self, output: str):
        self.uri = output.rstrip("/")
        self.fs, self.root = filesystem_for(self.uri)

    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def annotated_dir(self, ordinal: int) -> str:
        return self.path("_work", "annotated", f"f{ordinal:05d}")

    def done_marker(self, ordinal: int) -> str:
        return self.path("_work", "done", f"f{ordinal:05d}.json")

    def mkdir(self, path: str) -> None:
        self.fs.create_dir(path, recursive=True)

    def write_bytes(self, path: str, data: bytes) -> None:
        """Write then move into place, so a reader never sees half a marker or stats file."""
        self.mkdir(path.rsplit("/", 1)[0])
        tmp = path + ".tmp"
        with self.fs.open_output_stream(tmp) as f:
            f.write(data)
        self.fs.move(tmp, path)

    def read_json(self, path: str) -> Any | None:
        try:
            with self.fs.open_input_stream(path) as f:
                return json.loads(f.read())
        except (FileNotFoundError, OSError):
            return None

    def list_files(self, path: str) -> list[str]:
        try:
            infos = self.fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
        except OSError:
            return []
        return sorted(i.path for i in infos if i.type == pafs.FileType.File and not i.path.endswith(".tmp"))

    def remove_file(self, path: str) -> None:
        if self.fs.get_file_info(path).type == pafs.FileType.File:
            self.fs.delete_file(path)

    def remove_dir(self, path: str) -> None:
        if self.fs.get_file_info(path).type == pafs.FileType.Directory:
            self.fs.delete_dir(path)

    def write_table(self, path: str, table: pa.Table, row_group_size: int | None = None) -> None:
        """One Parquet file (zstd), written under a temporary name and moved into place: a retried task
        rewrites it whole and a reader never sees half of one."""
        self.mkdir(path.rsplit("/", 1)[0])
        pq.write_table(table, path + ".tmp", filesystem=self.fs, compression="zstd", row_group_size=row_group_size)
        self.fs.move(path + ".tmp", path)

    def read_table(self, path: str) -> pa.Table | None:
        """A Parquet file, or None when there is none."""
        try:
            return pq.read_table(path, filesystem=self.fs)
        except (FileNotFoundError, OSError):
            return None
