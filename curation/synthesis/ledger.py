"""The ledger: every finished generation, written the moment it arrives, so a restarted job pays for
none of them again.

One JSON-lines file per output chunk (`OUT/_work/ledger/fFFFFF-cCCCCC.jsonl`), keyed by the unit key
(task, template version, generator settings, source document). On a local filesystem each record is
appended and flushed as it comes (a killed job loses at most a record it was writing, which a torn
last line shows and the reader skips); object stores cannot append, so there records are written as
segment files every `flush_s` seconds and a crash loses at most that interval. Failures are not
recorded: nothing was generated, so a resumed job tries them again. A chunk's ledger is deleted once
its outputs and done marker are written.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pyarrow.fs as pafs

from curation.outputs import Layout


class ChunkLedger:
    def __init__(self, layout: Layout, name: str, flush_s: float = 10.0):
        self.layout, self.flush_s = layout, flush_s
        self.dir = layout.path("_work", "ledger")
        self.name = name
        self.local = isinstance(layout.fs, pafs.LocalFileSystem)
        self._file = None
        self._buffer: list[str] = []
        self._last_flush = time.monotonic()
        self._segment = 0

    def _paths(self) -> list[str]:
        prefix = f"{self.dir}/{self.name}"
        return [p for p in self.layout.list_files(self.dir) if p == prefix + ".jsonl" or p.startswith(prefix + "-s")]

    def load(self) -> dict[str, dict[str, Any]]:
        """key -> record of the generations already made for this chunk."""
        out: dict[str, dict[str, Any]] = {}
        paths = self._paths()
        for path in paths:
            with self.layout.fs.open_input_stream(path) as f:
                data = f.read().decode("utf-8", errors="replace")
            for line in data.splitlines():
                try:
                    rec = json.loads(line)
                except ValueError:  # a record torn by a kill while it was written
                    continue
                if isinstance(rec, dict) and isinstance(rec.get("key"), str) and isinstance(rec.get("text"), str):
                    out[rec["key"]] = rec
        self._segment = sum(1 for p in paths if not p.endswith(f"/{self.name}.jsonl"))
        return out

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False) + "\n"
        if self.local:
            if self._file is None:
                self.layout.mkdir(self.dir)
                self._file = open(f"{self.dir}/{self.name}.jsonl", "a", encoding="utf-8")
            self._file.write(line)
            self._file.flush()
            return
        self._buffer.append(line)
        if time.monotonic() - self._last_flush >= self.flush_s:
            self.flush()

    def flush(self) -> None:
        if self._buffer:
            self.layout.write_bytes(
                f"{self.dir}/{self.name}-s{self._segment:05d}.jsonl", "".join(self._buffer).encode("utf-8")
            )
            self._segment += 1
            self._buffer = []
        self._last_flush = time.monotonic()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self.flush()

    def delete(self) -> None:
        self.close()
        for path in self._paths():
            try:
                self.layout.fs.delete_file(path)
            except OSError:
                pass
