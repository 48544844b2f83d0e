"""Inspection of finished runs on the bundled demo corpus (engine local): samples per drop reason, lineage
(`curate trace`, also for a mixture row), `curate diff` and `curate sweep`."""

from __future__ import annotations

import copy
import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from curation.cli import demo_spec
from curation.inspection.diff import diff
from curation.inspection.sweep import sweep
from curation.inspection.trace import TraceError, trace
from curation.job import run_job
from curation.progress import Progress
from curation.spec import parse_spec


def _spec(out: Path, **changes) -> dict:
    s = demo_spec(str(out))
    s["execution"] = {"engine": "local", **changes.pop("execution", {})}
    for key, value in changes.items():
        s["stages"]["filters"][key] = value
    return s


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The demo twice with the same spec but other batches, and once with Gopher's word count raised."""
    root = tmp_path_factory.mktemp("inspect")
    a = root / "a"
    stats = run_job(parse_spec(_spec(a)), progress=Progress(enabled=False))
    b = root / "b"
    run_job(parse_spec(_spec(b, execution={"batch_size": 137})), progress=Progress(enabled=False))
    c = root / "c"
    run_job(parse_spec(_spec(c, gopher_quality={"min_doc_words": 120})), progress=Progress(enabled=False))
    return {"a": a, "b": b, "c": c, "stats": stats}


def _outcomes(out: Path) -> dict[tuple[str, str], str]:
    """(input file, id) -> kept or drop reason, from a full scan of the outputs (the test's own reading)."""
    got = {}
    for sub in ("curated", "rejected"):
        t = ds.dataset(str(out / sub), format="parquet", partitioning="hive").to_table(
            columns=["id", "source"] + (["drop_reason"] if sub == "rejected" else [])
        )
        for row in t.to_pylist():
            got[(row["source"], row["id"])] = row.get("drop_reason") or "kept"
    return got


def _input_record(path: str, position: int) -> dict:
    """The record at a JSONL position (its line number, from 1)."""
    with gzip.open(path, "rt") as f:
        return json.loads(next(x for i, x in enumerate(f, start=1) if i == position))


def _samples(out: Path) -> pa.Table:
    return pq.read_table(out / "samples" / "part-00000.parquet")


def test_every_drop_reason_has_samples_with_its_measure(runs):
    stats, t = runs["stats"], _samples(runs["a"])
    reasons = set(t["drop_reason"].drop_null().to_pylist())
    assert set(stats["by_reason"]) <= reasons, set(stats["by_reason"]) - reasons
    assert {r for r in stats["by_reason"] if stats["by_reason"][r]} == reasons
    # at most samples_per_group per (reason, language), and every kept language sampled
    per_group = t.group_by(["drop_reason", "lang"]).aggregate([("id", "count")])
    assert max(per_group["id_count"].to_pylist()) <= 20
    kept_langs = {lang for lang, v in stats["by_lang"].items() if v["kept"]}
    assert set(t.filter(pa.compute.is_null(t["drop_reason"]))["lang"].to_pylist()) == kept_langs
    rows = t.to_pylist()
    measured = [r for r in rows if r["drop_reason"] and r["drop_reason"].startswith(("gopher_quality:word", "c4:"))]
    assert measured and all(r["value"] is not None and r["threshold"] is not None for r in measured)
    for r in measured:
        assert (r["value"] < r["threshold"]) if r["drops_when"] == "<" else (r["value"] > r["threshold"]), r
    low = [r for r in rows if r["drop_reason"] == "langid:low_score"]
    assert low and all(r["value"] < r["threshold"] for r in low)


def test_near_duplicates_are_sampled_beside_their_keeper(runs):
    out = runs["a"]
    dups = [r for r in _samples(out).to_pylist() if r["drop_reason"] in ("minhash_duplicate", "exact_duplicate")]
    assert any(r["drop_reason"] == "minhash_duplicate" for r in dups)
    curated = ds.dataset(str(out / "curated"), format="parquet", partitioning="hive").to_table(columns=["id", "text"])
    text_of = dict(zip(curated["id"].to_pylist(), curated["text"].to_pylist()))
    for r in dups:
        assert r["dup_cluster"] in text_of  # the keeper is a kept document
        assert r["keeper_text"] == text_of[r["dup_cluster"]][:1000]
        if r["drop_reason"] == "minhash_duplicate":
            assert r["dup_similarity"] >= r["threshold"] > 0.5
        # the keeper's position points at the keeper's record in the input
        assert _input_record(r["keeper_input_file"], r["keeper_position"])["id"] == r["dup_cluster"]


def test_samples_do_not_depend_on_batching(runs):
    a, b = _samples(runs["a"]), _samples(runs["b"])
    assert a.select(["drop_reason", "lang", "id", "value"]).equals(b.select(["drop_reason", "lang", "id", "value"]))


def test_trace_finds_a_rejected_document_back_to_its_input_line(runs):
    out = runs["a"]
    rej = pq.read_table(out / "rejected" / "part-00000.parquet", columns=["id", "drop_reason"]).to_pylist()
    pick = next(r for r in rej if r["drop_reason"] == "gopher_quality:word_count_low")
    got = trace(str(out), pick["id"])["records"]
    assert len(got) == 1
    rec = got[0]
    assert rec["status"] == "rejected" and rec["drop_reason"] == pick["drop_reason"]
    assert _input_record(rec["input_file"], rec["position"])["id"] == pick["id"]
    decisions = {s["stage"]: s for s in rec["stages"]}
    assert decisions["langid"]["decision"] == "passed"
    assert decisions["gopher_quality"]["decision"] == "dropped"
    assert decisions["gopher_quality"]["measure"]["value"] < decisions["gopher_quality"]["measure"]["threshold"]
    assert decisions["minhash_dedup"]["decision"] == "not reached"
    # the same record from its input position, and its output row holds it
    again = trace(str(out), ordinal=rec["input_ordinal"], position=rec["position"])["records"][0]
    assert again["id"] == pick["id"]
    row = pq.read_table(out / rec["output_file"]).slice(rec["output_row"], 1).to_pylist()[0]
    assert row["id"] == pick["id"]
    with pytest.raises(TraceError):
        trace(str(out), "no-such-document")


def test_trace_answers_for_a_mixture_row(runs, tmp_path):
    from mixtures.job import run_mix
    from mixtures.spec import parse_mix_spec

    mix = tmp_path / "mix"
    run_mix(
        parse_mix_spec(
            {
                "kind": "mix",
                "inputs": [str(runs["a"])],
                "output": str(mix),
                "target_tokens": 60_000,
                "shard_tokens": 10_000,
                "execution": {"engine": "local"},
            }
        ),
        progress=Progress(enabled=False),
    )
    shards = sorted((mix / "shards").glob("*.parquet"))
    assert len(shards) > 2
    rows = pq.read_table(shards[-1], columns=["id"])["id"].to_pylist()
    doc = rows[len(rows) // 2]
    got = trace(str(mix), doc)
    assert got["copies"] and all(c["shard"].startswith("shards/") for c in got["copies"])
    assert any(Path(mix / c["shard"]) == shards[-1] for c in got["copies"])
    up = got["curated_from"]
    assert len(up) == 1 and up[0]["status"] == "kept" and up[0]["input_file"] and up[0]["position"] >= 0
    assert all(s["decision"] in ("passed",) or s["decision"].startswith("not applicable") for s in up[0]["stages"])


def test_diff_reports_exactly_what_the_threshold_change_moved(runs, tmp_path):
    a, c = runs["a"], runs["c"]
    got = diff(str(a), str(c), samples=3, moved_dir=str(tmp_path / "moved"))
    before, after = _outcomes(a), _outcomes(c)
    assert set(before) == set(after)
    expected = {k for k in before if before[k] != after[k]}
    moved = ds.dataset(str(tmp_path / "moved"), format="parquet").to_table()
    assert got["moved"] == len(expected) == len(moved) > 0
    # ids are unique within a source here, so (source, id) names a document
    assert {(s, i) for (s, i) in expected} == {(s, i) for (s, i) in expected if i in set(moved["id"].to_pylist())}
    assert set(moved["id"].to_pylist()) == {i for _, i in expected}
    # only the changed rule moved them: every transition ends or starts at its reason
    assert all("gopher_quality:word_count_low" in t for t in got["by_reason"])
    assert got["kept_only_in_a"] == sum(before[k] == "kept" for k in expected)
    assert got["kept_only_in_b"] == 0
    # a run against itself with other batches moves nothing
    same = diff(str(a), str(runs["b"]))
    assert same["moved"] == 0 and same["documents"] == got["documents"]


def test_sweep_at_the_current_threshold_gives_the_kept_documents(runs):
    out, stats = runs["a"], runs["stats"]
    got = sweep(str(out), points=5)
    col = got["columns"]["lang_score"]
    checked = 0
    for lang, d in col["languages"].items():
        at = [p for p in d["curve"] if p["threshold"] == round(d["current_threshold"], 2)]
        assert at, d
        assert at[0]["documents"] == stats["by_lang"][lang]["kept"], lang
        counts = [p["documents"] for p in d["curve"]]
        assert counts == sorted(counts, reverse=True)  # a higher threshold never keeps more
        checked += 1
    assert checked >= 5
    # the histograms the job counted as it wrote equal a scan of its outputs afterwards
    assert stats["sweep_histograms"]
    from curation.inspection.sweep import sweep_file
    from curation.outputs import Layout, merge_counts

    layout, scanned = Layout(str(out)), {}
    names = {p.name for p in out.glob("curated/*/*.parquet")} | {p.name for p in out.glob("rejected/*.parquet")}
    for name in sorted(names):
        files = [str(p.relative_to(out)) for p in out.glob(f"curated/*/{name}")]
        files += [f"rejected/{name}"] if (out / "rejected" / name).exists() else []
        merge_counts(scanned, sweep_file(layout, files))
    assert scanned == stats["sweep_histograms"]
    assert "Threshold sweeps" in (out / "report.html").read_text()


def test_job_spec_inspection_off_writes_no_lineage_or_samples(tmp_path):
    s = _spec(tmp_path / "off")
    s["inputs"] = s["inputs"][:1]
    s["inspection"] = {"samples_per_group": 0, "lineage": False}
    run_job(parse_spec(copy.deepcopy(s)), progress=Progress(enabled=False))
    assert not (tmp_path / "off" / "samples").exists() and not (tmp_path / "off" / "lineage").exists()
