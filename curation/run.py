"""`python -m curation.run JOB.yaml`: the entry point `ray job submit` calls (same code as `curate run`)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    from curation.cli import run_command

    p = argparse.ArgumentParser(prog="python -m curation.run", description="Run a curation job spec.")
    p.add_argument("spec", help="job spec (YAML)")
    p.add_argument("--output", help="output location (overrides the spec's `output`)")
    p.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS, else a local cluster)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    args = p.parse_args(argv)
    return run_command(args.spec, output=args.output, address=args.address, quiet=args.quiet)


if __name__ == "__main__":
    sys.exit(main())
