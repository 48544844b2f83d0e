"""The mixture job spec (`kind: mix`), validated like the curation spec (key paths in errors)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from curation.specbase import Strict, read_spec_file, validate_spec

BUCKET_FIELDS = ("source", "domain", "lang")


_Strict = Strict  # unknown keys are errors, as in every spec


BucketKey = Literal["source", "domain", "lang"]
Format = Literal["parquet", "megatron", "numpy"]


def _default_buckets() -> list[BucketKey]:
    return ["source", "lang"]


def _default_formats() -> list[Format]:
    return ["parquet"]


class _Job(_Strict):
    def declared_reads(self) -> list[tuple[str, str]]:
        """(key path, path) of every file the job names to read (checked against the service's roots)."""
        reads = [(f"inputs.{i}", p) for i, p in enumerate(self.inputs)]  # type: ignore[attr-defined]
        if getattr(self, "weights_file", None):
            reads.append(("weights_file", self.weights_file))  # type: ignore[attr-defined]
        target = getattr(self, "target", None)
        if target is not None and target.files:
            reads += [(f"target.files.{i}", p) for i, p in enumerate(target.files)]
        return reads

    def fingerprint(self) -> str:
        """Hash of everything that changes results (not where or how fast it runs): one output folder holds one."""
        data = self.model_dump(mode="json", exclude={"execution", "output"})
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


class TemperatureSpec(_Strict):
    alpha: float = Field(0.3, gt=0, le=1, description="language weight proportional to tokens^alpha")


class UniMaxSpec(_Strict):
    pass


class LongContextSpec(_Strict):
    min_tokens: int = Field(8192, ge=1, description="only documents at least this long")
    target_tokens: int = Field(gt=0, description="the long-context budget in tokens")
    seq_len: int = Field(32768, ge=16, description="packed sequence length in tokens")
    pack: bool = Field(True, description="pack documents into sequences of exactly seq_len (token files)")
    max_epochs: float = Field(4, gt=0, description="no long document is repeated more often than this")


class ExecutionSpec(_Strict):
    engine: Literal["ray", "local"] = Field("ray", description="local: the same steps in this process")
    actors: int | None = Field(None, ge=1, description="counting actors (default: as the cluster's CPUs allow)")


class MixJob(_Job):
    """`curate mix`: a token-budgeted mixture of curated outputs, sharded and shuffled, with a manifest."""

    kind: Literal["mix"] = "mix"
    name: str = Field("mix", description="a label for the manifest and the report")
    inputs: list[str] = Field(min_length=1, description="curate outputs (folders with curated/) or Parquet globs")
    output: str = Field(description="the mixture folder")
    target_tokens: int = Field(gt=0, description="the budget in Qwen BPE tokens")
    bucket_by: list[BucketKey] = Field(
        default_factory=_default_buckets, min_length=1, description="what a bucket is (e.g. source/lang)"
    )
    weights: dict[str, float] | None = Field(None, description="bucket -> share of the budget (normalized)")
    temperature: TemperatureSpec | None = Field(None, description="weights from token counts^alpha")
    unimax: UniMaxSpec | None = Field(None, description="UniMax: uniform over buckets, capped by max_epochs")
    weights_file: str | None = Field(None, description="YAML with `weights: {bucket: weight}` (e.g. curate ablate)")
    max_epochs: float = Field(4, gt=0, description="no bucket is repeated more often than this")
    max_epochs_by_bucket: dict[str, float] = Field(default_factory=dict, description="per-bucket cap")
    redistribute: bool = Field(False, description="give the excess of capped buckets to the others, recorded")
    seed: int = Field(0, description="seeds the selection and the shuffle")
    shard_tokens: int = Field(50_000_000, gt=0, description="about this many tokens per shard")
    formats: list[Format] = Field(
        default_factory=_default_formats,
        description="what each shard is written as besides Parquet (always written: the manifest, report and "
        "loader read it): megatron (.bin/.idx), numpy (raw uint32 token file + index)",
    )
    long_context: LongContextSpec | None = Field(None, description="a second, long-document mixture")
    execution: ExecutionSpec = Field(default_factory=ExecutionSpec, description="where it runs")

    @property
    def keeps_token_ids(self) -> bool:
        """Whether the mixture is written as token ids too, so counting keeps the ids it computes."""
        return bool(set(self.formats) - {"parquet"}) or bool(self.long_context and self.long_context.pack)

    @model_validator(mode="after")
    def _parquet_always(self) -> "MixJob":
        if "parquet" not in self.formats:
            self.formats = ["parquet", *self.formats]
        self.formats = list(dict.fromkeys(self.formats))
        return self

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
    return validate_spec(MixJob, data, output)


def load_mix_spec(path: str | Path, *, output: str | None = None) -> MixJob:
    return parse_mix_spec(read_spec_file(path), output=output)


class AblateTargetSpec(_Strict):
    """What the proxies are measured on: held-out documents of the pool (by a hash of their id, never
    trained on), all buckets or the named ones, each bucket weighing the same; or given files."""

    heldout_fraction: float = Field(0.05, gt=0, lt=0.5, description="share of each bucket held out")
    buckets: list[str] | None = Field(None, description="target buckets (default: every bucket)")
    files: list[str] | None = Field(None, description="JSONL/Parquet files whose `text` is the target instead")


class GPTProxySpec(_Strict):
    """The tiny transformer proxy (about 0.1M parameters with these defaults; ~15 s a run on one CPU core)."""

    d_model: int = Field(64, ge=8, description="width")
    layers: int = Field(2, ge=1, description="transformer blocks")
    heads: int = Field(2, ge=1, description="attention heads (divide d_model)")
    context: int = Field(64, ge=8, description="bytes per training window")
    batch: int = Field(16, ge=1, description="windows per step")
    train_bytes: int = Field(1_000_000, gt=0, description="bytes of training windows per proxy (one pass)")
    lr: float = Field(1e-2, gt=0, description="learning rate")
    device: str = Field("auto", description="auto (GPU when present), cpu, cuda, cuda:1, ...")

    @model_validator(mode="after")
    def _heads_divide(self) -> "GPTProxySpec":
        if self.d_model % self.heads:
            raise ValueError(f"d_model ({self.d_model}) must be a multiple of heads ({self.heads})")
        return self


class AblateJob(_Job):
    """`curate ablate`: RegMix-style mixture search with small proxy models (see mixtures/ablate.py)."""

    kind: Literal["ablate"] = "ablate"
    name: str = Field("ablate", description="a label for the report")
    inputs: list[str] = Field(min_length=1, description="curate outputs (folders with curated/) or Parquet globs")
    output: str = Field(description="the ablation folder (weights.yaml for curate mix's weights_file)")
    bucket_by: list[BucketKey] = Field(
        default_factory=lambda: list[BucketKey](["source"]), min_length=1, description="what a bucket is"
    )
    target_tokens: int = Field(gt=0, description="the final mixture's budget: sets each bucket's repetition rate")
    max_epochs: float = Field(4, gt=0, description="the caps the final mixture will have (bounds the search)")
    max_epochs_by_bucket: dict[str, float] = Field(default_factory=dict, description="per-bucket cap")
    n_mixtures: int = Field(64, ge=8, description="proxies in the swarm (fit + held out)")
    n_heldout: int = Field(12, ge=2, description="of those, mixtures never used for fitting (the gate needs >= 10)")
    proxy: Literal["ngram", "gpt"] = Field(
        "ngram",
        description="ngram: hashed byte n-gram LM (mixtures/proxy.py); gpt: tiny byte-level transformer "
        "(mixtures/gpt_proxy.py, needs PyTorch)",
    )
    gpt: GPTProxySpec = Field(default_factory=lambda: GPTProxySpec(), description="the gpt proxy's size")
    proxy_tokens: int = Field(1_000_000, gt=0, description="training tokens per proxy (Qwen tokens)")
    ngram_order: int = Field(4, ge=2, le=8, description="the ngram proxy's order (bytes)")
    seeds: int = Field(5, ge=2, description="paired seeds of the confirmation runs")
    concentration: tuple[float, float] = Field((0.1, 5.0), description="Dirichlet concentration range")
    target: AblateTargetSpec = Field(default_factory=AblateTargetSpec, description="what the proxies are scored on")
    seed: int = Field(0, description="seeds the mixtures, the proxies and the held-out split")
    execution: ExecutionSpec = Field(default_factory=ExecutionSpec, description="where it runs")

    @model_validator(mode="after")
    def _heldout_fits(self) -> "AblateJob":
        if self.proxy == "gpt":
            import importlib.util

            if importlib.util.find_spec("torch") is None:
                raise ValueError("proxy: gpt needs PyTorch (pip install torch); proxy: ngram needs nothing")
        if self.n_heldout >= self.n_mixtures - 4:
            raise ValueError(
                f"n_heldout ({self.n_heldout}) must leave at least 5 of the {self.n_mixtures} mixtures for fitting"
            )
        if not 0 < self.concentration[0] <= self.concentration[1]:
            raise ValueError("concentration: expected [low, high] with 0 < low <= high")
        return self


def parse_ablate_spec(data: Any, *, output: str | None = None) -> AblateJob:
    return validate_spec(AblateJob, data, output)
