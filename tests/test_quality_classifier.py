"""`curate train-quality` and the fastText scorer on real web pages.

Positives are the extracted main text of the pages of web_trafilatura_eval; negatives their
boilerplate (the page lines that are not part of the main text). Both halves of a page share its id,
and the split is by that id (--group-field), so no page is on both sides of it.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from filters.fasttext_quality import FastTextScorer, TrainParams, train_fasttext
from filters.metrics import precision_recall, rank_average, roc_auc, spearman
from tests.conftest import read_jsonl_gz, shared_file


def boilerplate(page: dict) -> str:
    main = {line.strip() for line in page["main_text"].split("\n") if line.strip()}
    return "\n".join(line for line in page["text"].split("\n") if line.strip() and line.strip() not in main)


@pytest.fixture(scope="module")
def page_sets(tmp_path_factory):
    pages = read_jsonl_gz(shared_file("web_trafilatura_eval.jsonl.gz"), where=lambda r: r.get("main_text"))
    d = tmp_path_factory.mktemp("pages")
    pos, neg = d / "main.jsonl", d / "boilerplate.jsonl.gz"
    with pos.open("w") as f:
        for p in pages:
            f.write(json.dumps({"page": p["id"], "text": p["main_text"]}) + "\n")
    import gzip

    with gzip.open(neg, "wt") as f:
        for p in pages:
            if b := boilerplate(p):
                f.write(json.dumps({"page": p["id"], "text": b}) + "\n")
        f.write("{not json\n")  # counted and named, not fatal
    return pos, neg, len(pages)


@pytest.mark.slow
def test_train_quality_cli_reaches_auc_09_on_held_out_pages(page_sets, tmp_path):
    pos, neg, n_pages = page_sets
    model = tmp_path / "web.bin"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "curation.cli",
            "train-quality",
            "--positive",
            str(pos),
            "--negative",
            str(neg),
            "--output",
            str(model),
            "--group-field",
            "page",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    print(out.stdout)
    report = json.loads((tmp_path / "web.bin.json").read_text())
    assert report["auc"] >= 0.9, report
    assert f"held-out AUC {report['auc']:.3f}" in out.stdout  # the figure the command prints is the saved one
    assert report["precision"] > 0.8 and report["recall"] > 0.8
    assert report["unreadable"] == 1 and "skipped 1 unreadable" in out.stdout
    assert report["n_train"] + report["n_test"] <= 2 * n_pages
    assert 0.1 < report["n_test"] / (report["n_train"] + report["n_test"]) < 0.3
    scorer = FastTextScorer(model)
    s = scorer.scores(["Home\nAbout us\nContact\nImpressum\nDatenschutz", None, "x"])
    assert s.dtype == np.float32 and np.isnan(s[1]) and 0.0 <= s[0] < 0.5


def test_train_quality_cli_errors_are_one_line(tmp_path, page_sets):
    pos, _, _ = page_sets
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "curation.cli",
            "train-quality",
            "--positive",
            str(pos),
            "--negative",
            str(tmp_path / "missing.jsonl"),
            "--output",
            str(tmp_path / "m.bin"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2 and "missing.jsonl" in out.stderr and "Traceback" not in out.stderr
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "curation.cli",
            "train-quality",
            "--positive",
            str(bad),
            "--negative",
            str(pos),
            "--output",
            str(tmp_path / "m.bin"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2 and "expected JSONL" in out.stderr


@pytest.fixture(scope="module")
def small_sets(page_sets):
    pos, neg, _ = page_sets
    main = [json.loads(line)["text"] for line in pos.open()][:300]
    import gzip

    with gzip.open(neg, "rt") as f:
        boiler = [json.loads(line)["text"] for line in f if line.startswith('{"')][:300]
    return main, boiler


def test_scorer_needs_a_known_positive_label(tmp_path, small_sets):
    main, boiler = small_sets
    train_fasttext(
        main[:200] + boiler[:200], ["hq"] * 200 + ["cc"] * 200, tmp_path / "m.bin", TrainParams(bucket=10_000)
    )
    with pytest.raises(ValueError, match="no label __label__lq.*__label__"):
        FastTextScorer(tmp_path / "m.bin", positive_label="lq")
    s = FastTextScorer(tmp_path / "m.bin").scores(main[200:] + boiler[200:])
    # default positive label __label__hq, as DCLM's models have
    assert np.mean(s[: len(main) - 200]) > 0.7 > 0.3 > np.mean(s[len(main) - 200 :])
    with pytest.raises(FileNotFoundError, match="not found"):
        FastTextScorer(tmp_path / "nope.bin")


def test_graded_model_scores_the_expected_grade(tmp_path, small_sets):
    """Numeric labels make a graded model: its score is the expected grade, ordered as the grades are."""
    main, boiler = small_sets

    def half(a: str, b: str) -> str:
        return "\n".join(a.split("\n")[:5] + b.split("\n")[:5])

    texts = main[:200] + [half(m, b) for m, b in zip(main[:200], boiler[:200])] + boiler[:200]
    train_fasttext(texts, ["4"] * 200 + ["2"] * 200 + ["0"] * 200, tmp_path / "g.bin", TrainParams(bucket=10_000))
    scorer = FastTextScorer(tmp_path / "g.bin")
    assert scorer.grades == {"__label__0": 0.0, "__label__2": 2.0, "__label__4": 4.0}
    good, mixed, bad = (
        scorer.scores(x).mean()
        for x in (main[200:], [half(m, b) for m, b in zip(main[200:], boiler[200:])], boiler[200:])
    )
    assert 0 <= bad < mixed < good <= 4, (bad, mixed, good)


def test_metrics_match_their_definitions():
    rng = np.random.default_rng(0)
    labels = rng.random(300) < 0.4
    scores = np.round(rng.random(300) + labels * 0.3, 1)  # many ties
    pos, neg = scores[labels], scores[~labels]
    pairs = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    assert roc_auc(labels, scores) == pytest.approx(pairs / (len(pos) * len(neg)))
    assert rank_average(np.array([3.0, 1.0, 3.0, 2.0])).tolist() == [3.5, 1.0, 3.5, 2.0]
    a = rng.random(100)
    assert spearman(a, a**3) == pytest.approx(1.0)
    assert spearman(a, -a) == pytest.approx(-1.0)
    b = a + rng.normal(0, 0.3, 100)
    assert spearman(a, b) == pytest.approx(np.corrcoef(rank_average(a), rank_average(b))[0, 1])
    p, r = precision_recall(np.array([1, 1, 0, 0], bool), np.array([0.9, 0.4, 0.6, 0.1]))
    assert (p, r) == (0.5, 0.5)
