"""`curate plan` against real runs: a curate job over ../shared/data 20x larger than the plan's sample, and a
mixture over the demo output."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
import yaml

from curation.inspection.plan import plan_curate, plan_job
from curation.job import run_job
from curation.progress import Progress
from curation.spec import parse_spec
from tests.conftest import BIN, shared_file


def _heldout(out) -> dict:
    return {
        "kind": "curate",
        "name": "heldout",
        "output": str(out),
        "inputs": [
            {"path": str(shared_file("news_reuters21578.jsonl.gz")), "format": "jsonl", "source": "reuters"},
            {"path": str(shared_file("math_problems.jsonl.gz")), "format": "jsonl", "source": "math", "domain": "math"},
        ],
        "stages": {
            "langid": {},
            "filters": {"gopher_quality": {}, "gopher_repetition": {}, "c4": {}, "fineweb": {}, "math": {}},
            "dedup": {"exact": {}, "minhash": {}},
        },
        "execution": {"engine": "local"},
    }


def test_plan_projects_a_job_20x_its_sample_within_30_percent(tmp_path):
    job = parse_spec(_heldout(tmp_path / "real"))
    sample = 1800
    plan = plan_curate(job, sample=sample, work=str(tmp_path / "plan"))
    assert plan["sample"]["records"]["whole"] == sample
    # the real job as a user runs it: `curate run` in a process of its own
    spec = tmp_path / "job.yaml"
    spec.write_text(yaml.safe_dump(_heldout(tmp_path / "real"), sort_keys=False))
    t0 = time.monotonic()
    subprocess.run([str(BIN / "curate"), "run", str(spec), "--quiet"], check=True, capture_output=True)
    wall = time.monotonic() - t0
    stats = json.loads((tmp_path / "real" / "stats.json").read_text())
    assert stats["input_records"] >= 20 * sample
    assert plan["input_records"] == pytest.approx(stats["input_records"], rel=0.05)
    assert plan["kept_documents"] == pytest.approx(stats["kept"], rel=0.30), (plan["kept_documents"], stats["kept"])
    print(f"plan: wall {plan['wall_seconds']} s projected, {wall:.1f} s real")
    assert plan["wall_seconds"] == pytest.approx(wall, rel=0.30), (plan["wall_seconds"], wall)
    # the rest of the contract's keys, in their units
    assert set(plan["cpu_seconds_by_stage"]) >= {"langid", "gopher_quality", "write"}
    assert plan["peak_worker_rss_mb"] > 50 and plan["output_bytes"] > 0 and plan["work_bytes"] > 0
    real_out = sum(p.stat().st_size for sub in ("curated", "rejected") for p in (tmp_path / "real" / sub).rglob("*"))
    assert plan["output_bytes"] >= real_out * 0.7


def test_mix_plan_tokens_per_bucket_match_the_mixture(tmp_path):
    """With a sample as large as the pool, the projection is the pool itself: the same tokens per bucket
    the mixture counts, and the same allocation."""
    from curation.cli import demo_spec
    from mixtures.job import run_mix
    from mixtures.spec import parse_mix_spec

    spec = demo_spec(str(tmp_path / "cur"))
    spec["execution"] = {"engine": "local"}
    spec["inputs"] = spec["inputs"][:3]
    run_job(parse_spec(spec), progress=Progress(enabled=False))
    mix = {
        "kind": "mix",
        "inputs": [str(tmp_path / "cur")],
        "output": str(tmp_path / "mix"),
        "target_tokens": 200_000,
        "bucket_by": ["source"],
        "execution": {"engine": "local"},
    }
    (tmp_path / "mix.yaml").write_text(yaml.safe_dump(mix))
    plan = plan_job(str(tmp_path / "mix.yaml"), sample=100_000)
    manifest = run_mix(parse_mix_spec(mix), progress=Progress(enabled=False))
    got = {b["name"]: (b["available_tokens"], b["allocated_tokens"]) for b in manifest["buckets"]}
    assert {b: (v["available"], v["allocated"]) for b, v in plan["tokens_by_bucket"].items()} == got
    assert plan["pool_documents"] == manifest["pool_documents"]
    assert plan["kept_tokens"] == sum(a for _, a in got.values())
