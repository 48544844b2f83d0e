"""Spec machinery every job kind shares: the error type, strict models, key-path error messages.

The job kinds (curate, mix, ablate, synthesize) and the stages import this module; it imports none of
them, so the spec modules form layers instead of a cycle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError


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


class KeyErrors(ValueError):
    """Errors found by a validator for keys below the field it validates: (sub-path, message) pairs,
    reported as `field.sub.path: message` so each names its full key path."""

    def __init__(self, items: list[tuple[str, str]]):
        super().__init__("; ".join(f"{k}: {m}" for k, m in items))
        self.items = items


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def checked_names(v: dict, pattern: str, rule: str) -> dict:
    """`v` unchanged if every key matches `pattern` (they become column names and drop reasons)."""
    import re

    bad = [k for k in v if not re.fullmatch(pattern, k)]
    if bad:
        raise ValueError(f"{rule} (got {', '.join(bad)})")
    return v


def local_file_error(path: str, what: str) -> str | None:
    """A message when a local model path names no file (object-store paths are checked when loaded). Under a
    path policy (the service's) a path outside it is refused before it is looked at."""
    from curation.io.policy import guard_problem

    if (why := guard_problem(path)) is not None:
        return f"{what} {path} {why}"
    if "://" in path or Path(path).expanduser().is_file():
        return None
    return f"{what} not found: {path}"


def null_means_defaults(data: Any, keys: tuple[str, ...]) -> Any:
    """`langid:` written with no value runs the stage with its defaults, as for filters; only a
    stage left out does not run."""
    if isinstance(data, dict):
        return {k: ({} if v is None and k in keys else v) for k, v in data.items()}
    return data


def key_errors(err: ValidationError) -> list[tuple[str, str]]:
    lines: list[tuple[str, str]] = []
    for e in err.errors():
        path = ".".join(str(p) for p in e["loc"] if p not in ("function-before", "function-after")) or "(top level)"
        sub = (e.get("ctx") or {}).get("error")
        if isinstance(sub, KeyErrors):
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


def validate_spec(model: type[BaseModel], data: Any, output: str | None = None) -> Any:
    """Validate a loaded spec with `model`; `output` overrides its output; errors name their key paths."""
    if not isinstance(data, dict):
        raise SpecError([("(top level)", f"expected a mapping at the top level, got {type(data).__name__}")])
    if output is not None:
        data = {**data, "output": output}
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise SpecError(key_errors(e)) from None
