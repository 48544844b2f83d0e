"""The job kinds, in one registry: each names its spec model and parser, the YAML it is stored and rerun
from, the `curate` subcommand that runs it, and its runner. The CLI, `python -m curation.run` (what `ray
job submit` calls) and the REST API dispatch through it instead of each keeping its own `kind` branches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from curation.inspection.plan_job import PlanJob, parse_plan_spec
from curation.spec import CurateJob, model_yaml, parse_spec, resolved_yaml
from curation.specbase import SpecError
from curation.synthesis.spec import SynthesizeJob, parse_synthesize_spec
from mixtures.spec import AblateJob, MixJob, parse_ablate_spec, parse_mix_spec


def _run_curate(job: Any, address: str | None, progress: Any) -> Any:
    from curation.job import run_job

    return run_job(job, address=address, progress=progress)


def _run_mix(job: Any, address: str | None, progress: Any) -> Any:
    from mixtures.job import run_mix

    return run_mix(job, address=address, progress=progress)


def _run_ablate(job: Any, address: str | None, progress: Any) -> Any:
    from mixtures.ablate import run_ablate

    return run_ablate(job, address=address, progress=progress)


def _run_plan(job: Any, address: str | None, progress: Any) -> Any:
    from curation.inspection.plan_job import run_plan

    return run_plan(job, address=address, progress=progress)


def _run_synthesize(job: Any, address: str | None, progress: Any) -> Any:
    from curation.synthesis.job import run_synthesize

    return run_synthesize(job, address=address, progress=progress)


@dataclass(frozen=True)
class JobKind:
    kind: str
    command: str  # `curate COMMAND SPEC` runs it (and `curate run` runs every kind)
    model: type
    parse: Callable[..., Any]  # (data, output=None) -> job, errors as SpecError
    to_yaml: Callable[[Any], str]  # the spec with defaults filled in: OUT/job.yaml, the service's stored spec
    run: Callable[[Any, str | None, Any], Any]  # (job, address, progress)


KINDS: dict[str, JobKind] = {
    k.kind: k
    for k in (
        JobKind("curate", "run", CurateJob, parse_spec, resolved_yaml, _run_curate),
        JobKind("mix", "mix", MixJob, parse_mix_spec, model_yaml, _run_mix),
        JobKind("ablate", "ablate", AblateJob, parse_ablate_spec, model_yaml, _run_ablate),
        JobKind("synthesize", "synthesize", SynthesizeJob, parse_synthesize_spec, model_yaml, _run_synthesize),
        # `curate plan` also takes a curate or mix spec and prints; `kind: plan` runs it as a job
        JobKind("plan", "plan", PlanJob, parse_plan_spec, model_yaml, _run_plan),
    )
}
COMMANDS = {k.command: k for k in KINDS.values()}


def kind_of(data: Any) -> JobKind:
    """The kind a loaded spec declares (`kind:`, default curate); an unknown one is a SpecError."""
    name = data.get("kind", "curate") if isinstance(data, dict) else "curate"
    if name not in KINDS:
        raise SpecError([("kind", f"unknown job kind {name!r} (expected one of: {', '.join(KINDS)})")])
    return KINDS[name]


def parse_any_spec(data: Any, *, output: str | None = None, command: str | None = None) -> tuple[Any, str]:
    """A spec of any kind validated by its own model, and the YAML to run it from (defaults filled in): what
    the service stores and submits. With `command` (the subcommand it was given to), a spec of another kind
    is an error naming both."""
    kind = kind_of(data)
    if command not in (None, "run") and COMMANDS.get(command) is not kind:
        raise SpecError(
            [
                (
                    "kind",
                    f"the spec is a `{kind.kind}` job (run it with `curate {kind.command}`), but "
                    f"`curate {command}` runs `{COMMANDS[command].kind}` jobs"
                    if command in COMMANDS
                    else f"`{command}` is not a job command",
                )
            ]
        )
    job = kind.parse(data, output=output)
    return job, kind.to_yaml(job)


def run_any(job: Any, *, address: str | None = None, progress: Any = None) -> Any:
    return KINDS[job.kind].run(job, address, progress)
