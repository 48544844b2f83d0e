"""Large inputs become several read tasks (execution.split_bytes): plain JSONL by byte ranges, Parquet by
row-group ranges. Every record is read exactly once whatever the boundaries, and a split run's outputs hold
the same rows as the unsplit run's."""

from __future__ import annotations

import json
import random

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from curation.io.formats import read_file
from curation.io.readers import ReadLimits
from curation.io.sources import discover
from curation.job import run_job
from curation.progress import Progress
from curation.spec import parse_spec
from tests.conftest import read_jsonl_gz, shared_file


def _lines_of_splits(path, split_bytes: int) -> tuple[list[str], list]:
    spec = parse_spec(
        {
            "output": str(path.parent / "o"),
            "inputs": [{"path": str(path), "format": "jsonl", "source": "s"}],
            "execution": {"split_bytes": split_bytes, "engine": "local"},
        }
    )
    files = discover(spec)
    ids = []
    for f in files:
        for t in read_file(f, ReadLimits(batch_size=7)):
            ids += t["id"].to_pylist()
    return ids, files


def test_every_line_is_read_once_whatever_the_boundaries(tmp_path):
    rng = random.Random(7)
    path = tmp_path / "mixed.jsonl"
    want = []
    with path.open("w") as f:
        for i in range(400):
            size = rng.choice([1, 10, 100, 3000, 20000])  # some lines longer than a split
            f.write(json.dumps({"id": f"r{i}", "text": "x" * size}) + "\n")
            want.append(f"r{i}")
            if i % 37 == 0:
                f.write("\n")  # blank lines are not records
    for split_bytes in (4096, 5000, 65536, 1 << 20):
        ids, files = _lines_of_splits(path, split_bytes)
        assert ids == want, split_bytes
        assert [f.ordinal for f in files] == list(range(len(files)))
        if split_bytes < path.stat().st_size:
            assert len(files) > 1 and all(f.split is not None for f in files)


def _run(inputs: list[dict], out, split_bytes, engine: str) -> dict:
    spec = {
        "name": "split",
        "output": str(out),
        "inputs": inputs,
        "stages": {"langid": {}, "filters": {"gopher_quality": {}}, "dedup": {"exact": {}, "minhash": {}}},
        "execution": {"engine": engine, "split_bytes": split_bytes, "batch_size": 100},
    }
    return run_job(parse_spec(spec), progress=Progress(enabled=False))


def _rows(out) -> list[tuple]:
    cols = ["id", "text", "lang", "dup_cluster", "dup_cluster_size"]
    kept = pads.dataset(out / "curated", format="parquet", partitioning="hive").to_table(columns=cols).to_pylist()
    rej = pads.dataset(out / "rejected", format="parquet").to_table(columns=cols + ["drop_reason"]).to_pylist()
    return sorted((tuple(r.get(c) for c in cols + ["drop_reason"]) for r in kept + rej), key=repr)


@pytest.fixture(scope="module")
def reuters_file(tmp_path_factory):
    docs = read_jsonl_gz(shared_file("news_reuters21578.jsonl.gz"), 3000)
    d = tmp_path_factory.mktemp("split")
    path = d / "reuters.jsonl"
    with path.open("w") as f:
        for r in docs + docs[:40]:  # and some exact copies, for dedup across splits
            f.write(json.dumps({"id": r["id"], "text": r["text"]}) + "\n")
        f.write("{broken json\n")
    return path


def test_a_split_jsonl_run_equals_the_unsplit_run(reuters_file, tmp_path, ray_session):
    size = reuters_file.stat().st_size
    inputs = [{"path": str(reuters_file), "format": "jsonl", "source": "r"}]
    whole = _run(inputs, tmp_path / "whole", None, "local")
    split = _run(inputs, tmp_path / "split", size // 8, "ray")
    assert split["input_files"] >= 8  # one read task per split, run by Ray in parallel
    for k in ("input_records", "kept", "rejected", "quarantined", "by_reason"):
        assert split[k] == whole[k], k
    assert whole["quarantined"] == 1 and whole["by_reason"].get("exact_duplicate", 0) >= 20
    assert _rows(tmp_path / "split") == _rows(tmp_path / "whole")
    # The broken line is quarantined once, located by its byte offset in the split run.
    q = pq.read_table(tmp_path / "split" / "quarantine").to_pylist()
    assert len(q) == 1 and q[0]["position"] == size - len("{broken json\n")


def test_a_parquet_file_splits_by_row_groups_with_the_same_positions_and_ids(reuters_file, tmp_path):
    rows = [json.loads(line) for line in reuters_file.read_text().splitlines() if line.startswith('{"id"')]
    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"text": [r["text"] for r in rows]}), path, row_group_size=250)  # no id column
    inputs = [{"path": str(path), "format": "parquet", "source": "p"}]
    whole = _run(inputs, tmp_path / "whole", None, "local")
    split = _run(inputs, tmp_path / "split", path.stat().st_size // 5, "local")
    assert split["input_files"] >= 4
    assert split["input_records"] == whole["input_records"] == len(rows)
    assert _rows(tmp_path / "split") == _rows(tmp_path / "whole")  # generated ids from positions agree
