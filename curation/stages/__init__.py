"""The per-document stages: one file each (its spec section and its `Stage` class), the base class
(`base.py`) and the ordered registry that drives everything else (`registry.py`)."""

from curation.stages.base import JobInfo, Resources, Stage, alive_mask, set_column, values
from curation.stages.normalize import normalize_text
from curation.stages.registry import all_stages, build, plan, run

__all__ = [
    "JobInfo",
    "Resources",
    "Stage",
    "alive_mask",
    "all_stages",
    "build",
    "normalize_text",
    "plan",
    "run",
    "set_column",
    "values",
]
