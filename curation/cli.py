"""The `curate` command: run a job, run the demo (more subcommands arrive with mixtures and the API)."""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

import yaml


def _fail(msg: str) -> int:
    print(f"curate: error: {msg}", file=sys.stderr)
    return 2


def run_command(spec_path: str | None, *, output: str | None = None, address: str | None = None,
                quiet: bool = False, spec_data: dict | None = None) -> int:
    """Validate, run and summarise one job; every expected failure is one clear line, exit code 2."""
    from curation.io.sources import InputError
    from curation.job import JobError, run_job
    from curation.progress import Progress
    from curation.spec import SpecError, load_spec, parse_spec

    try:
        job = parse_spec(spec_data, output=output) if spec_data is not None else load_spec(spec_path, output=output)
        run_job(job, address=address, progress=Progress(enabled=not quiet))
    except (SpecError, InputError, JobError) as e:
        return _fail(str(e))
    except KeyboardInterrupt:
        return _fail("interrupted; run the same command again to resume")
    return 0


def demo_spec(output: str) -> dict:
    """The demo job with its corpus paths made absolute (the corpus ships inside the package)."""
    base = Path(str(resources.files("curation") / "demo"))
    spec = yaml.safe_load((base / "demo.yaml").read_text(encoding="utf-8"))
    for inp in spec["inputs"]:
        inp["path"] = str(base / inp["path"])
    spec["output"] = output
    return spec


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="curate", description="Curate pretraining corpora on Ray.")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run a curation job spec")
    r.add_argument("spec", help="job spec (YAML)")
    r.add_argument("--output", help="output location (overrides the spec's `output`)")
    r.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS, else a local cluster)")
    r.add_argument("--quiet", action="store_true", help="no progress lines")
    d = sub.add_parser("demo", help="run the bundled demo corpus through the full pipeline")
    d.add_argument("--output", default="demo-output", help="output folder (default: ./demo-output)")
    d.add_argument("--address", help="Ray cluster address (default: a local cluster)")
    d.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    if args.command == "run":
        return run_command(args.spec, output=args.output, address=args.address, quiet=args.quiet)
    if args.command == "demo":
        rc = run_command(None, spec_data=demo_spec(args.output), address=args.address, quiet=args.quiet)
        if rc == 0:
            out = Path(args.output).resolve()
            print(f"\ndemo output: {out}\n  curated documents: {out}/curated/\n  report: {out}/report.html")
        return rc
    return 2


if __name__ == "__main__":
    sys.exit(main())
