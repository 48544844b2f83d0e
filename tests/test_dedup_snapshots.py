"""Incremental dedup on real newswire: three snapshots from Reuters-21578, each checked against the earlier
ones, with exact, URL and near copies planted across them.

The reference is brute force and independent of the pipeline: every pair of documents at word-5-gram
Jaccard >= t (a plain `\\w+` tokenizer, prefix filtering, then the exact Jaccard of the two shingle sets;
tests/test_dedup_reuters.py). A planted copy's source is a kept document of an earlier snapshot that has no
other document at Jaccard >= 0.5 anywhere in the pool, so the right `dup_of` is that source and nothing else.
"""

from __future__ import annotations

import gzip
import json
import random
import re
from pathlib import Path

import pyarrow.dataset as pads
import pytest

from curation.dedup import index
from curation.job import JobError, run_job
from curation.spec import parse_spec
from tests.conftest import read_jsonl_gz, shared_file
from tests.test_dedup_reuters import jaccard, shingles, similar_pairs

SNAP = 1500  # wires per snapshot
_WORD = re.compile(r"\S+")


def _write(path: Path, recs: list[dict]) -> str:
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for r in recs:
            f.write(json.dumps({"id": r["id"], "text": r["text"], "url": r["url"]}) + "\n")
    return str(path)


def _job(tmp: Path, name: str, recs: list[dict], against=(), **minhash) -> tuple[Path, dict]:
    out = tmp / name
    spec = {
        "name": name,
        "output": str(out),
        "inputs": [
            {"path": _write(tmp / f"{name}.jsonl.gz", recs), "format": "jsonl", "source": "news", "url_field": "url"}
        ],
        "execution": {"engine": "local"},
        "stages": {"dedup": {"exact": {}, "minhash": minhash, "url": {}, "against": [str(a) for a in against]}},
    }
    return out, run_job(parse_spec(spec))


def _rows(out: Path) -> dict[str, dict]:
    cols = ["id", "text", "drop_reason", "dup_of", "dup_of_corpus"]
    kept = pads.dataset(out / "curated", format="parquet", partitioning="hive").to_table(columns=cols[:2]).to_pylist()
    ds = pads.dataset(out / "rejected", format="parquet")
    rej = ds.to_table(columns=[c for c in cols if c in ds.schema.names]).to_pylist()
    return {r["id"]: {**r, "drop_reason": None} for r in kept} | {r["id"]: r for r in rej}


def _near_copy(text: str, rng: random.Random) -> tuple[str, float] | None:
    """An edit of `text` at Jaccard 0.80..0.95 with it (replaced words), or None."""
    words = _WORD.findall(text)
    base = shingles(text)
    for k in (len(words) // 80, len(words) // 60, len(words) // 45, len(words) // 35):
        w = list(words)
        for i in rng.sample(range(len(w)), max(1, k)):
            w[i] = f"zq{rng.randrange(10**6)}"
        edited = " ".join(w)
        j = jaccard(base, shingles(edited))
        if 0.8 <= j <= 0.95:
            return edited, j
    return None


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("snapshots")
    pool = read_jsonl_gz(shared_file("news_reuters21578.jsonl.gz"), limit=3 * SNAP + 2000)
    for r in pool:
        r["url"] = f"https://wire.example/story/{r['newid']}"
    sets = [shingles(r["text"]) for r in pool]
    near_any = {i for pair in similar_pairs(sets, 0.5) for i in pair}
    isolated = {pool[i]["id"] for i in range(len(pool)) if i not in near_any and len(sets[i]) >= 120}
    fresh = [r for r in pool[3 * SNAP :] if r["id"] in isolated]  # texts for URL copies: in no snapshot
    rng = random.Random(23)
    planted: dict[str, tuple[str, str, str]] = {}  # new id -> (kind, source id, source corpus)

    def plant(kept: dict[str, dict], corpus: str, n_exact: int, n_url: int, n_near: int) -> list[dict]:
        sources = sorted(i for i in kept if i in isolated and kept[i]["drop_reason"] is None)
        rng.shuffle(sources)
        out = []
        for s in sources[:n_exact]:
            out.append({"id": f"exact-of-{s}", "text": kept[s]["text"], "url": f"https://copy.example/{s}"})
            planted[out[-1]["id"]] = ("exact", s, corpus)
        for s in sources[n_exact : n_exact + n_url]:
            r = fresh.pop()
            out.append({"id": f"url-of-{s}", "text": r["text"], "url": f"https://wire.example/story/{s[8:]}"})
            planted[out[-1]["id"]] = ("url", s, corpus)
        near = 0
        for s in sources[n_exact + n_url :]:
            if near >= n_near:
                break
            got = _near_copy(kept[s]["text"], rng)
            if got is not None:
                near += 1
                out.append({"id": f"near-of-{s}", "text": got[0], "url": f"https://copy.example/{s}"})
                planted[out[-1]["id"]] = ("near", s, corpus)
        return out

    out1, _ = _job(tmp, "snap1", pool[:SNAP])
    rows1 = _rows(out1)
    recs2 = pool[SNAP : 2 * SNAP] + plant(rows1, "snap1", 60, 60, 120)
    out2, stats2 = _job(tmp, "snap2", recs2, against=[out1])
    rows2 = _rows(out2)
    recs3 = pool[2 * SNAP : 3 * SNAP] + plant(rows1, "snap1", 30, 30, 60) + plant(rows2, "snap2", 30, 30, 60)
    merged = index.merge(str(tmp / "index"), [str(out1), str(out2)])
    out3, stats3 = _job(tmp, "snap3", recs3, against=[merged.uri])
    out3b, _ = _job(tmp, "snap3-by-outputs", recs3, against=[out1, out2])
    return {
        "tmp": tmp,
        "outs": (out1, out2, out3, out3b),
        "rows": (rows1, rows2, _rows(out3), _rows(out3b)),
        "recs": (pool[:SNAP], recs2, recs3),
        "stats": (stats2, stats3),
        "planted": planted,
        "index": merged,
    }


def _check(new: dict[str, dict], earlier: dict[str, dict[str, dict]], planted: dict, corpora: set[str]) -> dict:
    """The second-snapshot criteria for one checked job: its rows, the kept rows of each earlier corpus."""
    kept_before = {(c, i): r for c, rows in earlier.items() for i, r in rows.items() if r["drop_reason"] is None}
    urls = {}
    for c, rows in earlier.items():
        for i in rows:
            urls[(c, i)] = f"https://wire.example/story/{i[8:]}" if i.startswith("reuters-") else None
    # every planted exact and URL copy, with its source; near copies at >= 0.95
    mine = {i: p for i, p in planted.items() if i in new and p[2] in corpora}
    for kind in ("exact", "url"):
        got = [(i, new[i]) for i, p in mine.items() if p[0] == kind]
        assert got
        for i, r in got:
            assert r["drop_reason"] == f"{kind}_duplicate_of_earlier", (i, r["drop_reason"])
            assert (r["dup_of_corpus"], r["dup_of"]) == (mine[i][2], mine[i][1])
    near = [(i, new[i]) for i, p in mine.items() if p[0] == "near"]
    hit = [
        i
        for i, r in near
        if r["drop_reason"] == "minhash_duplicate_of_earlier" and (r["dup_of_corpus"], r["dup_of"]) == mine[i][2:0:-1]
    ]
    assert len(hit) >= 0.95 * len(near), (len(hit), len(near))
    # every cross-snapshot pair at Jaccard >= 0.8 (natural ones too): the new document dropped as a repeat
    ids_new = sorted(new)
    ids_old = sorted(kept_before)
    texts = [new[i]["text"] for i in ids_new] + [kept_before[k]["text"] for k in ids_old]
    sets = [shingles(t) for t in texts]
    n = len(ids_new)
    cross = [(a, b) if a < n else (b, a) for a, b in similar_pairs(sets, 0.8) if (a < n) != (b < n)]
    caught = sum(1 for a, _ in cross if (new[ids_new[a]]["drop_reason"] or "").endswith("_of_earlier"))
    assert caught >= 0.95 * len(cross), (caught, len(cross))
    # and nothing else: a document dropped as a repeat repeats what it names
    loose = {i for a, b in similar_pairs(sets, 0.5) if (a < n) != (b < n) for i in (a, b)}
    for k, i in enumerate(ids_new):
        r = new[i]
        if not (r["drop_reason"] or "").endswith("_of_earlier"):
            continue
        src = kept_before[(r["dup_of_corpus"], r["dup_of"])]
        if r["drop_reason"] == "exact_duplicate_of_earlier":
            assert src["text"] == r["text"]
        elif r["drop_reason"] == "minhash_duplicate_of_earlier":
            assert k in loose and jaccard(shingles(r["text"]), shingles(src["text"])) >= 0.5
        else:
            assert i in planted and planted[i][0] == "url"
    return {"cross_pairs": len(cross), "caught": caught, "near": len(near), "near_hit": len(hit)}


def test_second_snapshot_drops_what_repeats_the_first(snapshots):
    rows1, rows2 = snapshots["rows"][:2]
    got = _check(rows2, {"snap1": rows1}, snapshots["planted"], {"snap1"})
    stats2 = snapshots["stats"][0]
    print(f"\nsnapshot 2 against 1: {got}; {stats2['dedup']['against']}")
    assert stats2["input_records"] == stats2["kept"] + stats2["rejected"] + stats2["quarantined"]
    against = stats2["dedup"]["against"]
    assert against["duplicates"] == sum(v for k, v in stats2["by_reason"].items() if k.endswith("_of_earlier"))
    assert {r["stage"] for r in stats2["by_stage"]} >= {"earlier_dedup"}


def test_third_snapshot_against_an_index_of_both(snapshots):
    rows1, rows2, rows3, rows3b = snapshots["rows"]
    got = _check(rows3, {"snap1": rows1, "snap2": rows2}, snapshots["planted"], {"snap1", "snap2"})
    print(f"\nsnapshot 3 against the merged index: {got}")
    # the merged index and the two outputs named one by one give the same decisions
    view = {i: (r["drop_reason"], r.get("dup_of"), r.get("dup_of_corpus")) for i, r in rows3.items()}
    assert view == {i: (r["drop_reason"], r.get("dup_of"), r.get("dup_of_corpus")) for i, r in rows3b.items()}
    assert [c["name"] for c in snapshots["index"].corpora] == ["snap1", "snap2"]


def test_an_index_of_other_minhash_parameters_is_refused_before_any_work(snapshots):
    tmp = snapshots["tmp"]
    out1 = snapshots["outs"][0]
    with pytest.raises(JobError, match=r"bands 14 \(job: 20\).*rows 8 \(job: 5\)"):
        _job(tmp, "snap-other", snapshots["recs"][1][:50], against=[out1], bands=20, rows=5)
    assert not (tmp / "snap-other").exists()  # refused before the output was claimed
    with pytest.raises(JobError, match="neither a dedup index"):
        _job(tmp, "snap-nothing", snapshots["recs"][1][:50], against=[tmp / "no-such-output"])
    # snapshot 1 rerun against an index that holds it: every document would repeat itself
    with pytest.raises(JobError, match="holds this job's own output"):
        _job(tmp, "snap1", snapshots["recs"][0], against=[snapshots["index"].uri])
    with pytest.raises(JobError, match="own output"):
        _job(tmp, "snap1", snapshots["recs"][0], against=[out1])


def test_merge_refuses_an_output_it_holds(snapshots):
    tmp = snapshots["tmp"]
    out1 = snapshots["outs"][0]
    before = (tmp / "index" / "index.json").read_text()
    with pytest.raises(index.DedupIndexError, match="already holds output"):
        index.merge(str(tmp / "index"), [str(out1)])
    assert (tmp / "index" / "index.json").read_text() == before
    st = index.stats(str(tmp / "index"))
    assert st["documents"] == sum(
        sum(1 for r in rows.values() if r["drop_reason"] is None) for rows in snapshots["rows"][:2]
    )
