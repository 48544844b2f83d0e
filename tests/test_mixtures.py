"""Token-budgeted mixtures on a pool curated from ../shared/data: allocation, selection, shards,
manifest, reproducibility, infeasible specs, the long-context mixture and trainer-side readers."""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
import yaml

from curation.job import run_job
from curation.progress import Progress
from curation.spec import SpecError, parse_spec
from mixtures.allocate import allocate, temperature_weights, unimax_weights
from mixtures.job import run_mix
from mixtures.spec import parse_mix_spec
from mixtures.tokenizer import count_tokens, vocab_sha256
from tests.conftest import read_jsonl_gz, shared_file

TATOEBA_LANGS = ("de", "fr", "es", "ru", "ja", "pt", "it", "tr")


def _write(path: Path, recs: list[dict]) -> str:
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for r in recs:
            f.write(json.dumps({"id": r["id"], "text": r["text"]}, ensure_ascii=False) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def pool_dir(tmp_path_factory):
    """A curate output (local engine, language ID only) over news, math, code and Tatoeba text."""
    tmp = tmp_path_factory.mktemp("pool")
    inputs = [
        ("reuters", "web", read_jsonl_gz(shared_file("news_reuters21578.jsonl.gz"), 4000)),
        ("math", "math", read_jsonl_gz(shared_file("math_problems.jsonl.gz"))),
        ("code", "code", read_jsonl_gz(shared_file("code_files.jsonl.gz"), 1500)),
        (
            "tatoeba",
            "web",
            read_jsonl_gz(shared_file("lid_tatoeba_laser.jsonl.gz"), where=lambda r: r["lang"] in TATOEBA_LANGS),
        ),
    ]
    spec = {
        "name": "pool",
        "output": str(tmp / "curated"),
        "languages": "all",
        "inputs": [
            {"path": _write(tmp / f"{src}.jsonl.gz", recs), "format": "jsonl", "source": src, "domain": dom}
            for src, dom, recs in inputs
        ],
        "stages": {"langid": {"min_score": 0.0}},
        "execution": {"engine": "local"},
    }
    run_job(parse_spec(spec), progress=Progress(enabled=False))
    return tmp / "curated"


def _available(pool_dir: Path) -> tuple[dict[str, int], dict[str, int]]:
    t = pads.dataset(pool_dir / "curated", format="parquet", partitioning="hive").to_table(
        columns=["source", "lang", "text"]
    )
    tokens: dict[str, int] = defaultdict(int)
    docs: dict[str, int] = defaultdict(int)
    for s, lang, n in zip(t["source"].to_pylist(), t["lang"].to_pylist(), count_tokens(t["text"].to_pylist())):
        tokens[f"{s}/{lang}"] += int(n)
        docs[f"{s}/{lang}"] += 1
    return dict(tokens), dict(docs)


@pytest.fixture(scope="module")
def weights(pool_dir):
    """Explicit weights over the 12 largest buckets of at least 300 documents (whole documents can meet
    an allocation to 0.5% only where there are many), proportional to sqrt(size)."""
    avail, docs = _available(pool_dir)
    top = sorted((b for b in avail if docs[b] >= 300), key=avail.get, reverse=True)[:12]
    raw = {b: avail[b] ** 0.5 for b in top}
    z = sum(raw.values())
    w = {b: v / z for b, v in raw.items()}
    w[top[0]] += 1.0 - sum(w.values())
    return avail, w


def _mix(pool_dir: Path, out: Path, weights: dict, seed: int = 7, engine: str = "local", **extra) -> dict:
    spec = {
        "kind": "mix",
        "name": "test-mix",
        "inputs": [str(pool_dir)],
        "output": str(out),
        "target_tokens": 1_500_000,
        "weights": weights,
        "seed": seed,
        "shard_tokens": 200_000,
        "execution": {"engine": engine},
        "formats": ["parquet", "megatron", "numpy"],
        **extra,
    }
    return run_mix(parse_mix_spec(spec), progress=Progress(enabled=False))


@pytest.fixture(scope="module")
def mixture(pool_dir, weights, tmp_path_factory):
    out = tmp_path_factory.mktemp("mix") / "out"
    long = {"min_tokens": 1024, "target_tokens": 200_000, "seq_len": 4096}
    return out, _mix(pool_dir, out, weights[1], long_context=long)


def _recount(out: Path, manifest: dict) -> dict[str, int]:
    got: dict[str, int] = defaultdict(int)
    for s in manifest["shards"]:
        t = pq.read_table(out / s["path"], columns=["bucket", "text"])
        for b, n in zip(t["bucket"].to_pylist(), count_tokens(t["text"].to_pylist())):
            got[b] += int(n)
    return got


def test_pool_has_many_buckets_over_languages_and_domains(weights):
    avail, w = weights
    assert len(w) >= 10
    assert len({b.split("/")[0] for b in w}) >= 3 and len({b.split("/")[1] for b in w}) >= 5


def test_progress_holds_the_allocation_per_bucket(mixture):
    """OUT/progress.json (what the service's /metrics reads while a mix job runs) has each bucket's tokens."""
    out, m = mixture
    prog = json.loads((out / "progress.json").read_text())
    assert prog["phase"] == "done" and prog["achieved_tokens"] == m["achieved_tokens"]
    assert prog["allocated_tokens"] == {b["name"]: b["allocated_tokens"] for b in m["buckets"]}


def test_achieved_tokens_match_allocation_recounted_from_shards(mixture, weights):
    out, m = mixture
    recount = _recount(out, m)
    by_name = {b["name"]: b for b in m["buckets"]}
    for name, w in weights[1].items():
        alloc = by_name[name]["allocated_tokens"]
        assert alloc == pytest.approx(w * 1_500_000, abs=1)
        assert abs(recount[name] - alloc) <= 0.005 * alloc, (name, recount[name], alloc)
    assert set(recount) == set(weights[1])  # buckets without weight get nothing
    assert sum(recount.values()) == m["achieved_tokens"]
    assert m["tokenizer"]["vocab_sha256"] == vocab_sha256()


def test_no_bucket_over_its_epoch_cap(mixture, weights):
    out, m = mixture
    recount = _recount(out, m)
    avail = weights[0]
    for name, tokens in recount.items():
        assert tokens <= 4 * avail[name]
    epochs = defaultdict(int)
    for s in m["shards"]:
        t = pq.read_table(out / s["path"], columns=["row_id", "id", "epoch"])
        assert len(set(t["row_id"].to_pylist())) == len(t)
        for rid, i, e in zip(t["row_id"].to_pylist(), t["id"].to_pylist(), t["epoch"].to_pylist()):
            assert rid == f"{i}@{e}" and e < 4
            epochs[i] += 1
    assert max(epochs.values()) > 1  # some small bucket was repeated, with distinct row ids


def test_shards_match_the_manifest(mixture):
    import hashlib

    out, m = mixture
    assert len(m["shards"]) > 3
    for s in m["shards"]:
        blob = (out / s["path"]).read_bytes()
        t = pq.read_table(out / s["path"])
        assert hashlib.sha256(blob).hexdigest() == s["sha256"] and len(blob) == s["bytes"]
        assert len(t) == s["rows"]
        assert int(count_tokens(t["text"].to_pylist()).sum()) == s["tokens"] == sum(t["n_tokens"].to_pylist())
        meta = pq.ParquetFile(out / s["path"]).metadata
        assert meta.row_group(0).column(0).compression == "ZSTD" and meta.row_group(0).column(0).has_offset_index
    for key in ("target_tokens", "achieved_tokens", "seed", "buckets", "shards", "mixture_id"):
        assert key in m
    megatron = (out / m["blend_files"]["megatron"]).read_text().split()
    assert megatron[1::2] == [str(out / s["token_files"]["megatron"]["prefix"]) for s in m["shards"]]
    assert sum(map(float, megatron[0::2])) == pytest.approx(1.0)
    hf = json.loads((out / m["blend_files"]["hf_interleave"]).read_text())
    assert hf["data_files"] == [str(out / s["path"]) for s in m["shards"]]
    assert hf["rows"] == m["rows"]


def test_compression_per_language_is_recounted_from_the_pool(mixture, pool_dir):
    """Tokens per byte and per character by language, the figure the Qwen2 report compares tokenizers by."""
    out, m = mixture
    by_lang = m["compression"]["by_lang"]
    t = pads.dataset(pool_dir / "curated", format="parquet", partitioning="hive").to_table(columns=["lang", "text"])
    for lang in ("en", "de"):
        texts = [x for x, la in zip(t["text"].to_pylist(), t["lang"].to_pylist()) if la == lang]
        got = by_lang[lang]
        assert got["documents"] == len(texts) and got["tokens"] == int(count_tokens(texts).sum())
        assert got["bytes"] == sum(len(x.encode()) for x in texts) and got["chars"] == sum(len(x) for x in texts)
        assert got["tokens_per_byte"] == pytest.approx(got["tokens"] / got["bytes"], abs=1e-4)
    assert by_lang["ja"]["tokens_per_char"] > by_lang["en"]["tokens_per_char"]  # fewer characters say more
    assert set(m["compression"]["by_bucket"]) == {b["name"] for b in m["buckets"]}


def test_without_token_formats_no_blend_names_parquet_as_megatron(pool_dir, weights, tmp_path):
    m = _mix(pool_dir, tmp_path / "plain", weights[1], formats=["parquet"])
    assert "megatron" not in m["blend_files"] and not (tmp_path / "plain" / "megatron").exists()
    assert all("token_files" not in s for s in m["shards"])


def test_token_files_hold_every_document_of_the_shards(mixture, weights):
    """Megatron .bin/.idx read by the documented format, and the numpy token files split at their EOS tokens,
    give the tokenizer's ids of every shard document, in shard order; recounted, each bucket is within 0.5%
    of its allocation."""
    import hashlib

    from mixtures.token_files import read_megatron
    from mixtures.tokenizer import encode, eot_token

    out, m = mixture
    eos = eot_token()
    by_bucket: dict[str, int] = defaultdict(int)
    for s in m["shards"]:
        t = pq.read_table(out / s["path"], columns=["row_id", "text", "bucket"])
        want = encode(t["text"].to_pylist())
        tf = s["token_files"]
        for fmt in ("megatron", "numpy"):
            for f in tf[fmt]["files"]:
                blob = (out / f["path"]).read_bytes()
                assert hashlib.sha256(blob).hexdigest() == f["sha256"] and len(blob) == f["bytes"]
        docs = read_megatron(str(out / tf["megatron"]["prefix"]))
        assert [d[:-1].tolist() for d in docs] == want and all(d[-1] == eos for d in docs)
        flat = np.memmap(out / tf["numpy"]["path"], dtype=np.uint32, mode="r")
        assert len(flat) == tf["numpy"]["tokens"] == tf["megatron"]["tokens"] == sum(map(len, want)) + len(want)
        ends = np.flatnonzero(flat == eos) + 1
        starts = np.concatenate([[0], ends[:-1]])
        assert [flat[a : b - 1].tolist() for a, b in zip(starts, ends)] == want
        index = pq.read_table(out / tf["numpy"]["files"][1]["path"])
        assert index["row_id"].to_pylist() == t["row_id"].to_pylist()
        assert index["end"].to_pylist() == ends.tolist()
        for b, d in zip(t["bucket"].to_pylist(), docs):
            by_bucket[b] += len(d) - 1
    for b in m["buckets"]:
        if b["allocated_tokens"] >= 10_000:
            assert abs(by_bucket[b["name"]] - b["allocated_tokens"]) <= 0.005 * b["allocated_tokens"], b


def test_megatron_loads_the_token_files(mixture):
    """With megatron-core and torch installed (the optional `megatron` extra), Megatron's own reader."""
    pytest.importorskip("torch")
    indexed = pytest.importorskip("megatron.core.datasets.indexed_dataset")
    from mixtures.token_files import read_megatron

    out, m = mixture
    for s in m["shards"][:2]:
        prefix = str(out / s["token_files"]["megatron"]["prefix"])
        ds = indexed.IndexedDataset(prefix)
        ours = read_megatron(prefix)
        assert len(ds) == len(ours) and all(np.array_equal(ds[i], ours[i]) for i in range(len(ours)))


def test_same_seed_same_bytes_other_seed_other_order(mixture, pool_dir, weights, tmp_path):
    out, m = mixture
    again = _mix(pool_dir, tmp_path / "again", weights[1])
    for a, b in zip(m["shards"], again["shards"]):
        assert (out / a["path"]).read_bytes() == (tmp_path / "again" / b["path"]).read_bytes()
        assert a["token_files"]["megatron"]["files"] == b["token_files"]["megatron"]["files"]
        assert a["token_files"]["numpy"]["files"] == b["token_files"]["numpy"]["files"]
    other = _mix(pool_dir, tmp_path / "other", weights[1], seed=8)
    order = lambda o, mm: [
        r for s in mm["shards"] for r in pq.read_table(o / s["path"], columns=["row_id"])["row_id"].to_pylist()
    ]  # noqa: E731
    first, second = order(out, m), order(tmp_path / "other", other)
    assert first != second
    assert abs(other["achieved_tokens"] - m["achieved_tokens"]) <= 0.005 * m["achieved_tokens"]


def test_ray_actor_pools_give_the_same_mixture(mixture, pool_dir, weights, tmp_path, ray_session):
    out, m = mixture
    on_ray = _mix(pool_dir, tmp_path / "ray", weights[1], engine="ray")
    assert [s["sha256"] for s in on_ray["shards"]] == [s["sha256"] for s in m["shards"]]


def test_token_counts_are_cached_with_the_output(mixture, pool_dir, weights, tmp_path, monkeypatch):
    import shutil

    import mixtures.tokenizer

    out, m = mixture
    calls = []
    for name in ("count_tokens", "encode"):  # counting only, or counting that keeps the ids (token formats)
        real = getattr(mixtures.tokenizer, name)
        monkeypatch.setattr(mixtures.tokenizer, name, lambda texts, real=real: calls.append(len(texts)) or real(texts))
    copy = tmp_path / "copy"
    shutil.copytree(out / "_work", copy / "_work")
    again = _mix(pool_dir, copy, weights[1])
    assert calls == [] and again["achieved_tokens"] == m["achieved_tokens"]
    _mix(pool_dir, tmp_path / "fresh", weights[1])  # without the cache every document is counted
    assert sum(calls) == m["pool_documents"]


def test_infeasible_spec_fails_naming_the_bucket(pool_dir, weights, tmp_path):
    avail, w = weights
    small = min(w, key=lambda b: avail[b])
    bad = {b: 0.0 for b in w}
    big = max(w, key=lambda b: avail[b])
    bad[small] = 5 * avail[small] / 1_500_000  # five epochs of the smallest bucket
    bad[big] = 1 - bad[small]
    with pytest.raises(SpecError) as e:
        _mix(pool_dir, tmp_path / "bad", bad)
    assert small in str(e.value) and "epochs" in str(e.value) and "max_epochs is 4" in str(e.value)
    assert not (tmp_path / "bad" / "shards").exists()
    with pytest.raises(SpecError, match="sum to"):
        _mix(pool_dir, tmp_path / "bad2", {b: 0.5 for b in w})
    with pytest.raises(SpecError, match="unknown bucket 'nope/xx'"):
        _mix(pool_dir, tmp_path / "bad3", {"nope/xx": 1.0})


def test_redistribution_is_recorded(pool_dir, weights, tmp_path):
    avail, w = weights
    small = min(w, key=lambda b: avail[b])
    bad = dict(w)
    extra = 5 * avail[small] / 1_500_000 - bad[small]
    bad[small] += extra
    big = max(w, key=lambda b: avail[b])
    bad[big] -= extra
    m = _mix(pool_dir, tmp_path / "re", bad, redistribute=True)
    b = {x["name"]: x for x in m["buckets"]}
    assert b[small]["redistributed_tokens"] < 0 and b[small]["epochs"] <= 4
    assert sum(x["redistributed_tokens"] for x in m["buckets"]) == pytest.approx(0, abs=len(w))
    assert m["achieved_tokens"] == pytest.approx(1_500_000, rel=0.005)


def test_readers_trainers_use(mixture):
    datasets = pytest.importorskip("datasets")
    out, m = mixture
    files = [str(out / s["path"]) for s in m["shards"]]
    ds = datasets.load_dataset("parquet", data_files=files, split="train", cache_dir=str(out.parent / "hf"))
    assert len(ds) == m["rows"] and set(ds.column_names) >= {"row_id", "text", "n_tokens", "bucket"}
    assert pads.dataset(files, format="parquet").count_rows() == m["rows"]
    # The call hf_interleave.json documents, as written there: exactly the mixture's rows, in order.
    hf = json.loads((out / m["blend_files"]["hf_interleave"]).read_text())
    assert "load_dataset('parquet', data_files=data_files, split='train')" in hf["usage"]
    got = datasets.load_dataset(
        "parquet", data_files=hf["data_files"], split="train", cache_dir=str(out.parent / "hf2")
    )
    want = [r for s in m["shards"] for r in pq.read_table(out / s["path"], columns=["row_id"])["row_id"].to_pylist()]
    assert got["row_id"] == want
    # The folder itself is a dataset (its card names the shards; _work/, megatron/ and numpy/ are not read).
    folder = datasets.load_dataset(str(out), split="train", cache_dir=str(out.parent / "hf3"))
    assert folder["row_id"] == want
    lm = json.loads((out / "long_context" / "manifest.json").read_text())
    longs = datasets.load_dataset(str(out), name="long_context", split="train", cache_dir=str(out.parent / "hf3"))
    assert len(longs) == lm["rows"]


def test_loader_ranks_partition_the_mixture(mixture):
    from mixtures.loader import MixtureLoader

    out, m = mixture
    seen = [{r["row_id"] for r in MixtureLoader(out, rank=r, world_size=4).documents()} for r in range(4)]
    assert sum(len(s) for s in seen) == m["rows"]
    assert len(set().union(*seen)) == m["rows"]


def test_long_context_mixture(mixture):
    out, _ = mixture
    from mixtures.loader import MixtureLoader

    lc = out / "long_context"
    lm = json.loads((lc / "manifest.json").read_text())
    lengths = count_tokens([r["text"] for r in MixtureLoader(lc, verify=True).documents()])
    assert lengths.min() >= 1024
    assert sum(lm["length_histogram"].values()) == len(lengths)
    assert lm["achieved_tokens"] == pytest.approx(200_000, rel=0.05)
    packed = pq.read_table(lc / lm["packed"]["files"][0])
    assert all(len(x) == 4096 for x in packed["input_ids"].to_pylist())
    assert lm["packed"]["sequences"] == sum(pq.read_metadata(lc / f).num_rows for f in lm["packed"]["files"])
    # Each shard packs its own documents in order, ids joined by EOT, its tail (< seq_len) dropped; every
    # sequence names the documents it holds part of.
    from mixtures.tokenizer import encode, eot_token

    dropped = 0
    for shard in lm["shards"]:
        t = pq.read_table(lc / shard["path"], columns=["row_id", "text"])
        stream, owner = [], []
        for rid, ids in zip(t["row_id"].to_pylist(), encode(t["text"].to_pylist())):
            stream += ids + [eot_token()]
            owner += [rid] * (len(ids) + 1)
        stem = shard["path"].rsplit("/", 1)[-1][: -len(".parquet")]
        mine = [f for f in lm["packed"]["files"] if f.startswith(f"packed/{stem}-")]
        rows = pq.read_table([lc / f for f in mine]) if mine else None
        n = len(stream) // 4096
        assert (rows.num_rows if rows else 0) == n
        for k in range(n):
            assert rows["input_ids"][k].as_py() == stream[k * 4096 : (k + 1) * 4096]
            assert rows["row_ids"][k].as_py() == list(dict.fromkeys(owner[k * 4096 : (k + 1) * 4096]))
        dropped += len(stream) - n * 4096
    assert lm["packed"]["dropped_tail_tokens"] == dropped
    from mixtures.token_files import read_megatron  # the packed rows in the token formats too

    for f, mg, nps in zip(
        lm["packed"]["files"], lm["packed"]["token_files"]["megatron"], lm["packed"]["token_files"]["numpy"]
    ):
        rows = pq.read_table(lc / f)["input_ids"].to_pylist()
        assert [d.tolist() for d in read_megatron(str(lc / mg["prefix"]))] == rows
        assert np.memmap(lc / nps["path"], dtype=np.uint32, mode="r").tolist() == [t for r in rows for t in r]
    assert "Long-context mixture" in (out / "report.html").read_text()


# --- allocation as pure functions ---------------------------------------------------------------


def test_temperature_flattens_languages():
    avail = {"a/en": 900, "b/en": 100, "a/fr": 10}
    w = temperature_weights(avail, ["source", "lang"], 0.5)
    assert w["a/en"] / w["b/en"] == pytest.approx(9)  # proportional within a language
    assert (w["a/en"] + w["b/en"]) / w["a/fr"] == pytest.approx((1000 / 10) ** 0.5)
    assert sum(w.values()) == pytest.approx(1)


def test_unimax_respects_caps_and_spends_the_budget():
    avail = {"x": 10, "y": 1000, "z": 1000}
    w = unimax_weights(avail, 900, {b: 4 for b in avail})
    assert w["x"] * 900 == pytest.approx(40)  # capped at 4 epochs
    assert w["y"] == pytest.approx(w["z"]) and sum(w.values()) == pytest.approx(1)


def test_allocate_rejects_and_redistributes():
    avail = {"a": 100, "b": 1000}
    with pytest.raises(SpecError, match="'a' would need 5.00 epochs"):
        allocate(
            avail,
            target=1000,
            weights={"a": 0.5, "b": 0.5},
            source="weights",
            max_epochs=4,
            max_epochs_by_bucket={},
            redistribute=False,
        )
    a = allocate(
        avail,
        target=1000,
        weights={"a": 0.5, "b": 0.5},
        source="weights",
        max_epochs=4,
        max_epochs_by_bucket={},
        redistribute=True,
    )
    assert a.tokens == {"a": 400, "b": 600} and a.redistributed == {"a": -100, "b": 100}


def test_mix_spec_errors_have_key_paths():
    with pytest.raises(SpecError) as e:
        parse_mix_spec({"kind": "mix", "inputs": ["x"], "output": "o", "target_tokens": -1, "bucket_by": ["colour"]})
    text = str(e.value)
    assert "target_tokens:" in text and "bucket_by.0:" in text
    with pytest.raises(SpecError, match="at most one of"):
        parse_mix_spec(
            {"kind": "mix", "inputs": ["x"], "output": "o", "target_tokens": 1, "weights": {"a": 1}, "unimax": {}}
        )
    assert yaml.safe_load(yaml.safe_dump({"weights": {"a/en": 1.0}}))  # the weights_file format


def test_remainder_fill_is_closest_within_the_cap():
    from mixtures.select import _fill

    sizes = np.array([50, 30, 400, 5, 20])
    assert _fill(sizes, 80).tolist() == [0, 1]  # exact prefix
    # 50 + 30, first fit skips 400 and takes 5 (gap 15); 20 lands 5 over, closer than 15 under: taken
    assert sorted(_fill(sizes, 100).tolist()) == [0, 1, 3, 4]
    assert sorted(_fill(sizes, 100, room=100).tolist()) == [0, 1, 3]  # ... unless the cap forbids it
    big = np.array([1617])
    assert _fill(big, 1402).tolist() == [0]  # one large document: closer to take it
    assert _fill(big, 1402, room=1500).tolist() == []  # but never over the cap
    assert _fill(big, 700).tolist() == []  # and not when leaving it out is closer


def test_weights_file_is_read_and_checked(tmp_path):
    from mixtures.job import _weights

    good, bad, empty = tmp_path / "w.yaml", tmp_path / "bad.yaml", tmp_path / "empty.yaml"
    good.write_text(yaml.safe_dump({"weights": {"a/en": 0.25, "b/en": 0.75}}))
    bad.write_text("weights: [unclosed\n")
    empty.write_text("other: 1\n")
    base = {"kind": "mix", "inputs": ["x"], "output": "o", "target_tokens": 10}
    avail = {"a/en": 10, "b/en": 10}
    assert _weights(parse_mix_spec({**base, "weights_file": str(good)}), avail, {}) == {"a/en": 0.25, "b/en": 0.75}
    with pytest.raises(SpecError, match="not valid YAML"):
        _weights(parse_mix_spec({**base, "weights_file": str(bad)}), avail, {})
    with pytest.raises(SpecError, match="no `weights:` mapping"):
        _weights(parse_mix_spec({**base, "weights_file": str(empty)}), avail, {})
