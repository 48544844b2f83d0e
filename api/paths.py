"""Input and output paths of submitted jobs must stay inside the configured roots.

Local paths are resolved (symlinks, `..`) before the check, so `root/../etc` or a symlink out of a
root is refused; object-store URIs may not contain `..` or `.` segments and must start with a root.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit


def _is_uri(path: str) -> bool:
    return "://" in path


def _strip_query(uri: str) -> str:
    return uri.split("?", 1)[0]


def inside_roots(path: str, roots: list[str]) -> bool:
    """Whether `path` (a file, folder or glob) lies inside one of `roots`."""
    if _is_uri(path):
        p = urlsplit(_strip_query(path))
        segments = p.path.split("/")
        if any(s in ("..", ".") for s in segments):
            return False
        target = f"{p.scheme}://{p.netloc}{p.path}"
        for root in roots:
            if not _is_uri(root):
                continue
            r = _strip_query(root).rstrip("/") + "/"
            if target == r.rstrip("/") or target.startswith(r):
                return True
        return False
    if "\x00" in path:
        return False
    # The fixed part of a glob decides where it can reach.
    fixed = []
    for part in path.split(os.sep):
        if any(c in part for c in "*?["):
            break
        fixed.append(part)
    real = os.path.realpath(os.sep.join(fixed) or os.sep)
    for root in roots:
        if _is_uri(root):
            continue
        r = os.path.realpath(root)
        if real == r or real.startswith(r.rstrip(os.sep) + os.sep):
            return True
    return False


def check_job_paths(inputs: list[str], output: str, roots: list[str]) -> list[tuple[str, str]]:
    """(key path, message) for every path outside the roots."""
    errors = []
    for i, p in enumerate(inputs):
        if not os.path.isabs(p) and not _is_uri(p):
            errors.append((f"inputs.{i}.path", "must be an absolute path or a URI"))
        elif not inside_roots(p, roots):
            errors.append((f"inputs.{i}.path", "is outside the allowed roots"))
    if not os.path.isabs(output) and not _is_uri(output):
        errors.append(("output", "must be an absolute path or a URI"))
    elif not inside_roots(output, roots):
        errors.append(("output", "is outside the allowed roots"))
    return errors
