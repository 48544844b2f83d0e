"""Plugins for real: the example package (examples/plugin) built and installed with pip into a folder of its
own, then found through its entry points by fresh processes: a curate job names its filter and its stage,
runs them locally and on Ray with the same results, their drop reasons and column reach stats.json, the
report and the curated files, and the REST API accepts the spec (and checks the stage's declared file
against its roots)."""

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
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                           "--no-index", "--target", str(site), str(src)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert list(site.glob("curation_example_plugin-*.dist-info/entry_points.txt"))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(REPO)]))
    env.pop("RAY_ADDRESS", None)
    return site, env


def _corpus(folder: Path) -> Path:
    import random

    vocab = [w + end for w in WORDS for end in ("", "s", "ed", "ing", "er", "ly")]
    recs = []
    for i in range(60):
        rng = random.Random(i)
        text = " ".join(rng.choice(vocab) for _ in range(40 + i % 7)) + "."  # no repeated n-grams to speak of
        if i % 5 == 0:
            text = text.upper()  # shouting
        recs.append({"id": f"d{i}", "text": text})
    path = folder / "in.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    return path


MIN_WORDS = 44  # the documents have 40 to 46 words: the shorter ones, less the ignored words, fall below


def _expected_too_few(src: Path, ignore: set[str]) -> int:
    recs = [json.loads(line) for line in src.read_text().splitlines()]
    return sum(1 for r in recs if not r["text"].isupper()
               and sum(w.lower() not in ignore for w in r["text"].split()) < MIN_WORDS)


def _spec(src: Path, out: Path, engine: str, ignore: Path) -> dict:
    return {"name": "plugins", "output": str(out), "languages": "all",
            "inputs": [{"path": str(src), "format": "jsonl", "source": "s"}],
            "stages": {"filters": {"shouting": {"max_upper_share": 0.5}, "gopher_repetition": {}},
                       "word_count": {"min_words": MIN_WORDS, "ignore_words_file": str(ignore)}},
            "execution": {"engine": engine}}


def _run(spec: dict, env: dict, folder: Path) -> subprocess.CompletedProcess:
    path = folder / f"{spec['execution']['engine']}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))  # the filters' order is the spec's
    return subprocess.run([str(BIN / "curate"), "run", str(path), "--quiet"], env=env, capture_output=True,
                          text=True, timeout=600)


def test_plugin_filter_and_stage_run_locally_and_on_ray(plugin_env, tmp_path):
    _, env = plugin_env
    src = _corpus(tmp_path)
    ignore = tmp_path / "ignore.txt"
    ignore.write_text("the\nand\n")
    stats = {}
    for engine in ("local", "ray"):
        out = tmp_path / f"out-{engine}"
        proc = _run(_spec(src, out, engine, ignore), env, tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        s = json.loads((out / "stats.json").read_text())
        assert s["kept"] + s["rejected"] + s["quarantined"] == s["input_records"] == 60
        # 12 shouting documents; of the rest, those with too few counted words fail word_count (random
        # word sequences: gopher_repetition passes them all)
        assert s["by_reason"]["shouting:upper_share"] == 12
        assert not any(r.startswith("gopher_repetition:") for r in s["by_reason"])
        too_few = _expected_too_few(src, {"the", "and"})
        assert 0 < too_few < 48 and s["by_reason"]["word_count:too_few"] == too_few
        rows = [r["stage"] for r in s["by_stage"]]
        # the YAML order of filters is the order they run; the stage runs after the filters (its `after`)
        assert rows[rows.index("shouting"):rows.index("word_count") + 1] == ["shouting", "gopher_repetition",
                                                                             "word_count"]
        assert "word_count:too_few" in (out / "report.html").read_text()
        kept = pads.dataset(out / "curated", format="parquet").to_table()
        assert "n_words" in kept.column_names and min(kept["n_words"].to_pylist()) >= MIN_WORDS
        stats[engine] = {k: s[k] for k in ("kept", "rejected", "by_reason")}
    assert stats["local"] == stats["ray"]


def test_plugin_options_are_validated_by_their_own_models(plugin_env, tmp_path):
    _, env = plugin_env
    src = _corpus(tmp_path)
    spec = _spec(src, tmp_path / "bad", "local", tmp_path / "missing.txt")
    spec["stages"]["filters"]["shouting"] = {"max_upper_shar": 0.5}
    spec["stages"]["word_count"]["min_words"] = "many"
    proc = _run(spec, env, tmp_path)
    assert proc.returncode == 2
    assert "stages.filters.shouting.max_upper_shar: unknown option" in proc.stderr
    assert "stages.word_count.min_words:" in proc.stderr
    # Without the plugin on the path, the same names are unknown keys (nothing is imported from a spec).
    bare = dict(env, PYTHONPATH=str(REPO))
    proc = _run(_spec(src, tmp_path / "bare", "local", tmp_path / "x.txt"), bare, tmp_path)
    assert proc.returncode == 2 and "stages.word_count: unknown key" in proc.stderr
    assert "stages.filters.shouting: unknown key" in proc.stderr


def test_the_api_accepts_a_plugin_spec_and_checks_its_declared_file(plugin_env, tmp_path, ray_head):
    from tests.test_api import Server

    _, env = plugin_env
    address, ray_env = ray_head
    srv = Server(tmp_path, address, dict(ray_env, PYTHONPATH=env["PYTHONPATH"]))
    srv.start()
    try:
        src = _corpus(srv.root)
        inside = srv.root / "ignore.txt"
        inside.write_text("the\n")
        outside = tmp_path / "ignore-outside.txt"  # tmp_path is not one of the server's roots
        outside.write_text("the\n")
        bad = srv.call("POST", "/v1/jobs", json=_spec(src, srv.out("p-bad"), "local", outside))
        assert bad.status_code == 422, bad.text
        assert [d["loc"] for d in bad.json()["detail"]] == [["body", "stages", "word_count", "ignore_words_file"]]
        ok = srv.call("POST", "/v1/jobs", json=_spec(src, srv.out("p-ok"), "local", inside))
        assert ok.status_code == 201, ok.text
        srv.call("POST", f"/v1/jobs/{ok.json()['id']}/cancel")
    finally:
        srv.stop()
