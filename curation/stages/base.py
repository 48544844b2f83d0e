"""What a stage is: declared once (name, spec section, resources, columns it adds, drop reasons, files it
reads), with `setup()` run once per worker and `process(table) -> table` a pure function of a batch.

Everything around a stage derives from these declarations (`curation.stages.registry`): the plan and its
order, the funnel rows of `stats.json`, the score columns written beside the documents, the paths the
service checks against its roots, and the Ray actor pools. A stage annotates instead of deleting: it adds
columns and sets `drop_reason` on rows it rejects; rows already quarantined (`error`) or dropped pass
through untouched, so every input row reaches the writer and the counts add up by construction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel


@dataclass(frozen=True)
class Resources:
    """What one worker of a stage needs. Consecutive stages of the same `pool` share a Ray Data actor pool
    (or a task pool when none of them holds a model); the pool reserves the largest CPU and GPU share of its
    stages (`cpus` None: the job's `execution.actor_cpus`)."""

    pool: str = "quality"
    cpus: float | None = None
    gpus: float = 0.0
    model: bool = True  # setup() loads something worth keeping per worker: run in actors, not tasks


@dataclass(frozen=True)
class JobInfo:
    """The job-wide settings a stage may read besides its own section."""

    target_languages: frozenset[str] | None = None


class Stage:
    """A per-document stage. Subclasses declare the class attributes and write `process` (and `setup` when
    they load a model); the registry does the rest."""

    name: ClassVar[str]  # its key under `stages:` and its funnel row
    spec_model: ClassVar[type[BaseModel]]  # the options of its `stages.NAME:` section
    always: ClassVar[bool] = False  # runs when its section is left out (with the section's defaults)
    resources: ClassVar[Resources] = Resources()
    adds: ClassVar[tuple[str, ...]] = ()  # columns written to curated/ and rejected/ beside the documents
    drop_reasons: ClassVar[tuple[str, ...]] = ()  # the reasons it sets ("NAME:rule"), for docs and reports
    after: ClassVar[str | None] = None  # plugins: the stage this one follows (default: before dedup keys)
    description: ClassVar[str] = ""

    def __init__(self, spec: Any, job: JobInfo | None = None):
        self.spec = spec
        self.job = job or JobInfo()
        self.timings: dict[str, float] = {}  # seconds of named parts of the last batch, reported as NAME:part

    @classmethod
    def active(cls, spec: Any) -> bool:
        """Whether a section given in the spec makes the stage run (a section can enable nothing)."""
        return spec is not None

    def reads(self) -> list[tuple[str, str]]:
        """(key below stages.NAME, path) of every file the stage opens: checked against the service's roots
        at submission and when the job starts."""
        return []

    def funnel(self) -> list[str]:
        """Its rows of the funnel, in order (drop reasons "ROW:rule" count against ROW)."""
        return [self.name]

    def late_funnel(self) -> list[str]:
        """Rows decided after dedup (e.g. keep_top_fraction), at the end of the funnel."""
        return []

    def score_columns(self) -> list[str]:
        """Columns written beside the documents (default: `adds`)."""
        return list(self.adds)

    def setup(self) -> None:
        """Load models and build tables: once per worker, before the first batch."""

    def process(self, table: pa.Table) -> pa.Table:
        raise NotImplementedError

    def explain(self, rows: pa.Table) -> list[Any]:
        """For rows this stage dropped (as written to rejected/, `drop_reason` one of its reasons): the value
        and threshold behind each decision (`filters.base.Measure`), or None where it has none. Runs on
        the few documents a job samples, without `setup()` unless it needs it."""
        return [None] * len(rows)


def alive_mask(table: pa.Table) -> np.ndarray:
    """Rows still in play: not quarantined and not dropped by an earlier stage (a batch as read has no
    drop_reason column yet)."""
    m = pc.is_null(table["error"])
    if "drop_reason" in table.column_names:
        m = pc.and_(m, pc.is_null(table["drop_reason"]))
    return np.asarray(m.to_numpy(zero_copy_only=False), dtype=bool)


def set_column(table: pa.Table, name: str, values: Any, type_: pa.DataType) -> pa.Table:
    arr = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(values, type=type_)
    if name in table.column_names:
        return table.set_column(table.column_names.index(name), name, arr)
    return table.append_column(pa.field(name, type_), arr)


def values(table: pa.Table, name: str, default: Any) -> list[Any]:
    """A column as a list, or `default` for every row when the batch has no such column (a batch built by
    hand; the readers always give `domain`, language ID gives `lang`)."""
    return table[name].to_pylist() if name in table.column_names else [default] * len(table)


def with_texts(table: pa.Table, texts: list[str | None]) -> pa.Table:
    """The batch with rewritten texts and their `n_chars`."""
    table = set_column(table, "text", texts, pa.large_string())
    return set_column(table, "n_chars", pc.fill_null(pc.utf8_length(table["text"]).cast(pa.int64()), 0), pa.int64())


def with_reasons(table: pa.Table, reasons: list[str | None]) -> pa.Table:
    return set_column(table, "drop_reason", reasons, pa.string())
