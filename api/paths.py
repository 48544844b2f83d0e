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


def check_paths(reads: list[tuple[str, str]], output: str, roots: list[str]) -> list[tuple[str, str]]:
    """(key path, message) for every path outside the roots: `reads` are (key, path) pairs the job reads
    (inputs, model files), `output` is where it writes."""
    errors = []
    for key, p in reads:
        if not os.path.isabs(p) and not _is_uri(p):
            errors.append((key, "must be an absolute path or a URI"))
        elif not inside_roots(p, roots):
            errors.append((key, "is outside the allowed roots"))
    if not os.path.isabs(output) and not _is_uri(output):
        errors.append(("output", "must be an absolute path or a URI"))
    elif not inside_roots(output, roots):
        errors.append(("output", "is outside the allowed roots"))
    return errors


def job_reads(job) -> list[tuple[str, str]]:
    """(key path, path) of everything a job of any kind reads: inputs, model files, weights and target files."""
    kind = getattr(job, "kind", "curate")
    if kind != "curate":
        reads = [(f"inputs.{i}", p) for i, p in enumerate(job.inputs)]
        if kind == "mix" and job.weights_file:
            reads.append(("weights_file", job.weights_file))
        if kind == "ablate" and job.target.files:
            reads += [(f"target.files.{i}", p) for i, p in enumerate(job.target.files)]
        if kind == "synthesize":
            from curation.synthesis.spec import model_reads

            reads += model_reads(job)
        return reads
    reads = [(f"inputs.{i}.path", inp.path) for i, inp in enumerate(job.inputs)]
    st = job.stages
    if st.langid is not None and st.langid.model:
        reads.append(("stages.langid.model", st.langid.model))
    if st.domain is not None and st.domain.model:
        reads.append(("stages.domain.model", st.domain.model))
    if st.quality is not None:
        reads += [(f"stages.quality.classifiers.{n}.model", c.model) for n, c in st.quality.classifiers.items()]
        if st.quality.perplexity is not None:
            reads.append(("stages.quality.perplexity.model", st.quality.perplexity.model))
    if st.urls is not None:
        reads += [(f"stages.urls.block_domains.{i}", p) for i, p in enumerate(st.urls.block_domains)]
        reads += [(f"stages.urls.allow_domains.{i}", p) for i, p in enumerate(st.urls.allow_domains or [])]
    if st.decontam is not None:
        reads += [(f"stages.decontam.benchmarks.{n}.path", b.path) for n, b in st.decontam.benchmarks.items()]
    return reads
