"""The job spec: YAML in, typed and validated models out.

A bad spec fails before any work starts, with the key's path and what was expected
(`SpecError`). Unknown keys are errors, not ignored. `resolved_yaml` writes the spec back with
every default filled in, which is what lands in `OUT/job.yaml`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from curation.io.instruction import InstructionSpec
from pydantic import (BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_serializer,
                      model_validator)

QWEN29 = ("en", "zh", "de", "fr", "es", "pt", "it", "nl", "ru", "cs", "pl", "ar", "fa", "he", "tr", "ja", "ko", "vi",
          "th", "id", "ms", "lo", "my", "ceb", "km", "tl", "hi", "bn", "ur")


class SpecError(ValueError):
    """A job spec that cannot run; the message names each bad key by its path.

    `errors` holds the same as (key path, message) pairs, for callers that report them
    structurally (the REST API's 422 responses)."""

    def __init__(self, errors: list[tuple[str, str]] | str):
        if isinstance(errors, str):  # a problem with the file, not with a key
            self.errors = [("", errors)]
            super().__init__(errors)
            return
        self.errors = errors
        super().__init__("invalid job spec:\n" + "\n".join(f"  {path}: {msg}" for path, msg in errors))


class _KeyErrors(ValueError):
    """Errors found by a validator for keys below the field it validates: (sub-path, message) pairs,
    reported as `field.sub.path: message` so each names its full key path."""

    def __init__(self, items: list[tuple[str, str]]):
        super().__init__("; ".join(f"{k}: {m}" for k, m in items))
        self.items = items


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InputSpec(_Strict):
    path: str = Field(description="file, folder or glob; local or s3:// / gs:// (pyarrow.fs)")
    format: Literal["jsonl", "parquet", "text", "warc"]
    source: str
    domain: str = "web"
    text_field: str = "text"
    id_field: str | None = "id"
    instruction: InstructionSpec | None = Field(
        None, description="JSONL instruction/chat records (messages, or prompt/response) rendered to text with "
                          "a template (default ChatML); such an input's domain defaults to instruction")

    @model_validator(mode="before")
    @classmethod
    def _instruction_domain(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("instruction") is not None and "domain" not in data:
            data = {**data, "domain": "instruction"}
        return data

    @model_validator(mode="after")
    def _instruction_format(self) -> "InputSpec":
        if self.instruction is not None and self.format != "jsonl":
            raise ValueError("instruction: records are read from JSONL inputs (format: jsonl)")
        return self


class NormalizeSpec(_Strict):
    unicode_form: Literal["NFC", "NFKC", "none"] = "NFC"
    max_doc_bytes: int = Field(8_000_000, gt=0, description="larger documents are quarantined")


class LangIdSpec(_Strict):
    model: str | None = Field(None, description="path to a fastText LID model; default: bundled lid.176.ftz")
    min_score: float = Field(0.5, ge=0.0, le=1.0)
    min_score_by_lang: dict[str, float] = Field(
        default_factory=dict, description="minimum score per label; labels not named here take the bundled "
                                          "table (filters/lid_thresholds.yaml, bundled model only), then min_score")
    bundled_thresholds: bool = Field(
        True, description="use filters/lid_thresholds.yaml for labels not in min_score_by_lang (ignored with a "
                          "custom model); false: min_score for all of them")
    zawgyi: Literal["convert", "drop", "keep"] | None = Field(
        None, description="documents labelled `my` in legacy Zawgyi encoding: converted to Unicode, dropped "
                          "(langid:zawgyi) or kept as they are; null: convert when python-myanmar is installed, "
                          "else drop")
    other_languages: Literal["drop", "keep", "other"] = Field(
        "drop", description="what happens to documents outside `languages`: dropped, kept, or kept as lang=other")
    sample_chars: int = Field(2000, gt=0, description="characters predicted on (first and middle chunks)")
    min_script_share: float | None = Field(
        0.5, ge=0.0, le=1.0, description="drop (langid:script_mismatch) when fewer of the letters are in the "
                                         "label's scripts; null turns the check off")

    @model_validator(mode="after")
    def _resolve_zawgyi(self) -> "LangIdSpec":
        from filters.zawgyi import converter_available, default_policy

        if self.zawgyi is None:
            self.zawgyi = default_policy()
        elif self.zawgyi == "convert" and not converter_available():
            raise ValueError("zawgyi: convert needs the python-myanmar package (use drop or keep)")
        return self


class FiltersSpec(_Strict):
    """One entry per heuristic filter; the options are the filter's thresholds (published defaults).

    The four web filters apply to documents of every domain but code and math; `code` and `math` are
    the rules of those domains (filters/domain.py), applied to documents whose `domain` is code or math."""

    gopher_quality: dict[str, Any] | None = None
    gopher_repetition: dict[str, Any] | None = None
    c4: dict[str, Any] | None = None
    fineweb: dict[str, Any] | None = None
    code: dict[str, Any] | None = None
    math: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _check_options(cls, data: Any) -> Any:
        from filters.heuristics import ALL_FILTERS as HEURISTIC_FILTERS

        if not isinstance(data, dict):
            return data
        errors = []
        out = {}
        for name, opts in data.items():
            if name not in HEURISTIC_FILTERS:
                out[name] = opts  # pydantic reports the unknown key with its path
                continue
            opts = {} if opts is None else opts
            if not isinstance(opts, dict):
                raise _KeyErrors([(name, f"expected a mapping of options, got {type(opts).__name__}")])
            klass = HEURISTIC_FILTERS[name]
            fields = {f.name for f in dataclasses.fields(klass) if f.init and f.name != "name"}
            for key in opts:
                if key not in fields:
                    errors.append((f"{name}.{key}", f"unknown option (expected one of: {', '.join(sorted(fields))})"))
            if not errors:
                try:
                    filt = TypeAdapter(klass).validate_python(opts)
                except ValidationError as e:
                    errors += [(f"{name}.{'.'.join(map(str, err['loc']))}", err["msg"]) for err in e.errors()]
                    continue
                opts = {k: v for k, v in dataclasses.asdict(filt).items() if k in fields}
            out[name] = opts
        if errors:
            raise _KeyErrors(errors)
        return out

    @model_serializer(mode="wrap")
    def _omit_disabled(self, handler: Any) -> Any:
        # A filter given as `name:` (null) is enabled with its defaults, so a disabled filter must be
        # left out of the dump (job.yaml, fingerprint), not written as null.
        data = handler(self)
        return {k: v for k, v in data.items() if v is not None} if isinstance(data, dict) else data

    def enabled(self) -> list[tuple[str, dict[str, Any]]]:
        return [(n, o) for n in type(self).model_fields if (o := getattr(self, n)) is not None]


def _checked_names(v: dict, pattern: str, rule: str) -> dict:
    """`v` unchanged if every key matches `pattern` (they become column names and drop reasons)."""
    import re

    bad = [k for k in v if not re.fullmatch(pattern, k)]
    if bad:
        raise ValueError(f"{rule} (got {', '.join(bad)})")
    return v


def _local_file_error(path: str, what: str) -> str | None:
    """A message when a local model path names no file (object-store paths are checked when loaded). Under a
    path policy (the service's) a path outside it is refused before it is looked at."""
    from curation.io.policy import guard_problem

    if (why := guard_problem(path)) is not None:
        return f"{what} {path} {why}"
    if "://" in path or Path(path).expanduser().is_file():
        return None
    return f"{what} not found: {path}"


class ExtractSpec(_Strict):
    """HTML to main text for WARC inputs (filters/html_extract.py); other inputs pass through."""

    extractor: Literal["trafilatura", "resiliparse"] = "trafilatura"

    @model_validator(mode="after")
    def _installed(self) -> "ExtractSpec":
        import importlib.util

        needed = {"trafilatura": "trafilatura", "resiliparse": "resiliparse"}[self.extractor]
        if importlib.util.find_spec(needed) is None:
            raise ValueError(f"extractor {self.extractor} needs {needed}: pip install 'corpus-curation[warc]'")
        return self


class UrlsSpec(_Strict):
    """URL filtering for inputs with a `url` column (WARC); see filters/urls.py."""

    block_domains: list[str] = Field(default_factory=list, description="block-list files (domains, subdomains too)")
    allow_domains: list[str] | None = Field(None, description="allow-list files: when given, only these domains")
    block_patterns: list[str] = Field(default_factory=list, description="regular expressions searched in the URL")

    @field_validator("block_patterns")
    @classmethod
    def _compiles(cls, v: list[str]) -> list[str]:
        import re

        for p in v:
            try:
                re.compile(p)
            except re.error as e:
                raise ValueError(f"{p!r} is not a valid regular expression: {e}") from None
        return v

    @field_validator("block_domains", "allow_domains")
    @classmethod
    def _files_exist(cls, v: list[str] | None) -> list[str] | None:
        for path in v or []:
            if err := _local_file_error(path, "domain list"):
                raise ValueError(err)
        return v


class DomainSpec(_Strict):
    """Domain tagging (web / code / math / other) with a fastText model; see filters/domain.py."""

    model: str | None = Field(None, description="fastText domain model; default: the bundled filters/models/domain.ftz")
    min_score: float = Field(0.5, ge=0.0, le=1.0, description="below this the document is tagged `other`")
    retag: list[str] = Field(default_factory=lambda: ["web"],
                             description="declared input domains the tag replaces (others are trusted as given)")

    @field_validator("model")
    @classmethod
    def _model_exists(cls, v: str | None) -> str | None:
        if v is not None and (err := _local_file_error(v, "domain model")):
            raise ValueError(err)
        return v


class ClassifierSpec(_Strict):
    """One fastText quality classifier: its score goes to the column `quality_NAME` for every row."""

    model: str = Field(description="fastText model (e.g. from `curate train-quality`, or DCLM's)")
    positive_label: str | None = Field(
        None, description="the label whose probability is the score; default __label__hq (graded models with "
                          "numeric labels score as the expected grade)")
    min_score: float | None = Field(None, description="drop (quality:NAME) below this score; null keeps all")
    min_score_by_lang: dict[str, float] = Field(default_factory=dict, description="per-language minimum")
    min_score_by_domain: dict[str, float] = Field(default_factory=dict, description="per-domain minimum")
    keep_top_fraction: float | None = Field(
        None, gt=0.0, le=1.0, description="keep only this best-scoring share of the surviving documents of each "
                                          "(language, domain) group (quality:NAME:top_fraction)")

    @field_validator("model")
    @classmethod
    def _model_exists(cls, v: str) -> str:
        if err := _local_file_error(v, "quality model"):
            raise ValueError(err)
        return v

    def threshold(self, lang: str | None, domain: str | None) -> float | None:
        """The minimum score for a document: by language, then by domain, then min_score."""
        if lang in self.min_score_by_lang:
            return self.min_score_by_lang[lang]
        if domain in self.min_score_by_domain:
            return self.min_score_by_domain[domain]
        return self.min_score


class PerplexitySpec(_Strict):
    """KenLM perplexity (optional; needs the kenlm package and a model the user gives)."""

    model: str = Field(description="KenLM model (.arpa or .bin)")
    max_perplexity: float | None = Field(None, gt=0, description="drop (quality:perplexity) above this")

    @field_validator("model")
    @classmethod
    def _model_exists(cls, v: str) -> str:
        import importlib.util

        if err := _local_file_error(v, "KenLM model"):
            raise ValueError(err)
        if importlib.util.find_spec("kenlm") is None:
            raise ValueError("perplexity scoring needs the kenlm module (pip install kenlm); "
                             "leave stages.quality.perplexity out to run without it")
        return v


class QualitySpec(_Strict):
    """Model-based quality filters (after the heuristic filters)."""

    classifiers: dict[str, ClassifierSpec] = Field(default_factory=dict)
    perplexity: PerplexitySpec | None = None
    dedup_keep: str | None = Field(
        None, description="a classifier NAME: the best-scoring member of a duplicate cluster is kept "
                          "(default: the first in input order)")

    @field_validator("classifiers")
    @classmethod
    def _names(cls, v: dict[str, ClassifierSpec]) -> dict[str, ClassifierSpec]:
        return _checked_names(v, r"[a-z0-9_]{1,40}", "classifier names must be lower-case letters, digits and _")

    @model_validator(mode="after")
    def _keep_names_a_classifier(self) -> "QualitySpec":
        if self.dedup_keep is not None and self.dedup_keep not in self.classifiers:
            raise ValueError(f"dedup_keep: {self.dedup_keep!r} is not one of the classifiers "
                             f"({', '.join(self.classifiers) or 'none'})")
        return self


class BenchmarkSpec(_Strict):
    path: str = Field(description="JSONL (plain/.gz/.zst) or Parquet file(s) of the benchmark's test items; globs")
    text_field: str = "text"


class DecontamSpec(_Strict):
    """Benchmark decontamination (filters/decontam.py): documents sharing an n-gram with a test item."""

    benchmarks: dict[str, BenchmarkSpec] = Field(min_length=1)
    ngram: int = Field(13, ge=5, le=50, description="n-gram length in words (characters for unspaced scripts)")
    min_item_units: int = Field(13, ge=1, description="shorter items are skipped (they match common phrases)")
    action: Literal["drop", "flag"] = Field(
        "drop", description="drop: reason decontam:NAME; flag: kept, with the benchmarks in `contaminated_by`")

    @field_validator("benchmarks")
    @classmethod
    def _names(cls, v: dict[str, BenchmarkSpec]) -> dict[str, BenchmarkSpec]:
        return _checked_names(v, r"[a-z0-9_\-]{1,40}", "benchmark names must be lower-case letters, digits, _ and -")


class ExactDedupSpec(_Strict):
    pass


class MinHashSpec(_Strict):
    ngram: int = Field(5, ge=1, le=32)
    bands: int = Field(14, ge=1)
    rows: int = Field(8, ge=1)
    seed: int = 1
    threshold: float | None = Field(None, gt=0, le=1, description="a candidate pair is a duplicate only if the "
                                    "share of equal minhash values of the two signatures reaches this; default "
                                    "the threshold the bands imply, (1/bands)^(1/rows)")

    @property
    def num_perm(self) -> int:
        return self.bands * self.rows

    @property
    def verify_threshold(self) -> float:
        return self.threshold if self.threshold is not None else (1 / self.bands) ** (1 / self.rows)


def _null_means_defaults(data: Any, keys: tuple[str, ...]) -> Any:
    """`langid:` written with no value runs the stage with its defaults, as for filters; only a
    stage left out does not run."""
    if isinstance(data, dict):
        return {k: ({} if v is None and k in keys else v) for k, v in data.items()}
    return data


class UrlDedupSpec(_Strict):
    """Per-URL exact dedup for inputs with a `url` column (WARC): one document per normalized URL."""


class DedupSpec(_Strict):
    exact: ExactDedupSpec | None = None
    minhash: MinHashSpec | None = None
    url: UrlDedupSpec | None = None
    partitions: int | None = Field(None, ge=1, description="shuffle (and clustering) partitions; default one per "
                            "2M keys (about 50 MB), so a task's share stays the same as the corpus grows")
    file_groups: int | None = Field(None, ge=1, description="groups of input files for the per-file dedup tasks "
                                    "(keys, signature checks, decisions); default one per 100,000 documents")

    @model_validator(mode="before")
    @classmethod
    def _enable_null(cls, data: Any) -> Any:
        return _null_means_defaults(data, ("exact", "minhash", "url"))


class StagesSpec(_Strict):
    normalize: NormalizeSpec = Field(default_factory=NormalizeSpec)
    extract: ExtractSpec | None = None
    urls: UrlsSpec | None = None
    langid: LangIdSpec | None = None
    domain: DomainSpec | None = None
    filters: FiltersSpec | None = None
    quality: QualitySpec | None = None
    decontam: DecontamSpec | None = None
    dedup: DedupSpec | None = None

    @model_validator(mode="before")
    @classmethod
    def _null_runs_defaults(cls, data: Any) -> Any:
        return _null_means_defaults(data, ("extract", "langid", "domain", "filters", "quality", "dedup", "normalize"))


class ExecutionSpec(_Strict):
    engine: Literal["ray", "local"] = Field("ray", description="local: the same stages in this process, no Ray")
    batch_size: int = Field(1000, ge=1, description="documents per batch")
    batch_bytes: int = Field(32_000_000, ge=1024, description="a batch is closed once its text reaches this size")
    split_bytes: int | None = Field(256 << 20, ge=4096, description="read tasks of about this size: a plain "
                                    "JSONL file above it is read as byte ranges and a Parquet file as ranges of "
                                    "row groups, each range a task of its own; null reads every file whole")
    block_bytes: int = Field(1 << 20, ge=4096, description="Ray Data block size between stages: reader batches "
                             "are merged up to about this size, or sliced down to it, so every stage streams "
                             "and a task holds a few blocks, never a whole file")
    actors: int | None = Field(None, ge=1, description="a fixed number of actors per model stage pool; default: "
                               "pools that start with as many as fit in three quarters of the cluster's CPUs "
                               "and grow (Ray Data autoscaling) as nodes join, up to max_actors")
    max_actors: int | None = Field(None, ge=1, description="the most actors an autoscaling pool grows to; "
                                   "default: no limit but the cluster's free CPUs")
    actor_cpus: float = Field(0.5, gt=0, description="CPUs each actor reserves (fractional avoids deadlock on 2 CPUs)")


def _warc_needs_its_packages(job: "CurateJob") -> "CurateJob":
    import importlib.util

    if any(i.format == "warc" for i in job.inputs):
        missing = [m for m in ("fastwarc", "resiliparse") if importlib.util.find_spec(m) is None]
        if missing:
            raise ValueError(f"format warc needs {' and '.join(missing)}: pip install 'corpus-curation[warc]'")
    return job


class CurateJob(_Strict):
    kind: Literal["curate"] = "curate"
    name: str = "curate"
    output: str
    inputs: list[InputSpec] = Field(min_length=1)
    languages: Literal["qwen29", "all"] | list[str] = "qwen29"
    stages: StagesSpec = Field(default_factory=StagesSpec)
    execution: ExecutionSpec = Field(default_factory=ExecutionSpec)

    @model_validator(mode="after")
    def _warc_packages(self) -> "CurateJob":
        return _warc_needs_its_packages(self)

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

    def fingerprint(self, *, exclude_execution: bool = True) -> str:
        """Hash of everything that changes results (not where or how fast it runs)."""
        data = self.model_dump(mode="json", exclude={"execution", "output"} if exclude_execution else {"output"})
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _key_errors(err: ValidationError) -> list[tuple[str, str]]:
    lines: list[tuple[str, str]] = []
    for e in err.errors():
        path = ".".join(str(p) for p in e["loc"] if p not in ("function-before", "function-after")) or "(top level)"
        sub = (e.get("ctx") or {}).get("error")
        if isinstance(sub, _KeyErrors):
            lines += [(f"{path + '.' if e['loc'] else ''}{k}", m) for k, m in sub.items]
            continue
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        elif e["type"] == "missing":
            msg = "required key is missing"
        elif "input" in e and e["type"] not in ("value_error",):
            msg = f"{msg} (got {e['input']!r})"
        lines.append((path, msg.removeprefix("Value error, ")))
    return lines


def parse_spec(data: Any, *, output: str | None = None) -> CurateJob:
    """Validate a spec already loaded from YAML/JSON; `output` overrides the spec's output."""
    if not isinstance(data, dict):
        raise SpecError([("(top level)", f"expected a mapping at the top level, got {type(data).__name__}")])
    data = dict(data)
    if output is not None:
        data["output"] = output
    kind = data.get("kind", "curate")
    if kind != "curate":
        hint = {"mix": "run it with `curate mix`", "ablate": "run it with `curate ablate`",
                "synthesize": "run it with `curate synthesize`"}.get(
            kind, "not available in this version")
        raise SpecError([("kind", f"`{kind}` is not a curation job ({hint}; expected `curate`)")])
    try:
        return CurateJob.model_validate(data)
    except ValidationError as e:
        raise SpecError(_key_errors(e)) from None


def read_spec_file(path: str | Path) -> Any:
    """The YAML (or JSON) content of a spec file, any kind; unreadable or invalid files are SpecErrors."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise SpecError(f"cannot read job spec {path}: {e.strerror or e}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise SpecError(f"job spec {path} is not valid YAML: {e}") from None


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


def parse_any_spec(data: Any, *, output: str | None = None) -> tuple[Any, str]:
    """A spec of any kind (curate, mix, ablate, synthesize) validated by its own model, and the YAML to run it from
    (defaults filled in): what the service stores and submits."""
    kind = data.get("kind", "curate") if isinstance(data, dict) else "curate"
    if kind == "mix":
        from mixtures.spec import parse_mix_spec

        job = parse_mix_spec(data, output=output)
    elif kind == "ablate":
        from mixtures.spec import parse_ablate_spec

        job = parse_ablate_spec(data, output=output)
    elif kind == "synthesize":
        from curation.synthesis.spec import parse_synthesize_spec

        job = parse_synthesize_spec(data, output=output)
    else:
        job = parse_spec(data, output=output)
        return job, resolved_yaml(job)
    return job, model_yaml(job)
