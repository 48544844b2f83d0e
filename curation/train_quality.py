"""`curate train-quality`: a fastText quality classifier from positive and negative documents.

Inputs are read with the job's own readers (JSONL plain/.gz/.zst, Parquet; local or object store), so a
broken record is counted and named, never silently skipped. The classes are balanced by sampling the
larger one down (seeded); documents are split into training and held-out sets by a hash of their group
(``--group-field``: e.g. a page or repository id, so no group is on both sides; default the record id).
Held-out AUC, precision and recall (at P(hq) >= 0.5) are printed and written to ``MODEL.bin.json``.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from curation.io.formats import read_file
from curation.io.input_spec import InputSpec
from curation.io.readers import ReadLimits
from curation.io.sources import InputError, InputFile, list_input
from filters.fasttext_quality import (
    NEGATIVE_LABEL,
    POSITIVE_LABEL,
    FastTextScorer,
    TrainParams,
    is_test_group,
    train_fasttext,
)
from filters.metrics import precision_recall, roc_auc


@dataclass
class LabelledTexts:
    texts: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    unreadable: int = 0
    first_error: str | None = None


def _format_of(path: str) -> str:
    name = path.lower()
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if any(name.endswith(ext) for ext in (".jsonl", ".json", ".jsonl.gz", ".json.gz", ".jsonl.zst", ".ndjson")):
        return "jsonl"
    raise InputError(f"{path}: expected JSONL (.jsonl, .jsonl.gz, .jsonl.zst) or Parquet (.parquet)")


def iter_texts(
    paths: Sequence[str], text_field: str = "text", group_field: str | None = None, bad: LabelledTexts | None = None
) -> Iterator[tuple[str, str]]:
    """(text, group) of every readable record of `paths`, streamed; unreadable ones are counted in `bad`."""
    for p in paths:
        spec = InputSpec(
            path=p, format=_format_of(p), source="train-quality", text_field=text_field, id_field=group_field or "id"
        )
        listed = list_input(spec)
        if not listed:
            raise InputError(f"{p}: no such file")
        for k, (uri, path, rel) in enumerate(listed):
            f = InputFile(k, uri, path, rel, 0, spec.format, spec.source, spec.domain, text_field, spec.id_field)
            for t in read_file(f, ReadLimits()):
                texts, ids, errors = t["text"].to_pylist(), t["id"].to_pylist(), t["error"].to_pylist()
                for text, id_, err in zip(texts, ids, errors):
                    if err is not None or not text or not text.strip():
                        if bad is not None:
                            bad.unreadable += 1
                            bad.first_error = bad.first_error or f"{uri}: {err or 'empty text'}"
                        continue
                    yield text, str(id_)


def read_texts(paths: Sequence[str], text_field: str = "text", group_field: str | None = None) -> LabelledTexts:
    """Texts (and their groups) of every readable record of `paths`; unreadable ones are counted."""
    out = LabelledTexts()
    for text, group in iter_texts(paths, text_field, group_field, out):
        out.texts.append(text)
        out.groups.append(group)
    return out


@dataclass
class TrainReport:
    auc: float
    precision: float
    recall: float
    n_train: int
    n_test: int
    n_train_positive: int
    n_test_positive: int
    unreadable: int
    positive_label: str
    params: dict
    seconds: float

    def line(self) -> str:
        return (
            f"held-out AUC {self.auc:.3f}, precision {self.precision:.3f}, recall {self.recall:.3f} "
            f"(P(hq) >= 0.5) on {self.n_test} documents ({self.n_test_positive} positive); "
            f"trained on {self.n_train}"
        )


def train_quality(
    positive: Sequence[str],
    negative: Sequence[str],
    output: str,
    *,
    text_field: str = "text",
    group_field: str | None = None,
    max_per_class: int | None = None,
    test_fraction: float = 0.2,
    params: TrainParams | None = None,
    log=print,
) -> TrainReport:
    """Train, evaluate on the held-out groups, save the model and `output + '.json'`."""
    t0 = time.perf_counter()
    params = params or TrainParams()
    pos, neg = read_texts(positive, text_field, group_field), read_texts(negative, text_field, group_field)
    unreadable = pos.unreadable + neg.unreadable
    if unreadable:
        log(f"skipped {unreadable} unreadable or empty records (first: {pos.first_error or neg.first_error})")
    if not pos.texts or not neg.texts:
        raise InputError(f"need both classes: {len(pos.texts)} positive and {len(neg.texts)} negative documents read")
    rng = random.Random(params.seed)
    n = min(len(pos.texts), len(neg.texts), max_per_class or 1 << 62)
    rows: list[tuple[str, str, str]] = []  # (text, group, label)
    for data, label in ((pos, POSITIVE_LABEL), (neg, NEGATIVE_LABEL)):
        chosen = sorted(rng.sample(range(len(data.texts)), n))
        rows += [(data.texts[i], data.groups[i], label) for i in chosen]
    test = [is_test_group(g, test_fraction, params.seed) for _, g, _ in rows]
    train_rows = [r for r, held in zip(rows, test) if not held]
    test_rows = [r for r, held in zip(rows, test) if held]
    if not train_rows or not test_rows:
        raise InputError(
            f"the split left {len(train_rows)} training and {len(test_rows)} held-out documents; "
            "use more groups or another --test-fraction"
        )
    log(f"training on {len(train_rows)} documents ({n} per class before the split), holding out {len(test_rows)}")
    train_fasttext([r[0] for r in train_rows], [r[2] for r in train_rows], output, params)
    scorer = FastTextScorer(output)
    scores = scorer.scores([r[0] for r in test_rows])
    labels = np.array([r[2] == POSITIVE_LABEL for r in test_rows])
    precision, recall = precision_recall(labels, scores, 0.5)
    report = TrainReport(
        auc=roc_auc(labels, scores),
        precision=precision,
        recall=recall,
        n_train=len(train_rows),
        n_test=len(test_rows),
        n_train_positive=sum(r[2] == POSITIVE_LABEL for r in train_rows),
        n_test_positive=int(labels.sum()),
        unreadable=unreadable,
        positive_label=POSITIVE_LABEL,
        params=asdict(params),
        seconds=round(time.perf_counter() - t0, 2),
    )
    Path(str(output) + ".json").write_text(json.dumps(asdict(report), indent=2) + "\n", encoding="utf-8")
    log(report.line())
    log(f"wrote {output} and {output}.json")
    return report
