"""The persisted dedup index on the bundled demo newswire: indexes and checks of different partition counts
meet, merges copy or cut partitions without changing a decision, datasketch reads and queries it, and the
check runs the same on Ray."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pyarrow.dataset as pads
import pytest
from datasketch import MinHash

from curation.dedup import against, index
from curation.dedup.minhash import shingle_hash32
from curation.job import run_job
from curation.spec import parse_spec
from filters import segmentation

DEMO = Path(__file__).resolve().parents[1] / "curation" / "demo" / "corpus" / "reuters.jsonl.gz"


def _records() -> list[dict]:
    with gzip.open(DEMO, "rt", encoding="utf-8") as f:
        recs = [json.loads(line) for line in f]
    for i, r in enumerate(recs):
        r["url"] = f"https://wire.example/{i}"
    return recs


def _job(tmp: Path, name: str, recs: list[dict], against_=(), engine: str = "local") -> Path:
    path = tmp / f"{name}.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for r in recs:
            f.write(json.dumps({"id": r["id"], "text": r["text"], "url": r["url"]}) + "\n")
    out = tmp / name
    spec = {
        "name": name,
        "output": str(out),
        "inputs": [{"path": str(path), "format": "jsonl", "source": "news", "url_field": "url"}],
        "execution": {"engine": engine},
        "stages": {"dedup": {"exact": {}, "minhash": {}, "url": {}, "against": [str(a) for a in against_]}},
    }
    stats = run_job(parse_spec(spec))
    assert stats["input_records"] == stats["kept"] + stats["rejected"] + stats["quarantined"] == len(recs)
    return out


def _decisions(out: Path) -> dict[str, tuple]:
    t = pads.dataset(out / "rejected", format="parquet").to_table(
        columns=["id", "drop_reason", "dup_of", "dup_of_corpus"]
    )
    return {r["id"]: (r["drop_reason"], r["dup_of"], r["dup_of_corpus"]) for r in t.to_pylist()}


def _kept(out: Path) -> dict[str, str]:
    t = pads.dataset(out / "curated", format="parquet", partitioning="hive").to_table(columns=["id", "text"])
    return dict(zip(t["id"].to_pylist(), t["text"].to_pylist()))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dedup-index")
    recs = _records()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(index, "KEYS_PER_INDEX_PARTITION", 3000)  # the first snapshot's index gets 8 partitions
        a = _job(tmp, "A", recs[:1500])
    c = _job(tmp, "C", recs[2900:])  # a small one: one partition
    kept_a = _kept(a)
    copies = [
        {"id": f"exact-{i}", "text": kept_a[i], "url": f"https://copy.example/{i}"} for i in sorted(kept_a)[:40]
    ] + [
        {"id": f"url-{k}", "text": recs[1500 + k]["text"] + " (repeated wire)", "url": recs[k]["url"]}
        for k in range(0, 400, 10)
        if recs[k]["id"] in kept_a
    ]
    b_recs = recs[1500:2900] + copies
    return {"tmp": tmp, "a": a, "c": c, "b_recs": b_recs, "kept_a": kept_a, "recs": recs}


def test_indexes_and_checks_of_other_partition_counts_meet(built):
    tmp, a, c = built["tmp"], built["a"], built["c"]
    ia, ic = index.DedupIndex.open(str(a)), index.DedupIndex.open(str(c))
    assert (ia.bits, ic.bits) == (3, 0)
    # copy (finer source) and cut (coarser source) in both orders
    coarse = index.merge(str(tmp / "coarse"), [str(c), str(a)])
    fine = index.merge(str(tmp / "fine"), [str(a), str(c)])
    assert (coarse.bits, fine.bits) == (3, 3)  # a new index takes the finest of its sources
    small = index.merge(str(tmp / "small"), [str(c)])
    small = index.merge(str(tmp / "small"), [str(a)])
    assert small.bits == 0 and len(small.corpora) == 2
    assert len(small.files("keys", 0)) == 1 + 8  # C's file and A's eight, copied whole
    big = index.merge(str(tmp / "big"), [str(a)])
    big = index.merge(str(tmp / "big"), [str(c)])  # C's one partition cut into eight ranges
    assert big.bits == 3 and big.documents == small.documents == ia.documents + ic.documents
    runs = {}
    for name, where in (("outputs", [a, c]), ("small", [tmp / "small"]), ("big", [tmp / "big"])):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(against, "NEW_KEYS_PER_RANGE", 1000)  # probe ranges finer than any index's
            runs[name] = _decisions(_job(tmp, f"B-{name}", built["b_recs"], where))
    assert runs["outputs"] == runs["small"] == runs["big"]
    got = runs["outputs"]
    exact = {i for i, d in got.items() if d[0] == "exact_duplicate_of_earlier"}
    assert {f"exact-{i}" for i in sorted(built["kept_a"])[:40]} <= exact
    for i, (reason, dup_of, corpus) in got.items():
        if i.startswith("exact-"):
            assert (reason, dup_of, corpus) == ("exact_duplicate_of_earlier", i[6:], "A")
        if i.startswith("url-"):
            k = int(i[4:])
            assert (reason, dup_of, corpus) == ("url_duplicate_of_earlier", built["recs"][k]["id"], "A")
    assert sum(1 for i in got if i.startswith("url-")) >= 30
    # C holds recs[2900:], which no B document repeats: the corpus named is always A
    assert not any(d[2] == "C" for d in got.values())


def _datasketch(text: str, m: dict) -> MinHash:
    ws = segmentation.words(text)
    n = m["ngram"]
    mh = MinHash(num_perm=m["bands"] * m["rows"], seed=m["seed"], hashfunc=shingle_hash32)
    mh.update_batch([" ".join(ws[i : i + n]).encode() for i in range(max(1, len(ws) - n + 1))])
    return mh


def test_datasketch_queries_the_index_and_loads_it(built):
    a = built["a"]
    m = index.DedupIndex.open(str(a)).params["minhash"]
    kept = built["kept_a"]
    doc_id = sorted(kept, key=lambda i: -len(kept[i]))[3]
    text = kept[doc_id]
    hits = index.query(str(a), _datasketch(text, m))
    assert hits[0] == {"corpus": "A", "id": doc_id, "similarity": 1.0}
    words = text.split(" ")
    edited = " ".join(w if k % 40 else "changed" for k, w in enumerate(words))
    near = index.query(str(a), _datasketch(edited, m))
    assert near and near[0]["id"] == doc_id and 0.72 <= near[0]["similarity"] < 1.0
    other = built["recs"][2950]["text"]  # not in A
    assert all(h["similarity"] < 1.0 for h in index.query(str(a), _datasketch(other, m)))
    lsh = index.to_minhash_lsh(str(a))
    assert f"A/{doc_id}" in lsh.query(_datasketch(edited, m))
    assert len(lsh.keys) == len(kept)
    with pytest.raises(index.DedupIndexError, match="seed"):
        index.query(str(a), MinHash(num_perm=112, seed=9))


def test_the_check_on_ray_decides_as_in_process(built, ray_session):
    tmp = built["tmp"]
    local = _decisions(_job(tmp, "B-local", built["b_recs"], [built["a"]]))
    ray_run = _decisions(_job(tmp, "B-ray", built["b_recs"], [built["a"]], engine="ray"))
    assert ray_run == local
    assert sum(1 for d in local.values() if d[0].endswith("_of_earlier")) >= 70


def test_index_holds_the_kept_documents_only(built):
    a = built["a"]
    st = index.stats(str(a))
    assert st["documents"] == len(built["kept_a"])
    assert st["partitions"] == 8 and st["files"]["keys"] == st["files"]["docs"] == 8
    ids = set()
    ia = index.DedupIndex.open(str(a))
    for p in range(8):
        for _, f in ia.files("docs", p):
            t = pads.dataset(f, format="parquet").to_table(columns=["dk", "id"])
            dk = t["dk"].to_numpy()
            assert np.all(dk[1:] >= dk[:-1]) and np.all(index.range_part(dk, 3) == p)
            ids.update(t["id"].to_pylist())
    assert ids == set(built["kept_a"])


def test_trace_and_samples_name_the_earlier_document(built):
    import pyarrow.parquet as pq

    from curation.inspection.trace import trace

    out = built["tmp"] / "B-outputs"
    if not out.exists():
        pytest.skip("needs test_indexes_and_checks_of_other_partition_counts_meet's run")
    first = sorted(built["kept_a"])[0]
    got = trace(str(out), f"exact-{first}")["records"][0]
    assert got["drop_reason"] == "exact_duplicate_of_earlier"
    assert got["duplicate_of_earlier"] == {"id": first, "corpus": "A", "similarity": 1.0}
    assert [s["stage"] for s in got["stages"] if s["decision"] == "dropped"] == ["earlier_dedup"]
    samples = pq.read_table(out / "samples" / "part-00000.parquet").to_pylist()
    near = [s for s in samples if s["drop_reason"] == "url_duplicate_of_earlier"]
    assert near and all(s["keeper_text"] is None for s in near)  # the keeper is in the other corpus


def test_curate_index_commands(built, tmp_path, capsys):
    from curation.cli import main

    a = built["a"]
    doc_id = sorted(built["kept_a"])[7]
    text = tmp_path / "doc.txt"
    text.write_text(built["kept_a"][doc_id].replace(" the ", " a ", 2))
    assert main(["index", "query", str(a), str(text)]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert hits[0]["id"] == doc_id and hits[0]["corpus"] == "A" and hits[0]["similarity"] > 0.8
    assert main(["index", "stats", str(a)]) == 0
    assert json.loads(capsys.readouterr().out)["documents"] == len(built["kept_a"])
    target = tmp_path / "idx"
    assert main(["index", "merge", str(target), str(a)]) == 0
    assert main(["index", "merge", str(target), str(a)]) == 2  # the same output twice: refused, said why
    assert "already holds output" in capsys.readouterr().err
    assert main(["index", "stats", str(tmp_path / "nothing-here")]) == 2


@pytest.mark.parametrize("link", ["family folder", "partition file"])
def test_an_index_linking_into_another_users_index_is_not_read(built, tmp_path, monkeypatch, link):
    """An attack on `against` under the service's path policy: Bob's own index folder (inside the roots)
    holds links to Alice's index files, to learn which documents she has (and their ids, through dup_of).
    The links are judged where they point, at job start and as each task lists its partition's files."""
    import shutil

    from curation.io.policy import ENV, PathPolicy
    from curation.job import JobError

    root = tmp_path / "root"
    alice = root / "alice"
    shutil.copytree(built["a"] / "index", alice / "index")
    bob_index = root / "bob" / "index"
    shutil.copytree(alice / "index", bob_index)
    if link == "family folder":
        shutil.rmtree(bob_index / "keys")
        (bob_index / "keys").symlink_to(alice / "index" / "keys", target_is_directory=True)
    else:
        for f in (bob_index / "docs").rglob("*.parquet"):
            f.unlink()
            f.symlink_to(alice / "index" / f.relative_to(bob_index))
    monkeypatch.setenv(ENV, PathPolicy((str(root),), deny=(str(alice),)).to_json())
    with pytest.raises(JobError, match="another user's job"):
        _job(root / "bob", "B", built["b_recs"][:300], [bob_index])
    assert not (root / "bob" / "B" / "rejected").exists()  # stopped before writing a row that names hers
