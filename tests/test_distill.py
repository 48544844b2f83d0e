"""Distillation end to end: a strong scorer's judgement on a sample, a fastText classifier trained on it,
the classifier applied at scale in a job, agreeing with the scorer on documents it never saw.

The scorer ("teacher") is a real model trained here: fastText with character n-grams on half of the
web_trafilatura_eval pages (main text = good, boilerplate = bad). The distillation sample comes from the
other half: main texts, boilerplate, mixtures of both in three proportions, and Reuters stories, grouped by
page so the held-out split shares no page with training.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pyarrow.dataset as ds
import pytest

from curation.job import run_job
from curation.spec import parse_spec
from filters.distill import distill, load_scorer, reservoir_sample, to_grades
from filters.fasttext_quality import FastTextScorer, TrainParams, is_test_group, train_fasttext
from filters.metrics import spearman
from tests.conftest import read_jsonl_gz, shared_file
from tests.test_quality_classifier import boilerplate

SPEARMAN_FLOOR = 0.85


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    pages = read_jsonl_gz(shared_file("web_trafilatura_eval.jsonl.gz"), where=lambda r: r.get("main_text"))
    teach, sample_pages = pages[::2], pages[1::2]
    d = tmp_path_factory.mktemp("distill")
    texts = [p["main_text"] for p in teach] + [b for p in teach if (b := boilerplate(p))]
    labels = ["hq"] * len(teach) + ["lq"] * (len(texts) - len(teach))
    teacher_path = d / "teacher.bin"
    train_fasttext(texts, labels, teacher_path, TrainParams(minn=3, maxn=6, dim=32, bucket=100_000))
    docs, groups = [], []
    for p in sample_pages:
        main = [x for x in p["main_text"].split("\n") if x.strip()]
        boiler = [x for x in boilerplate(p).split("\n") if x.strip()]
        docs.append(p["main_text"])
        if boiler:
            docs.append("\n".join(boiler))
            for frac in (0.25, 0.5, 0.75):
                docs.append(
                    "\n".join(boiler[: max(1, int(len(boiler) * frac))] + main[: max(1, int(len(main) * (1 - frac)))])
                )
        groups += [p["id"]] * (len(docs) - len(groups))
    for r in read_jsonl_gz(shared_file("news_reuters21578.jsonl.gz"), limit=400):
        docs.append(r["text"])
        groups.append(r["id"])
    return d, teacher_path, docs, groups


def test_distilled_classifier_agrees_with_the_scorer_in_a_job(setup):
    d, teacher_path, docs, groups = setup
    teacher = FastTextScorer(teacher_path)
    student = d / "edu.bin"
    report = distill(docs, groups, lambda texts: teacher.scores(texts).tolist(), str(student), scorer_name="teacher")
    assert report.spearman >= SPEARMAN_FLOOR
    assert report.n_test > 300 and set(report.grade_counts) == {str(g) for g in range(6)}
    assert json.loads((d / "edu.bin.json").read_text())["spearman"] == pytest.approx(report.spearman)

    # At scale: the held-out documents through a job with the student as a quality classifier.
    held = [(f"doc-{i}", t) for i, (t, g) in enumerate(zip(docs, groups)) if is_test_group(g, 0.2, 0)]
    corpus = d / "held_out.jsonl"
    corpus.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in held))
    out = d / "job"
    spec = {
        "output": str(out),
        "languages": "all",
        "inputs": [{"path": str(corpus), "format": "jsonl", "source": "held-out"}],
        "stages": {"quality": {"classifiers": {"edu": {"model": str(student)}}}},
        "execution": {"engine": "local"},
    }
    stats = run_job(parse_spec(spec))
    assert stats["kept"] == len(held)
    t = ds.dataset(str(out / "curated"), format="parquet", partitioning="hive").to_table()
    by_id = dict(zip(t["id"].to_pylist(), t["quality_edu"].to_pylist()))
    ids = [i for i, _ in held]
    rho = spearman(teacher.scores([x for _, x in held]), np.array([by_id[i] for i in ids]))
    print(f"job on {len(held)} held-out documents: Spearman {rho:.3f} between quality_edu and the scorer")
    assert rho >= SPEARMAN_FLOOR
    assert 0.0 <= min(by_id.values()) and max(by_id.values()) <= 5.0  # expected grade on the 0-5 scale


def test_distill_quality_cli(setup, tmp_path):
    d, teacher_path, docs, groups = setup
    corpus = tmp_path / "sample.jsonl"
    corpus.write_text("".join(json.dumps({"page": g, "text": t}) + "\n" for t, g in zip(docs, groups)) + "{broken\n")
    env = {**os.environ, "CURATION_TEST_TEACHER": str(teacher_path)}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "curation.cli",
            "distill-quality",
            "--input",
            str(corpus),
            "--scorer",
            "tests.distill_scorer:TeacherScorer",
            "--output",
            str(tmp_path / "s.bin"),
            "--sample",
            "1500",
            "--group-field",
            "page",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads((tmp_path / "s.bin.json").read_text())
    assert f"held-out Spearman {report['spearman']:.3f}" in out.stdout
    assert report["n_train"] + report["n_test"] == 1500 and report["spearman"] >= SPEARMAN_FLOOR - 0.05
    assert "skipped 1 unreadable" in out.stdout
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "curation.cli",
            "distill-quality",
            "--input",
            str(corpus),
            "--scorer",
            "os:sep",
            "--output",
            str(tmp_path / "x.bin"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "is not callable" in bad.stderr


def test_scorer_references():
    with pytest.raises(ValueError, match="expected module:function"):
        load_scorer("just_a_name")
    with pytest.raises(ModuleNotFoundError):
        load_scorer("no_such_module_xyz:score")
    with pytest.raises((ImportError, FileNotFoundError)):
        load_scorer("hf:/no/such/model")  # without torch: ImportError naming it; with it: the folder


def test_reservoir_sample_is_uniform_and_keeps_stream_order():
    counts = np.zeros(100)
    for seed in range(2000):
        s = reservoir_sample(range(100), 10, seed)
        assert s == sorted(s) and len(s) == 10
        counts[s] += 1
    assert np.allclose(counts / 2000, 0.1, atol=0.03)
    assert reservoir_sample(range(5), 10) == [0, 1, 2, 3, 4]


def test_grades_are_equal_width_and_clipped():
    assert to_grades(np.array([0.0, 0.1, 0.5, 0.9, 1.0, 2.0, -1.0]), 0.0, 1.0, 6).tolist() == [0, 0, 2, 4, 5, 5, 0]
    assert to_grades(np.array([3.0, 3.0]), 3.0, 3.0, 6).tolist() == [0, 0]


def test_hf_scorer_with_a_tiny_model_built_here(tmp_path):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers

    from filters.distill import HFCausalLMScorer

    vocab = {
        w: i
        for i, w in enumerate(
            ["<unk>", "<pad>"]
            + [str(d) for d in range(10)]
            + list("abcdefghij")
            + ["Extract:", "Educational", "score", "(0-5):"]
        )
    }
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>")
    fast.save_pretrained(tmp_path)
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=len(vocab), n_positions=512, n_embd=16, n_layer=1, n_head=2)
    transformers.GPT2LMHeadModel(cfg).save_pretrained(tmp_path)
    scorer = HFCausalLMScorer(str(tmp_path), prompt="Extract: {text} Educational score (0-5):", device="cpu")
    a = scorer(["a b c", "d e f g", "a b c"])
    assert len(a) == 3 and all(0.0 <= x <= 5.0 for x in a) and a[0] == pytest.approx(a[2])
