"""HTML extraction: quality on gold snippets and speed, for each extractor `stages.extract` offers.

The 990 pages of ../shared/data/web_trafilatura_eval.jsonl.gz that carry gold snippets (`gt_with`: text
the main content must contain; `gt_without`: boilerplate it must not), their HTML as served from
web_trafilatura_html.tar.gz, decoded as the WARC reader decodes it (`curation.io.warc.decode_body`). Prints
the share of required snippets present, of forbidden snippets absent, and pages/s on one core.

    python bench/extract.py [--data DIR] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import tarfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    from curation.io.warc import decode_body
    from filters.html_extract import EXTRACTORS, load_extractor, snippet_shares

    with gzip.open(args.data / "web_trafilatura_eval.jsonl.gz", "rt", encoding="utf-8") as f:
        recs = {r["id"]: r for r in map(json.loads, f) if r.get("gt_with") or r.get("gt_without")}
    html = {}
    with tarfile.open(args.data / "web_trafilatura_html.tar.gz") as t:
        for m in t:
            pid = m.name.rsplit("/", 1)[-1].removesuffix(".html")
            if m.isfile() and pid in recs:
                html[pid] = decode_body(t.extractfile(m).read(), None)[0]
    rows = []
    print(f"{len(html)} pages with gold snippets\n")
    print(f"{'extractor':12} {'required present':>17} {'forbidden absent':>17} {'pages/s':>8}")
    for name in EXTRACTORS:
        extract = load_extractor(name)
        extract(next(iter(html.values())))  # lazy imports and models are set-up, not throughput
        t0 = time.perf_counter()
        texts = {pid: extract(h) for pid, h in html.items()}
        seconds = time.perf_counter() - t0
        present, absent, req, forb = snippet_shares(texts, recs)
        row = {
            "extractor": name,
            "required_present": present,
            "forbidden_absent": absent,
            "pages_per_s": len(html) / seconds,
            "pages": len(html),
            "required": req,
            "forbidden": forb,
        }
        rows.append(row)
        print(f"{name:12} {row['required_present']:17.3f} {row['forbidden_absent']:17.3f} {row['pages_per_s']:8.0f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
