"""`curate mix` as steps over pool parts, with no process holding the pool (`curation.exchange.Steps`).

1. count: one pool part per curated file (`mixtures.pool`), by the counting actors.
2. stats: tokens and documents per bucket, per part; the driver adds them up (buckets x files numbers).
3. ids: id hashes routed by hash partition; each partition reports its repeats (checked on the ids).
4. select: for buckets with a remainder, hash-bin histograms per part, merged per bucket; the bin where
   the prefix ends is read and cut per bucket; the later bins' small documents finish the first fit.
   The driver ends with per bucket: full epochs, the boundary bin and the last prefix document, and the
   few documents first fit took (`mixtures.select`).
5. shards: each curated file is read once; its selected copies (an epoch each) get a seeded hash, which
   names their shard (hash mod shards) and their place in it; a task per shard sorts and writes it, with
   its token files. Bytes read: the curated files' columns once, plus the routed rows.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Callable, Sequence

import numpy as np

from curation.exchange import Inbox, Steps, inboxes
from mixtures import select as sel
from mixtures.pool import read_part

IDS_PER_PARTITION = 4_000_000


def _stats(layout: Any, path: str, min_tokens: int) -> list[Any]:
    """Per bucket and per language of one part: tokens, documents, bytes, characters."""
    t = read_part(layout, path, ["bucket", "lang", "n_tokens", "n_bytes", "n_chars"], min_tokens)
    out: dict[str, dict[str, tuple[int, ...]]] = {"bucket": {}, "lang": {}}
    if len(t):
        for key in ("bucket", "lang"):
            g = t.group_by(key).aggregate(
                [("n_tokens", "sum"), ("n_tokens", "count"), ("n_bytes", "sum"), ("n_chars", "sum")]
            )
            out[key] = {
                k: (int(n), int(c), int(b), int(ch))
                for k, n, c, b, ch in zip(
                    g[key].to_pylist(),
                    g["n_tokens_sum"].to_pylist(),
                    g["n_tokens_count"].to_pylist(),
                    g["n_bytes_sum"].to_pylist(),
                    g["n_chars_sum"].to_pylist(),
                )
            }
    return [out]


def pool_stats(
    steps: Steps, layout: Any, parts: list[str], min_tokens: int = 0
) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, dict[str, float]]]]:
    """Per bucket: tokens and documents (of at least min_tokens tokens); and the tokenizer's compression
    (tokens, bytes, characters, tokens per byte and per character) per bucket and per language."""
    _, per_part = steps.run("stats", _stats, [(layout, p, min_tokens) for p in parts], [])
    sums: dict[str, dict[str, list[int]]] = {
        "bucket": defaultdict(lambda: [0, 0, 0, 0]),
        "lang": defaultdict(lambda: [0, 0, 0, 0]),
    }
    for (d,) in per_part:
        for key in ("bucket", "lang"):
            for k, vals in d[key].items():
                acc = sums[key][k]
                for i, v in enumerate(vals):
                    acc[i] += v
    available = {b: {"tokens": v[0], "documents": v[1]} for b, v in sums["bucket"].items()}
    compression = {
        f"by_{key}": {
            k: {
                "tokens": v[0],
                "documents": v[1],
                "bytes": v[2],
                "chars": v[3],
                "tokens_per_byte": round(v[0] / v[2], 4) if v[2] else None,
                "tokens_per_char": round(v[0] / v[3], 4) if v[3] else None,
            }
            for k, v in sorted(sums[key].items())
        }
        for key in ("bucket", "lang")
    }
    return available, compression


def _id_keys(layout: Any, path: str, file_no: int, partitions: int) -> list[Any]:
    t = read_part(layout, path, ["row", "id_hash"])
    h = t["id_hash"].to_numpy()
    f = {"h": h, "file": np.full(len(h), file_no, np.int64), "row": t["row"].to_numpy()}
    part = (h % np.uint64(partitions)).astype(np.int64)
    order = np.argsort(part, kind="stable")
    bounds = np.searchsorted(part[order], np.arange(partitions + 1))
    return [{k: v[order[bounds[i] : bounds[i + 1]]] for k, v in f.items()} for i in range(partitions)]


def _repeats(*frames: dict[str, np.ndarray]) -> list[Any]:
    """Rows whose id hash repeats in this partition: (count of repeated hashes, up to 20 (file, row) pairs)."""
    h = np.concatenate([f["h"] for f in frames])
    file = np.concatenate([f["file"] for f in frames])
    row = np.concatenate([f["row"] for f in frames])
    order = np.argsort(h, kind="stable")
    h, file, row = h[order], file[order], row[order]
    dup = np.flatnonzero(h[1:] == h[:-1])
    pairs = [((int(file[i]), int(row[i])), (int(file[i + 1]), int(row[i + 1]))) for i in dup[:20].tolist()]
    return [(int(len(dup)), pairs)]


def repeated_ids(steps: Steps, layout: Any, parts: list[str], documents: int) -> tuple[int, list[str]]:
    """(how many ids repeat across the pool, examples): hashes compared per partition, then the few
    colliding rows' ids read back, so a hash collision is not taken for a repeat."""
    import pyarrow.parquet as pq

    R = max(1, math.ceil(documents / IDS_PER_PARTITION))
    (keys,), _ = steps.run("ids", _id_keys, [(layout, p, i, R) for i, p in enumerate(parts)], [R])
    _, found = steps.run("repeats", _repeats, [(box,) for box in inboxes(keys, len(parts), R)], [])
    steps.drop("ids")
    count = sum(c for ((c, _),) in found)
    if not count:
        return 0, []
    examples, real = [], 0
    for ((_, pairs),) in found:
        for (fa, ra), (fb, rb) in pairs:
            a = pq.read_table(parts[fa], columns=["id"], filesystem=layout.fs)["id"][ra].as_py()
            b = pq.read_table(parts[fb], columns=["id"], filesystem=layout.fs)["id"][rb].as_py()
            if a == b:
                real += 1
                examples.append(a)
    # Only the sampled pairs are checked on their ids; when every sample is a repeat, so is the rest.
    return (count if real else 0), sorted(set(examples))[:5]


def _hist(layout: Any, path: str, buckets: list[str], seed: int, min_tokens: int) -> list[Any]:
    return sel.bucket_histogram(read_part(layout, path, ["id_hash", "bucket", "n_tokens"], min_tokens), buckets, seed)


def _rows_in_bins(
    layout: Any,
    path: str,
    file_no: int,
    buckets: list[str],
    lo: list[int],
    hi: list[int],
    max_tokens: list[int],
    seed: int,
    min_tokens: int,
) -> list[Any]:
    t = read_part(layout, path, ["row", "id_hash", "bucket", "n_tokens"], min_tokens)
    return sel.rows_in_bins(t, file_no, buckets, lo, hi, max_tokens, seed)


def _merge(*frames: Any) -> list[Any]:
    return [sel.merge_histograms(*frames)]


def select_remainders(
    steps: Steps,
    layout: Any,
    parts: list[str],
    plans: dict[str, tuple[int, int, float]],
    seed: int,
    min_tokens: int = 0,
) -> tuple[dict[str, dict[str, Any]], dict[int, np.ndarray]]:
    """Per bucket the decision `selected_epochs` applies (full, rest, k, cut) and its remainder tokens; and
    per file the rows first fit (or the last step) took. Same choice as `select` on the whole pool."""
    decisions = {
        b: {"full": full, "rest": rest, "k": 0, "cut": None, "tokens": 0} for b, (full, rest, _) in plans.items()
    }
    picks: dict[int, list[np.ndarray]] = defaultdict(list)
    rest_b = sorted(b for b, (_, rest, _) in plans.items() if rest)
    if rest_b:
        B = len(rest_b)
        (hists,), _ = steps.run("hist", _hist, [(layout, p, rest_b, seed, min_tokens) for p in parts], [B])
        _, merged = steps.run("merge", _merge, [(box,) for box in inboxes(hists, len(parts), B)], [])
        steps.drop("hist")
        bounds = [sel.boundary_bin(m[0]["tokens"], plans[b][1]) for b, m in zip(rest_b, merged)]
        ks = [k for k, _ in bounds]
        (rows,), _ = steps.run(
            "boundary",
            _rows_in_bins,
            [
                (layout, p, i, rest_b, ks, ks, [np.iinfo(np.int64).max] * B, seed, min_tokens)
                for i, p in enumerate(parts)
            ],
            [B],
        )
        _, cuts = steps.run(
            "cut",
            sel.cut_bucket,
            [(plans[b][1], before, box) for b, (_, before), box in zip(rest_b, bounds, inboxes(rows, len(parts), B))],
            [],
        )
        steps.drop("boundary")
        cuts = [c[0] for c in cuts]
        gaps = [c["gap"] for c in cuts]
        if any(g > 0 for g in gaps):
            lo = [k + 1 if g > 0 else sel.BINS for k, g in zip(ks, gaps)]
            (tail,), _ = steps.run(
                "tail",
                _rows_in_bins,
                [
                    (layout, p, i, rest_b, lo, [sel.BINS - 1] * B, [max(0, 2 * g - 1) for g in gaps], seed, min_tokens)
                    for i, p in enumerate(parts)
                ],
                [B],
            )
            _, fins = steps.run(
                "finish",
                sel.finish_bucket,
                [
                    (plans[b][1], plans[b][2], c["gap"], c["left"], box)
                    for b, c, box in zip(rest_b, cuts, inboxes(tail, len(parts), B))
                ],
                [],
            )
            steps.drop("tail")
        else:
            fins = [[{"picks": {"file": np.zeros(0, np.int64), "row": np.zeros(0, np.int64)}, "gap": 0}]] * B
        for b, (k, _), c, (fin,) in zip(rest_b, bounds, cuts, fins):
            decisions[b].update(k=k, cut=c["cut"], tokens=plans[b][1] - fin["gap"])
            for p in (c["picks"], fin["picks"]):
                for f in np.unique(p["file"]).tolist():
                    picks[int(f)].append(p["row"][p["file"] == f])
    return decisions, {f: np.concatenate(r) for f, r in picks.items()}


def _route(
    layout: Any,
    path: str,
    file_uri: str,
    file_no: int,
    decisions: dict[str, dict[str, Any]],
    picks: np.ndarray,
    seed: int,
    shards: int,
    min_tokens: int,
    with_ids: bool,
) -> list[Any]:
    from mixtures.shards import route_copies

    t = read_part(layout, path, ["row", "id", "id_hash", "bucket", "n_tokens", "synthetic"], min_tokens)
    epochs = sel.selected_epochs(t, file_no, decisions, picks, seed)
    return route_copies(file_uri, file_no, t, epochs, seed, shards, (layout.fs, path) if with_ids else None)


def write_shards(
    steps: Steps,
    layout: Any,
    prefix: str,
    files: list[str],
    parts: list[str],
    decisions: dict[str, dict[str, Any]],
    picks: dict[int, np.ndarray],
    seed: int,
    shards: int,
    formats: Sequence[str],
    min_tokens: int = 0,
    pack_len: int | None = None,
    report: Callable[[str], None] = lambda m: None,
) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, int], list[dict[str, Any]]]:
    """The shard step (5). Returns the shards' manifest entries (empty shards are not written), per
    bucket the selected and synthetic tokens, the step's bytes read (curated columns and kept token
    ids, routed rows) and written (shards, token files, packed files), and with `pack_len` each
    shard's packed sequences (`mixtures.shards.pack_shard`)."""
    from mixtures.shards import write_shard

    empty = np.zeros(0, np.int64)
    with_ids = bool(set(formats) - {"parquet"}) or bool(pack_len)
    (routed,), counts = steps.run(
        "route",
        _route,
        [
            (layout, p, files[i], i, decisions, picks.get(i, empty), seed, shards, min_tokens, with_ids)
            for i, p in enumerate(parts)
        ],
        [shards],
    )
    per_bucket: dict[str, dict[str, int]] = defaultdict(lambda: {"tokens": 0, "synthetic": 0, "rows": 0})
    for c, _ in counts:
        for b, (n, syn, rows) in c.items():
            per_bucket[b]["tokens"] += n
            per_bucket[b]["synthetic"] += syn
            per_bucket[b]["rows"] += rows
    report(f"shards: {sum(v['rows'] for v in per_bucket.values()):,} rows routed to {shards} shard(s)")
    _, entries = steps.run(
        "shards",
        write_shard,
        [
            (layout, prefix, f"shards/shard-{j:05d}.parquet", formats, pack_len, Inbox(routed, len(parts), j))
            for j in range(shards)
        ],
        [],
    )
    steps.drop("route")
    shards_out = [e[0] for e in entries if e[0] is not None]
    packed = [e[2] for e in entries if e[2] is not None]

    def token_bytes(entry: dict[str, Any]) -> int:
        return sum(
            f["bytes"]
            for tf in entry.get("token_files", {}).values()
            for g in (tf if isinstance(tf, list) else [tf])
            for f in g["files"]
        )

    written = (
        sum(s["bytes"] + token_bytes(s) for s in shards_out)
        + sum(token_bytes(p) for p in packed)
        + sum(layout.fs.get_file_info(layout.path(prefix + f)).size for p in packed for f in p["files"])
    )
    io = {"read_bytes": int(sum(r for _, r in counts) + sum(e[1] for e in entries)), "written_bytes": int(written)}
    return shards_out, dict(per_bucket), io, packed


def shard_count(tokens: int, shard_tokens: int) -> int:
    return max(1, math.ceil(tokens / shard_tokens))
