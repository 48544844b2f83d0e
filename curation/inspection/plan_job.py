"""`kind: plan`: `curate plan` as a job of its own, so the service (and `ray job submit`) can run it and the
web console show it. The spec wraps the curate or mix spec to plan; the projection goes to OUT/plan.json and
the sample runs under OUT/_work/plan/ (inside the plan's own output, so the service's roots hold)."""

from __future__ import annotations

import json
import time
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from curation.specbase import SpecError, Strict


class PlanJob(Strict):
    """`curate run PLAN.yaml` (or POST /v1/jobs): project the wrapped job's yield and cost from a sample."""

    kind: Literal["plan"] = "plan"
    name: str = Field("plan", description="a label for the service's job list")
    output: str = Field(description="where plan.json and the sample runs go")
    job: dict[str, Any] = Field(description="the curate or mix job spec to plan (its own output is not written)")
    sample: int = Field(2000, ge=10, le=1_000_000, description="records (curate) or rows (mix) in the sample")
    seed: int = Field(0, description="the sample's seed")
    cpus: int | None = Field(None, ge=1, description="the cluster to project for (default: the one the runs use)")

    @field_validator("job")
    @classmethod
    def _inner_is_valid(cls, v: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        _target(v, str(info.data.get("output") or "."))
        return v

    def target(self) -> Any:
        """The wrapped job, validated by its own model, its output moved under this plan's work folder."""
        return _target(self.job, self.output)

    def declared_reads(self) -> list[tuple[str, str]]:
        return [(f"job.{key}", path) for key, path in self.target().declared_reads()]

    def fingerprint(self) -> str:
        import hashlib

        data = self.model_dump(mode="json", exclude={"output", "name"})
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _target(data: dict[str, Any], output: str) -> Any:
    from curation.spec import parse_spec
    from mixtures.spec import parse_mix_spec

    kind = data.get("kind", "curate")
    if kind not in ("curate", "mix"):
        raise ValueError(f"a plan is of a curate or mix job, not {kind!r}")
    try:
        parse = parse_spec if kind == "curate" else parse_mix_spec
        target = parse(data, output=output.rstrip("/") + "/_work/plan/target")
    except SpecError as e:
        raise ValueError("; ".join(f"{k}: {m}" for k, m in e.errors)) from None
    return target


def parse_plan_spec(data: Any, *, output: str | None = None) -> PlanJob:
    from curation.specbase import validate_spec

    return validate_spec(PlanJob, data, output)


def run_plan(job: PlanJob, *, address: str | None = None, progress: Any = None) -> dict[str, Any]:
    """The projection, also written to OUT/plan.json."""
    from curation.job import claim_output, write_progress
    from curation.spec import model_yaml

    layout, lock = claim_output(job, model_yaml(job))
    with lock:
        write_progress(layout, "plan", sample=job.sample)
        t0 = time.monotonic()
        target = job.target()
        if target.kind == "mix":
            from curation.inspection.plan_mix import plan_mix

            result = plan_mix(job.job, sample=job.sample, cpus=job.cpus, seed=job.seed)
        else:
            from curation.inspection.plan import plan_curate

            work = layout.path("_work", "plan")
            layout.remove_dir(work)
            result = plan_curate(target, sample=job.sample, cpus=job.cpus, seed=job.seed, work=work, address=address)
            layout.remove_dir(work)
        layout.write_bytes(layout.path("plan.json"), json.dumps(result, indent=2, default=str).encode())
        write_progress(layout, "done", seconds=round(time.monotonic() - t0, 1))
        if progress is not None:
            progress.say(f"plan: {json.dumps({k: result.get(k) for k in ('kept_documents', 'wall_seconds')})}")
    return result
