"""A curate output is a Hugging Face dataset folder: its card names the curated, rejected and quarantine
files, so `load_dataset(OUT)` never reads the work folder or files still being written."""

from __future__ import annotations

import json

import pyarrow.dataset as pads
import pytest

from curation.job import run_job
from curation.progress import Progress
from curation.spec import parse_spec


def test_load_dataset_reads_a_curate_output_folder(tmp_path):
    datasets = pytest.importorskip("datasets")
    src = tmp_path / "in.jsonl"
    words = "the quick brown fox jumps over the lazy dog while the cat sleeps in the warm sun".split()
    recs = [{"id": f"d{i}", "text": " ".join(words[(i + j) % len(words)] for j in range(60)) + "."}
            for i in range(40)] + [{"id": "short", "text": "too short"}, {"id": "n", "text": None}]
    src.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    out = tmp_path / "out"
    spec = {"name": "folder", "output": str(out), "inputs": [{"path": str(src), "format": "jsonl", "source": "s"}],
            "stages": {"filters": {"gopher_quality": {}}}, "execution": {"engine": "local"}}
    stats = run_job(parse_spec(spec), progress=Progress(enabled=False))
    assert stats["rejected"] >= 1 and stats["quarantined"] == 1
    card = (out / "README.md").read_text()
    assert card.startswith("---\nconfigs:") and f"{stats['kept']:,} kept" in card
    # What a folder looks like while a job writes: a partial file under its in-progress name, and _work/.
    lang_dir = next((out / "curated").iterdir())
    (lang_dir / ".inprogress-part-99999.parquet").write_bytes(b"PAR1 half a file")
    assert (out / "_work").is_dir()
    cache = str(tmp_path / "hf")
    kept = datasets.load_dataset(str(out), split="train", cache_dir=cache)
    assert len(kept) == stats["kept"]
    assert sorted(kept["id"]) == sorted(pads.dataset(out / "curated", format="parquet").to_table()["id"].to_pylist())
    rejected = datasets.load_dataset(str(out), name="rejected", split="train", cache_dir=cache)
    assert len(rejected) == stats["rejected"] and all(rejected["drop_reason"])
    quarantine = datasets.load_dataset(str(out), name="quarantine", split="train", cache_dir=cache)
    assert quarantine["id"] == ["n"]
