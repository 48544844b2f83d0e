"""Find the input files a job names, on any filesystem pyarrow.fs knows (local, s3://, gs://).

Discovery runs before any work: an input that matches nothing or cannot be listed fails the job up
front with the path and the reason, instead of a job that "succeeds" on no data.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.fs as pafs

from curation.io.files import InputError, InputFile, filesystem_for  # noqa: F401 (importers use these names)
from curation.io.formats import reader_for
from curation.io.input_spec import InputSpec
from curation.io.policy import PathRefused, active_policy

if TYPE_CHECKING:
    from curation.spec import CurateJob

_GLOB_CHARS = set("*?[")


@functools.lru_cache(maxsize=64)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    """Shell-style glob: `*` and `?` stay within one folder, `**` spans folders, `[...]` as usual."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = pattern.find("]", i + 1)
            if j == -1:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : j]
                out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
                i = j
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


def _split_glob(path: str) -> tuple[str, str | None]:
    parts = path.split("/")
    for i, part in enumerate(parts):
        if _GLOB_CHARS & set(part):
            return "/".join(parts[:i]) or "/", "/".join(parts[i:])
    return path, None


def _matches_format(path: str, fmt: str) -> bool:
    suffixes = reader_for(fmt).suffixes
    name = path.rsplit("/", 1)[-1]
    if name.startswith((".", "_")):
        return False
    return suffixes is None or name.lower().endswith(suffixes)


def _walk_local(base: str, policy=None) -> tuple[list[str], set[str]]:
    """Files under a local folder, following symlinks but never into a folder already walked (a link
    loop, or two links to one folder), each file once (by its real path); and the dangling links. Under a
    path policy, a link out of the allowed roots is refused (InputError) instead of followed."""
    files, dangling = [], set()
    seen_dirs, seen_files = set(), set()
    stack = [base]
    while stack:
        folder = stack.pop()
        real = os.path.realpath(folder)
        if real in seen_dirs:
            continue
        if policy is not None and (why := policy.problem(folder)) is not None:
            raise InputError(f"{folder} (really {real}) {why}")
        seen_dirs.add(real)
        with os.scandir(folder) as entries:
            for e in sorted(entries, key=lambda e: e.name, reverse=True):
                try:
                    is_dir, is_file = e.is_dir(follow_symlinks=True), e.is_file(follow_symlinks=True)
                except OSError:  # a cycle of file links (ELOOP): listed, and its read fails into quarantine
                    is_dir = is_file = False
                if is_dir:
                    stack.append(e.path)
                elif is_file:
                    target = os.path.realpath(e.path)
                    if target not in seen_files:
                        seen_files.add(target)
                        files.append(e.path)
                elif e.is_symlink() and not os.path.exists(e.path):
                    files.append(e.path)
                    dangling.add(e.path)
    return files, dangling


def list_input(spec: InputSpec) -> list[tuple[str, str, str]]:
    """(uri, fs path, relative path) of every file one input entry names, sorted by path."""
    try:
        fs, path = filesystem_for(spec.path)
    except PathRefused as e:
        raise InputError(f"input {spec.path!r}: {e}") from None
    scheme = spec.path.split("://", 1)[0] + "://" if "://" in spec.path else ""
    # URI options (`s3://b/k?endpoint_override=...&scheme=http`) must stay on every file's URI, or the
    # readers would reopen the files with the default endpoint and credentials lookup.
    query = "?" + spec.path.split("?", 1)[1] if scheme and "?" in spec.path else ""
    base, pattern = _split_glob(path)
    try:
        info = fs.get_file_info(base)
    except OSError as e:
        raise InputError(f"input {spec.path!r}: cannot access {base!r}: {e}") from None
    if info.type == pafs.FileType.NotFound:
        raise InputError(f"input {spec.path!r}: {base!r} does not exist")
    dangling: set[str] = set()
    if info.type == pafs.FileType.File and pattern is None:
        found = [(base, base.rsplit("/", 1)[-1])]
    else:
        try:
            if scheme:
                paths = [
                    fi.path
                    for fi in fs.get_file_info(pafs.FileSelector(base, recursive=True))
                    if fi.type == pafs.FileType.File
                ]
            else:
                paths, dangling = _walk_local(base, active_policy())
        except OSError as e:
            raise InputError(f"input {spec.path!r}: cannot list {base!r}: {e}") from None
        found = []
        for fpath in paths:
            rel = fpath[len(base) :].lstrip("/")
            if pattern is not None and not _glob_regex(pattern).match(rel):
                continue
            if pattern is None and not _matches_format(fpath, spec.format):
                continue
            found.append((fpath, rel))
    found.sort()
    if not found:
        raise InputError(f"input {spec.path!r}: no {spec.format} files found")
    if (policy := active_policy()) is not None:
        for p, _ in found:  # after expansion: a symlinked file out of a root, a glob into another's output
            if (why := policy.problem(scheme + p + query if scheme else p)) is not None:
                raise InputError(f"input {spec.path!r}: {p} {why}")
    for p, _ in found:
        # A dangling symlink stays in the list: reading it fails, and its quarantine row names it.
        if "://" not in spec.path and p not in dangling and not os.access(p, os.R_OK):
            raise InputError(f"input {spec.path!r}: {p} is not readable (permission denied)")
    return [(scheme + p + query if scheme else p, p, rel) for p, rel in found]


def _versions(spec: InputSpec, paths: list[str]) -> list[str | None]:
    """`size:mtime_ns` of each listed file of one input entry, in one call on its filesystem (None where it
    cannot be read: the reader then quarantines it)."""
    if not paths:
        return []
    fs, _ = filesystem_for(spec.path)
    try:
        infos = fs.get_file_info(paths)
    except OSError:
        return [None] * len(paths)
    return [f"{i.size}:{i.mtime_ns}" if i.type == pafs.FileType.File else None for i in infos]


def discover(job: CurateJob, progress: Any = None) -> list[InputFile]:
    """Every input file of the job, numbered; fails up front on inputs that name nothing readable. Files
    inside the job's own output folder are never inputs (an output under an input folder would otherwise be
    read back on the next run); how many were passed over is said."""
    from curation.io.policy import path_key

    out_key = path_key(job.output)
    files: list[InputFile] = []
    seen: set[str] = set()
    skipped = 0
    for i, spec in enumerate(job.inputs):
        listed, inside_output = [], 0
        for uri, path, rel in list_input(spec):
            if uri in seen:
                continue  # two globs naming one file must not read it twice
            if not out_key.error and path_key(uri).within(out_key.key):
                inside_output += 1
                continue
            seen.add(uri)
            listed.append((uri, path, rel))
        skipped += inside_output
        if inside_output and not listed:
            raise InputError(f"input {spec.path!r}: every file it names lies in the job's output {job.output}")
        for (uri, path, rel), version in zip(listed, _versions(spec, [p for _, p, _ in listed])):
            files.append(
                InputFile(
                    len(files),
                    uri,
                    path,
                    rel,
                    i,
                    spec.format,
                    spec.source,
                    spec.domain,
                    spec.text_field,
                    spec.id_field,
                    version,
                    max_records=spec.max_records,
                    sample=(spec.sample_fraction, spec.sample_seed) if spec.sample_fraction is not None else None,
                    instruction=spec.instruction,
                    url_field=spec.url_field,
                )
            )
    if skipped and progress is not None:
        progress.say(f"{skipped} file(s) under the output folder {job.output} are not read as input")
    files = split_large_files(files, job.execution.split_bytes, progress)
    if len(files) >= 1 << 31:
        raise InputError(f"{len(files)} input files: at most 2^31 are supported")
    return files


def _jsonl_compression(path: str) -> str | None:
    p = path.lower()
    return "gzip" if p.endswith(".gz") else "zstd" if p.endswith((".zst", ".zstd")) else None


def split_large_files(files: list[InputFile], split_bytes: int | None, progress: Any = None) -> list[InputFile]:
    """Large files as several read tasks: plain JSONL by byte ranges, Parquet by row-group ranges of about
    `split_bytes` each; every split gets its own ordinal (so its own part names, done marker and document
    numbers), in file order. Compressed JSONL cannot be entered mid-stream and WARC has no index here:
    those are read whole, and said."""
    if not split_bytes:
        return files
    out: list[InputFile] = []
    whole = []
    for f in files:
        size = f.size or 0
        ranged: list[tuple[tuple[int, int], int]] = []
        if size > split_bytes and f.format == "jsonl" and _jsonl_compression(f.path) is None:
            ranged = [
                ((a, min(a + split_bytes, size)), min(a + split_bytes, size) - a) for a in range(0, size, split_bytes)
            ]
        elif size > split_bytes and f.format == "parquet":
            ranged = _row_group_ranges(f, split_bytes)
        elif size > split_bytes:
            whole.append(f.uri)
        if len(ranged) <= 1:
            out.append(dataclasses.replace(f, ordinal=len(out)))
            continue
        for r, nbytes in ranged:
            out.append(dataclasses.replace(f, ordinal=len(out), split=r, split_size=nbytes))
    if whole and progress is not None:
        progress.say(
            f"{len(whole)} file(s) over split_bytes are read by one task each (compressed JSONL or "
            f"WARC cannot be split here), e.g. {whole[0]}"
        )
    return out


def _row_group_ranges(f: InputFile, split_bytes: int) -> list[tuple[tuple[int, int], int]]:
    """Consecutive row groups of about `split_bytes` (uncompressed) each, with the share of the file's bytes
    each covers; a file that cannot be read is left whole, so its reader quarantines it as usual."""
    import pyarrow.parquet as pq

    try:
        fs, path = filesystem_for(f.uri)
        with fs.open_input_file(path) as fh:
            meta = pq.ParquetFile(fh).metadata
            sizes = [meta.row_group(i).total_byte_size for i in range(meta.num_row_groups)]
    except (OSError, ValueError, pa.ArrowException):
        return []
    bounds, start, acc = [], 0, 0
    for i, n in enumerate(sizes):
        acc += n
        if acc >= split_bytes:
            bounds.append((start, i + 1))
            start, acc = i + 1, 0
    if start < len(sizes):
        bounds.append((start, len(sizes)))
    total = max(1, sum(sizes))
    return [((a, b), (f.size or 0) * sum(sizes[a:b]) // total) for a, b in bounds]
