"""The synthesis job spec (`kind: synthesize`), validated like the other kinds (key paths in errors)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from curation.specbase import Strict, checked_names, validate_spec
from curation.stages.filters import FiltersSpec

_Strict = Strict  # unknown keys are errors, as in every spec


class BandSpec(_Strict):
    min: float | None = Field(None, description="inclusive lower bound")
    max: float | None = Field(None, description="exclusive: a score equal to max is outside the band")


class SelectSpec(_Strict):
    """Which input documents a task takes (all conditions must hold)."""

    domains: list[str] | None = Field(None, description="e.g. [web]; default: any")
    languages: list[str] | None = Field(None, description="e.g. [en, de]; default: any")
    sources: list[str] | None = Field(None, description="input `source` names; default: any")
    quality: dict[str, BandSpec] = Field(
        default_factory=dict, description="classifier NAME (column quality_NAME) -> {min, max}"
    )
    min_chars: int = Field(200, ge=0, description="shorter documents are not taken")
    max_chars: int | None = Field(None, ge=1, description="longer documents are not taken")
    fraction: float = Field(1.0, gt=0, le=1, description="share of the matching documents, by a hash of the id")
    max_documents: int | None = Field(None, ge=1, description="at most this many, in input order")
    rejected_reasons: list[str] = Field(
        default_factory=list,
        description="also take documents a curate job rejected for these reasons "
        "(e.g. quality:web: Nemotron-CC rephrases low-quality text)",
    )


class TemplateSpec(_Strict):
    """A prompt: `user` must contain {text}; {language} is the source's language name."""

    system: str | None = Field(None, description="the system prompt")
    user: str = Field(description="the user prompt, with {text} where the document goes")
    version: str = Field("1", description="part of the cache key: change it to regenerate")

    @field_validator("user")
    @classmethod
    def _has_text(cls, v: str) -> str:
        if "{text}" not in v:
            raise ValueError("the user prompt must contain {text} (where the document goes)")
        return v


class ChecksSpec(_Strict):
    """Output checks before a generation is accepted; None means the template's default."""

    language_match: bool = Field(True, description="the output's language must be the source's")
    min_chars: int = Field(50, ge=0, description="shorter outputs are rejected")
    min_length_ratio: float | None = Field(None, ge=0, description="output chars / source chars, lower bound")
    max_length_ratio: float | None = Field(None, gt=0, description="output chars / source chars, upper bound")
    max_copy_share: float | None = Field(
        None, ge=0, le=1, description="share of the output's n-grams found verbatim in the source"
    )
    copy_ngram: int = Field(8, ge=2, description="n of max_copy_share's n-grams (words)")
    leak_ngram: int = Field(8, ge=3, description="an n-gram of the instructions in the output is a prompt leak")
    allow_truncated: bool = Field(False, description="accept outputs cut by max_tokens (finish_reason length)")
    filters: FiltersSpec = Field(
        default_factory=lambda: FiltersSpec({"gopher_repetition": {}}),
        description="heuristic filters, as in a curate job's stages.filters",
    )


class TaskSpec(_Strict):
    template: str | TemplateSpec = Field(
        description="a built-in template name (curation/synthesis/templates.py) or {system, user, version}"
    )
    select: SelectSpec = Field(default_factory=SelectSpec, description="which documents it takes")
    checks: ChecksSpec = Field(default_factory=ChecksSpec, description="what an accepted output must pass")
    source: str | None = Field(None, description="`source` of the generated documents (default synthetic-TASK)")
    max_source_chars: int = Field(8000, ge=100, description="longer documents are cut at a paragraph break")

    @field_validator("template")
    @classmethod
    def _known(cls, v: Any) -> Any:
        from curation.synthesis.templates import BUILTIN

        if isinstance(v, str) and v not in BUILTIN:
            raise ValueError(
                f"unknown template {v!r} (built in: {', '.join(sorted(BUILTIN))}; or give {{system, user, version}})"
            )
        return v


class PriceSpec(_Strict):
    prompt_per_million: float = Field(0.0, ge=0, description="price per million prompt tokens (for the cost)")
    completion_per_million: float = Field(0.0, ge=0, description="price per million completion tokens")


class GeneratorSpec(_Strict):
    """Where generations come from: an OpenAI-compatible server (`openai`) or a local model folder (`hf`)."""

    kind: Literal["openai", "hf"] = Field("openai", description="an OpenAI-compatible server, or a local model")
    model: str = Field(description="openai: the served model name; hf: the model folder (nothing is downloaded)")
    base_url: str | list[str] | None = Field(
        None, description="openai: e.g. http://127.0.0.1:8000/v1; a list spreads requests over several servers"
    )
    api: Literal["chat", "completions"] = Field(
        "chat", description="/chat/completions, or /completions (with batch_size prompts per request)"
    )
    api_key_env: str | None = Field(None, description="environment variable holding the API key (never the key)")
    concurrency: int = Field(16, ge=1, description="requests in flight (hf: batches in flight per worker = 1)")
    batch_size: int = Field(1, ge=1, description="prompts per request (completions API) or per forward pass (hf)")
    timeout_s: float = Field(600.0, gt=0, description="per request")
    max_retries: int = Field(5, ge=0, description="on 429, 5xx, timeouts and connection errors")
    backoff_s: float = Field(1.0, ge=0, description="first retry delay; doubles, with jitter")
    max_backoff_s: float = Field(60.0, ge=0, description="the longest retry delay")
    stop_after_failures: int = Field(100, ge=1, description="stop the job after this many failures in a row")
    max_tokens: int = Field(1024, ge=1, description="most tokens per generation")
    temperature: float = Field(0.7, ge=0, description="sampling temperature")
    top_p: float = Field(1.0, gt=0, le=1, description="nucleus sampling")
    seed: int | None = Field(0, description="sampling seed sent with every request (null: none)")
    extra_body: dict[str, Any] = Field(
        default_factory=dict, description="added to every request (e.g. repetition_penalty for vLLM)"
    )
    device: str = Field("auto", description="hf: auto (GPU when present), cpu, cuda, cuda:1")
    workers: int | None = Field(None, ge=1, description="hf on Ray: model actors (default: one per GPU, else 1)")
    price: PriceSpec | None = Field(None, description="per million tokens, for the cost line of the report")

    @model_validator(mode="after")
    def _coherent(self) -> "GeneratorSpec":
        if self.kind == "openai":
            if not self.base_url:
                raise ValueError("kind openai needs base_url (e.g. http://127.0.0.1:8000/v1)")
            urls = [self.base_url] if isinstance(self.base_url, str) else self.base_url
            bad = [u for u in urls if not u.startswith(("http://", "https://"))]
            if bad:
                raise ValueError(f"base_url must be http:// or https:// URLs (got {bad})")
            if self.batch_size > 1 and self.api == "chat":
                raise ValueError(
                    "batch_size > 1 needs api: completions (the chat API takes one conversation "
                    "per request; raise concurrency instead)"
                )
        else:
            from curation.io.policy import guard_problem

            err = (f"model folder {self.model} {why}" if (why := guard_problem(self.model)) else None) or (
                None if "://" in self.model or Path(self.model).is_dir() else f"model folder not found: {self.model}"
            )
            if err:
                raise ValueError(err)
            import importlib.util

            missing = [m for m in ("torch", "transformers") if importlib.util.find_spec(m) is None]
            if missing:
                raise ValueError(f"kind hf needs {' and '.join(missing)}: pip install 'corpus-curation[torch]'")
        return self

    def urls(self) -> list[str]:
        urls = [self.base_url] if isinstance(self.base_url, str) else list(self.base_url or [])
        return [u.rstrip("/") for u in urls]

    def fingerprint(self) -> str:
        """What changes the generations (not where they are served or how fast)."""
        keys = ("kind", "model", "api", "max_tokens", "temperature", "top_p", "seed", "extra_body")
        data = {k: getattr(self, k) for k in keys}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    def name(self) -> str:
        return f"{self.kind}:{self.model}"


class ExecutionSpec(_Strict):
    engine: Literal["ray", "local"] = Field("ray", description="local: no Ray (hf runs in this process)")
    chunk_size: int = Field(500, ge=1, description="units (document x task) per output part and done marker")
    ledger_flush_s: float = Field(10.0, gt=0, description="object-store outputs: ledger segment interval")


class SynthesizeJob(_Strict):
    """`curate synthesize`: model-synthesized documents from selected curated ones (see curation/synthesis)."""

    kind: Literal["synthesize"] = "synthesize"
    name: str = Field("synthesize", description="a label for the report")
    inputs: list[str] = Field(min_length=1, description="curate outputs (folders with curated/) or Parquet globs")
    output: str = Field(description="the output folder (a curate-like layout: mix it like a curate output)")
    tasks: dict[str, TaskSpec] = Field(min_length=1, description="NAME -> what to generate from which documents")
    generator: GeneratorSpec = Field(description="the model that generates")
    execution: ExecutionSpec = Field(default_factory=ExecutionSpec, description="where it runs")

    @field_validator("tasks")
    @classmethod
    def _names(cls, v: dict[str, TaskSpec]) -> dict[str, TaskSpec]:
        return checked_names(v, r"[A-Za-z0-9_][A-Za-z0-9_.-]*", "task names are letters, digits, _ . -")

    def declared_reads(self) -> list[tuple[str, str]]:
        """(key path, path) of every file the job names to read (checked against the service's roots)."""
        reads = [(f"inputs.{i}", p) for i, p in enumerate(self.inputs)]
        if self.generator.kind == "hf":
            reads.append(("generator.model", self.generator.model))
        return reads

    def fingerprint(self) -> str:
        """Everything that changes results; not the transport (URLs, concurrency, retries, prices)."""
        data = self.model_dump(mode="json", exclude={"execution", "output", "generator"})
        data["generator"] = self.generator.fingerprint()
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def parse_synthesize_spec(data: Any, *, output: str | None = None) -> SynthesizeJob:
    return validate_spec(SynthesizeJob, data, output)
