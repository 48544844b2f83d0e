"""Plugins for real: the example package (examples/plugin) built and installed with pip into a folder of its
own, then found through its entry points by fresh processes: a curate job names its filter, its stage, its
input format and its quality scorer, runs them locally and on Ray with the same results, their drop reasons
and columns reach stats.json, the report and the curated files, and the REST API accepts the spec (and
checks the files the stage and the scorer declare against its roots)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.dataset as pads
import pytest
import yaml

from tests.conftest import BIN, REPO

WORDS = "the river runs past the old mill where children play and birds sing every morning in spring".split()


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory):
    """The example plugin built from its pyproject and installed (pip, no index, no build isolation: the
    environment's setuptools) into a target folder that the child processes get on PYTHONPATH."""
    import shutil

    site = tmp_path_factory.mktemp("plugin-site")
    src = tmp_path_factory.mktemp("plugin-src") / "plugin"
    shutil.copytree(REPO / "examples" / "plugin", src)  # setuptools builds in the source folder: not the repo's
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(site),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert list(site.glob("curation_example_plugin-*.dist-info/entry_points.txt"))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(REPO)]))
    env.pop("RAY_ADDRESS", None)
    return site, env


def _texts(n: int, start: int = 0) -> list[tuple[str, str]]:
    import random

    vocab = [w + end for w in WORDS for end in ("", "s", "ed", "ing", "er", "ly")]
    out = []
    for i in range(start, start + n):
        rng = random.Random(i)
        text = " ".join(rng.choice(vocab) for _ in range(40 + i % 7)) + "."  # no repeated n-grams to speak of
        if i % 5 == 0:
            text = text.upper()  # shouting
        out.append((f"d{i}", text))
    return out


def _corpus(folder: Path) -> tuple[Path, Path]:
    """60 JSONL records, and a TSV file (the plugin's format) of 20 records and one line without a tab."""
    path = folder / "in.jsonl"
    path.write_text("\n".join(json.dumps({"id": i, "text": t}) for i, t in _texts(60)) + "\n")
    tsv = folder / "more.tsv"
    tsv.write_text("\n".join(f"{i}\t{t}" for i, t in _texts(20, 60)) + "\nthis line has no tab\n")
    return path, tsv


MIN_WORDS = 44  # the documents have 40 to 46 words: the shorter ones, less the ignored words, fall below
IGNORE = {"the", "and"}
STOPWORDS = {"river", "mill"}


def _words(text: str, ignore: set[str]) -> int:
    return sum(w.lower() not in ignore for w in text.split())


def _variety(text: str) -> float:  # the plugin scorer's rule, written out again
    words = [w for w in text.lower().split() if w not in STOPWORDS]
    return len(set(words)) / len(words)


def _survivors() -> list[str]:
    """Texts that pass the filters and word_count: what the scorer's threshold decides on."""
    return [t for _, t in _texts(80) if not t.isupper() and _words(t, IGNORE) >= MIN_WORDS]


def _min_variety() -> float:
    """Half way between two distinct scores (the scorer's float32 cannot land on the wrong side): about a
    third of the survivors fall below it."""
    v = sorted({_variety(t) for t in _survivors()})
    k = len(v) // 3
    return (v[k - 1] + v[k]) / 2


def _spec(src: tuple[Path, Path], out: Path, engine: str, ignore: Path, stopwords: Path) -> dict:
    return {
        "name": "plugins",
        "output": str(out),
        "languages": "all",
        "inputs": [
            {"path": str(src[0]), "format": "jsonl", "source": "s"},
            {"path": str(src[1]), "format": "tsv", "source": "t"},
        ],
        "stages": {
            "filters": {"shouting": {"max_upper_share": 0.5}, "gopher_repetition": {}},
            "word_count": {"min_words": MIN_WORDS, "ignore_words_file": str(ignore)},
            "quality": {
                "classifiers": {
                    "variety": {
                        "scorer": "variety",
                        "min_score": _min_variety(),
                        "options": {"stopwords_file": str(stopwords)},
                    }
                }
            },
        },
        "execution": {"engine": engine},
    }


def _files(folder: Path) -> tuple[Path, Path]:
    ignore, stop = folder / "ignore.txt", folder / "stop.txt"
    ignore.write_text("\n".join(sorted(IGNORE)) + "\n")
    stop.write_text("\n".join(sorted(STOPWORDS)) + "\n")
    return ignore, stop


def _run(spec: dict, env: dict, folder: Path) -> subprocess.CompletedProcess:
    path = folder / f"{spec['execution']['engine']}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))  # the filters' order is the spec's
    return subprocess.run(
        [str(BIN / "curate"), "run", str(path), "--quiet"], env=env, capture_output=True, text=True, timeout=600
    )


def test_plugin_filter_stage_reader_and_scorer_run_locally_and_on_ray(plugin_env, tmp_path):
    _, env = plugin_env
    src = _corpus(tmp_path)
    ignore, stop = _files(tmp_path)
    threshold = _min_variety()
    low_variety = sum(_variety(t) < threshold for t in _survivors())
    stats = {}
    for engine in ("local", "ray"):
        out = tmp_path / f"out-{engine}"
        proc = _run(_spec(src, out, engine, ignore, stop), env, tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        s = json.loads((out / "stats.json").read_text())
        # 60 JSONL records and 21 TSV lines, one of them quarantined by the plugin reader
        assert s["kept"] + s["rejected"] + s["quarantined"] == s["input_records"] == 81
        assert s["quarantined"] == 1
        bad = pads.dataset(out / "quarantine", format="parquet").to_table().to_pylist()
        assert [(r["position"], r["error"]) for r in bad] == [(21, "no tab: expected id<TAB>text")]
        # 16 shouting documents; of the rest, those with too few counted words fail word_count (random
        # word sequences: gopher_repetition passes them all), and the scorer's threshold drops the rest
        assert s["by_reason"]["shouting:upper_share"] == 16
        assert not any(r.startswith("gopher_repetition:") for r in s["by_reason"])
        too_few = sum(1 for _, t in _texts(80) if not t.isupper() and _words(t, IGNORE) < MIN_WORDS)
        assert 0 < too_few < 64 and s["by_reason"]["word_count:too_few"] == too_few
        assert 0 < low_variety and s["by_reason"]["quality:variety"] == low_variety
        rows = [r["stage"] for r in s["by_stage"]]
        # the YAML order of filters is the order they run; the stage runs after the filters (its `after`)
        assert rows[rows.index("shouting") : rows.index("word_count") + 1] == [
            "shouting",
            "gopher_repetition",
            "word_count",
        ]
        assert rows.index("word_count") < rows.index("quality")
        report = (out / "report.html").read_text()
        assert "word_count:too_few" in report and "quality:variety" in report
        kept = pads.dataset(out / "curated", format="parquet").to_table()
        assert "n_words" in kept.column_names and min(kept["n_words"].to_pylist()) >= MIN_WORDS
        assert min(kept["quality_variety"].to_pylist()) >= threshold
        assert {"s", "t"} == set(kept["source"].to_pylist())
        stats[engine] = {k: s[k] for k in ("kept", "rejected", "quarantined", "by_reason")}
    assert stats["local"] == stats["ray"]


def test_plugin_options_are_validated_by_their_own_models(plugin_env, tmp_path):
    _, env = plugin_env
    src = _corpus(tmp_path)
    ignore, stop = _files(tmp_path)
    spec = _spec(src, tmp_path / "bad", "local", ignore, stop)
    spec["stages"]["filters"]["shouting"] = {"max_upper_shar": 0.5}
    spec["stages"]["word_count"]["min_words"] = "many"
    spec["stages"]["quality"]["classifiers"]["variety"]["options"] = {"stopword_file": "x"}
    proc = _run(spec, env, tmp_path)
    assert proc.returncode == 2
    assert "stages.filters.shouting.max_upper_shar: unknown option" in proc.stderr
    assert "stages.word_count.min_words:" in proc.stderr
    assert "stages.quality.classifiers.variety.options.stopword_file: unknown key" in proc.stderr
    # Without the plugin on the path, the same names are unknown (nothing is imported from a spec).
    bare = dict(env, PYTHONPATH=str(REPO))
    proc = _run(_spec(src, tmp_path / "bare", "local", ignore, stop), bare, tmp_path)
    assert proc.returncode == 2 and "stages.word_count: unknown key" in proc.stderr
    assert "stages.filters.shouting: unknown key" in proc.stderr
    assert "inputs.1.format: unknown input format 'tsv'; known formats: jsonl, parquet, text, warc" in proc.stderr
    assert "stages.quality.classifiers.variety.scorer: unknown scorer 'variety'; known scorers: fasttext" in proc.stderr


def test_the_api_accepts_a_plugin_spec_and_checks_its_declared_file(plugin_env, tmp_path, ray_head):
    from tests.test_api import Server

    _, env = plugin_env
    address, ray_env = ray_head
    srv = Server(tmp_path, address, dict(ray_env, PYTHONPATH=env["PYTHONPATH"]))
    srv.start()
    try:
        src = _corpus(srv.root)
        inside = _files(srv.root)
        outside = _files(tmp_path)  # tmp_path is not one of the server's roots
        bad = srv.call("POST", "/v1/jobs", json=_spec(src, srv.out("p-bad"), "local", outside[0], inside[1]))
        assert bad.status_code == 422, bad.text
        assert [d["loc"] for d in bad.json()["detail"]] == [["body", "stages", "word_count", "ignore_words_file"]]
        bad = srv.call("POST", "/v1/jobs", json=_spec(src, srv.out("p-bad"), "local", inside[0], outside[1]))
        assert bad.status_code == 422, bad.text
        assert [d["loc"] for d in bad.json()["detail"]] == [
            ["body", "stages", "quality", "classifiers", "variety", "options", "stopwords_file"]
        ]
        ok = srv.call("POST", "/v1/jobs", json=_spec(src, srv.out("p-ok"), "local", *inside))
        assert ok.status_code == 201, ok.text
        srv.call("POST", f"/v1/jobs/{ok.json()['id']}/cancel")
    finally:
        srv.stop()
