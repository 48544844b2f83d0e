"""No chaining on natural near-duplicate families: source files that share a license header, Go and
assembly files written once per architecture, and the several UDHR versions of one language. These form
long chains (version A ~ B ~ C, A not ~ C); a removed document must still resemble the document kept
for it, and the kept document must be named as its cluster."""

from __future__ import annotations

import json
from collections import Counter

import pyarrow.dataset as pads
import pytest

from curation.job import run_job
from curation.progress import Progress
from curation.spec import parse_spec
from tests.conftest import read_jsonl_gz, shared_file
from tests.test_dedup_reuters import jaccard, shingles  # the same reference measure


@pytest.fixture(scope="module")
def families(tmp_path_factory):
    d = tmp_path_factory.mktemp("families")
    code = read_jsonl_gz(shared_file("code_files.jsonl.gz"))
    udhr = read_jsonl_gz(shared_file("lid_udhr.jsonl.gz"))
    versions = Counter(r["lang"] for r in udhr)
    udhr = [r for r in udhr if versions[r["lang"]] > 31 and r["lang"] != "und"]  # languages with several versions
    for name, rows in (("code.jsonl", code), ("udhr.jsonl", udhr)):
        with (d / name).open("w") as f:
            for r in rows:
                f.write(json.dumps({"id": r["id"], "text": r["text"]}) + "\n")
    out = d / "out"
    stats = run_job(parse_spec(_spec(d, out)), progress=Progress(enabled=False))
    return stats, _rows(out), d


def _spec(d, out, **dedup) -> dict:
    return {
        "name": "families",
        "output": str(out),
        "inputs": [
            {"path": str(d / "code.jsonl"), "format": "jsonl", "source": "code"},
            {"path": str(d / "udhr.jsonl"), "format": "jsonl", "source": "udhr"},
        ],
        "stages": {"dedup": {"exact": {}, "minhash": {}, **dedup}},
        "execution": {"engine": "local", "split_bytes": None},
    }


def _rows(out) -> list[dict]:
    cols = ["id", "text", "dup_cluster", "dup_cluster_size", "dup_similarity"]
    rows = pads.dataset(out / "curated", format="parquet", partitioning="hive").to_table(columns=cols).to_pylist()
    rows += pads.dataset(out / "rejected", format="parquet").to_table(columns=cols + ["drop_reason"]).to_pylist()
    return rows


def test_removed_documents_resemble_their_keeper(families):
    stats, rows, _ = families
    assert stats["input_records"] == len(rows) == stats["kept"] + stats["rejected"]
    by_id = {r["id"]: r for r in rows}
    removed = [r for r in rows if r.get("drop_reason") in ("exact_duplicate", "minhash_duplicate")]
    assert len(removed) > 300  # the families are there
    assert all(by_id[r["dup_cluster"]].get("drop_reason") is None for r in removed)  # named by its keeper
    sims = [jaccard(shingles(r["text"]), shingles(by_id[r["dup_cluster"]]["text"])) for r in removed]
    low = sum(s < 0.5 for s in sims)
    print(
        f"\nremoved {len(removed)}; word-5-gram Jaccard < 0.5 to the keeper: {low} ({low / len(removed):.1%}); "
        f"{stats['dedup']['rejected_edges']:,} of {stats['dedup']['candidate_edges']:,} candidate edges failed "
        "the signature check"
    )
    assert low / len(removed) < 0.02
    # The recorded estimate is the signature agreement with the keeper, at or above the threshold (an
    # exact duplicate's keeper may be a near copy of its text).
    threshold = stats["dedup"]["similarity_threshold"]
    assert all(r["dup_similarity"] >= threshold - 1e-6 for r in removed)
    assert any(r["dup_similarity"] < 1 for r in removed)


def test_cluster_sizes_count_the_keeper_and_its_removed_documents(families):
    _, rows, _ = families
    members = Counter(r["dup_cluster"] for r in rows if r["dup_cluster"] is not None)
    assert members and all(
        r["dup_cluster_size"] == members[r["dup_cluster"]] for r in rows if r["dup_cluster"] is not None
    )


def test_many_partitions_and_file_groups_on_ray_decide_as_one_task_does(families, tmp_path, ray_session):
    """The distributed graph (7 shuffle/component partitions, input files in 2 groups and split into 9 read
    tasks, Ray tasks) removes the same documents for the same keepers as one partition in this process."""
    _, rows, folder = families
    out = tmp_path / "ray"
    spec = _spec(folder, out, partitions=7, file_groups=2)
    spec["execution"] = {"engine": "ray", "split_bytes": 1 << 20}
    stats = run_job(parse_spec(spec), progress=Progress(enabled=False))
    assert stats["input_files"] >= 9 and stats["dedup"]["partitions"] == 7 and stats["dedup"]["file_groups"] == 2
    assert stats["dedup"]["cluster_partitions"] == 7
    key = lambda r: (
        r["id"],
        r["text"],
        r.get("drop_reason"),
        r["dup_cluster"],
        r["dup_cluster_size"],  # noqa: E731
        r["dup_similarity"],
    )
    assert sorted(map(key, _rows(out)), key=repr) == sorted(map(key, rows), key=repr)
