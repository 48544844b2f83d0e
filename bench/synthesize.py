"""How many generations per second one `curate synthesize` driver can take in, and so how many GPUs it
can keep busy.

The generator is the suite's OpenAI-compatible test server on loopback (tests/openai_server.py, in a
process of its own, no planted faults), which answers at once, so the figure is the driver's own ceiling: HTTP client threads, the ledger, the checks
(language ID, length, leakage, copy, Gopher repetition), Qwen token counts and the Parquet writes. It
also times the checks alone, on the same outputs. Compare with what one GPU generates: a 7-8B model
under vLLM writes about 6,300 output tokens/s on an H100 (docs/synthesis.md); the script prints how many of
these outputs that is per second.

    python bench/synthesize.py [--docs 3000] [--concurrency 32] [--servers 2] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

GPU_OUTPUT_TOKENS_PER_S = 6338  # Qwen3-8B, vLLM 0.15.0, one H100 (datatrove's vLLM benchmark; docs/synthesis.md)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--docs", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument(
        "--servers",
        type=int,
        default=2,
        help="test server processes (a Python server tops out at a few hundred requests/s)",
    )
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    from curation.progress import Progress
    from curation.synthesis.checks import TaskChecks, check_generations
    from curation.synthesis.job import run_synthesize
    from curation.synthesis.spec import parse_synthesize_spec
    from curation.synthesis.templates import BUILTIN
    from filters.langid import LanguageIdentifier

    docs = []
    with gzip.open(args.data / "news_reuters21578.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if len(r["text"]) >= 400:
                docs.append(r)
            if len(docs) >= args.docs:
                break
    tmp = Path(tempfile.mkdtemp(prefix="bench-synth-"))
    try:
        (tmp / "in" / "curated").mkdir(parents=True)
        n = len(docs)
        pq.write_table(
            pa.table(
                {
                    "id": [d["id"] for d in docs],
                    "text": [d["text"] for d in docs],
                    "source": ["reuters"] * n,
                    "domain": ["web"] * n,
                    "lang": ["en"] * n,
                }
            ),
            tmp / "in" / "curated" / "part-00000.parquet",
        )
        # the server in a process of its own, so that it does not share the driver's interpreter lock
        servers = [
            subprocess.Popen(
                [sys.executable, str(REPO / "tests" / "openai_server.py"), "--no-faults"],
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(args.servers)
        ]
        try:
            urls = [s.stdout.readline().strip() for s in servers]
            spec = {
                "kind": "synthesize",
                "inputs": [str(tmp / "in")],
                "output": str(tmp / "out"),
                "tasks": {"wiki": {"template": "wikipedia", "select": {"min_chars": 0}}},
                "generator": {
                    "model": "bench",
                    "base_url": urls,
                    "concurrency": args.concurrency,
                    "max_retries": 3,
                    "backoff_s": 0.01,
                },
                "execution": {"engine": "local", "chunk_size": 500},
            }
            t0 = time.perf_counter()
            stats = run_synthesize(parse_synthesize_spec(spec), progress=Progress(enabled=False))
            wall = time.perf_counter() - t0
        finally:
            for s in servers:  # our own children, by pid
                s.kill()
                s.wait()
        # the checks alone, on the generations the job made
        tables = [
            ds.dataset(str(tmp / "out" / d), format="parquet", partitioning="hive").to_table()
            for d in ("curated", "rejected")
            if (tmp / "out" / d).exists()
        ]
        outs = pa.concat_tables([t.select(["text", "source_id", "finish_reason"]) for t in tables])
        by_id = {d["id"]: d["text"] for d in docs}
        batch = pa.table(
            {
                "task": ["wiki"] * len(outs),
                "text": outs["text"],
                "source_text": [by_id[i] for i in outs["source_id"].to_pylist()],
                "source_lang": ["en"] * len(outs),
                "finish_reason": outs["finish_reason"],
            }
        )
        checks = {"wiki": TaskChecks.build(parse_synthesize_spec(spec).tasks["wiki"].checks, BUILTIN["wikipedia"])}
        lid = LanguageIdentifier()
        c0 = time.perf_counter()
        check_generations(batch, checks, lid)
        check_s = time.perf_counter() - c0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    units = stats["units"]
    # the test server counts words as tokens; the outputs' Qwen tokens are what a GPU would write
    qwen_per_unit = stats["tokens"]["kept"] / max(stats["kept"], 1)
    gpu_units_per_s = GPU_OUTPUT_TOKENS_PER_S / max(qwen_per_unit, 1)
    result = {
        "units": units,
        "wall_seconds": round(wall, 2),
        "units_per_second": round(units / wall, 1),
        "checks_units_per_second": round(len(outs) / check_s, 1),
        "qwen_tokens_per_output": round(qwen_per_unit, 1),
        "gpu_units_per_second_at_6338_tokens": round(gpu_units_per_s, 2),
        "gpus_one_driver_keeps_busy": round(units / wall / gpu_units_per_s, 1),
    }
    print(
        f"{units:,} units through the driver in {wall:.1f} s: {units / wall:,.0f} units/s "
        f"(concurrency {args.concurrency}; kept {stats['kept']:,}, rejected {stats['rejected']:,})"
    )
    print(f"checks alone: {len(outs) / check_s:,.0f} generations/s on one core")
    print(
        f"one H100 at {GPU_OUTPUT_TOKENS_PER_S:,} output tokens/s writes {gpu_units_per_s:.1f} of these outputs/s "
        f"({qwen_per_unit:.0f} Qwen tokens each): one driver keeps about "
        f"{units / wall / gpu_units_per_s:,.0f} such GPUs busy"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
