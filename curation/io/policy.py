"""Where a job may read and write: one path policy, checked where paths are opened.

The service (`curate serve`) gives every job it submits a policy: the operator's roots, the outputs of
other users' jobs (which this job may neither read nor write), and whether object-store URIs may carry
their own options (`?endpoint_override=...`). It travels in the job's environment (`CURATION_PATH_POLICY`,
JSON) to the driver and every worker, and `filesystem_for`, input discovery (after glob expansion) and
the model loaders check each path against it. A job run by hand (`curate run`) has no policy and
reads whatever its user can.

A path is judged after the normalizations the readers and writers apply: local paths through
`os.path.abspath` (which collapses `ROOT/*/../..`, as `filesystem_for` does) and then `realpath` (symlinks
resolved, so a link out of a root is outside it), object-store URIs percent-decoded the way pyarrow
decodes them (`%2e%2e` is `..`), with `.`/`..` segments refused outright.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import os
from dataclasses import dataclass, field
from typing import Any, Iterator
from urllib.parse import unquote, urlsplit

ENV = "CURATION_PATH_POLICY"
_GLOB_CHARS = "*?["


class PathRefused(PermissionError):
    """A path the job's policy does not allow (a PermissionError, so I/O handlers report it cleanly)."""


def is_uri(path: str) -> bool:
    return "://" in path


def _local_key(path: str) -> str:
    """abspath (as filesystem_for does), then realpath of the part before the first glob character."""
    path = os.path.abspath(os.path.expanduser(path))
    parts = path.split(os.sep)
    for i, part in enumerate(parts):
        if any(c in part for c in _GLOB_CHARS):
            fixed = os.path.realpath(os.sep.join(parts[:i]) or os.sep)
            return os.sep.join([fixed.rstrip(os.sep), *parts[i:]])
    return os.path.realpath(path)


@dataclass(frozen=True)
class PathKey:
    """A path in one comparable form: `scheme://netloc/decoded/path` (local: `/real/path`), and its query."""

    key: str
    query: str = ""
    error: str | None = None

    def within(self, other: str) -> bool:
        """This path is `other` or lies under it."""
        base = other.rstrip("/")
        return self.key == base or self.key.startswith(base + "/")


def path_key(path: str) -> PathKey:
    """The normalized form of a local path or URI (see the module docstring); `error` says why a path cannot be
    judged at all (then it is refused)."""
    if "\x00" in path:
        return PathKey("", error="contains a NUL character")
    if not is_uri(path):
        return PathKey(_local_key(path))  # relative to the working directory, as filesystem_for opens it
    p = urlsplit(path)
    scheme = p.scheme.lower()
    decoded = unquote(p.path)
    if scheme == "file":
        if p.query or p.netloc not in ("", "localhost"):
            return PathKey("", error="file:// URIs take neither a host nor options")
        return PathKey(_local_key(decoded or "/"))
    if "\x00" in decoded:
        return PathKey("", error="contains a NUL character")
    if any(s in ("..", ".") for s in decoded.split("/")):
        return PathKey("", error="may not contain '.' or '..' segments (percent-encoded ones included)")
    if not p.netloc:
        return PathKey("", error="names no bucket or host")
    return PathKey(f"{scheme}://{p.netloc}{decoded}".rstrip("/"), p.query)


@dataclass(frozen=True)
class PathPolicy:
    """The operator's roots, the folders this job may not touch (other users' job outputs), and whether URIs
    may carry options of their own."""

    roots: tuple[str, ...]
    deny: tuple[str, ...] = ()
    allow_uri_options: bool = False
    _root_keys: tuple[PathKey, ...] = field(default=(), compare=False, repr=False)
    _deny_keys: tuple[str, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_root_keys", tuple(path_key(r) for r in self.roots))
        object.__setattr__(self, "_deny_keys", tuple(path_key(d).key for d in self.deny))

    def problem(self, path: str, *, deny: bool = True) -> str | None:
        """Why `path` (a file, folder or glob) is not allowed, or None; `deny=False` judges the roots and URI
        options only (the service checks a new output against other jobs' outputs in its store)."""
        if not is_uri(path) and not os.path.isabs(os.path.expanduser(path)):
            return "must be an absolute path or a URI"  # the service's working directory is no place to name
        k = path_key(path)
        if k.error:
            return k.error
        root = next((r for r in self._root_keys if not r.error and k.within(r.key)), None)
        if root is None:
            return "is outside the allowed roots"
        if k.query and k.query != root.query and not self.allow_uri_options:
            return (
                "may not carry URI options ('?...'): the service's roots set the storage options "
                f"(allowed here: {'?' + root.query if root.query else 'none'})"
            )
        for d in self._deny_keys if deny else ():
            if k.within(d):
                return "lies in the output of another user's job"
        return None

    def require(self, path: str) -> None:
        """Raise PathRefused when `path` is not allowed."""
        if (why := self.problem(path)) is not None:
            raise PathRefused(f"{path}: {why}")

    def to_json(self) -> str:
        return json.dumps(
            {"roots": list(self.roots), "deny": list(self.deny), "allow_uri_options": self.allow_uri_options}
        )

    @classmethod
    def from_json(cls, text: str) -> "PathPolicy":
        d = json.loads(text)
        return cls(tuple(d["roots"]), tuple(d.get("deny", ())), bool(d.get("allow_uri_options", False)))


@functools.lru_cache(maxsize=4)
def _parsed(text: str) -> PathPolicy:
    return PathPolicy.from_json(text)


def active_policy() -> PathPolicy | None:
    """The policy this process runs under (from the environment), or None for jobs run by hand."""
    text = os.environ.get(ENV)
    return _parsed(text) if text else None


def require_allowed(path: str) -> None:
    """Refuse `path` if this process runs under a policy that does not allow it (no-op otherwise)."""
    policy = active_policy()
    if policy is not None:
        policy.require(str(path))


_GUARD: contextvars.ContextVar[PathPolicy | None] = contextvars.ContextVar("curation_path_guard", default=None)


@contextlib.contextmanager
def guarding(policy: PathPolicy | None) -> Iterator[None]:
    """While validating a spec, judge paths by `policy` before looking at them: the service must not say
    whether a file outside its roots exists (`model not found` would be an existence oracle)."""
    token = _GUARD.set(policy)
    try:
        yield
    finally:
        _GUARD.reset(token)


def guard_problem(path: str) -> str | None:
    """Why the policy in force (a spec being validated by the service, or this job's) refuses `path`."""
    policy = _GUARD.get() or active_policy()
    return policy.problem(str(path)) if policy is not None else None


def declared_reads(job: Any) -> list[tuple[str, str]]:
    """(key path, path) of every file or folder a job of any kind names to read: inputs, model files, lists,
    weights and target files, as the job's own model declares them (`declared_reads()`; a curate job's
    stages each declare theirs). One list for the service's check at submission and the job's at start."""
    return job.declared_reads()


def require_declared_reads(job: Any, *, skip_inputs: bool = False) -> None:
    """At job start (and when a worker loads its models): every declared read allowed by this job's policy."""
    policy = active_policy()
    if policy is None:
        return
    for key, p in declared_reads(job):
        if skip_inputs and key.startswith("inputs."):
            continue
        if (why := policy.problem(p)) is not None:
            raise PathRefused(f"{key}: {p} {why}")
