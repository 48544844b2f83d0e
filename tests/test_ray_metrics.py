"""The stage workers' Ray metrics (`ray.util.metrics`, what the Ray dashboard and a Prometheus scraping the
nodes' metrics agents see): a job on a Ray cluster of its own, then the node's metrics endpoint holds the
same counts as the job's stats.json, per stage and reason, under operator names that say the stages."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from tests.conftest import REPO

SCRIPT = textwrap.dedent(
    """
    import json, os, random, sys, tempfile, time
    import ray, requests
    from prometheus_client.parser import text_string_to_metric_families
    from curation.job import run_job
    from curation.spec import parse_spec

    work = sys.argv[1]
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             _temp_dir=tempfile.mkdtemp(prefix="ray-metrics-", dir="/tmp"), _metrics_export_port=0)
    port = ray._private.worker.global_worker.node.metrics_export_port
    src = os.path.join(work, "in.jsonl")
    with open(src, "w") as f:
        words = ("the of and to in a is that for it as was with be by on not this are or from at which but "
                 "river city market school winter music garden letter museum village harbour station").split()
        for i in range(3000):
            rng = random.Random(i)
            n = 20 + i % 100  # the short ones fail gopher_quality
            f.write(json.dumps({"id": str(i), "text": " ".join(rng.choice(words) for _ in range(n)) + "."}) + "\\n")
    job = parse_spec({"output": os.path.join(work, "out"), "languages": "all",
                      "inputs": [{"path": src, "format": "jsonl", "source": "s"}],
                      "stages": {"langid": {}, "filters": {"gopher_quality": {}, "gopher_repetition": {}}}})
    stats = run_job(job)
    samples = []
    for _ in range(40):  # the agent exports every few seconds
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        samples = [(s.name, s.labels, s.value) for fam in text_string_to_metric_families(text)
                   for s in fam.samples if s.name.startswith("ray_curation_stage")]
        dropped = sum(v for n, _, v in samples if n == "ray_curation_stage_dropped_total")
        if dropped >= stats["rejected"] and any(l.get("stages") == "filters" for _, l, _ in samples):
            break
        time.sleep(1)
    print(json.dumps({"stats": stats, "samples": samples}))
    ray.shutdown()
    """
)


def test_stage_workers_export_the_funnel_as_ray_metrics(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={**__import__("os").environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    stats, samples = out["stats"], out["samples"]
    dropped: dict[str, float] = {}
    records: dict[tuple[str, str], float] = {}
    for name, labels, value in samples:
        if name == "ray_curation_stage_dropped_total":
            assert labels["stage"] == labels["reason"].split(":")[0]
            dropped[labels["reason"]] = dropped.get(labels["reason"], 0) + value
        elif name == "ray_curation_stage_records_total":
            key = (labels["stages"], labels["side"])
            records[key] = records.get(key, 0) + value
    assert stats["rejected"] > 0 and dropped == {k: float(v) for k, v in stats["by_reason"].items()}
    by_stage = {r["stage"]: r for r in stats["by_stage"]}
    assert records[("langid", "in")] == by_stage["langid"]["in"] == stats["input_records"]
    assert records[("filters", "out")] == by_stage["gopher_repetition"]["out"] == stats["kept"] > 0
