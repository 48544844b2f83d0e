"""A persisted dedup index: the keys of a corpus's kept documents, so later snapshots can be deduplicated
against it without reading it again (SPEC 11, `stages.dedup.against`).

INDEX/
  index.json                      format, version, key parameters, partition bits, the corpora it holds
  keys/p00000/UID-00000.parquet   k1, k2, doc: exact, URL and MinHash band keys (tagged in k2 as in the
                                  shuffle), sorted by (k1, k2); partition p of 2^bits holds the k1 range
                                  [p, p + 1) * 2^(64 - bits)
  docs/p00000/UID-00000.parquet   dk, doc, id[, sig]: one row per document, sorted by dk = mix64(doc),
                                  partitioned by dk's range the same way

UID names a corpus (one curate run's kept documents); a partition may hold several files of one corpus
(after a merge from an index with more partitions). Range partitions, not hash-modulo ones, so indexes and
checks of different sizes meet: a task of a finer range reads only its share of a coarser partition's
file, found from the row groups' min/max statistics (the files are sorted), and merging indexes of
different partition counts is a per-partition copy or cut, never a reshuffle.

A document is named by its corpus and its `doc` number there (input ordinal << 32 | position); `id` is what
a later job reports as `dup_of`.
"""

from __future__ import annotations

import datetime
import json
import uuid
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curation.dedup import shuffle
from curation.dedup.minhash import SCHEME
from curation.inspection.keys import mix64
from curation.io.policy import require_allowed
from curation.layout import Layout

INDEX_FILE = "index.json"
FORMAT = "corpus-curation dedup index"
VERSION = 1
ROW_GROUP_ROWS = 65_536  # the unit a range read skips by
KEYS_PER_INDEX_PARTITION = 1_000_000  # as the shuffle's reducers: the writing task holds ~1M keys and ~70k signatures
MAX_BITS = 20


class DedupIndexError(ValueError):
    """An index that cannot be used: missing, unreadable, or built with other key parameters."""


def bits_for(n: int, per: int) -> int:
    """The fewest partition bits that keep `n` items at most about `per` a partition."""
    b = 0
    while (n >> b) > per and b < MAX_BITS:
        b += 1
    return b


def range_part(k: np.ndarray, bits: int) -> np.ndarray:
    """The range partition of each uint64 key among 2^bits."""
    if bits == 0:
        return np.zeros(len(k), np.int64)
    return (np.asarray(k, np.uint64) >> np.uint64(64 - bits)).astype(np.int64)


def range_bounds(p: int, bits: int) -> tuple[int, int]:
    """[lo, hi) of partition p of 2^bits, as Python ints (hi may be 2^64)."""
    width = 1 << (64 - bits)
    return p * width, (p + 1) * width


def doc_key(docs: np.ndarray) -> np.ndarray:
    """dk: where a document's row lives in docs/ (spread evenly whatever the input files)."""
    return mix64(np.asarray(docs, np.int64).astype(np.uint64))


def params_of(dedup: Any) -> dict[str, Any]:
    """The key parameters of a job's dedup spec: what an index must share with a job checked against it."""
    m = dedup.minhash
    return {
        "exact": dedup.exact is not None,
        "url": dedup.url is not None,
        "minhash": None
        if m is None
        else {"scheme": SCHEME, "ngram": m.ngram, "bands": m.bands, "rows": m.rows, "seed": m.seed},
    }


def compatibility_problem(index_params: dict[str, Any], job_params: dict[str, Any]) -> str | None:
    """Why a job with `job_params` cannot be checked against an index built with `index_params` (None: it can).
    Each kind of key the job computes must be in the index, and MinHash keys must come from the same
    shingles, permutations and bands, or no band key would ever be equal."""
    for kind, what in (("exact", "exact-text"), ("url", "URL")):
        if job_params[kind] and not index_params.get(kind):
            return f"the job dedups by {what} hash but the index holds no {what} keys"
    jm, im = job_params["minhash"], index_params.get("minhash")
    if jm is not None:
        if im is None:
            return "the job runs MinHash dedup but the index holds no MinHash keys"
        diff = [f"{k} {im.get(k)!r} (job: {v!r})" for k, v in jm.items() if im.get(k) != v]
        if diff:
            return "its MinHash keys were built with other parameters: " + ", ".join(diff)
    return None


def resolve(path: str) -> str:
    """The folder holding index.json: `path` itself, or a curate output's `index/`."""
    p = path.rstrip("/")
    lay = Layout(p)
    if lay.fs.get_file_info(lay.path(INDEX_FILE)).type.name == "File":
        return p
    if lay.fs.get_file_info(lay.path("index", INDEX_FILE)).type.name == "File":
        return p + "/index"
    raise DedupIndexError(
        f"{path}: neither a dedup index (no {INDEX_FILE}) nor a curate output with one (no index/{INDEX_FILE}); "
        "a curate job with dedup writes OUT/index/ unless stages.dedup.write_index is false"
    )


@dataclass
class DedupIndex:
    """An index folder's description (index.json); the partitions are read by the tasks that need them."""

    uri: str
    bits: int
    params: dict[str, Any]
    corpora: list[dict[str, Any]]

    @classmethod
    def open(cls, path: str) -> DedupIndex:
        uri = resolve(path)
        lay = Layout(uri)
        for part in (INDEX_FILE, "keys", "docs"):  # the partition files are judged again as tasks list them
            _require_local(uri, lay.path(part))
        try:
            meta = lay.read_json(lay.path(INDEX_FILE))
        except (OSError, ValueError) as e:
            raise DedupIndexError(f"{uri}/{INDEX_FILE}: unreadable ({e})") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise DedupIndexError(f"{uri}/{INDEX_FILE}: not a {FORMAT}")
        if meta.get("version") != VERSION:
            raise DedupIndexError(f"{uri}: index version {meta.get('version')!r}, this release reads version {VERSION}")
        try:
            return cls(uri, int(meta["bits"]), dict(meta["params"]), [dict(c) for c in meta["corpora"]])
        except (KeyError, TypeError, ValueError) as e:
            raise DedupIndexError(f"{uri}/{INDEX_FILE}: damaged ({type(e).__name__}: {e})") from None

    @property
    def layout(self) -> Any:
        return Layout(self.uri)

    def save(self) -> None:
        meta = {"format": FORMAT, "version": VERSION, "bits": self.bits, "params": self.params, "corpora": self.corpora}
        self.layout.write_bytes(self.layout.path(INDEX_FILE), json.dumps(meta, indent=2).encode())

    @property
    def documents(self) -> int:
        return sum(int(c["documents"]) for c in self.corpora)

    @property
    def keys(self) -> int:
        return sum(int(c["keys"]) for c in self.corpora)

    def files(self, family: str, p: int) -> list[tuple[str, str]]:
        """(corpus uid, path) of the files of partition p of `family` ("keys" or "docs"), each allowed by the
        job's path policy as it resolves (a link in an index folder to another user's index is refused)."""
        lay = self.layout
        files = lay.list_files(partition_dir(lay, family, p))
        for f in files:
            _require_local(self.uri, f)
        return [(f.rsplit("/", 1)[1].split("-", 1)[0], f) for f in files]


def _require_local(uri: str, path: str) -> None:
    """Under a path policy, a local index file is judged where it really is (symlinks resolved): the folder
    passed the policy, but a file or folder in it may be a link out of it. Object stores have no links."""
    if "://" not in uri:
        require_allowed(path)


def entries_path(layout: Any, ordinal: int) -> str:
    """The kept documents' keys of one input file, written by its write task (curation.outputs), for
    `build_index`."""
    return layout.path("_work", "index_entries", f"f{ordinal:05d}.parquet")


ENTRY_COLUMNS = ("_doc", "id", "_exact", "_bands", "_url", "_sig")


def partition_dir(layout: Any, family: str, p: int) -> str:
    return layout.path(family, f"p{p:05d}")


def file_name(uid: str, n: int = 0) -> str:
    return f"{uid}-{n:05d}.parquet"


def new_uid() -> str:
    return uuid.uuid4().hex[:16]


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


# -- reading a range of a sorted file ------------------------------------------------------------------


def read_range(
    layout: Any,
    path: str,
    column: str,
    lo: int,
    hi: int,
    columns: Sequence[str] | None = None,
    wanted: np.ndarray | None = None,
) -> Iterator[pa.Table]:
    """The rows of a file sorted by `column` (uint64) with lo <= column < hi, a few row groups at a time:
    only the row groups whose min/max meet the range (and hold one of the sorted `wanted` values, when
    given) are read."""
    pf = pq.ParquetFile(path, filesystem=layout.fs)
    md = pf.metadata
    ci = pf.schema_arrow.get_field_index(column)
    groups = []
    for g in range(md.num_row_groups):
        st = md.row_group(g).column(ci).statistics
        if st is None or not st.has_min_max:
            groups.append(g)
            continue
        gmin, gmax = int(st.min), int(st.max)
        if gmax < lo or gmin >= hi:
            continue
        if wanted is not None:
            i = int(np.searchsorted(wanted, np.uint64(gmin)))
            if i >= len(wanted) or int(wanted[i]) > gmax:
                continue
        groups.append(g)
    for i in range(0, len(groups), 4):
        t = pf.read_row_groups(groups[i : i + 4], columns=list(columns) if columns else None)
        k = t[column].to_numpy()
        sel = (k >= np.uint64(lo)) if lo > 0 else np.ones(len(k), bool)
        if hi < 1 << 64:
            sel &= k < np.uint64(hi)
        yield t if sel.all() else t.filter(pa.array(sel))


def read_partition_range(
    index: DedupIndex,
    family: str,
    bits: int,
    r: int,
    column: str,
    columns: Sequence[str] | None = None,
    wanted: dict[str, np.ndarray] | None = None,
) -> Iterator[tuple[str, pa.Table]]:
    """(corpus uid, rows) of range r of 2^bits (bits >= the index's) from the index partition holding it;
    with `wanted` (uid -> sorted values), only the row groups holding one, and only those corpora."""
    p = r >> (bits - index.bits)
    lo, hi = range_bounds(r, bits)
    lay = index.layout
    for uid, path in index.files(family, p):
        if wanted is not None and uid not in wanted:
            continue
        for t in read_range(lay, path, column, lo, hi, columns, None if wanted is None else wanted[uid]):
            if len(t):
                yield uid, t


# -- writing -------------------------------------------------------------------------------------------


def write_sorted(layout: Any, path: str, table: pa.Table) -> None:
    layout.write_table(path, table, row_group_size=ROW_GROUP_ROWS)


KEY_SCHEMA = pa.schema([("k1", pa.uint64()), ("k2", pa.uint64()), ("doc", pa.int64())])


def docs_table(t: pa.Table) -> pa.Table:
    """The docs/ rows of a table of entries: dk, doc, id and the signature (when there is one)."""
    docs = t["_doc"].to_numpy()
    cols = {"dk": pa.array(doc_key(docs)), "doc": pa.array(docs, pa.int64()), "id": t["id"].cast(pa.string())}
    if "_sig" in t.column_names:
        cols["sig"] = t["_sig"]
    return pa.table(cols)


def index_map(job_layout: Any, ordinals: Sequence[int], bits: int) -> list[Any]:
    """Per group of input files: the kept documents' entries (written by the write tasks) as key records
    and docs rows, each cut into the 2^bits range partitions; then (documents, keys)."""
    recs, docs = [], []
    for o in ordinals:
        path = entries_path(job_layout, o)
        if job_layout.fs.get_file_info(path).type.name != "File":
            continue
        t = pq.read_table(path, filesystem=job_layout.fs)
        if not len(t):
            continue
        recs.append(shuffle.table_key_records(t))
        docs.append(docs_table(t))
    r = np.concatenate(recs) if recs else np.zeros(0, shuffle.KEY_DTYPE)
    d = pa.concat_tables(docs) if docs else None
    n = 1 << bits
    key_parts = split_by_part(r, range_part(r["k1"], bits), n)
    doc_parts: list[Any] = []
    if d is None:
        doc_parts = [pa.table({"dk": pa.array([], pa.uint64())})] * n
    else:
        part = range_part(d["dk"].to_numpy(), bits)
        order = np.argsort(part, kind="stable")
        bounds = np.searchsorted(part[order], np.arange(n + 1))
        d = d.take(pa.array(order))
        doc_parts = [d.slice(bounds[i], bounds[i + 1] - bounds[i]) for i in range(n)]
    return key_parts + doc_parts + [(int(len(d)) if d is not None else 0, int(len(r)))]


def split_by_part(r: np.ndarray, part: np.ndarray, n: int) -> list[np.ndarray]:
    """`r` cut into n arrays by the partition index of each element (order kept)."""
    order = np.argsort(part, kind="stable")
    bounds = np.searchsorted(part[order], np.arange(n + 1))
    return [r[order[bounds[i] : bounds[i + 1]]] for i in range(n)]


def index_write(index_uri: str, uid: str, p: int, n_key_parts: int, *parts: Any) -> list[Any]:
    """Per range partition: its key records and docs rows from every group, sorted, as this corpus's files."""
    lay = Layout(index_uri)
    keys = [k for k in parts[:n_key_parts] if len(k)]
    docs = [d for d in parts[n_key_parts:] if len(d) and "doc" in d.column_names]
    r = np.concatenate(keys) if keys else np.zeros(0, shuffle.KEY_DTYPE)
    if len(r):
        r = r[np.lexsort((r["doc"], r["k2"], r["k1"]))]
        t = pa.table({"k1": r["k1"], "k2": r["k2"], "doc": r["doc"]}, schema=KEY_SCHEMA)
        write_sorted(lay, f"{partition_dir(lay, 'keys', p)}/{file_name(uid)}", t)
    n_docs = 0
    if docs:
        d = pa.concat_tables(docs)
        d = d.sort_by([("dk", "ascending")])
        n_docs = len(d)
        write_sorted(lay, f"{partition_dir(lay, 'docs', p)}/{file_name(uid)}", d)
    return [(n_docs, int(len(r)))]


def build_index(
    runner: Any,
    job_layout: Any,
    groups: list[list[int]],
    *,
    params: dict[str, Any],
    name: str,
    output: str,
    expected_keys: int,
    progress: Any = lambda m: None,
) -> dict[str, Any]:
    """OUT/index/ from the write tasks' entries of the kept documents: one mapping task per file group, one
    writing task per range partition (sized by the keys, like the dedup shuffle)."""
    from curation.exchange import Inbox, Steps

    index_uri = job_layout.uri + "/index"
    ilay = Layout(index_uri)
    ilay.remove_dir(ilay.root)
    bits = bits_for(expected_keys, KEYS_PER_INDEX_PARTITION)
    uid = new_uid()
    root = job_layout.path("_work", "exchange_index")
    job_layout.remove_dir(root)
    steps = Steps(runner, job_layout, root, progress=lambda m: progress(f"index {m}"))
    n = 1 << bits
    try:
        (keys, docs), counts = steps.run("map", index_map, [(job_layout, g, bits) for g in groups], [n, n])
        G = len(groups)
        _, written = steps.run(
            "write",
            index_write,
            [(index_uri, uid, p, G, Inbox(keys, G, p), Inbox(docs, G, p)) for p in range(n)],
            [],
        )
    finally:
        job_layout.remove_dir(root)
    documents = sum(w[0][0] for w in written)
    nkeys = sum(w[0][1] for w in written)
    index = DedupIndex(
        index_uri,
        bits,
        params,
        [{"uid": uid, "name": name, "output": output, "documents": documents, "keys": nkeys, "added": now()}],
    )
    index.save()
    return {"path": "index", "uid": uid, "documents": documents, "keys": nkeys, "partitions": n}


# -- maintenance ---------------------------------------------------------------------------------------


def _copy_corpus(src: DedupIndex, dst: DedupIndex, uid: str, family: str, column: str, p: int) -> int:
    """Partition p of `dst` gets corpus `uid`'s rows of that range from `src`: whole files when the
    partitions are the same or finer in `src`, the range cut out of a coarser one. Returns files written."""
    slay, dlay = src.layout, dst.layout
    dest = partition_dir(dlay, family, p)
    n = 0
    if src.bits >= dst.bits:
        d = src.bits - dst.bits
        for s in range(p << d, (p + 1) << d):
            for u, path in src.files(family, s):
                if u != uid:
                    continue
                dlay.mkdir(dest)
                target = f"{dest}/{file_name(uid, n)}"
                with slay.fs.open_input_stream(path) as fin, dlay.fs.open_output_stream(target + ".tmp") as fout:
                    while chunk := fin.read(8 << 20):
                        fout.write(chunk)
                dlay.fs.move(target + ".tmp", target)
                n += 1
        return n
    lo, hi = range_bounds(p, dst.bits)
    for u, path in src.files(family, p >> (dst.bits - src.bits)):
        if u != uid:
            continue
        parts = list(read_range(slay, path, column, lo, hi))
        if parts and sum(len(t) for t in parts):
            write_sorted(dlay, f"{dest}/{file_name(uid, n)}", pa.concat_tables(parts))
            n += 1
    return n


def merge(target: str, sources: Sequence[str], progress: Any = lambda m: None, threads: int = 8) -> DedupIndex:
    """Add every corpus of `sources` (curate outputs or indexes) to the index at `target` (created when
    absent, with the first source's parameters). A corpus the target already holds (the same run, or
    another run into the same output) is refused, as is one built with other key parameters; nothing
    is copied then. The copy is one task per target partition."""
    from concurrent.futures import ThreadPoolExecutor

    srcs = [DedupIndex.open(s) for s in sources]
    if not srcs:
        raise DedupIndexError("no source to merge")
    tlay = Layout(target)
    if tlay.fs.get_file_info(tlay.path(INDEX_FILE)).type.name == "File":
        dst = DedupIndex.open(target)
    else:
        keys = sum(s.keys for s in srcs)
        bits = max([bits_for(keys, KEYS_PER_INDEX_PARTITION)] + [s.bits for s in srcs])
        dst = DedupIndex(tlay.uri, bits, srcs[0].params, [])
    held = {c["uid"]: c for c in dst.corpora}
    outputs = {c["output"]: c for c in dst.corpora}
    todo: list[tuple[DedupIndex, dict[str, Any]]] = []
    for s in srcs:
        if s.params != dst.params:
            raise DedupIndexError(
                f"{s.uri} was built with other key parameters ({s.params}) than {dst.uri} ({dst.params})"
            )
        for c in s.corpora:
            prior = held.get(c["uid"]) or outputs.get(c["output"])
            if prior is not None:
                raise DedupIndexError(
                    f"{dst.uri} already holds output {c['output']} (corpus {prior['name']!r}, "
                    f"added {prior['added']}); merging it again would index its documents twice"
                )
            held[c["uid"]] = outputs[c["output"]] = c
            todo.append((s, c))
    for s, c in todo:
        progress(f"index merge: {c['name']} ({c['documents']:,} documents) from {s.uri}")
        jobs = [(fam, col, p) for fam, col in (("keys", "k1"), ("docs", "dk")) for p in range(1 << dst.bits)]
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda j: _copy_corpus(s, dst, c["uid"], *j), jobs))
        dst.corpora.append({**c, "merged": now()})
        dst.save()  # after the files: a merge cut short leaves files no index.json lists, never the reverse
    return dst


def stats(path: str) -> dict[str, Any]:
    """What an index holds: parameters, partitions, corpora, bytes on storage per family."""
    import pyarrow.fs as pafs

    idx = DedupIndex.open(path)
    lay = idx.layout
    size: dict[str, int] = {}
    files: dict[str, int] = {}
    for fam in ("keys", "docs"):
        infos = lay.fs.get_file_info(pafs.FileSelector(lay.path(fam), recursive=True, allow_not_found=True))
        got = [i for i in infos if i.type == pafs.FileType.File and i.path.endswith(".parquet")]
        size[fam], files[fam] = sum(i.size or 0 for i in got), len(got)
    return {
        "path": idx.uri,
        "version": VERSION,
        "params": idx.params,
        "partitions": 1 << idx.bits,
        "documents": idx.documents,
        "keys": idx.keys,
        "bytes": size,
        "files": files,
        "bytes_per_document": round(sum(size.values()) / idx.documents, 1) if idx.documents else None,
        "corpora": idx.corpora,
    }


# -- datasketch ----------------------------------------------------------------------------------------


def to_minhash_lsh(path: str) -> Any:
    """Every document of an index in a `datasketch.MinHashLSH` keyed "CORPUS/ID", with the index's bands
    and rows, so datasketch's own query tools work on it. It holds the whole index in memory: for small
    indexes; `query` below asks the index itself."""
    from datasketch import MinHash, MinHashLSH

    idx = DedupIndex.open(path)
    m = idx.params.get("minhash")
    if m is None:
        raise DedupIndexError(f"{idx.uri}: the index holds no MinHash keys")
    names = {c["uid"]: c["name"] for c in idx.corpora}
    lsh = MinHashLSH(num_perm=m["bands"] * m["rows"], params=(m["bands"], m["rows"]))
    for p in range(1 << idx.bits):
        for uid, f in idx.files("docs", p):
            if uid not in names:
                continue
            t = pq.read_table(f, columns=["id", "sig"], filesystem=idx.layout.fs)
            sig = np.asarray(t["sig"].combine_chunks().flatten()).reshape(len(t), -1)
            with lsh.insertion_session() as session:
                for i, s in zip(t["id"].to_pylist(), sig):
                    session.insert(f"{names[uid]}/{i}", MinHash(seed=m["seed"], hashvalues=s, scheme=SCHEME))
    return lsh


def query(path: str, minhash: Any, threshold: float | None = None) -> list[dict[str, Any]]:
    """The indexed documents whose signatures share at least `threshold` (default the bands' own,
    (1/bands)^(1/rows)) of their values with a `datasketch.MinHash` of the same seed and num_perm (built
    with `hashfunc=curation.dedup.minhash.shingle_hash32` over the same shingles), best first. Reads the
    partitions of its band keys only."""
    from curation.dedup.minhash import MinHasher

    idx = DedupIndex.open(path)
    m = idx.params.get("minhash")
    if m is None:
        raise DedupIndexError(f"{idx.uri}: the index holds no MinHash keys")
    sig = np.asarray(minhash.hashvalues, dtype=np.uint64)
    scheme = getattr(minhash, "scheme", SCHEME)
    if len(sig) != m["bands"] * m["rows"] or int(minhash.seed) != m["seed"] or scheme != m["scheme"]:
        raise DedupIndexError(
            f"a MinHash of num_perm {len(sig)}, seed {minhash.seed} and scheme {scheme} cannot query {idx.uri} "
            f"(num_perm {m['bands'] * m['rows']}, seed {m['seed']}, scheme {m['scheme']})"
        )
    sig32 = sig.astype(np.uint32)
    hasher = MinHasher(m["ngram"], m["bands"], m["rows"], m["seed"])
    band_keys = hasher.band_keys(sig32[None, :])[0]
    names = {c["uid"]: c["name"] for c in idx.corpora}
    found: set[tuple[str, int]] = set()
    for b, k1 in enumerate(band_keys):
        k2 = np.uint64(b) | shuffle._BAND_TAG
        p = int(range_part(np.array([k1]), idx.bits)[0])
        for uid, f in idx.files("keys", p):
            for t in read_range(idx.layout, f, "k1", int(k1), int(k1) + 1):
                sel = t["k2"].to_numpy() == k2
                found.update((uid, int(d)) for d in t["doc"].to_numpy()[sel])
    limit = threshold if threshold is not None else (1 / m["bands"]) ** (1 / m["rows"])
    out = []
    for uid, d in sorted(found):
        if uid not in names:
            continue
        dk = int(doc_key(np.array([d]))[0])
        p = int(range_part(np.array([dk], np.uint64), idx.bits)[0])
        for u, f in idx.files("docs", p):
            if u != uid:
                continue
            for t in read_range(idx.layout, f, "dk", dk, dk + 1, ["dk", "doc", "id", "sig"]):
                for row in range(len(t)):
                    if t["doc"][row].as_py() != d:
                        continue
                    s = np.asarray(t["sig"][row].values, dtype=np.uint32)
                    sim = float((s == sig32).mean())
                    if sim >= limit:
                        out.append({"corpus": names[uid], "id": t["id"][row].as_py(), "similarity": sim})
    return sorted(out, key=lambda r: (-r["similarity"], r["corpus"], r["id"]))


def query_text(path: str, text: str, lang: str | None = None, threshold: float | None = None) -> list[dict[str, Any]]:
    """`query` for a text: its signature computed as a job with the index's parameters would (`curate index
    query`)."""
    from curation.dedup.minhash import MinHasher, to_datasketch

    idx = DedupIndex.open(path)
    m = idx.params.get("minhash")
    if m is None:
        raise DedupIndexError(f"{idx.uri}: the index holds no MinHash keys")
    sig = MinHasher(m["ngram"], m["bands"], m["rows"], m["seed"]).signatures([text], [lang])[0]
    return query(path, to_datasketch(sig, seed=m["seed"]), threshold)
