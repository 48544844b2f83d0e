"""The inspection subcommands of `curate`: trace, diff, sweep, plan."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

COMMANDS = ("trace", "diff", "sweep", "plan")


def add_parsers(sub: Any) -> None:
    t = sub.add_parser("trace", help="a document's lineage in a curate or mix output, as JSON")
    t.add_argument("output", help="a curate or mix output folder")
    t.add_argument("id", nargs="?", help="the document id")
    t.add_argument("--input", type=int, metavar="ORDINAL", help="instead of an id: the input file's ordinal ...")
    t.add_argument("--position", type=int, help="... and the record's position in it")
    d = sub.add_parser("diff", help="compare two curate runs of the same inputs, document by document")
    d.add_argument("a")
    d.add_argument("b")
    d.add_argument("--json", help="write the summary here (default: print it)")
    d.add_argument("--html", help="also write an HTML page with samples")
    d.add_argument("--samples", type=int, default=5, help="sampled documents per transition (default 5)")
    d.add_argument("--moved", help="folder for every moved document (Parquet, one file per input file)")
    s = sub.add_parser("sweep", help="documents and tokens kept per language as each score threshold moves")
    s.add_argument("output", help="a finished curate output")
    s.add_argument("--json", help="write the result here (default: print it)")
    s.add_argument("--points", type=int, default=21, help="thresholds per curve (default 21)")
    p = sub.add_parser("plan", help="project a job's cost and yield from a seeded sample of its inputs")
    p.add_argument("spec", help="a curate or mix job spec (YAML), or a `kind: plan` spec wrapping one")
    p.add_argument("--json", help="write the projection here (default: print it)")
    p.add_argument("--sample", type=int, default=2000, help="documents in the sample (default 2000)")
    p.add_argument("--cpus", type=int, help="CPUs of the cluster to project for (default: this machine's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", help="folder for the sample runs (default: a temporary folder, removed after)")
    p.add_argument("--address", help="Ray cluster address for the sample runs (default: as `curate run`)")


def _emit(result: dict[str, Any], path: str | None) -> None:
    text = json.dumps(result, indent=2, default=str)
    if path:
        Path(path).write_text(text + "\n")
    else:
        print(text)


def run(args: argparse.Namespace) -> int:
    try:
        if args.command == "trace":
            from curation.inspection.trace import trace

            if args.id is None and (args.input is None or args.position is None):
                print("curate trace: give a document id, or --input ORDINAL --position N", file=sys.stderr)
                return 2
            _emit(trace(args.output, args.id, ordinal=args.input, position=args.position), None)
            return 0
        if args.command == "diff":
            from curation.inspection.diff import diff, diff_html

            result = diff(args.a, args.b, samples=args.samples, moved_dir=args.moved)
            if args.html:
                Path(args.html).write_text(diff_html(result))
            _emit(result, args.json)
            return 0
        if args.command == "sweep":
            from curation.inspection.sweep import sweep

            _emit(sweep(args.output, points=args.points), args.json)
            return 0
        if args.command == "plan":
            from curation.inspection.plan import plan_job

            result = plan_job(
                args.spec, sample=args.sample, cpus=args.cpus, seed=args.seed, work=args.work, address=args.address
            )
            _emit(result, args.json)
            return 0
    except (ValueError, FileNotFoundError) as e:
        print(f"curate {args.command}: {e}", file=sys.stderr)
        return 1
    return 2
