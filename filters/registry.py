"""The heuristic filters by job-spec name: the built-in ones, then those installed packages register.

A package registers a filter with an entry point in the group `corpus_curation.filters`, e.g. in its
pyproject.toml `[project.entry-points."corpus_curation.filters"] toxic_words = "my_pkg.filters:ToxicWords"`;
the entry point's name is the filter's name in a spec (`stages.filters.toxic_words: {...}`) and must
equal the class's `name`. The class is a `filters.base.Filter` dataclass, validated like the built-in ones.
"""

from __future__ import annotations

import functools
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from filters.base import Filter

FILTER_GROUP = "corpus_curation.filters"
T = TypeVar("T")


def builtin_filters() -> dict[str, type[Filter]]:
    from filters.c4 import C4Quality
    from filters.domain import CodeQuality, MathQuality
    from filters.fineweb import FineWebQuality
    from filters.gopher_quality import GopherQuality
    from filters.gopher_repetition import GopherRepetition

    return {c.name: c for c in (GopherQuality, GopherRepetition, C4Quality, FineWebQuality, CodeQuality, MathQuality)}


def load_entry_points(group: str, base: type[T]) -> dict[str, type[T]]:
    """The classes installed packages register under `group`, by entry point name; a class that is not a
    `base`, or whose `name` differs from its entry point's, is an error naming the package."""
    out: dict[str, type[T]] = {}
    for ep in sorted(entry_points(group=group), key=lambda e: e.name):
        where = f"entry point {ep.name!r} of group {group} ({ep.value}"
        where += f", package {ep.dist.name})" if ep.dist is not None else ")"
        try:
            cls = ep.load()
        except Exception as e:  # a broken plugin must say which one it is
            raise ImportError(f"{where} cannot be loaded: {type(e).__name__}: {e}") from e
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise TypeError(f"{where} is not a subclass of {base.__module__}.{base.__qualname__}")
        if getattr(cls, "name", None) != ep.name:
            raise TypeError(f"{where}: its class's name is {getattr(cls, 'name', None)!r}, not {ep.name!r}")
        out[ep.name] = cls
    return out


@functools.lru_cache(maxsize=1)
def all_filters() -> dict[str, type[Filter]]:
    """Every filter a spec can name: built-in first, then plugins (a plugin may not reuse a built-in name)."""
    from filters.base import Filter

    out = builtin_filters()
    for name, cls in load_entry_points(FILTER_GROUP, Filter).items():
        if name in out:
            raise TypeError(f"filter plugin {cls.__module__}.{cls.__qualname__} reuses the built-in name {name!r}")
        out[name] = cls
    return out


def claimed_domains() -> frozenset[str]:
    """Domains some filter claims for itself: the filters with `domains` None do not see them."""
    return frozenset().union(*(c.domains for c in all_filters().values() if c.domains is not None))
