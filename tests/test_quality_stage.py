"""The quality and domain stages inside a job: scores for every row, thresholds, the duplicate that
survives, top fraction per group, accounting, and the report (local engine and real Ray actors)."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from curation.dedup.distributed import cluster_local
from curation.job import run_job
from curation.spec import SpecError, parse_spec
from filters.fasttext_quality import TrainParams, train_fasttext
from tests.conftest import read_jsonl_gz, shared_file
from tests.test_quality_classifier import boilerplate


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A quality model trained on half the pages, and a corpus from the other half: main texts (good),
    boilerplate (bad), near-duplicates of main texts that carry some boilerplate and come first in
    input order, code files and math problems."""
    pages = read_jsonl_gz(
        shared_file("web_trafilatura_eval.jsonl.gz"), where=lambda r: r.get("main_text") and len(r["main_text"]) > 1500
    )
    train, rest = pages[::2], pages[1::2]
    d = tmp_path_factory.mktemp("quality")
    model = d / "web.bin"
    texts = [p["main_text"] for p in train] + [b for p in train if (b := boilerplate(p))]
    labels = ["hq"] * len(train) + ["lq"] * (len(texts) - len(train))
    train_fasttext(texts, labels, model, TrainParams(bucket=50_000))
    rows = []
    for p in rest[:60]:
        lines = [x for x in boilerplate(p).split("\n") if len(x) > 3][:4]
        if len(lines) == 4:  # the near-duplicate first: the first-in-order rule would keep it
            rows.append(
                {
                    "id": f"{p['id']}-with-menu",
                    "text": "\n".join(lines[:2]) + "\n" + p["main_text"] + "\n" + "\n".join(lines[2:]),
                }
            )
        rows.append({"id": p["id"], "text": p["main_text"]})
        if b := boilerplate(p):
            rows.append({"id": f"{p['id']}-boilerplate", "text": b})
    for r in read_jsonl_gz(shared_file("code_files.jsonl.gz"), limit=30):
        rows.append({"id": r["id"], "text": r["text"]})
    for r in read_jsonl_gz(shared_file("math_problems.jsonl.gz"), limit=30):
        rows.append({"id": r["id"], "text": r["text"]})
    path = d / "in.jsonl"
    with path.open("w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
        f.write("{broken\n")
    return path, model, {r["id"]: r for r in rows}


def _spec(path, model, out, **quality):
    return {
        "name": "q",
        "output": str(out),
        "languages": "all",
        "inputs": [{"path": str(path), "format": "jsonl", "source": "mixed"}],
        "stages": {
            "domain": {},
            "langid": {},
            "filters": {"code": {}, "math": {}},
            "quality": {"classifiers": {"web": {"model": str(model), **quality}}},
            "dedup": {"exact": {}, "minhash": {}},
        },
        "execution": {"engine": "local"},
    }


def _read(out, sub):
    return ds.dataset(str(out / sub), format="parquet", partitioning="hive" if sub == "curated" else None).to_table()


def test_scores_thresholds_and_the_surviving_duplicate(corpus, tmp_path):
    path, model, rows = corpus
    spec = _spec(path, model, tmp_path / "a", min_score_by_domain={"web": 0.5})
    spec["stages"]["quality"]["dedup_keep"] = "web"
    stats = run_job(parse_spec(spec))
    assert stats["input_records"] == stats["kept"] + stats["rejected"] + stats["quarantined"] == len(rows) + 1
    kept, rejected = _read(tmp_path / "a", "curated"), _read(tmp_path / "a", "rejected")
    # Every parsed row has its score, kept or rejected.
    for t in (kept, rejected):
        assert "quality_web" in t.column_names and t["quality_web"].null_count == 0
    reasons = dict(zip(rejected["id"].to_pylist(), rejected["drop_reason"].to_pylist()))
    kept_ids = set(kept["id"].to_pylist())
    boiler = [i for i in rows if i.endswith("-boilerplate")]
    dropped_by_score = sum(reasons.get(i) == "quality:web" for i in boiler)
    assert dropped_by_score >= 0.8 * len(boiler), collections_of(reasons)
    assert stats["by_reason"]["quality:web"] >= dropped_by_score
    # Duplicates: the clean main text outscores its copy with menu lines, so it survives although the
    # copy comes first in input order.
    pairs = [(i, i.removesuffix("-with-menu")) for i in rows if i.endswith("-with-menu")]
    dup_pairs = [
        (a, b) for a, b in pairs if reasons.get(a) == "minhash_duplicate" or reasons.get(b) == "minhash_duplicate"
    ]
    assert len(dup_pairs) >= 0.5 * len(pairs)
    score = dict(
        zip(
            kept["id"].to_pylist() + rejected["id"].to_pylist(),
            kept["quality_web"].to_pylist() + rejected["quality_web"].to_pylist(),
        )
    )
    for a, b in dup_pairs:  # whichever survives has the better score
        survivor, dropped = (b, a) if reasons.get(a) == "minhash_duplicate" else (a, b)
        assert score[survivor] >= score[dropped], (a, b)
    survivors_clean = sum(b in kept_ids and reasons.get(a) == "minhash_duplicate" for a, b in dup_pairs)
    assert survivors_clean >= 0.75 * len(dup_pairs)
    clusters = dict(zip(kept["id"].to_pylist(), kept["dup_cluster"].to_pylist()))
    assert all(clusters[b] == b for a, b in dup_pairs if b in kept_ids)  # clusters named after their keeper
    # Domains: code and math documents were tagged, kept by their own rules, and code has no language.
    domains = dict(zip(kept["id"].to_pylist(), kept["domain"].to_pylist()))
    langs = dict(zip(kept["id"].to_pylist(), kept["lang"].to_pylist()))
    assert stats["by_domain"]["code"]["kept"] >= 25 and stats["by_domain"]["math"]["kept"] >= 25
    assert all(langs[i] == "code" for i in kept_ids if domains[i] == "code")
    # Report: a histogram per classifier, and the counts it is drawn from add up to the scored rows.
    hist = stats["quality_scores"]["quality_web"]
    assert sum(hist["kept"].values()) == stats["kept"]
    assert sum(hist["rejected"].values()) == stats["rejected"]
    assert (tmp_path / "a" / "quality_web.png").stat().st_size > 1000
    assert "Scores: quality_web" in (tmp_path / "a" / "report.html").read_text()


def collections_of(reasons):
    import collections

    return collections.Counter(reasons.values())


def test_default_keeper_is_the_first_in_input_order(corpus, tmp_path):
    path, model, rows = corpus
    run_job(parse_spec(_spec(path, model, tmp_path / "b")))
    rejected = _read(tmp_path / "b", "rejected")
    reasons = dict(zip(rejected["id"].to_pylist(), rejected["drop_reason"].to_pylist()))
    pairs = [(i, i.removesuffix("-with-menu")) for i in rows if i.endswith("-with-menu")]
    dups = [b for a, b in pairs if reasons.get(b) == "minhash_duplicate"]
    assert len(dups) >= 0.5 * len(pairs)  # without dedup_keep the earlier copy (with menus) survives


def test_keep_top_fraction_per_language_and_domain(corpus, tmp_path):
    path, model, rows = corpus
    stats = run_job(parse_spec(_spec(path, model, tmp_path / "c", keep_top_fraction=0.5)))
    kept = _read(tmp_path / "c", "curated")
    rejected = _read(tmp_path / "c", "rejected")
    reasons = rejected["drop_reason"].to_pylist()
    n_top = reasons.count("quality:web:top_fraction")
    top = stats["by_stage"][-2]
    assert top["stage"] == "top_fraction" and top["in"] - top["out"] == n_top > 0
    # Per (language, domain) group, half of the survivors (whole score bins: ties may keep a few more)
    # remain, and every kept score is at least every score cut from its group.
    groups = {}
    for t, side in ((kept, "kept"), (rejected, "cut")):
        for lang, dom, score, reason in zip(
            t["lang"].to_pylist(),
            t["domain"].to_pylist(),
            t["quality_web"].to_pylist(),
            t["drop_reason"].to_pylist() if "drop_reason" in t.column_names else [None] * len(t),
        ):
            if side == "kept" or reason == "quality:web:top_fraction":
                groups.setdefault((lang, dom), {"kept": [], "cut": []})[side].append(score)
    big = {g: v for g, v in groups.items() if len(v["kept"]) + len(v["cut"]) >= 10}
    assert big
    for g, v in big.items():
        n = len(v["kept"]) + len(v["cut"])
        assert 0.5 * n <= len(v["kept"]) <= 0.5 * n + 2, (g, len(v["kept"]), n)
        if v["cut"]:
            assert min(v["kept"]) >= max(v["cut"]) - 0.001


def test_ray_actors_run_domain_and_quality_stages(corpus, tmp_path, ray_session):
    path, model, rows = corpus
    spec = _spec(path, model, tmp_path / "ray", min_score_by_domain={"web": 0.5})
    spec["execution"] = {"engine": "ray"}
    stats = run_job(parse_spec(spec))
    local = _spec(path, model, tmp_path / "local", min_score_by_domain={"web": 0.5})
    local_stats = run_job(parse_spec(local))
    assert stats["by_reason"] == local_stats["by_reason"] and stats["by_domain"] == local_stats["by_domain"]
    a = pq.read_table(tmp_path / "ray" / "rejected").sort_by("id")
    b = pq.read_table(tmp_path / "local" / "rejected").sort_by("id")
    assert np.allclose(a["quality_web"].to_numpy(), b["quality_web"].to_numpy())


def test_keepers_prefer_the_best_score_then_input_order():
    # 3 is an exact copy of 1; 2 a near copy of both; 11 a near copy of 10.
    u, v, kind = [2, 3, 3, 11], [1, 1, 2, 10], [1, 0, 1, 1]
    first = cluster_local(u, v, kind)
    assert first["doc"].tolist() == [1, 2, 3, 10, 11]
    assert first["reason"].tolist() == [0, 2, 1, 0, 2] and first["cluster"].tolist() == ["1", "1", "1", "10", "10"]
    s = cluster_local(u, v, kind, score={1: 0.2, 2: 0.9, 3: 0.2, 10: 0.5, 11: 0.5})
    assert s["reason"].tolist() == [1, 0, 1, 0, 2]  # 2 wins its cluster; 1 and 3 are exact twins
    assert s["cluster"].tolist() == ["2", "2", "2", "10", "10"]  # ties (10, 11) keep the first
    n = cluster_local(u, v, kind, score={3: 0.1})  # a missing score loses to any score
    assert n["cluster"].tolist()[:3] == ["3", "3", "3"] and n["size"].tolist()[:3] == [3, 3, 3]


def test_spec_errors_name_the_key(tmp_path, corpus):
    path, model, _ = corpus
    bad = _spec(path, tmp_path / "missing.bin", tmp_path / "x")
    with pytest.raises(SpecError, match=r"stages\.quality\.classifiers\.web\.model: .*quality model not found"):
        parse_spec(bad)
    bad = _spec(path, model, tmp_path / "x")
    bad["stages"]["quality"]["dedup_keep"] = "edu"
    with pytest.raises(SpecError, match="dedup_keep: 'edu' is not one of the classifiers"):
        parse_spec(bad)
    bad = _spec(path, model, tmp_path / "x")
    bad["stages"]["quality"]["classifiers"] = {"Web-1": {"model": str(model)}}
    with pytest.raises(SpecError, match="lower-case"):
        parse_spec(bad)
    ppl = _spec(path, model, tmp_path / "x")
    ppl["stages"]["quality"]["perplexity"] = {"model": str(model)}  # a file that exists
    if importlib.util.find_spec("kenlm") is None:  # without the optional module: a clear message up front
        with pytest.raises(SpecError, match=r"stages\.quality\.perplexity\.model: .*pip install kenlm"):
            parse_spec(ppl)
    else:
        assert parse_spec(ppl).stages.quality.perplexity.model == str(model)


ARPA = """\\data\\
ngram 1=5
ngram 2=2

\\1-grams:
-2.0\t<unk>\t0
-99\t<s>\t-0.3
-0.7\t</s>\t0
-0.5\tthe\t-0.2
-0.8\tcat\t-0.2

\\2-grams:
-0.1\t<s> the
-0.1\tthe cat

\\end\\
"""


def test_perplexity_with_a_kenlm_model(tmp_path):
    """A hand-written ARPA model (KenLM reads ARPA as is): text it knows has a low perplexity and stays,
    text it does not know is dropped above max_perplexity; every parsed row gets the column."""
    pytest.importorskip("kenlm")
    from filters.perplexity import KenLMPerplexity

    (tmp_path / "lm.arpa").write_text(ARPA)
    ppl = KenLMPerplexity(tmp_path / "lm.arpa").scores(["the cat", "The  Cat\nthe cat", "dog xyz qqq", None])
    assert ppl[0] == pytest.approx(ppl[1]) and ppl[0] < 5 < 50 < ppl[2] and np.isnan(ppl[3])
    corpus = tmp_path / "in.jsonl"
    corpus.write_text(
        "".join(
            json.dumps({"id": str(i), "text": t}) + "\n"
            for i, t in enumerate(["the cat", "the cat the cat", "dog xyz qqq", "zebra"])
        )
    )
    spec = {
        "output": str(tmp_path / "out"),
        "languages": "all",
        "inputs": [{"path": str(corpus), "format": "jsonl", "source": "t"}],
        "stages": {"quality": {"perplexity": {"model": str(tmp_path / "lm.arpa"), "max_perplexity": 10}}},
        "execution": {"engine": "local"},
    }
    stats = run_job(parse_spec(spec))
    assert stats["by_reason"] == {"quality:perplexity": 2} and stats["kept"] == 2
    rejected = pq.read_table(tmp_path / "out" / "rejected")
    assert sorted(rejected["id"].to_pylist()) == ["2", "3"] and rejected["perplexity"].null_count == 0
