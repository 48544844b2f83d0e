"""Decontamination finds every planted copy of a benchmark item, verbatim or lightly edited, in a corpus of
news stories, and flags none of the stories themselves."""

from __future__ import annotations

import json
import random

import pyarrow.dataset as pads
import pytest

from curation.job import run_job
from curation.progress import Progress
from curation.spec import SpecError, parse_spec
from filters.decontam import BenchmarkIndex, Decontaminator
from tests.conftest import read_jsonl_gz, shared_file


def light_edit(text: str, rng: random.Random, share: float = 0.05) -> str:
    """Change about `share` of the words (a typo, a swapped number), as a paraphrasing crawler would; of the
    characters, for Chinese."""
    if sum("\u4e00" <= c <= "\u9fff" for c in text) > len(text) / 3:
        chars = list(text)
        for i in rng.sample(range(len(chars)), max(1, int(len(chars) * share))):
            chars[i] = "某"
        return "".join(chars)
    words = text.split(" ")
    for i in rng.sample(range(len(words)), max(1, int(len(words) * share))):
        words[i] = words[i][::-1] if not words[i].isdigit() else str(int(words[i]) + 1)
    return " ".join(words)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("decontam")
    items = read_jsonl_gz(shared_file("math_problems.jsonl.gz"))
    bench = d / "math_test.jsonl"
    bench.write_text("".join(json.dumps({"id": r["id"], "text": r["text"]}) + "\n" for r in items))
    stories = read_jsonl_gz(shared_file("news_reuters21578.jsonl.gz"), 3000, where=lambda r: len(r["text"]) > 200)
    rng = random.Random(0)
    planted = {}
    rows = [{"id": r["id"], "text": r["text"]} for r in stories]
    long_items = [r for r in items if len(r["text"].split()) >= 40 and r["lang"] == "en"]
    zh_items = [r for r in items if r["lang"] == "zh" and len(r["text"]) >= 60]
    for k, item in enumerate(rng.sample(long_items, 40) + rng.sample(zh_items, 10)):
        host = stories[k]["text"]
        copy = item["text"] if k % 2 else light_edit(item["text"], rng)
        doc_id = f"planted-{k}-{'verbatim' if k % 2 else 'edited'}"
        rows.append({"id": doc_id, "text": host[: len(host) // 2] + "\n" + copy + "\n" + host[len(host) // 2 :]})
        planted[doc_id] = item["id"]
    corpus = d / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return d, bench, corpus, planted, [r["id"] for r in stories]


def test_every_planted_copy_is_found_and_no_story_is(setup):
    d, bench, corpus, planted, story_ids = setup
    out = d / "out"
    spec = {
        "output": str(out),
        "languages": "all",
        "inputs": [{"path": str(corpus), "format": "jsonl", "source": "news"}],
        "stages": {"decontam": {"benchmarks": {"math": {"path": str(bench)}}}},
        "execution": {"engine": "local"},
    }
    stats = run_job(parse_spec(spec), progress=Progress(enabled=False))
    rejected = pads.dataset(str(out / "rejected")).to_table().to_pylist()
    hit = {r["id"] for r in rejected if r["drop_reason"] == "decontam:math"}
    print(
        f"\n{len(hit)} documents hit of {len(planted)} planted copies (half lightly edited, 10 Chinese); "
        f"{stats['by_reason']}"
    )
    assert set(planted) <= hit  # every planted copy, verbatim or edited
    assert not hit & set(story_ids)  # no clean story flagged
    assert stats["by_reason"] == {"decontam:math": len(planted)}
    assert stats["input_records"] == stats["kept"] + stats["rejected"] + stats["quarantined"]


def test_flag_mode_keeps_documents_and_names_the_benchmark(setup, tmp_path):
    d, bench, corpus, planted, _ = setup
    spec = {
        "output": str(tmp_path / "out"),
        "languages": "all",
        "inputs": [{"path": str(corpus), "format": "jsonl", "source": "news"}],
        "stages": {"decontam": {"benchmarks": {"math": {"path": str(bench)}}, "action": "flag"}},
        "execution": {"engine": "local"},
    }
    stats = run_job(parse_spec(spec), progress=Progress(enabled=False))
    kept = pads.dataset(str(tmp_path / "out" / "curated"), partitioning="hive").to_table().to_pylist()
    flagged = {r["id"] for r in kept if r["contaminated_by"] == "math"}
    assert flagged == set(planted) and stats["rejected"] == 0


def test_index_skips_short_items_and_matches_across_scripts():
    ix = BenchmarkIndex("t", n=13).add_items(["too short to index", "一二三四五六七八九十百千万亿兆京"])
    assert ix.items == 1 and ix.skipped_short == 1
    d = Decontaminator([ix])
    assert d.hits("前言：一二三四五六七八九十百千万亿兆京。后记") == ["t"]  # characters, whatever the label
    assert d.hits("一二三四五六七八九十百千") == []  # 12 characters: shorter than any 13-gram


def test_spec_needs_a_benchmark():
    with pytest.raises(SpecError, match="benchmarks"):
        parse_spec(
            {
                "output": "/tmp/x",
                "inputs": [{"path": "x", "format": "jsonl", "source": "s"}],
                "stages": {"decontam": {"benchmarks": {}}},
            }
        )
