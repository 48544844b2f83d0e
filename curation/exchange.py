"""How the steps of a distributed phase (dedup, the mixture's shards) hand data to each other: through
files, one per producing task.

A step's task routes its output into a few *families* of frames (e.g. edges by the file group of `v`,
node records by node partition); each family becomes one Arrow IPC file per task, whose record batch
j is consumer j's share. Consumer j reads batch j of every producer's file (the IPC footer locates it,
so that is one range read per file). The count of things in flight is then linear in the tasks: one
file per (task, family), and the driver names them by a folder and a count, never per (producer,
consumer) pair. A Ray object per pair (as before) grows with the square of the corpus, since both the
number of file groups and the number of key partitions grow with it: 8e9 objects at 10^10 documents.

Files are written under a temporary name and moved into place, so a retried task (a lost node)
rewrites its outputs whole and a reader never sees half of one. Ray Data's hash shuffle would do the key
shuffle but not the per-group / per-partition routing of the later steps, and it keeps the blocks in
the object store; a shared folder is what every step here needs, and it outlives a lost node.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

import numpy as np
import pyarrow as pa

_STRUCT = b"curation.structured"  # schema metadata: the frame was a numpy structured array (the key records)
_TABLE = b"curation.table"  # schema metadata: the frame was a pyarrow Table (kept as Arrow, text and all)


@dataclass(frozen=True)
class Inbox:
    """Consumer `index`'s share of a family: batch `index` of each of `producers` files in `folder`.
    As an argument of a step, it stands for that many positional frames."""

    folder: str
    producers: int
    index: int


def to_batch(frame: Any) -> pa.RecordBatch:
    """A frame (dict of equal-length arrays; 2-D arrays are fixed-size lists; object arrays are strings)
    or a numpy structured array or a pyarrow Table, as one record batch."""
    if isinstance(frame, pa.Table):
        schema = frame.schema.with_metadata({**(frame.schema.metadata or {}), _TABLE: b"1"})
        return pa.RecordBatch.from_arrays([c.combine_chunks() for c in frame.columns], schema=schema)
    meta = None
    if isinstance(frame, np.ndarray):
        meta = {_STRUCT: b"1"}
        frame = {name: frame[name] for name in frame.dtype.names}
    cols, names = [], []
    for name, v in frame.items():
        if v.ndim == 2:
            arr: pa.Array = pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(v).reshape(-1)), v.shape[1])
        elif v.dtype == object:
            arr = pa.array(v.tolist(), pa.string())
        else:
            arr = pa.array(v)
        cols.append(arr)
        names.append(name)
    schema = pa.schema([pa.field(n, c.type) for n, c in zip(names, cols)], metadata=meta)
    return pa.RecordBatch.from_arrays(cols, schema=schema)


def from_batch(batch: pa.RecordBatch) -> Any:
    """The frame (or structured array, or Table) `to_batch` was given."""
    if batch.schema.metadata and batch.schema.metadata.get(_TABLE):
        meta = {k: v for k, v in batch.schema.metadata.items() if k != _TABLE}
        return pa.Table.from_batches([batch]).replace_schema_metadata(meta or None)
    frame: dict[str, np.ndarray] = {}
    for name, col in zip(batch.schema.names, batch.columns):
        if pa.types.is_fixed_size_list(col.type):
            width = col.type.list_size
            frame[name] = np.asarray(col.flatten()).reshape(-1, width)
        elif pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            frame[name] = np.array(col.to_pylist(), dtype=object)
        else:
            frame[name] = col.to_numpy(zero_copy_only=False)
    if batch.schema.metadata and batch.schema.metadata.get(_STRUCT):
        rec = np.empty(batch.num_rows, dtype=[(n, frame[n].dtype) for n in batch.schema.names])
        for n in batch.schema.names:
            rec[n] = frame[n]
        return rec
    return frame


def write_family(layout: Any, path: str, frames: Sequence[Any]) -> None:
    batches = [to_batch(f) for f in frames]
    schema = batches[0].schema if batches else pa.schema([])
    layout.mkdir(path.rsplit("/", 1)[0])
    tmp = path + ".tmp"
    with layout.fs.open_output_stream(tmp) as sink, pa.ipc.new_file(sink, schema) as w:
        for b in batches:
            w.write_batch(b)
    layout.fs.move(tmp, path)


def read_inbox(layout: Any, inbox: Inbox) -> list[Any]:
    out = []
    for i in range(inbox.producers):
        with layout.fs.open_input_file(family_file(inbox.folder, i)) as f:
            out.append(from_batch(pa.ipc.open_file(f).get_batch(inbox.index)))
    return out


def family_file(folder: str, producer: int) -> str:
    return f"{folder}/{producer:05d}.arrow"


class Runner(Protocol):
    def submit(self, fn: Callable, args: Sequence[Any], num_returns: int = 1) -> list[Any]:
        """Run fn(*args) (somewhere); fn returns a list of `num_returns` values: handles to them."""

    def get(self, handles: list[Any]) -> list[Any]:
        """The values behind handles."""


class LocalRunner:
    """Runs every task at once in this process; handles are the values."""

    def submit(self, fn: Callable, args: Sequence[Any], num_returns: int = 1) -> list[Any]:
        return list(fn(*args))

    def get(self, handles: list[Any]) -> list[Any]:
        return list(handles)


class Steps:
    """Runs a step's tasks to their end, their routed outputs in files under `root`; with `progress`, a line
    every `every` seconds while a step's tasks run (tasks done, tasks/s, ETA), on runners that can wait."""

    def __init__(
        self, runner: Runner, layout: Any, root: str, progress: Callable[[str], None] | None = None, every: float = 5.0
    ):
        self.runner, self.layout, self.root = runner, layout, root
        self.progress, self.every = progress, every

    def run(
        self, name: str, fn: Callable, arg_lists: Sequence[Sequence[Any]], families: Sequence[int]
    ) -> tuple[list[str], list[list[Any]]]:
        """fn(*args) for each args (task i); its first sum(families) returned frames go to the step's family
        folders (returned), what follows them comes back, per task."""
        folders = [f"{self.root}/{name}/{k}" for k in range(len(families))]
        task = step_task(fn)
        handles = [
            self.runner.submit(task, (self.layout, folders, list(families), i, tuple(args)))[0]
            for i, args in enumerate(arg_lists)
        ]
        wait = getattr(self.runner, "wait", None)
        if self.progress is not None and wait is not None:
            t0, pending = time.monotonic(), list(handles)
            while pending:
                pending = wait(pending, self.every)
                if pending:
                    done, el = len(handles) - len(pending), time.monotonic() - t0
                    rate = done / el if el else 0.0
                    eta = f", ETA {len(pending) / rate:.0f}s" if rate else ""
                    self.progress(f"{name}: {done}/{len(handles)} tasks, {rate:.1f}/s{eta}")
        return folders, self.runner.get(handles)

    def drop(self, name: str) -> None:
        self.layout.remove_dir(f"{self.root}/{name}")


def inboxes(folder: str, producers: int, consumers: int) -> list[Inbox]:
    """One Inbox per consumer of a family that `producers` tasks wrote."""
    return [Inbox(folder, producers, j) for j in range(consumers)]


def run_task(
    layout: Any, fn: Callable, folders: Sequence[str], counts: Sequence[int], producer: int, args: Sequence[Any]
) -> list[Any]:
    """One task of a step: its Inbox arguments read in, fn(*args), the first sum(counts) frames it returns
    written as families (counts[k] frames into folders[k]); what it returns after them comes back."""
    call: list[Any] = []
    for a in args:
        call.extend(read_inbox(layout, a) if isinstance(a, Inbox) else [a])
    out = fn(*call)
    at = 0
    for folder, n in zip(folders, counts):
        write_family(layout, family_file(folder, producer), out[at : at + n])
        at += n
    return list(out[at:])


_TASKS: dict[Callable, Callable] = {}


def step_task(fn: Callable) -> Callable:
    """`run_task` for fn, as a function named after fn (what Ray shows for the task) that returns a
    one-element list (what a runner's single return takes apart)."""
    if fn not in _TASKS:

        def task(
            layout: Any, folders: Sequence[str], counts: Sequence[int], producer: int, args: Sequence[Any]
        ) -> list[Any]:
            return [run_task(layout, fn, folders, counts, producer, args)]

        task.__name__ = task.__qualname__ = getattr(fn, "__name__", "step")
        _TASKS[fn] = task
    return _TASKS[fn]
