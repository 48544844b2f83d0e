"""How far `curate plan` is from the real run, for several jobs over `../shared/data`.

Each job is planned from a sample (its size printed beside the job's), then run for real in a fresh
process (`curate run`, so model loading and Ray start count, as they would for a user), and the errors of
the projected input records, kept documents and wall time are printed (real / projected - 1).

    python bench/plan.py [--data ../shared/data] [--json OUT.json] [--jobs NAME,...] [--sample N]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

FILTERS = {"gopher_quality": {}, "gopher_repetition": {}, "c4": {}, "fineweb": {}}


def jobs(data: Path) -> dict[str, dict]:
    def inp(name: str, source: str, domain: str = "web") -> dict:
        return {"path": str(data / name), "format": "jsonl", "source": source, "domain": domain}

    base = {"kind": "curate", "languages": "all"}
    return {
        "news+math (local)": {
            **base,
            "inputs": [inp("news_reuters21578.jsonl.gz", "reuters"), inp("math_problems.jsonl.gz", "math", "math")],
            "stages": {"langid": {}, "filters": {**FILTERS, "math": {}}, "dedup": {"exact": {}, "minhash": {}}},
            "execution": {"engine": "local"},
        },
        "code+web+udhr (local)": {
            **base,
            "inputs": [
                inp("code_files.jsonl.gz", "code", "code"),
                inp("web_trafilatura_eval.jsonl.gz", "web"),
                inp("lid_udhr.jsonl.gz", "udhr"),
            ],
            "stages": {"langid": {}, "filters": {**FILTERS, "code": {}}, "dedup": {"exact": {}, "minhash": {}}},
            "execution": {"engine": "local"},
        },
        "tatoeba, no dedup (local)": {
            **base,
            "inputs": [inp("lid_tatoeba_laser.jsonl.gz", "tatoeba")],
            "stages": {"langid": {}, "filters": {"gopher_quality": {}}},
            "execution": {"engine": "local"},
        },
        "news (ray)": {
            **base,
            "inputs": [inp("news_reuters21578.jsonl.gz", "reuters")],
            "stages": {"langid": {}, "filters": FILTERS, "dedup": {"exact": {}, "minhash": {}}},
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--json")
    ap.add_argument("--jobs", help="comma-separated job names (default: all)")
    ap.add_argument("--sample", type=int, default=1500)
    args = ap.parse_args()
    from curation.inspection.plan import plan_curate
    from curation.spec import parse_spec

    data = Path(args.data)
    chosen = jobs(data)
    if args.jobs:
        chosen = {k: v for k, v in chosen.items() if k in args.jobs.split(",")}
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-plan-") as tmp:
        for i, (name, spec) in enumerate(chosen.items()):
            spec = {**spec, "name": f"bench-plan-{i}", "output": f"{tmp}/real-{i}"}
            plan = plan_curate(parse_spec(spec), sample=args.sample)
            path = Path(tmp) / f"job-{i}.yaml"
            path.write_text(yaml.safe_dump(spec, sort_keys=False))
            t0 = time.monotonic()
            subprocess.run([sys.executable, "-m", "curation.cli", "run", str(path), "--quiet"], check=True)
            wall = time.monotonic() - t0
            stats = json.loads(Path(spec["output"], "stats.json").read_text())
            row = {
                "sample": plan["sample"]["records"]["whole"],
                "records": stats["input_records"],
                "records_error": plan["input_records"] / stats["input_records"] - 1,
                "kept": stats["kept"],
                "kept_error": plan["kept_documents"] / max(1, stats["kept"]) - 1,
                "wall_seconds": round(wall, 1),
                "projected_wall_seconds": plan["wall_seconds"],
                "wall_error": plan["wall_seconds"] / wall - 1,
                "plan_seconds": plan["plan_seconds"],
            }
            results[name] = row
            print(
                f"{name:28s} sample {row['sample']:>6,} of {row['records']:>7,} records: records "
                f"{row['records_error']:+.1%}, kept {row['kept_error']:+.1%} ({plan['kept_documents']:,} projected, "
                f"{row['kept']:,} real), wall {row['wall_error']:+.1%} "
                f"({plan['wall_seconds']}s projected, {row['wall_seconds']}s real; plan took {plan['plan_seconds']}s)",
                flush=True,
            )
    worst = {k: max(abs(r[k]) for r in results.values()) for k in ("records_error", "kept_error", "wall_error")}
    print("largest errors: " + ", ".join(f"{k} {v:.1%}" for k, v in worst.items()))
    if args.json:
        Path(args.json).write_text(json.dumps({"jobs": results, "largest_errors": worst}, indent=2))


if __name__ == "__main__":
    main()
