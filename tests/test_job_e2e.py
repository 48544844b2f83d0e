"""The demo job end to end on a real local Ray cluster: layout, schema, accounting, resume, engines agree."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
import yaml

from curation.cli import demo_spec
from curation.job import JobError, run_job
from curation.outputs import CURATED_COLUMNS, QUARANTINE_COLUMNS, REJECTED_COLUMNS
from curation.spec import QWEN29, load_spec, parse_spec


def _outputs(out: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(out)): p.read_bytes()
        for sub in ("curated", "rejected", "quarantine")
        for p in sorted((out / sub).rglob("*.parquet"))
    }


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, ray_session):
    out = tmp_path_factory.mktemp("demo") / "out"
    stats = run_job(parse_spec(demo_spec(str(out))))
    return out, stats


def test_layout_and_accounting(demo_run):
    out, stats = demo_run
    assert (out / "job.yaml").is_file() and (out / "report.html").is_file() and (out / "funnel.png").is_file()
    on_disk = json.loads((out / "stats.json").read_text())
    assert on_disk == stats
    assert stats["input_records"] == stats["kept"] + stats["rejected"] + stats["quarantined"]
    n_in = 3000 + 29 + 300 + 200 + 5
    assert stats["input_records"] == n_in
    counts = {sub: pads.dataset(out / sub, format="parquet").count_rows() for sub in ("rejected", "quarantine")}
    curated = pads.dataset(out / "curated", format="parquet", partitioning="hive")
    assert curated.count_rows() == stats["kept"] > 0
    assert counts["rejected"] == stats["rejected"] > 0
    assert counts["quarantine"] == stats["quarantined"] == 4  # the broken lines of broken.jsonl
    assert sum(stats["by_reason"].values()) == stats["rejected"]
    assert sum(v["kept"] for v in stats["by_lang"].values()) == stats["kept"]
    # The funnel chains: each stage's input is the previous stage's output.
    stages = stats["by_stage"]
    for a, b in zip(stages[1:-2], stages[2:-1]):
        assert a["out"] == b["in"], (a, b)


def test_curated_schema_and_partitions(demo_run):
    out, _ = demo_run
    langs = sorted(p.name.removeprefix("lang=") for p in (out / "curated").iterdir())
    assert "en" in langs and "code" in langs and set(langs) <= set(QWEN29) | {"code"}  # code has no language
    for path in (out / "curated").rglob("*.parquet"):
        f = pq.ParquetFile(path)
        assert f.schema_arrow.names == CURATED_COLUMNS + ["domain_score"]  # the demo tags domains
        assert f.metadata.row_group(0).column(0).compression == "ZSTD"
        lang = path.parent.name.removeprefix("lang=")
        assert set(f.read(columns=["lang"])["lang"].to_pylist()) == {lang}
    rejected = pads.dataset(out / "rejected", format="parquet").to_table()
    assert rejected.schema.names == REJECTED_COLUMNS + ["domain_score"]
    assert all(r for r in rejected["drop_reason"].to_pylist())
    q = pads.dataset(out / "quarantine", format="parquet").to_table()
    assert q.schema.names == QUARANTINE_COLUMNS
    errors = " | ".join(q["error"].to_pylist())
    for expected in ("broken JSON", "invalid UTF-8", "missing text field", "expected a JSON object"):
        assert expected in errors


def test_multilingual_documents_survive(demo_run):
    out, stats = demo_run
    # The UDHR file holds one declaration per Qwen2 language; most must come through all filters.
    kept_udhr = pads.dataset(out / "curated", format="parquet", partitioning="hive").to_table(
        filter=pads.field("source") == "udhr", columns=["lang"]
    )
    assert kept_udhr.num_rows >= 26, kept_udhr["lang"].to_pylist()  # all but what LID confuses


def test_dedup_clusters_named_by_kept_document(demo_run):
    out, stats = demo_run
    assert stats["by_reason"].get("exact_duplicate", 0) > 0
    kept = (
        pads.dataset(out / "curated", format="parquet", partitioning="hive")
        .to_table(columns=["id", "dup_cluster", "dup_cluster_size"])
        .to_pylist()
    )
    rej = (
        pads.dataset(out / "rejected", format="parquet")
        .to_table(columns=["id", "dup_cluster", "drop_reason"])
        .to_pylist()
    )
    kept_ids = {r["id"] for r in kept}
    dups = [r for r in rej if r["drop_reason"] in ("exact_duplicate", "minhash_duplicate")]
    assert dups and all(r["dup_cluster"] in kept_ids for r in dups)
    heads = {r["id"]: r for r in kept if r["dup_cluster"] is not None}
    assert all(heads[r["dup_cluster"]]["dup_cluster"] == r["dup_cluster"] for r in dups)
    assert all(r["dup_cluster_size"] >= 2 for r in heads.values())


def test_rerun_skips_finished_files_and_gives_identical_outputs(demo_run, tmp_path, capsys):
    out, stats = demo_run
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    before = _outputs(copy)
    # Simulate a job interrupted after annotating all but one file.
    (copy / "_work" / "done" / "f00001.json").unlink()
    shutil.rmtree(copy / "_work" / "annotated" / "f00001")
    from curation.progress import Progress

    job = load_spec(copy / "job.yaml", output=str(copy))
    again = run_job(job, progress=Progress())
    assert "4 file(s) already annotated, 1 to go" in capsys.readouterr().err
    assert _outputs(copy) == before
    for key in ("input_records", "kept", "rejected", "quarantined", "by_reason", "by_lang"):
        assert again[key] == stats[key]


def test_local_engine_matches_ray(demo_run, tmp_path):
    out, _ = demo_run
    spec = demo_spec(str(tmp_path / "local"))
    spec["execution"] = {"engine": "local"}
    run_job(parse_spec(spec))
    assert _outputs(tmp_path / "local") == _outputs(out)


def test_output_of_another_job_is_refused(demo_run, tmp_path):
    out, _ = demo_run
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    spec = yaml.safe_load((copy / "job.yaml").read_text())
    del spec["stages"]["filters"]["c4"]
    spec["output"] = str(copy)
    with pytest.raises(JobError, match="different spec"):
        run_job(parse_spec(spec))


def test_resolved_spec_loads_back_to_the_same_job(demo_run):
    out, _ = demo_run
    job = load_spec(out / "job.yaml")
    assert job == parse_spec(demo_spec(str(out)))
    assert [name for name, _ in job.stages.filters.enabled()] == [
        "gopher_quality",
        "gopher_repetition",
        "c4",
        "fineweb",
        "code",
        "math",
    ]
    assert job.stages.domain is not None and job.stages.domain.retag == ["web"]
