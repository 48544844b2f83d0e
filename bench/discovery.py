"""Input discovery at 1x/4x/16x files, without and under the service's path policy (curation/io/policy.py).

Discovery is the driver's per-file bookkeeping: it lists the inputs, resolves each file against the policy
(realpath), keeps files under the job's output out, and records each file's size and mtime for resume.
This prints seconds and microseconds per file at each size, the 16x/1x growth of the time per file, and
the cost of the policy as a ratio against the same listing without it.

    python bench/discovery.py [--base-files 2000] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curation.io.policy import ENV, PathPolicy  # noqa: E402
from curation.io.sources import discover  # noqa: E402
from curation.spec import parse_spec  # noqa: E402


def _make(root: Path, n: int) -> None:
    for i in range(n):
        d = root / f"shard{i // 500:04d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"part-{i:06d}.jsonl").write_text('{"text": "x"}\n')


def _time(job, policy: str | None) -> float:
    if policy:
        os.environ[ENV] = policy
    else:
        os.environ.pop(ENV, None)
    t0 = time.perf_counter()
    files = discover(job)
    seconds = time.perf_counter() - t0
    assert files and all(f.version for f in files)
    return seconds


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base-files", type=int, default=2000)
    p.add_argument("--json")
    args = p.parse_args()
    out = {}
    with tempfile.TemporaryDirectory(prefix="discovery-") as tmp:
        for size in (1, 4, 16):
            n = args.base_files * size
            root = Path(tmp) / f"x{size}"
            _make(root / "in", n)
            job = parse_spec(
                {
                    "output": str(root / "out"),
                    "inputs": [{"path": str(root / "in"), "format": "jsonl", "source": "s"}],
                    "stages": {},
                }
            )
            policy = PathPolicy((str(root),)).to_json()
            plain, guarded = min(_time(job, None) for _ in range(3)), min(_time(job, policy) for _ in range(3))
            out[f"{size}x"] = {
                "files": n,
                "seconds": round(plain, 3),
                "seconds_with_policy": round(guarded, 3),
                "us_per_file": round(1e6 * plain / n, 1),
                "us_per_file_with_policy": round(1e6 * guarded / n, 1),
                "policy_vs_none": round(guarded / plain, 2),
            }
            r = out[f"{size}x"]
            print(
                f"{size:>2}x {n:>7,} files: {r['us_per_file']} us/file, {r['us_per_file_with_policy']} us/file under "
                f"the policy ({r['policy_vs_none']}x)"
            )
    out["growth_us_per_file_16x_vs_1x"] = round(out["16x"]["us_per_file"] / out["1x"]["us_per_file"], 2)
    out["growth_us_per_file_with_policy_16x_vs_1x"] = round(
        out["16x"]["us_per_file_with_policy"] / out["1x"]["us_per_file_with_policy"], 2
    )
    print(
        f"time per file 16x/1x: {out['growth_us_per_file_16x_vs_1x']} (no policy), "
        f"{out['growth_us_per_file_with_policy_16x_vs_1x']} (policy)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
