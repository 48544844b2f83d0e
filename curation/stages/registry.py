"""The ordered registry of stages: built-in ones, then those installed packages register.

Everything that depends on which stages exist derives from here: the spec's `stages:` sections
(`curation.spec.StagesSpec`), the plan of a job and its order, the funnel rows, the columns written beside
the documents, the files a job reads (checked by the service), and the Ray actor pools (grouped by
`Stage.resources`). Adding a built-in stage is its own file plus one line in `BUILTIN`.

A package registers a stage with an entry point in the group `corpus_curation.stages`
(`my_stage = "my_pkg.stages:MyStage"`, the name equal to the class's `name`); it runs after the stage
its `after` names, or else just before dedup (which keys what every other stage kept).
"""

from __future__ import annotations

import functools
import time
from typing import Any

import numpy as np
import pyarrow as pa

from curation.stages.base import JobInfo, Stage
from curation.stages.decontam import Decontam
from curation.stages.dedup import DEDUP_FUNNEL, Dedup
from curation.stages.domain import Domain
from curation.stages.extract import Extract
from curation.stages.filters import HeuristicFilters
from curation.stages.langid import LangId
from curation.stages.normalize import Normalize
from curation.stages.quality import Quality
from curation.stages.urls import Urls

STAGE_GROUP = "corpus_curation.stages"

# Built-in stages in the order they run: URL lists before extraction (a blocked page is not worth
# extracting), domain tagging before language ID (source code has no natural language), dedup last.
BUILTIN: tuple[type[Stage], ...] = (
    Normalize,
    Urls,
    Extract,
    Domain,
    LangId,
    HeuristicFilters,
    Quality,
    Decontam,
    Dedup,
)

# Keys of a curate spec's `stages:` a plugin may not take.
_RESERVED = frozenset({"execution", "inputs", "output", "languages"})


@functools.lru_cache(maxsize=1)
def all_stages() -> tuple[type[Stage], ...]:
    """Every stage class in run order: built-in, with each plugin placed after the stage it names."""
    from filters.registry import load_entry_points

    order = list(BUILTIN)
    for name, cls in load_entry_points(STAGE_GROUP, Stage).items():
        names = [c.name for c in order]
        where = f"stage plugin {cls.__module__}.{cls.__qualname__}"
        if name in names or name in _RESERVED:
            raise TypeError(f"{where} reuses the name {name!r}")
        if not isinstance(getattr(cls, "spec_model", None), type):
            raise TypeError(f"{where} declares no spec_model (a pydantic model of its options)")
        if cls.after is None:
            order.insert(names.index("dedup"), cls)
        elif cls.after in names and cls.after != "dedup":
            order.insert(names.index(cls.after) + 1, cls)
        else:
            raise TypeError(f"{where}: after={cls.after!r} is not a stage it can follow ({', '.join(names[:-1])})")
    return tuple(order)


def stage_class(name: str) -> type[Stage]:
    for cls in all_stages():
        if cls.name == name:
            return cls
    raise KeyError(name)


def job_info(job: Any) -> JobInfo:
    return JobInfo(target_languages=job.target_languages())


def plan(job: Any) -> list[Stage]:
    """The stages this job runs, in order, not yet set up (a stage left out of the spec does not run)."""
    info = job_info(job)
    out = []
    for cls in all_stages():
        spec = getattr(job.stages, cls.name, None)
        if spec is None and cls.always:
            spec = cls.spec_model()
        if cls.active(spec):
            out.append(cls(spec, info))
    return out


def build(job: Any, names: list[str] | None = None) -> list[Stage]:
    """The job's stages (only `names`, when given), set up: what one worker holds."""
    stages = [s for s in plan(job) if names is None or s.name in names]
    for s in stages:
        s.setup()
    return stages


def run(table: pa.Table, stages: list[Stage]) -> pa.Table:
    """Apply the stages in order; each stage's seconds (and its parts', as STAGE:PART) land in a
    `_t_<name>` column (row 0), which the job sums into the funnel."""
    for stage in stages:
        t0 = time.perf_counter()
        table = stage.process(table)
        timings = {stage.name: time.perf_counter() - t0}
        timings.update({f"{stage.name}:{k}": v for k, v in stage.timings.items()})
        stage.timings.clear()
        for k, v in timings.items():
            col = np.zeros(len(table))
            if len(table):
                col[0] = v
            table = table.append_column(f"_t_{k}", pa.array(col))
    return table


def funnel_order(job: Any) -> list[str]:
    """The funnel rows of stats.json after `read`, in pipeline order."""
    stages = plan(job)
    return [r for s in stages for r in s.funnel()] + [r for s in stages for r in s.late_funnel()]


def funnel_row(reason: str) -> str:
    """The funnel row a drop reason counts against ("c4:too_few_sentences" -> "c4")."""
    if reason.endswith(":top_fraction"):  # ranks the documents that survived dedup, so it comes last
        return "top_fraction"
    return DEDUP_FUNNEL.get(reason, reason.split(":")[0])


def funnel_counts(job: Any, parsed: int, by_reason: dict[str, int]) -> list[tuple[str, int, int]]:
    """(row, in, out) of the funnel after `read`, in pipeline order, from the parsed records and the drops so
    far: what stats.json holds at the end and progress.json while the job runs."""
    dropped: dict[str, int] = {}
    for reason, n in by_reason.items():
        row = funnel_row(reason)
        dropped[row] = dropped.get(row, 0) + n
    out, alive = [], parsed
    for row in funnel_order(job):
        out.append((row, alive, alive - dropped.get(row, 0)))
        alive -= dropped.get(row, 0)
    return out


def output_columns(job: Any) -> list[str]:
    """Columns the job's stages add that are written beside the documents (scores, flags)."""
    return list(dict.fromkeys(c for s in plan(job) for c in s.score_columns()))


def declared_reads(job: Any) -> list[tuple[str, str]]:
    """(key path, path) of every file the job's stages open."""
    return [(f"stages.{s.name}.{key}", p) for s in plan(job) for key, p in s.reads()]


def pools(stages: list[Stage]) -> list[list[Stage]]:
    """Consecutive stages of the same `resources.pool`: one Ray Data operator each."""
    groups: list[list[Stage]] = []
    for s in stages:
        if groups and groups[-1][0].resources.pool == s.resources.pool:
            groups[-1].append(s)
        else:
            groups.append([s])
    return groups
