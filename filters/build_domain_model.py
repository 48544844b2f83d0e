"""Build ``filters/models/domain.ftz``: the bundled fastText domain tagger (web prose / code / math).

Run from the project root (the training text lives in ``../shared/data``)::

    python -m filters.build_domain_model [--data-dir DIR] [--output PATH]

Training text, by class (one document per record):
    code  ``code_files.jsonl.gz``: source files in 10 languages (python, c, go, rust, ruby, javascript,
          perl, typescript, assembly, shell)
    math  ``math_problems.jsonl.gz``: problems with worked solutions or answers, English and Chinese
          (GSM8K, MATH, OlympiadBench, CMATH, GAOKAO, Minerva); a domain tag is the one use these
          benchmark sets allow, they never enter a training mix
    web   prose: Reuters stories (numbers, tables of figures: the hard negatives for math),
          the main text of real web pages (``web_trafilatura_eval``), and the UDHR and Tatoeba text of
          the 29 Qwen2 languages, so that prose in any of them (Chinese above all, next to Chinese math)
          is prose
Every record is in the training or the held-out split by a hash of its id (``is_held_out``, one in
four held out, as the language tables); the model never sees held-out records, and
``tests/test_domain.py`` measures it on them. Training samples at most ``PER_CLASS`` records per class
(seeded), trains a supervised fastText model on one thread (deterministic), and quantizes it to a
~1 MB ``.ftz``, as lid.176.ftz is.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import sys
import tempfile
import zlib
from pathlib import Path
from typing import Iterator

from filters.fasttext_quality import prepare
from filters.languages import QWEN29

DATA_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
MODEL_PATH = Path(__file__).resolve().parent / "models" / "domain.ftz"
PER_CLASS = 6000
SEED = 7
HELD_OUT_ONE_IN = 4
TATOEBA_PER_PARAGRAPH = 5


def is_held_out(record_id: str) -> bool:
    return zlib.crc32(record_id.encode()) % HELD_OUT_ONE_IN == 0


def _records(path: Path) -> Iterator[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)


def labelled_documents(data_dir: Path | None = None) -> dict[str, list[tuple[str, str]]]:
    """class -> [(id, text)] for every record of the training sources (both splits)."""
    d = data_dir or DATA_DIR
    out: dict[str, list[tuple[str, str]]] = {"code": [], "math": [], "web": []}
    out["code"] = [(r["id"], r["text"]) for r in _records(d / "code_files.jsonl.gz")]
    out["math"] = [(r["id"], r["text"]) for r in _records(d / "math_problems.jsonl.gz")]
    web = out["web"]
    web += [(r["id"], r["text"]) for r in _records(d / "news_reuters21578.jsonl.gz")]
    web += [(r["id"], r["main_text"]) for r in _records(d / "web_trafilatura_eval.jsonl.gz") if r.get("main_text")]
    web += [
        (r["id"], r["text"])
        for r in _records(d / "lid_udhr.jsonl.gz")
        if r["lang"] in QWEN29 and r.get("is_primary_variant")
    ]
    by_lang: dict[str, list[tuple[str, str]]] = {}
    for r in _records(d / "lid_tatoeba_laser.jsonl.gz"):
        if r["lang"] in QWEN29:
            by_lang.setdefault(r["lang"], []).append((r["id"], r["text"]))
    for lang, sentences in by_lang.items():
        joiner = "" if lang in ("zh", "ja") else " "
        for i in range(0, len(sentences), TATOEBA_PER_PARAGRAPH):
            group = sentences[i : i + TATOEBA_PER_PARAGRAPH]
            web.append((group[0][0], joiner.join(t for _, t in group)))
    return {k: [(i, t) for i, t in v if t and t.strip()] for k, v in out.items()}


def build(output: Path = MODEL_PATH, data_dir: Path | None = None, per_class: int = PER_CLASS) -> dict[str, int]:
    import fasttext

    docs = labelled_documents(data_dir)
    rng = random.Random(SEED)
    rows: list[tuple[str, str]] = []
    counts = {}
    for label, items in docs.items():
        train = [t for i, t in items if not is_held_out(i)]
        chosen = rng.sample(train, min(per_class, len(train)))
        counts[label] = len(chosen)
        rows += [(label, t) for t in chosen]
    rng.shuffle(rows)
    fd, path = tempfile.mkstemp(suffix=".txt", prefix="domain-train-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for label, text in rows:
                f.write(f"__label__{label} {prepare(text)}\n")
        model = fasttext.train_supervised(
            input=path,
            epoch=10,
            lr=0.5,
            wordNgrams=2,
            dim=16,
            minCount=3,
            bucket=100_000,
            thread=1,
            seed=SEED,
            verbose=0,
        )
        model.quantize(input=path, qnorm=True, retrain=False, cutoff=50_000)
    finally:
        os.unlink(path)
    output.parent.mkdir(parents=True, exist_ok=True)
    model.save_model(str(output))
    return counts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", type=Path, default=None, help=f"training data folder (default {DATA_DIR})")
    p.add_argument("--output", type=Path, default=MODEL_PATH)
    args = p.parse_args(argv)
    counts = build(args.output, args.data_dir)
    print(
        f"wrote {args.output} ({args.output.stat().st_size / 1e6:.2f} MB) from "
        + ", ".join(f"{n} {label}" for label, n in counts.items())
        + " training documents"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
