"""The mixture job spec (`kind: mix`), validated like the curation spec (key paths in errors)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from curation.spec import SpecError, _key_errors, read_spec_file

BUCKET_FIELDS = ("source", "domain", "lang")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TemperatureSpec(_Strict):
    alpha: float = Field(0.3, gt=0, le=1, description="language weight proportional to tokens^alpha")


class UniMaxSpec(_Strict):
    pass


class LongContextSpec(_Strict):
    min_tokens: int = Field(8192, ge=1, description="only documents at least this long")
    target_tokens: int = Field(gt=0)
    seq_len: int = Field(32768, ge=16, description="packed sequence length in tokens")
    pack: bool = True
    max_epochs: float = Field(4, gt=0)


class ExecutionSpec(_Strict):
    engine: Literal["ray", "local"] = "ray"
    actors: int | None = Field(None, ge=1)


class MixJob(_Strict):
    kind: Literal["mix"] = "mix"
    name: str = "mix"
    inputs: list[str] = Field(min_length=1, description="curate outputs (folders with curated/) or Parquet globs")
    output: str
    target_tokens: int = Field(gt=0)
    bucket_by: list[Literal["source", "domain", "lang"]] = Field(default_factory=lambda: ["source", "lang"],
                                                                   min_length=1)
    weights: dict[str, float] | None = None
    temperature: TemperatureSpec | None = None
    unimax: UniMaxSpec | None = None
    weights_file: str | None = Field(None, description="YAML with `weights: {bucket: weight}` (e.g. curate ablate)")
    max_epochs: float = Field(4, gt=0)
    max_epochs_by_bucket: dict[str, float] = Field(default_factory=dict)
    redistribute: bool = Field(False, description="give the excess of capped buckets to the others, recorded")
    seed: int = 0
    shard_tokens: int = Field(50_000_000, gt=0)
    long_context: LongContextSpec | None = None
    execution: ExecutionSpec = Field(default_factory=ExecutionSpec)

    @model_validator(mode="before")
    @classmethod
    def _one_weighting(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in ("temperature", "unimax"):
                if key in data and data[key] is None:
                    data = {**data, key: {}}
            given = [k for k in ("weights", "temperature", "unimax", "weights_file") if data.get(k) is not None]
            if len(given) > 1:
                raise ValueError(f"give at most one of weights, temperature, unimax, weights_file (got {given})")
        return data

    def weight_source(self) -> str:
        for key in ("weights", "temperature", "unimax", "weights_file"):
            if getattr(self, key) is not None:
                return key
        return "natural"


def parse_mix_spec(data: Any, *, output: str | None = None) -> MixJob:
    if not isinstance(data, dict):
        raise SpecError([("(top level)", f"expected a mapping at the top level, got {type(data).__name__}")])
    if output is not None:
        data = {**data, "output": output}
    try:
        return MixJob.model_validate(data)
    except ValidationError as e:
        raise SpecError(_key_errors(e)) from None


def load_mix_spec(path: str | Path, *, output: str | None = None) -> MixJob:
    return parse_mix_spec(read_spec_file(path), output=output)
