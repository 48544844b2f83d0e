"""What checking a new snapshot against a dedup index costs as the index grows (stages.dedup.against).

A new snapshot of N documents (5% of them copies of indexed documents, 5% near copies) is checked
against indexes of 1x, 4x and 16x N documents, each built by a curate job. Printed per size: the check's
seconds (the whole `against` phase: key map, probe, attach, verify, decide), per new document, the index
keys it read, and the ratio of its time to the 1x time beside the ratio of the index sizes: linear or
better growth means time ratio <= size ratio. A least-squares fit of seconds = a + b * index keys read
gives the cost per index key, from which a check of 10^9 new documents against a 10^10-document index
is projected.

Documents are seeded random text over a Zipf vocabulary (200 words each): unlimited, unique, and the
same on every machine. The engine is local (one process): the per-key constants are what a Ray task
pays on one CPU.

    python bench/against.py [--new-docs 4000] [--sizes 1,4,16] [--json OUT.json] [--cluster]

With --cluster the jobs run on a local multi-node Ray cluster (a head and two workers started with `ray
start`, ended by pid), so the check's time includes Ray's task scheduling, and the check's task processes
are sampled for their peak RSS.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def texts(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    words = rng.zipf(1.2, size=(n, 200)) % 50_000
    return [" ".join(f"w{w}" for w in row) for row in words]


def write(path: Path, docs: list[tuple[str, str]]) -> str:
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for i, t in docs:
            f.write(json.dumps({"id": i, "text": t}) + "\n")
    return str(path)


CHECK_TASKS = ("map_new_keys", "probe", "attach_new", "verify", "decide")


def run(tmp: Path, name: str, docs: list[tuple[str, str]], against: list[str], cluster=None) -> dict:
    """A curate job with exact and MinHash dedup: in this process (local engine), or with `cluster` as a
    driver process of its own on it (Ray engine), its tasks' peak RSS sampled (stats["task_peak_rss_mb"])."""
    from curation.job import run_job
    from curation.progress import Progress
    from curation.spec import parse_spec

    spec = {
        "name": name,
        "output": str(tmp / name),
        "inputs": [{"path": write(tmp / f"{name}.jsonl.gz", docs), "format": "jsonl", "source": name}],
        "execution": {"engine": "local" if cluster is None else "ray"},
        "stages": {"dedup": {"exact": {}, "minhash": {}, "against": against}},
    }
    if cluster is None:
        return run_job(parse_spec(spec), progress=Progress(enabled=False))
    import yaml

    from bench.scale import sampled_driver

    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    sampler, err, _, rc = sampled_driver(cluster, ["run", str(path), "--quiet"], tmp / name, timeout=3000)
    if rc != 0:
        raise RuntimeError(f"{name} failed:\n{err[-3000:]}")
    stats = json.loads((tmp / name / "stats.json").read_text())
    stats["task_peak_rss_mb"] = {
        t: round(v / 1e6, 1) for t, v in sampler.by_task.items() if t.removeprefix("ray::") in CHECK_TASKS
    }
    return stats


def traced_heaps(out: Path, spec_against: list[str], n_docs: int) -> dict[str, int]:
    """The check run again on the finished job's annotated parts, each probe and verify task under
    tracemalloc (numpy and Python allocations): the largest heap of each step's tasks. Separate from the
    timed run, since tracing slows the tasks."""
    import tracemalloc

    from curation.dedup import against as mod
    from curation.exchange import LocalRunner
    from curation.job import against_corpora
    from curation.layout import Layout
    from curation.spec import parse_spec

    job = parse_spec(
        {
            "output": str(out),
            "inputs": [{"path": str(out) + ".jsonl.gz", "format": "jsonl", "source": "x"}],
            "execution": {"engine": "local"},
            "stages": {"dedup": {"exact": {}, "minhash": {}, "against": spec_against}},
        }
    )
    peaks = {"probe": 0, "verify": 0}
    originals = {name: getattr(mod, name) for name in peaks}

    def traced(name: str):
        fn = originals[name]

        def run(*args):
            tracemalloc.start()
            try:
                return fn(*args)
            finally:
                peaks[name] = max(peaks[name], tracemalloc.get_traced_memory()[1])
                tracemalloc.stop()

        run.__name__ = name
        return run

    try:
        for name in peaks:
            setattr(mod, name, traced(name))
        mod.run_against(
            LocalRunner(), Layout(str(out)), [[0]], against_corpora(job), new_keys=15 * n_docs, threshold=0.719
        )
    finally:
        for name, fn in originals.items():
            setattr(mod, name, fn)
    return peaks


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--new-docs", type=int, default=4000)
    ap.add_argument("--sizes", default="1,4,16")
    ap.add_argument("--json")
    ap.add_argument(
        "--cluster",
        action="store_true",
        help="run the jobs on a local multi-node Ray cluster (head + 2 workers, 1 CPU each), each a driver "
        "process of its own, and sample the check's task processes",
    )
    args = ap.parse_args()
    if args.cluster:
        from bench.local_cluster import LocalCluster

        with LocalCluster(workers=2, cpus_per_node=1) as cluster:
            return measure(args, cluster)
    return measure(args, None)


def measure(args: argparse.Namespace, cluster) -> int:
    n = args.new_docs
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-against-") as td:
        tmp = Path(td)
        for k in sizes:
            old = [(f"old{k}-{i}", t) for i, t in enumerate(texts(k * n, seed=k))]
            t0 = time.monotonic()
            built = run(tmp, f"index{k}", old, [], cluster)
            build_s = time.monotonic() - t0
            new = texts(n, seed=1000 + k)
            rng = np.random.default_rng(k)
            picks = rng.choice(len(old), size=n // 10, replace=False)
            for j, p in enumerate(
                picks
            ):  # half exact copies, half near copies (every 50th word changed: Jaccard about 0.8)
                text = old[p][1]
                if j % 2:
                    w = text.split(" ")
                    text = " ".join("edited" if q % 50 == 0 else x for q, x in enumerate(w))
                new[j] = text
            stats = run(tmp, f"new{k}", [(f"new-{i}", t) for i, t in enumerate(new)], [str(tmp / f"index{k}")], cluster)
            a = stats["dedup"]["against"]
            from curation.dedup import index

            heaps = traced_heaps(tmp / f"new{k}", [str(tmp / f"index{k}")], n)
            on_disk = index.stats(str(tmp / f"index{k}"))["bytes"]
            rows.append(
                {
                    "size": k,
                    "index_documents": built["index"]["documents"],
                    "index_keys": built["index"]["keys"],
                    "index_build_seconds": round(build_s, 2),  # the whole job that wrote it
                    "index_write_seconds": built["index"]["seconds"],  # of which: writing OUT/index/
                    "index_bytes": on_disk,
                    "new_documents": n,
                    "against_seconds": a["seconds"],
                    "us_per_new_document": round(1e6 * a["seconds"] / n, 1),
                    "index_keys_read": a["index_keys_read"],
                    "duplicates": a["duplicates"],
                    "probe_task_heap_mb": round(heaps["probe"] / 2**20, 1),
                    "verify_task_heap_mb": round(heaps["verify"] / 2**20, 1),
                    "planted": len(picks),
                    "engine": "ray, 3 nodes" if cluster is not None else "local",
                    # sampled every 0.5 s: a task shorter than that may not appear
                    "check_task_peak_rss_mb": stats.get("task_peak_rss_mb"),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    base = rows[0]
    x = np.array([r["index_keys_read"] for r in rows], float)
    y = np.array([r["against_seconds"] for r in rows], float)
    b, a0 = np.polyfit(x, y, 1) if len(rows) > 1 else (0.0, y[0])
    print(
        f"\n{'index':>6} {'docs':>9} {'check s':>8} {'us/new doc':>11} {'time ratio':>10} {'size ratio':>10} "
        f"{'probe heap':>10} {'verify heap':>11}"
    )
    for r in rows:
        print(
            f"{r['size']:>5}x {r['index_documents']:>9,} {r['against_seconds']:>8.2f} {r['us_per_new_document']:>11.1f} "
            f"{r['against_seconds'] / base['against_seconds']:>10.2f} {r['size'] / base['size']:>10.1f} "
            f"{r['probe_task_heap_mb']:>8.1f}MB {r['verify_task_heap_mb']:>9.1f}MB"
        )
    keys_per_doc = base["index_keys"] / base["index_documents"]
    per_new = max(a0, 0.0) / n
    proj_cpu_s = 1e9 * per_new + b * 1e10 * keys_per_doc
    bytes_per_doc = sum(base["index_bytes"].values()) / base["index_documents"]
    print(
        f"\nfit: {a0:.3f} s + {b * 1e9:.1f} s per 10^9 index keys read; per new document {1e6 * per_new:.1f} us. "
        f"Projected: 10^9 new documents against a 10^10-document index = {proj_cpu_s / 3600:,.0f} CPU-hours "
        f"({proj_cpu_s / 1000:,.0f} s on 1,000 CPUs), reading the index once: "
        f"{bytes_per_doc:.0f} bytes a document on storage, {bytes_per_doc * 1e10 / 1e12:.1f} TB"
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"rows": rows, "fit": {"seconds": a0, "seconds_per_index_key": b}, "projected_cpu_seconds": proj_cpu_s},
                indent=2,
            )
        )
    ok = all(r["duplicates"] >= 0.95 * r["planted"] for r in rows) and all(
        r["against_seconds"] / base["against_seconds"] <= r["size"] / base["size"] for r in rows[1:]
    )
    print("within limits: check time grows at most linearly with the index" if ok else "OVER THE LIMIT")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
