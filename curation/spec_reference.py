"""The job spec reference (docs/job-spec.md), generated from the spec models themselves.

Every key of every job kind, with its type, default and description, read from the pydantic models (and the
filters' dataclass fields), so the reference cannot drift from what the parser accepts: `tests/test_spec_reference.py`
fails when the committed page differs from a fresh one. Regenerate with
`python -m curation.spec_reference > docs/job-spec.md`. Stages, filters, readers and scorers of installed
plugins appear too, so a team can generate the page of its own environment.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import types
import typing
from typing import Any, Iterator, Literal, Union

from pydantic import BaseModel, RootModel
from pydantic_core import PydanticUndefined

_FIELD_COMMENT = re.compile(r"^    (\w+): [^=\n]+=[^#\n]+#\s*(.+)$", re.M)
HEADER = """# Job spec reference

Generated from the spec models by `python -m curation.spec_reference` (do not edit by hand; the test suite
checks it is current). A key is written as its path in the YAML: `a.b` is key `b` inside mapping `a`,
`inputs[]` an entry of the list `inputs`, `NAME` a key you choose. Unknown keys are errors that name their
path; `curate run --dry-run SPEC` prints a spec with every default filled in. docs/extending.md shows how a
plugin adds stages, filters, formats and scorers, which then appear here too.
"""


def _type_name(t: Any) -> str:
    origin = typing.get_origin(t)
    args = typing.get_args(t)
    if t is type(None):
        return "null"
    if origin is Literal:
        return " \\| ".join(json.dumps(a) for a in args)
    if origin in (Union, types.UnionType):
        return " \\| ".join(_type_name(a) for a in args)
    if origin in (list, tuple, set, frozenset):
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is dict:
        return f"mapping of {_type_name(args[1])}" if args else "mapping"
    if isinstance(t, type) and issubclass(t, BaseModel):
        return "mapping"
    if t is Any:
        return "any"
    return getattr(t, "__name__", str(t))


def _models_in(t: Any) -> list[tuple[str, type[BaseModel]]]:
    """(path suffix, model) for the mappings a field's type holds: `.` for a model, `.NAME.` for a mapping of
    models, `[].` for a list of them."""
    origin = typing.get_origin(t)
    if isinstance(t, type) and issubclass(t, BaseModel):
        return [(".", t)]
    if origin in (Union, types.UnionType):
        return [m for a in typing.get_args(t) for m in _models_in(a)]
    if origin is dict and isinstance(typing.get_args(t)[1], type) and issubclass(typing.get_args(t)[1], BaseModel):
        return [(".NAME.", typing.get_args(t)[1])]
    if origin is list and typing.get_args(t) and isinstance(typing.get_args(t)[0], type):
        if issubclass(typing.get_args(t)[0], BaseModel):
            return [("[].", typing.get_args(t)[0])]
    return []


def _default(field: Any) -> str:
    if field.default_factory is not None:
        try:
            value = field.default_factory()
        except TypeError:
            return ""
        if isinstance(value, BaseModel):
            return "(defaults below)"
        return _code(value)
    if field.default is PydanticUndefined:
        return "**required**"
    if isinstance(field.default, BaseModel):
        return "(defaults below)"
    return _code(field.default)


def _code(value: Any) -> str:
    return "`" + json.dumps(value, default=str).replace("|", "\\|") + "`"


def _cell(text: str | None) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")


def _rows(model: type[BaseModel], prefix: str) -> Iterator[tuple[str, str, str, str]]:
    if issubclass(model, RootModel):
        return
    for name, field in model.model_fields.items():
        key = prefix + name
        models = _models_in(field.annotation)
        desc = field.description or ("the job's kind" if key == "kind" else "")
        if not desc and models:  # a section: its model's docstring says what it is
            desc = (models[0][1].__doc__ or "").strip().split("\n\n")[0]
        yield key, _type_name(field.annotation), _default(field), _cell(desc)
        for suffix, sub in models:
            if not issubclass(sub, RootModel):
                yield from _rows(sub, key + suffix)


def _table(rows: list[tuple[str, str, str, str]]) -> list[str]:
    out = ["| key | type | default | description |", "|---|---|---|---|"]
    out += [f"| `{k}` | {t} | {d} | {desc} |" for k, t, d, desc in rows]
    return out


def _field_comments(cls: type) -> dict[str, str]:
    """A dataclass field's trailing comment is its description (`min_words: int = 50  # drop shorter ones`)."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    return {m.group(1): m.group(2).strip() for m in _FIELD_COMMENT.finditer(source)}


def _filters_section() -> list[str]:
    from filters.registry import all_filters

    out = ["", "### `stages.filters.NAME`", "", _cell(_doc("curation.stages.filters", "FiltersSpec")), ""]
    for name, cls in all_filters().items():
        doc = (cls.__doc__ or "").strip()
        where = "every domain no filter claims" if cls.domains is None else ", ".join(sorted(cls.domains))
        out += ["", f"#### `{name}` ({where})", "", _cell(doc), ""]
        rows = []
        comments = _field_comments(cls)
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]  # filters are dataclasses
            if f.init and not f.name.startswith("_"):
                default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[operator]
                t = f.type if isinstance(f.type, str) else _type_name(f.type)
                rows.append(
                    (f"stages.filters.{name}.{f.name}", _cell(str(t)), _code(default), _cell(comments.get(f.name)))
                )
        out += ["| key | type | default | description |", "|---|---|---|---|"]
        out += [f"| `{k}` | {t} | {d} | {desc} |" for k, t, d, desc in rows]
        if cls.reasons:
            out += ["", "Drop reasons: " + ", ".join(f"`{r}`" for r in cls.reasons) + "."]
    return out


def _doc(module: str, name: str) -> str:
    import importlib

    return (getattr(importlib.import_module(module), name).__doc__ or "").strip()


def _registry_lines() -> list[str]:
    from curation.io.formats import all_readers
    from filters.scorers import all_scorers

    out = ["", "## Input formats (`inputs[].format`)", ""]
    out += ["| format | files a folder input picks up | what it reads |", "|---|---|---|"]
    for name, r in all_readers().items():
        suffixes = ", ".join(f"`{s}`" for s in r.suffixes) if r.suffixes else "every file"
        out.append(f"| `{name}` | {suffixes} | {_cell(r.description)} |")
    out += ["", "## Quality scorers (`stages.quality.classifiers.NAME.scorer`)", ""]
    out += ["| scorer | needs `model` | options | what it scores |", "|---|---|---|---|"]
    for name, s in all_scorers().items():
        opts = ", ".join(f"`{k}`" for k in s.options_model.model_fields) or "none"
        out.append(f"| `{name}` | {'yes' if s.needs_model else 'no'} | {opts} | {_cell(s.description)} |")
    return out


def reference() -> str:
    """The whole page, as markdown."""
    from curation.kinds import KINDS
    from curation.stages.registry import all_stages

    lines = [HEADER]
    for kind in KINDS.values():
        lines += ["", f"## `kind: {kind.kind}` (`curate {kind.command} SPEC`)", ""]
        lines.append(_cell((kind.model.__doc__ or "").strip()))
        rows = [r for r in _rows(kind.model, "") if not r[0].startswith("stages.")]
        lines += [""] + _table(rows)
        if kind.kind == "curate":
            lines += ["", "### `stages` (in the order they run)", ""]
            for cls in all_stages():
                rows = list(_rows(cls.spec_model, f"stages.{cls.name}."))
                always = " (always runs)" if cls.always else ""
                lines += ["", f"#### `stages.{cls.name}`{always}", "", _cell(cls.description or cls.__doc__), ""]
                if rows:
                    lines += _table(rows)
                if cls.drop_reasons:
                    lines += ["", "Drop reasons: " + ", ".join(f"`{r}`" for r in cls.drop_reasons) + "."]
            lines += _filters_section()
    lines += _registry_lines()
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(reference(), end="")
