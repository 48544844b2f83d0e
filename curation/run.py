"""`python -m curation.run JOB.yaml [--output DIR] [--address ADDR] [--quiet]`: the entry point
`ray job submit` calls; the same code and options as `curate run`."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from curation.cli import main as cli_main

    return cli_main(["run", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
