"""`curate index stats|merge|query`: look into, grow and ask the persisted dedup indexes (curation.dedup.index)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser("index", help="dedup indexes for stages.dedup.against: stats, merge, query")
    isub = p.add_subparsers(dest="index_command", required=True)
    s = isub.add_parser("stats", help="what an index (or a curate output's index/) holds, as JSON")
    s.add_argument("path")
    m = isub.add_parser(
        "merge",
        help="add curate outputs' (or indexes') kept documents to an index, created when absent; "
        "an output it already holds is refused",
    )
    m.add_argument("target", help="the index folder")
    m.add_argument("sources", nargs="+", help="curate outputs or index folders")
    q = isub.add_parser("query", help="the indexed documents a text repeats (near copies by MinHash), as JSON")
    q.add_argument("path", help="an index or a curate output with one")
    q.add_argument("text", help="a file holding the text, or - for standard input")
    q.add_argument("--lang", help="the text's language (segmentation for scripts without spaces)")
    q.add_argument("--threshold", type=float, help="least share of equal MinHash values (default: the bands')")


def run(args: argparse.Namespace) -> int:
    from curation.dedup import index

    try:
        if args.index_command == "stats":
            print(json.dumps(index.stats(args.path), indent=2))
            return 0
        if args.index_command == "query":
            text = sys.stdin.read() if args.text == "-" else open(args.text, encoding="utf-8").read()
            print(json.dumps(index.query_text(args.path, text, args.lang, args.threshold), indent=2))
            return 0
        dst = index.merge(args.target, args.sources, progress=lambda m: print(m, file=sys.stderr))
        print(
            f"{dst.uri}: {len(dst.corpora)} corpora, {dst.documents:,} documents, {dst.keys:,} keys "
            f"in {1 << dst.bits} partition(s)"
        )
        return 0
    except (index.DedupIndexError, OSError) as e:
        print(f"curate index {args.index_command}: {e}", file=sys.stderr)
        return 2
