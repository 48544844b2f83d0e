"""Rebuild the demo corpus shipped in curation/demo/corpus/ from ../shared/data (see its README).

Only sources whose licenses allow redistribution are used: Reuters-21578 (Distribution 1.0, research
use), the UDHR translations (freely reproducible), GSM8K (MIT) and Go source files (BSD, from
Debian's golang source package). Run from the repository root: python examples/build_demo_corpus.py
"""

from __future__ import annotations

import gzip
import json
import random
from collections import defaultdict
from pathlib import Path

from curation.spec import QWEN29

DATA = Path("../shared/data")
OUT = Path("curation/demo/corpus")


def records(name: str):
    with gzip.open(DATA / f"{name}.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)


def write(name: str, rows: list[dict]) -> None:
    with gzip.open(OUT / name, "wt", encoding="utf-8", compresslevel=9) as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{name}: {len(rows)} records")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    rng = random.Random(2026)
    news = [r for r in records("news_reuters21578")]
    # The first 3,000 stories in file order keep the natural re-issued and corrected wires (near-duplicates).
    write("reuters.jsonl.gz", [{"id": r["id"], "text": r["text"], "date": r["date"]} for r in news[:3000]])
    # One document per language: the whole declaration, primary variant, for the 29 target languages.
    arts = defaultdict(list)
    for r in records("lid_udhr"):
        if r.get("is_primary_variant") and r["lang"] in QWEN29:
            arts[r["lang"]].append(r["text"])
    write("udhr.jsonl.gz", [{"id": f"udhr-{lang}", "text": "\n\n".join(arts[lang])} for lang in sorted(arts)])
    gsm = [r for r in records("math_problems") if r.get("dataset") == "gsm8k"]
    write("gsm8k.jsonl.gz", [{"id": r["id"], "text": r["text"]} for r in rng.sample(gsm, 300)])
    go = [r for r in records("code_files") if r.get("prog_lang") == "go" and "golang" in r["source"]]
    write("go_code.jsonl.gz", [{"id": r["id"], "text": r["text"]} for r in rng.sample(go, min(200, len(go)))])
    # Broken input on purpose: the demo shows quarantine at work.
    with open(OUT / "broken.jsonl", "wb") as f:
        f.write(b'{"id": "ok-1", "text": "' + b"A short but valid record about the demo corpus. " * 12 + b'"}\n')
        f.write(b'{"id": "broken-json", "text": "unterminated\n')
        f.write(b'{"id": "bad-utf8", "text": "caf\xe9 latin-1 bytes"}\n')
        f.write(b'{"id": "no-text", "body": "the text field is missing"}\n')
        f.write(b'["not", "an", "object"]\n')
    print("broken.jsonl: 5 records")


if __name__ == "__main__":
    main()
