"""The job spec: YAML in, typed and validated models out.

A bad spec fails before any work starts, with the key's path and what was expected
(`SpecError`). Unknown keys are errors, not ignored. `resolved_yaml` writes the spec back with
every default filled in, which is what lands in `OUT/job.yaml`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import yaml
from pydantic import BaseModel, Field, field_validator, model_validator

from curation.io.input_spec import InputSpec  # noqa: F401  (curation.spec.InputSpec for its users)
from curation.specbase import SpecError, Strict, null_means_defaults, read_spec_file, validate_spec
from curation.stages.decontam import BenchmarkSpec, DecontamSpec  # noqa: F401  (the stages' sections)
from curation.stages.dedup import DedupSpec, ExactDedupSpec, MinHashSpec, UrlDedupSpec  # noqa: F401
from curation.stages.domain import DomainSpec  # noqa: F401
from curation.stages.extract import ExtractSpec  # noqa: F401
from curation.stages.filters import FiltersSpec  # noqa: F401
from curation.stages.langid import LangIdSpec  # noqa: F401
from curation.stages.normalize import NormalizeSpec  # noqa: F401
from curation.stages.quality import ClassifierSpec, PerplexitySpec, QualitySpec  # noqa: F401
from curation.stages.urls import UrlsSpec  # noqa: F401
from filters.languages import QWEN29  # noqa: F401  (curation.spec.QWEN29 for its users)


def _stages_spec() -> type[BaseModel]:
    """`stages:` of a curate spec: one optional section per registered stage (built in or plugin), each
    validated by that stage's own model (curation/stages/); `NAME:` with no value runs it with its defaults,
    and a stage left out does not run (normalize always runs)."""
    from pydantic import create_model

    from curation.stages.registry import all_stages

    fields: dict[str, Any] = {}
    for cls in all_stages():
        if cls.always:
            fields[cls.name] = (cls.spec_model, Field(default_factory=cls.spec_model, description=cls.description))
        else:
            fields[cls.name] = (cls.spec_model | None, Field(None, description=cls.description))
    names = tuple(fields)

    def _null_runs_defaults(cls, data: Any) -> Any:
        return null_means_defaults(data, names)

    validators: dict[str, Any] = {
        "_null_runs_defaults": model_validator(mode="before")(cast(Any, classmethod(_null_runs_defaults)))
    }
    return create_model("StagesSpec", __base__=Strict, __validators__=validators, **fields)


if TYPE_CHECKING:

    class StagesSpec(Strict):
        """What type checkers see of the model built from the registry: one attribute per stage."""

        def __getattr__(self, name: str) -> Any: ...

else:
    StagesSpec = _stages_spec()


class ExecutionSpec(Strict):
    engine: Literal["ray", "local"] = Field("ray", description="local: the same stages in this process, no Ray")
    batch_size: int = Field(1000, ge=1, description="documents per batch")
    batch_bytes: int = Field(32_000_000, ge=1024, description="a batch is closed once its text reaches this size")
    split_bytes: int | None = Field(
        256 << 20,
        ge=4096,
        description="read tasks of about this size: a plain "
        "JSONL file above it is read as byte ranges and a Parquet file as ranges of "
        "row groups, each range a task of its own; null reads every file whole",
    )
    block_bytes: int = Field(
        1 << 20,
        ge=4096,
        description="Ray Data block size between stages: reader batches "
        "are merged up to about this size, or sliced down to it, so every stage streams "
        "and a task holds a few blocks, never a whole file",
    )
    actors: int | None = Field(
        None,
        ge=1,
        description="a fixed number of actors per model stage pool; default: "
        "pools that start with as many as fit in three quarters of the cluster's CPUs "
        "and grow (Ray Data autoscaling) as nodes join, up to max_actors",
    )
    max_actors: int | None = Field(
        None,
        ge=1,
        description="the most actors an autoscaling pool grows to; default: no limit but the cluster's free CPUs",
    )
    actor_cpus: float = Field(0.5, gt=0, description="CPUs each actor reserves (fractional avoids deadlock on 2 CPUs)")


class InspectionSpec(Strict):
    samples_per_group: int = Field(
        20, ge=0, le=1000, description="documents sampled per drop reason and language (and per kept language); 0: none"
    )
    seed: int = Field(0, description="the seed of the samples (the same seed and inputs give the same samples)")
    excerpt_chars: int = Field(1000, ge=80, description="characters of each sampled document's text kept in samples/")
    lineage: bool = Field(True, description="write lineage/: where every input record went (curate trace, diff)")


class CurateJob(Strict):
    """`curate run`: read the inputs, run the stages, write curated/, rejected/ and quarantine/ with stats."""

    kind: Literal["curate"] = "curate"
    name: str = Field("curate", description="a label for the report and the service's job list")
    output: str = Field(description="the output folder (local or s3://); a rerun into it resumes")
    inputs: list[InputSpec] = Field(min_length=1, description="where the records are; each entry one source")
    languages: Literal["qwen29", "all"] | list[str] = Field(
        "qwen29",
        description="the languages kept (qwen29: Qwen2's 29; all; or a list of codes); "
        "stages.langid.other_languages says what happens to the others",
    )
    stages: StagesSpec = Field(default_factory=StagesSpec, description="what runs on every document")
    execution: ExecutionSpec = Field(default_factory=ExecutionSpec, description="where and how fast it runs")
    inspection: InspectionSpec = Field(
        default_factory=InspectionSpec, description="samples of what each rule removed, and the lineage index"
    )

    @field_validator("languages")
    @classmethod
    def _langs(cls, v: Any) -> Any:
        if isinstance(v, list) and not v:
            raise ValueError("an empty list keeps no language; use `all` to keep every language")
        return v

    def target_languages(self) -> frozenset[str] | None:
        """The languages the job keeps, or None for all."""
        if self.languages == "all":
            return None
        if self.languages == "qwen29":
            return frozenset(QWEN29)
        return frozenset(self.languages)

    def declared_reads(self) -> list[tuple[str, str]]:
        """(key path, path) of every file the job opens: its inputs, and what each stage declares it reads
        (`Stage.reads`: models, lists, benchmarks; plugins' too)."""
        from curation.stages.registry import declared_reads

        return [(f"inputs.{i}.path", inp.path) for i, inp in enumerate(self.inputs)] + declared_reads(self)

    def fingerprint(self, *, exclude_execution: bool = True) -> str:
        """Hash of everything that changes results (not where or how fast it runs); the filters' order
        counts (they run in the order listed)."""
        # inspection changes what is written beside the documents (samples, lineage), not which are kept
        data = self.model_dump(
            mode="json", exclude={"execution", "output", "inspection"} if exclude_execution else {"output"}
        )
        if self.stages.filters is not None:
            data["filter_order"] = [n for n, _ in self.stages.filters.enabled()]
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def parse_spec(data: Any, *, output: str | None = None) -> CurateJob:
    """Validate a spec already loaded from YAML/JSON; `output` overrides the spec's output."""
    kind = data.get("kind", "curate") if isinstance(data, dict) else "curate"
    if kind != "curate":
        hint = {
            "mix": "run it with `curate mix`",
            "ablate": "run it with `curate ablate`",
            "synthesize": "run it with `curate synthesize`",
        }.get(kind, "not available in this version")
        raise SpecError([("kind", f"`{kind}` is not a curation job ({hint}; expected `curate`)")])
    return validate_spec(CurateJob, data, output)


def load_spec(path: str | Path, *, output: str | None = None) -> CurateJob:
    """Read and validate a YAML (or JSON) curation job spec file."""
    return parse_spec(read_spec_file(path), output=output)


def resolved_yaml(job: CurateJob) -> str:
    """The spec with every default filled in, as written to OUT/job.yaml.

    Stages that do not run are left out rather than written as null: in a spec, `c4:` (null)
    means "run with defaults", so the file must load back into the same job."""
    data = job.model_dump(mode="json")
    stages = data["stages"]
    for section in (stages, stages.get("filters") or {}, stages.get("dedup") or {}):
        for key in [k for k, v in section.items() if v is None and k != "partitions"]:
            del section[key]
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def model_yaml(job: BaseModel) -> str:
    """A validated spec of any kind but curate (see resolved_yaml) as YAML, defaults filled in. Options that
    are not set are left out, not written as null: in a spec `temperature:` (null) means "temperature
    weighting with its defaults", so a null would turn an unset option on when the file is read back."""
    return yaml.safe_dump(_drop_unset(job.model_dump(mode="json"), job), sort_keys=False, allow_unicode=True)


def _drop_unset(data: dict, model: BaseModel) -> dict:
    """`data` less the null values of fields whose default is null (null and absent mean the same there), at
    every level of nested models."""
    out = {}
    for key, value in data.items():
        field_ = type(model).model_fields.get(key)
        sub = getattr(model, key, None)
        if value is None and field_ is not None and field_.default is None:
            continue
        if isinstance(value, dict) and isinstance(sub, BaseModel):
            value = _drop_unset(value, sub)
        out[key] = value
    return out
