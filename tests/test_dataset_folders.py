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
    recs = [
        {"id": f"d{i}", "text": " ".join(words[(i + j) % len(words)] for j in range(60)) + "."} for i in range(40)
    ] + [{"id": "short", "text": "too short"}, {"id": "n", "text": None}]
    src.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    out = tmp_path / "out"
    spec = {
        "name": "folder",
        "output": str(out),
        "inputs": [{"path": str(src), "format": "jsonl", "source": "s"}],
        "stages": {"filters": {"gopher_quality": {}}},
        "execution": {"engine": "local"},
    }
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


def _load_while_writing(monkeypatch, out, datasets, cache, final_glob):
    """Patch the Parquet sink so that, the first time a file is closed while another is already final,
    `load_dataset(out)` runs right there: mid-run, with that file half-written under its in-progress
    name and the work folder present. Returns the snapshots [(rows loaded, ids of the final files)]."""
    import pyarrow.parquet as pq

    from curation import outputs

    real = outputs._Sink.close
    seen: list[tuple[list[str], list[str]]] = []

    def close(self):
        self._flush()
        final = sorted(p for p in out.glob(final_glob) if not p.name.startswith("."))
        if self.writer is not None and final and not seen:
            assert any(p.name.startswith(".inprogress-") for p in out.rglob("*.parquet"))
            got = datasets.load_dataset(str(out), split="train", cache_dir=cache)
            seen.append(
                (
                    sorted(got["id"]),
                    sorted(i for p in final for i in pq.read_table(p, columns=["id"])["id"].to_pylist()),
                )
            )
        return real(self)

    monkeypatch.setattr(outputs._Sink, "close", close)
    return seen


def test_load_dataset_during_a_curate_run_and_a_mix_run(tmp_path, monkeypatch):
    """Live runs: `load_dataset(OUT)` in the middle of a curate job and of a mix job gives exactly the
    files finished so far, never a half-written file or a work file."""
    datasets = pytest.importorskip("datasets")
    from mixtures.job import run_mix
    from mixtures.spec import parse_mix_spec

    words = "the quick brown fox jumps over the lazy dog while the cat sleeps in the warm sun".split()
    inputs = []
    for f in range(3):
        src = tmp_path / f"in{f}.jsonl"
        src.write_text(
            "\n".join(
                json.dumps(
                    {
                        "id": f"f{f}d{i}",
                        "text": " ".join(words[(i * 7 + f + j) % len(words)] for j in range(50 + i)) + ".",
                    }
                )
                for i in range(30)
            )
            + "\n"
        )
        inputs.append({"path": str(src), "format": "jsonl", "source": f"s{f % 2}"})
    out = tmp_path / "out"
    seen = _load_while_writing(monkeypatch, out, datasets, str(tmp_path / "hf"), "curated/**/*.parquet")
    spec = {"name": "live", "output": str(out), "inputs": inputs, "execution": {"engine": "local"}}
    stats = run_job(parse_spec(spec), progress=Progress(enabled=False))
    assert len(seen) == 1 and seen[0][0] == seen[0][1] and 0 < len(seen[0][0]) < stats["kept"]
    monkeypatch.undo()

    mix = tmp_path / "mix"
    seen = _load_while_writing(monkeypatch, mix, datasets, str(tmp_path / "hf2"), "shards/*.parquet")
    m = run_mix(
        parse_mix_spec(
            {
                "kind": "mix",
                "inputs": [str(out)],
                "output": str(mix),
                "target_tokens": 3000,
                "shard_tokens": 500,
                "execution": {"engine": "local"},
            }
        ),
        progress=Progress(enabled=False),
    )
    assert len(m["shards"]) >= 3
    assert len(seen) == 1 and seen[0][0] == seen[0][1] and 0 < len(seen[0][0]) < m["rows"]
    monkeypatch.undo()
    after = datasets.load_dataset(str(mix), split="train", cache_dir=str(tmp_path / "hf3"))
    assert len(after) == m["rows"]
