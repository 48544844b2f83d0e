"""A tiny streaming loader over a mixture's shards, for trainers (SPEC section 4).

    from mixtures.loader import MixtureLoader

    loader = MixtureLoader("OUT", rank=rank, world_size=world_size)   # OUT or OUT/manifest.json, or a URI
    for epoch in range(n_epochs):
        for ids in loader.token_ids(epoch):      # one list of Qwen token ids per document, EOT appended
            ...
        # or loader.documents(epoch): one dict per row (row_id, id, text, source, domain, lang, bucket, ...)

Order (the same on every machine, for any number of ranks):

- The global order of epoch `e` lists the shards in an order, then each shard's rows in file order.
  Epoch 0 takes the shards in manifest order, which is the writer's own (already globally shuffled)
  order. Every later epoch permutes them with
  `numpy.random.default_rng(numpy.random.SeedSequence([seed mod 2**64, e])).permutation(n_shards)`,
  where `seed` is the manifest's.
- Rank `r` of `world_size` gets the rows whose global index `i` has `i % world_size == r`. The ranks
  are disjoint, together they cover every row, and their counts differ by at most 1
  (`num_rows()`). Interleaving the ranks' sequences (rank 0's first row, rank 1's first, ...) gives
  back the global order.

Streaming: one shard at a time, in record batches (pyarrow `iter_batches`); the whole set is never
in memory. Every rank reads every shard it has rows in and keeps its stride, so with W ranks the set
is read W times in total; the loader is meant to be simple, not to split I/O.

Checks: a missing manifest, bad rank or world size, or a manifest without shards fail up front. A
shard whose row count (from its Parquet footer) differs from the manifest always fails, since the
rank assignment depends on those counts. With `verify=True` each shard's byte size and SHA-256 are
also checked against the manifest before anything is yielded from it.

The `epoch` argument is the trainer's pass over the mixture; the `epoch` column of each row is the
repetition of its document inside the mixture (a bucket repeated up to `max_epochs` times), which is
something else.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

MANIFEST = "manifest.json"
SCHEMA_VERSION = 1
BATCH_ROWS = 1024
_HASH_CHUNK = 1 << 22


class ManifestError(ValueError):
    """A manifest that cannot be used (bad JSON, unknown schema version, missing keys)."""


class ShardError(RuntimeError):
    """A shard that does not match its manifest entry (rows, bytes or sha256) or cannot be read."""


@dataclass(frozen=True)
class Shard:
    """One manifest entry, resolved: `uri` for messages, `fs` + `path` to read it."""

    index: int  # position in the manifest
    rel: str  # as the manifest names it
    uri: str
    fs: pafs.FileSystem
    path: str
    rows: int
    tokens: int | None
    nbytes: int | None
    sha256: str | None


def _filesystem_for(uri: str) -> tuple[pafs.FileSystem, str]:
    from curation.io.sources import filesystem_for

    return filesystem_for(uri)


def _is_int(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def shard_order(n_shards: int, seed: int, epoch: int) -> list[int]:
    """Manifest indices of the shards in epoch `epoch`'s global order (see the module docstring)."""
    if epoch == 0:
        return list(range(n_shards))
    rng = np.random.default_rng(np.random.SeedSequence([int(seed) % 2**64, int(epoch)]))
    return [int(i) for i in rng.permutation(n_shards)]


def _rank_rows(total: int, rank: int, world_size: int) -> int:
    """How many of the global indices 0..total-1 are congruent to rank mod world_size."""
    return max(0, (total - rank + world_size - 1) // world_size)


class MixtureLoader:
    """Deterministic, streaming reader of one rank's share of a mixture (see the module docstring).

    `manifest_path_or_dir`: the mixture's output folder, or its `manifest.json`, as a local path or a
    URI pyarrow.fs knows (s3://, gs://, file://). Shard paths in the manifest are relative to the
    manifest's folder (absolute paths and URIs are accepted as they are).
    """

    def __init__(
        self,
        manifest_path_or_dir: str | Any,
        rank: int = 0,
        world_size: int = 1,
        verify: bool = False,
        batch_rows: int = BATCH_ROWS,
    ):
        if not _is_int(world_size) or world_size < 1:
            raise ValueError(f"world_size must be an integer >= 1, got {world_size!r}")
        if not _is_int(rank) or not 0 <= rank < world_size:
            raise ValueError(f"rank must be an integer with 0 <= rank < world_size ({world_size}), got {rank!r}")
        if not _is_int(batch_rows) or batch_rows < 1:
            raise ValueError(f"batch_rows must be an integer >= 1, got {batch_rows!r}")
        self.rank, self.world_size, self.verify, self.batch_rows = int(rank), int(world_size), bool(verify), batch_rows
        self.manifest_uri, self.manifest = self._load_manifest(str(manifest_path_or_dir))
        self.seed = self.manifest["seed"]
        self.shards = self._resolve_shards()
        self.total_rows = sum(s.rows for s in self.shards)
        self._checked: set[int] = set()  # shards already verified in this process

    # -- manifest ------------------------------------------------------------------------------

    def _load_manifest(self, target: str) -> tuple[str, dict]:
        fs, path = _filesystem_for(target)
        info = fs.get_file_info(path)
        if info.type == pafs.FileType.Directory:
            path = posixpath.join(path, MANIFEST)
            target = target.rstrip("/") + "/" + MANIFEST
            info = fs.get_file_info(path)
        if info.type != pafs.FileType.File:
            raise FileNotFoundError(
                f"no mixture manifest at {target} (expected a mixture output folder "
                f"containing {MANIFEST}, or the {MANIFEST} itself)"
            )
        with fs.open_input_stream(path) as f:
            raw = f.read()
        try:
            manifest = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ManifestError(f"{target}: not valid JSON ({e})") from None
        if not isinstance(manifest, dict):
            raise ManifestError(f"{target}: expected a JSON object, got {type(manifest).__name__}")
        version = manifest.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ManifestError(
                f"{target}: schema_version {version!r} is not supported (this loader reads {SCHEMA_VERSION})"
            )
        if not _is_int(manifest.get("seed")):
            raise ManifestError(f"{target}: 'seed' must be an integer, got {manifest.get('seed')!r}")
        shards = manifest.get("shards")
        if not isinstance(shards, list) or not shards:
            raise ManifestError(f"{target}: 'shards' must be a non-empty list")
        self._fs, self._dir = fs, posixpath.dirname(path)
        self._dir_uri = target.rsplit("/", 1)[0] if "/" in target else "."
        return target, manifest

    def _resolve_shards(self) -> list[Shard]:
        out = []
        for i, entry in enumerate(self.manifest["shards"]):
            where = f"{self.manifest_uri}: shards[{i}]"
            if not isinstance(entry, dict) or not isinstance(entry.get("path"), str) or not entry["path"]:
                raise ManifestError(f"{where}: needs a 'path'")
            rows = entry.get("rows")
            if not _is_int(rows) or rows < 0:
                raise ManifestError(f"{where} ({entry['path']}): 'rows' must be an integer >= 0, got {rows!r}")
            rel = entry["path"]
            if "://" in rel:
                fs, path = _filesystem_for(rel)
                uri = rel
            elif rel.startswith("/"):
                fs, path, uri = self._fs, rel, rel
            else:
                fs, path = self._fs, posixpath.normpath(posixpath.join(self._dir, rel))
                uri = f"{self._dir_uri}/{rel}"
            out.append(
                Shard(i, rel, uri, fs, path, int(rows), entry.get("tokens"), entry.get("bytes"), entry.get("sha256"))
            )
        return out

    # -- order ---------------------------------------------------------------------------------

    def _check_epoch(self, epoch: int) -> int:
        if not _is_int(epoch) or epoch < 0:
            raise ValueError(f"epoch must be an integer >= 0, got {epoch!r}")
        return int(epoch)

    def shard_order(self, epoch: int = 0) -> list[Shard]:
        """The shards in epoch `epoch`'s global order."""
        epoch = self._check_epoch(epoch)
        return [self.shards[i] for i in shard_order(len(self.shards), self.seed, epoch)]

    def num_rows(self) -> int:
        """Rows this rank yields per epoch (the same for every epoch)."""
        return _rank_rows(self.total_rows, self.rank, self.world_size)

    def __len__(self) -> int:
        return self.num_rows()

    @property
    def tokenizer(self) -> dict:
        return self.manifest.get("tokenizer") or {}

    # -- reading -------------------------------------------------------------------------------

    def _check_shard(self, shard: Shard, pf: pq.ParquetFile) -> None:
        actual = pf.metadata.num_rows
        if actual != shard.rows:
            raise ShardError(f"shard {shard.uri}: {actual} rows in the file, the manifest says {shard.rows}")
        if not self.verify or shard.index in self._checked:
            return
        if not isinstance(shard.sha256, str) or not shard.sha256:
            raise ShardError(f"shard {shard.uri}: verify=True but the manifest has no sha256 for it")
        h, size = hashlib.sha256(), 0
        with shard.fs.open_input_stream(shard.path) as f:
            while chunk := f.read(_HASH_CHUNK):
                h.update(chunk)
                size += len(chunk)
        if _is_int(shard.nbytes) and size != shard.nbytes:
            raise ShardError(f"shard {shard.uri}: {size} bytes, the manifest says {shard.nbytes}")
        if h.hexdigest() != shard.sha256.lower():
            raise ShardError(
                f"shard {shard.uri}: sha256 {h.hexdigest()} does not match the manifest's "
                f"{shard.sha256} (the file changed after the mixture was written)"
            )
        self._checked.add(shard.index)

    def _open(self, shard: Shard) -> tuple[pq.ParquetFile, Any]:
        try:
            f = shard.fs.open_input_file(shard.path)
        except (FileNotFoundError, OSError) as e:
            raise ShardError(f"shard {shard.uri} cannot be opened: {e}") from e
        try:
            pf = pq.ParquetFile(f)
        except Exception as e:  # pyarrow raises ArrowInvalid for a file that is not Parquet
            f.close()
            raise ShardError(f"shard {shard.uri} is not a readable Parquet file: {e}") from e
        return pf, f

    def _batches(self, epoch: int, columns: Sequence[str] | None, start: int) -> Iterator[pa.RecordBatch]:
        """This rank's rows of epoch `epoch`, as record batches, skipping its first `start` rows."""
        epoch = self._check_epoch(epoch)
        if not _is_int(start) or start < 0:
            raise ValueError(f"start must be an integer >= 0, got {start!r}")
        w, r = self.world_size, self.rank
        offset = 0  # global index of the shard's first row
        skip = int(start)
        for shard in self.shard_order(epoch):
            first, mine = (r - offset) % w, 0  # local index of this rank's first row in the shard
            if first < shard.rows:
                mine = (shard.rows - first + w - 1) // w
            if mine <= skip:  # nothing to read here (no rows for this rank, or already consumed)
                skip -= mine
                offset += shard.rows
                continue
            pf, f = self._open(shard)
            try:
                self._check_shard(shard, pf)
                local = 0  # local index of the current batch's first row
                for batch in pf.iter_batches(batch_size=self.batch_rows, columns=list(columns) if columns else None):
                    n = batch.num_rows
                    j0 = (r - offset - local) % w
                    if w > 1 or skip:
                        idx = np.arange(j0, n, w)
                        if skip:
                            dropped = min(skip, len(idx))
                            idx, skip = idx[dropped:], skip - dropped
                        batch = batch.take(pa.array(idx, pa.int64())) if len(idx) < n else batch
                    local += n
                    if batch.num_rows:
                        yield batch
            finally:
                f.close()
            offset += shard.rows

    def documents(
        self, epoch: int = 0, *, columns: Sequence[str] | None = None, start: int = 0
    ) -> Iterator[dict[str, Any]]:
        """This rank's rows of epoch `epoch`, one dict per row (all columns, or `columns`).

        `start` skips this rank's first `start` rows of the epoch (to resume), without reading the
        shards they fill entirely."""
        for batch in self._batches(epoch, columns, start):
            yield from batch.to_pylist()

    def token_ids(self, epoch: int = 0, append_eot: bool = True, *, start: int = 0) -> Iterator[list[int]]:
        """This rank's documents of epoch `epoch` as Qwen token ids (`mixtures.tokenizer.encode`, ordinary
        text: a literal "<|endoftext|>" in a text is encoded as text), each followed by the EOT token."""
        from mixtures.tokenizer import encode, eot_token, vocab_sha256

        want = self.tokenizer.get("vocab_sha256")
        if want and want != vocab_sha256():
            raise ManifestError(
                f"{self.manifest_uri}: the mixture was counted with vocabulary sha256 {want}, but "
                f"this tokenizer's is {vocab_sha256()}; token ids would not match its n_tokens"
            )
        eot = eot_token()
        for batch in self._batches(epoch, ["text"], start):
            for ids in encode(batch.column(0).to_pylist()):
                if append_eot:
                    ids.append(eot)
                yield ids
