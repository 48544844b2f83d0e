"""`curate synthesize` end to end against a real HTTP server on loopback that speaks the OpenAI chat and
completions APIs (tests/openai_server.py: a deterministic rewriter, with planted faults: copies, prompt
leaks, truncation, wrong language, repetition loops, 400s, 500s, 429s, timeouts).

The job runs as its own process and is killed (SIGKILL, by its pid) in the middle, then run again: every
selected document must end kept, rejected with the reason its planted fault calls for, or failed with the
server's error; the counts must add up; and no generation that reached the job before the kill is paid
for again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
import yaml

from curation.spec import SpecError
from curation.synthesis.job import cut_source, run_synthesize, select_rows, unit_key
from curation.synthesis.spec import SelectSpec, parse_synthesize_spec
from curation.synthesis.templates import resolve
from filters.gopher_repetition import GopherRepetition
from filters.langid import LanguageIdentifier
from tests.conftest import BIN, REPO, read_jsonl_gz, shared_file
from tests.openai_server import EXPECTED_REASON, FAILED, KEPT, OpenAITestServer, behaviour, prompt_key, rewrite

CONCURRENCY = 4


def _table(path: Path) -> pa.Table:
    if not path.exists():
        return pa.table({})
    return ds.dataset(str(path), format="parquet", partitioning="hive").to_table()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Reuters stories whose rewrite by the test server is plain English prose (so that what happens to
    each one is decided by its planted fault alone), as a curated output with a quality score."""
    lid = LanguageIdentifier()
    rep = GopherRepetition()
    stories = [
        r
        for r in read_jsonl_gz(shared_file("news_reuters21578.jsonl.gz"), limit=1500)
        if 600 <= len(r["text"].strip()) <= 2000
    ]
    texts = [r["text"].strip() for r in stories]
    langs, scores = lid.predict([rewrite(t) for t in texts])
    passes = rep(texts, ["en"] * len(texts)).reasons
    docs = [
        (r["id"], t)
        for r, t, lang, s, p in zip(stories, texts, langs, scores, passes)
        if lang == "en" and s > 0.8 and p is None
    ][:160]
    assert len(docs) == 160
    d = tmp_path_factory.mktemp("synth")
    n = len(docs)
    table = pa.table(
        {
            "id": [i for i, _ in docs],
            "text": [t for _, t in docs],
            "source": ["reuters"] * n,
            "domain": ["web"] * n,
            "lang": ["en"] * n,
            "quality_web": pa.array([0.2 if k % 2 else 0.8 for k in range(n)], pa.float32()),
        }
    )
    (d / "in" / "curated" / "lang=en").mkdir(parents=True)
    pq.write_table(table, d / "in" / "curated" / "lang=en" / "part-00000.parquet")
    # rows no task selects: code, too short
    extra = pa.table(
        {
            "id": ["code-1", "short-1"],
            "text": ["def f():\n    return 1\n" * 40, "Too short."],
            "source": ["reuters", "reuters"],
            "domain": ["code", "web"],
            "lang": ["code", "en"],
            "quality_web": pa.array([0.2, 0.2], pa.float32()),
        }
    )
    pq.write_table(extra, d / "in" / "curated" / "lang=en" / "part-00001.parquet")
    return d, docs


def _spec(d: Path, url: str | list[str], **generator) -> dict:
    return {
        "kind": "synthesize",
        "name": "rephrase",
        "inputs": [str(d / "in")],
        "output": str(d / "out"),
        "tasks": {
            # Nemotron-CC's split: low-quality text is rephrased, high-quality text becomes Q&A
            "wiki": {"template": "wikipedia", "select": {"domains": ["web"], "quality": {"web": {"max": 0.5}}}},
            "qa": {"template": "qa", "select": {"domains": ["web"], "quality": {"web": {"min": 0.5}}}},
        },
        "generator": {
            "model": "tiny-rewriter",
            "base_url": url,
            "concurrency": CONCURRENCY,
            "timeout_s": 0.6,
            "max_retries": 2,
            "backoff_s": 0.05,
            "max_backoff_s": 0.5,
            **generator,
        },
        "execution": {"engine": "local", "chunk_size": 8},
    }


def _outcomes(out: Path) -> dict[tuple[str, str], tuple[str, str | None]]:
    """(task, source id) -> ("kept" | "rejected" | "failed", reason or error)."""
    got: dict[tuple[str, str], tuple[str, str | None]] = {}
    for kind, col in (("kept", None), ("rejected", "drop_reason"), ("failed", "error")):
        t = _table(out / {"kept": "curated", "rejected": "rejected", "failed": "failed"}[kind])
        if not len(t):
            continue
        for row in t.to_pylist():
            key = (row["task"], row["source_id"])
            assert key not in got, f"{key} written twice"
            got[key] = (kind, row[col] if col else None)
    return got


def _check_outcomes(got: dict, docs: list[tuple[str, str]]) -> Counter:
    seen = Counter()
    for k, (doc_id, text) in enumerate(docs):
        task = "wiki" if k % 2 else "qa"
        kind = behaviour(cut_source(text, 8000).strip())
        outcome, why = got[(task, doc_id)]
        seen[kind] += 1
        if kind in KEPT:
            assert outcome == "kept", (doc_id, kind, outcome, why)
        elif kind in FAILED:
            assert outcome == "failed" and why.startswith(FAILED[kind]), (doc_id, kind, outcome, why)
        else:
            assert outcome == "rejected" and why.startswith(EXPECTED_REASON[kind]), (doc_id, kind, outcome, why)
    return seen


@pytest.fixture(scope="module")
def restarted(corpus):
    """The job run as a process, killed in the middle, then run again to the end."""
    d, docs = corpus
    with OpenAITestServer(slow_s=1.0) as srv:
        spec = _spec(d, srv.url)
        spec_path = d / "synth.yaml"
        spec_path.write_text(yaml.safe_dump(spec))
        proc = subprocess.Popen(
            [str(BIN / "curate"), "synthesize", str(spec_path), "--quiet"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120
        while sum(len(v) for v in srv.backend.served.values()) < 50:
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline, "the job made no progress"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)  # our own child, by pid
        proc.wait()
        # what had reached the job before the kill: the ledger, and the chunks already written
        job = parse_synthesize_spec(spec)
        fp = job.generator.fingerprint()
        ledger_keys = set()
        for f in (d / "out" / "_work" / "ledger").glob("*.jsonl"):
            for line in f.read_text().splitlines():
                try:
                    ledger_keys.add(json.loads(line)["key"])
                except ValueError:
                    pass
        written_before = _outcomes(d / "out")
        srv.backend.phase = 2
        stats = run_synthesize(parse_synthesize_spec(yaml.safe_load(spec_path.read_text())))
        served = {k: list(v) for k, v in srv.backend.served.items()}
    return SimpleNamespace(
        d=d,
        docs=docs,
        job=job,
        fp=fp,
        ledger_keys=ledger_keys,
        written_before=written_before,
        served=served,
        stats=stats,
    )


def _prompt_of(job, task: str, text: str) -> str:
    tpl = resolve(job.tasks[task].template, task)
    return "\n\n".join(m["content"] for m in tpl.messages(cut_source(text, 8000), "en"))


def test_every_selected_document_ends_kept_rejected_or_failed(restarted):
    d, docs, stats = restarted.d, restarted.docs, restarted.stats
    got = _outcomes(d / "out")
    seen = _check_outcomes(got, docs)
    assert len(got) == len(docs)  # the code and the too-short document were not selected
    assert set(seen) == set(KEPT) | set(FAILED) | set(EXPECTED_REASON)  # every fault was planted at least once
    assert stats["input_records"] == len(docs) + 2
    assert stats["units"] == len(docs) == stats["kept"] + stats["rejected"] + stats["failed"]
    assert stats["kept"] == sum(1 for v in got.values() if v[0] == "kept")
    assert stats["by_task"]["wiki"]["not_selected"]["select:quality_web"] == len(docs) // 2
    assert stats["by_task"]["qa"]["not_selected"]["select:domain"] == 1
    assert stats["by_task"]["wiki"]["not_selected"]["select:too_short"] == 1
    assert sum(stats["by_error"].values()) == stats["failed"]
    assert stats["tokens"]["kept"] > 0 and stats["generation"]["completion_tokens"] > 0
    assert json.loads((d / "out" / "stats.json").read_text())["units"] == stats["units"]
    assert "Generation and cost" in (d / "out" / "report.html").read_text()
    assert not list((d / "out" / "_work" / "ledger").glob("*.jsonl"))  # ledgers of written chunks are removed


def test_no_generation_is_paid_twice_after_the_restart(restarted):
    r = restarted
    docs, job, fp, ledger_keys, written_before, served = r.docs, r.job, r.fp, r.ledger_keys, r.written_before, r.served
    assert ledger_keys or written_before, "the kill came before anything was recorded"
    again = {k for k, v in served.items() if 1 in v and 2 in v}
    for k, (doc_id, text) in enumerate(docs):
        task = "wiki" if k % 2 else "qa"
        prompt = _prompt_of(job, task, text)
        key = unit_key(task, resolve(job.tasks[task].template, task), fp, doc_id, cut_source(text, 8000))
        phases = served.get(prompt_key(prompt), [])
        if key in ledger_keys or (task, doc_id) in written_before:
            assert 2 not in phases, f"{doc_id} was generated again after the restart"
        if behaviour(cut_source(text, 8000).strip()) != "slow":  # a timed-out answer is generated, then asked again
            assert len(phases) <= 1 or prompt_key(prompt) in again
    # only answers in flight when the job was killed can have been generated twice
    assert len(again) <= CONCURRENCY
    run = r.stats["generation"]["this_run"]
    assert run["reused_from_ledger"] == len(ledger_keys)
    assert run["errors"].get("timeout", 0) >= 1 and run["errors"].get("429", 0) >= 1


def test_curated_synthetic_documents_carry_their_provenance(restarted):
    d, docs, job = restarted.d, restarted.docs, restarted.job
    kept = _table(d / "out" / "curated")
    by_id = dict(docs)
    assert set(kept["domain"].to_pylist()) == {"synthetic"}
    assert set(kept["source"].to_pylist()) <= {"synthetic-wiki", "synthetic-qa"}
    for row in kept.slice(0, 20).to_pylist():
        assert row["id"] == f"{row['task']}:{row['source_id']}" and row["source_id"] in by_id
        assert row["template_version"] == resolve(job.tasks[row["task"]].template, row["task"]).version_id
        assert row["generator"] == "openai:tiny-rewriter" and row["lang"] == "en"
        assert row["text"] == rewrite(by_id[row["source_id"]])
        assert row["n_tokens"] > 0 and row["copy_share"] < 0.5
    rejected = _table(d / "out" / "rejected")
    assert rejected["drop_reason"].null_count == 0
    failed = _table(d / "out" / "failed")
    assert all("attempts" in e or e.startswith("HTTP 400") for e in failed["error"].to_pylist())


def test_mixture_treats_synthetic_buckets_like_any_other(restarted, tmp_path):
    from mixtures.job import run_mix
    from mixtures.spec import parse_mix_spec

    d = restarted.d
    manifest = run_mix(
        parse_mix_spec(
            {
                "kind": "mix",
                "inputs": [str(d / "in"), str(d / "out")],
                "output": str(tmp_path / "mix"),
                "target_tokens": 40_000,
                "bucket_by": ["source"],
                "max_epochs": 2,
                "weights": {"reuters": 0.5, "synthetic-wiki": 0.25, "synthetic-qa": 0.25},
                "execution": {"engine": "local"},
            }
        )
    )
    buckets = {b["name"]: b for b in manifest["buckets"]}
    assert buckets["reuters"]["synthetic_tokens"] == 0
    assert buckets["synthetic-wiki"]["synthetic_tokens"] == buckets["synthetic-wiki"]["selected_tokens"] > 0
    assert (
        manifest["synthetic_tokens"]
        == buckets["synthetic-wiki"]["selected_tokens"] + buckets["synthetic-qa"]["selected_tokens"]
    )
    assert manifest["synthetic_share"] == pytest.approx(manifest["synthetic_tokens"] / manifest["achieved_tokens"])
    assert 0.4 < manifest["synthetic_share"] < 0.6


def test_completions_batches_and_a_dead_server(corpus, tmp_path):
    """The completions API with four prompts per request, and a second base_url nothing listens on:
    connection errors are retried on the live server."""
    from tests.conftest import free_port

    _, docs = corpus
    keep = {"ok", "copy", "leak", "short", "flaky429"}
    picked = [(i, t) for i, t in docs if behaviour(t) in keep][:40]
    n = len(picked)
    (tmp_path / "in" / "curated").mkdir(parents=True)
    pq.write_table(
        pa.table(
            {
                "id": [i for i, _ in picked],
                "text": [t for _, t in picked],
                "source": ["reuters"] * n,
                "domain": ["web"] * n,
                "lang": ["en"] * n,
                "quality_web": pa.array([0.2 if k % 2 else 0.8 for k in range(n)], pa.float32()),
            }
        ),
        tmp_path / "in" / "curated" / "part-00000.parquet",
    )
    with OpenAITestServer() as srv:
        dead = f"http://127.0.0.1:{free_port()}/v1"
        spec = _spec(tmp_path, [dead, srv.url], api="completions", batch_size=4, max_retries=4)
        stats = run_synthesize(parse_synthesize_spec(spec))
        statuses = dict(srv.backend.statuses)
    got = _outcomes(tmp_path / "out")
    _check_outcomes(got, picked)
    assert stats["units"] == n == stats["kept"] + stats["rejected"] + stats["failed"] and stats["failed"] == 0
    run = stats["generation"]["this_run"]
    assert run["errors"].get("connection", 0) >= 1
    # one answered request per four prompts of a chunk (chunks of 8 units)
    chunks = [8] * (n // 8) + ([n % 8] if n % 8 else [])
    assert statuses[200] == sum(-(-c // 4) for c in chunks)


def test_selection_rules():
    t = pa.table(
        {
            "id": [f"d{i}" for i in range(1000)],
            "text": ["x" * 300] * 999 + [None],
            "domain": ["web"] * 990 + ["code"] * 10,
            "lang": ["en"] * 1000,
            "drop_reason": [None] * 900 + ["quality:web"] * 50 + ["gopher_quality:word_count"] * 50,
            "quality_web": pa.array([i / 1000 for i in range(1000)], pa.float32()),
        }
    )
    take, why = select_rows(t, "wiki", SelectSpec(domains=["web"], quality={"web": {"max": 0.5}}), 0)
    assert take.sum() == 500 and all(why[i] == "select:quality_web" for i in range(500, 900))
    assert why[950] == "select:rejected" and why[999] == "select:no_text"
    take, why = select_rows(t, "lq", SelectSpec(rejected_reasons=["quality:web"], min_chars=10), 0)
    assert take.sum() == 950 and why[960] == "select:rejected"
    take, _ = select_rows(t, "wiki", SelectSpec(max_documents=120), 100)
    assert take.sum() == 20 and take[:20].all()
    take_a, _ = select_rows(t, "a", SelectSpec(fraction=0.3), 0)
    take_b, _ = select_rows(t, "b", SelectSpec(fraction=0.3), 0)
    assert 200 < take_a.sum() < 340 and (take_a != take_b).any()  # per-task samples, by a hash of the id
    assert (select_rows(t, "a", SelectSpec(fraction=0.3), 0)[0] == take_a).all()


def test_spec_errors_name_their_keys(tmp_path):
    base = {
        "kind": "synthesize",
        "inputs": [str(tmp_path)],
        "output": str(tmp_path / "o"),
        "tasks": {"t": {"template": "wikipedia"}},
        "generator": {"model": "m", "base_url": "http://127.0.0.1:1/v1"},
    }
    bad = [
        ({"tasks": {"t": {"template": "poem"}}}, "tasks.t.template"),
        ({"tasks": {"t": {"template": {"user": "no placeholder"}}}}, "tasks.t.template"),
        ({"generator": {"model": "m", "base_url": "http://h/v1", "batch_size": 8}}, "generator"),
        ({"generator": {"model": "m", "base_url": "ftp://h"}}, "generator"),
        ({"generator": {"model": "m", "kind": "hf"}}, "generator"),
        ({"tasks": {"t": {"template": "qa", "selct": {}}}}, "tasks.t.selct"),
    ]
    for change, path in bad:
        with pytest.raises(SpecError) as e:
            parse_synthesize_spec({**base, **change})
        assert any(p.startswith(path) for p, _ in e.value.errors), (change, e.value.errors)
    job = parse_synthesize_spec(base)
    moved = parse_synthesize_spec(
        {**base, "generator": {"model": "m", "base_url": "http://other:8000/v1", "concurrency": 64}}
    )
    assert moved.fingerprint() == job.fingerprint()  # where it is served does not change the results
    hotter = parse_synthesize_spec({**base, "generator": {"model": "m", "base_url": "http://h/v1", "temperature": 1.0}})
    assert hotter.fingerprint() != job.fingerprint()


@pytest.mark.slow
def test_a_dead_generator_stops_the_job_and_the_rerun_resumes(corpus, tmp_path):
    """A server that is down fails every request: the job stops after `stop_after_failures` in a row
    without writing those failures as final, and the rerun (pointed at a live server) finishes the job."""
    from curation.job import JobError
    from tests.conftest import free_port

    d, docs = corpus
    (tmp_path / "in").symlink_to(d / "in")
    spec = _spec(tmp_path, f"http://127.0.0.1:{free_port()}/v1", max_retries=0, stop_after_failures=5)
    with pytest.raises(JobError, match=r"failed \d+ requests in a row"):
        run_synthesize(parse_synthesize_spec(spec))
    assert not (tmp_path / "out" / "stats.json").exists() and not (tmp_path / "out" / "failed").exists()
    with OpenAITestServer(slow_s=1.0) as srv:
        stats = run_synthesize(
            parse_synthesize_spec({**spec, "generator": {**spec["generator"], "base_url": srv.url, "max_retries": 2}})
        )
    _check_outcomes(_outcomes(tmp_path / "out"), docs)
    assert stats["units"] == len(docs) == stats["kept"] + stats["rejected"] + stats["failed"]


def test_hf_generator_with_a_tiny_model_on_ray(corpus, tmp_path, ray_session):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers

    _, docs = corpus
    words = sorted({w for _, t in docs[:8] for w in t.lower().split()})[:300]
    vocab = {w: i for i, w in enumerate(["<unk>", "<pad>", "</s>"] + words)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", eos_token="</s>"
    )
    model_dir = tmp_path / "tiny"
    fast.save_pretrained(model_dir)
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(
        vocab_size=len(vocab), n_positions=1024, n_embd=16, n_layer=1, n_head=2, eos_token_id=2, bos_token_id=2
    )
    transformers.GPT2LMHeadModel(cfg).save_pretrained(model_dir)
    (tmp_path / "in" / "curated").mkdir(parents=True)
    pq.write_table(
        pa.table(
            {
                "id": [i for i, _ in docs[:6]],
                "text": [t for _, t in docs[:6]],
                "source": ["reuters"] * 6,
                "domain": ["web"] * 6,
                "lang": ["en"] * 6,
            }
        ),
        tmp_path / "in" / "curated" / "part-00000.parquet",
    )
    spec = {
        "kind": "synthesize",
        "inputs": [str(tmp_path / "in")],
        "output": str(tmp_path / "out"),
        "tasks": {"distill": {"template": "distill"}},
        "generator": {
            "kind": "hf",
            "model": str(model_dir),
            "max_tokens": 12,
            "batch_size": 3,
            "temperature": 0.0,
            "device": "cpu",
        },
        "execution": {"engine": "ray", "chunk_size": 4},
    }
    stats = run_synthesize(parse_synthesize_spec(spec))
    assert stats["units"] == 6 == stats["kept"] + stats["rejected"] + stats["failed"] and stats["failed"] == 0
    rejected = _table(tmp_path / "out" / "rejected")
    # random weights: 12 tokens of noise, cut by max_tokens, never an acceptable document
    assert stats["rejected"] == 6 and set(rejected["drop_reason"].to_pylist()) <= {
        "synth:truncated",
        "synth:too_short",
        "synth:empty",
    }
    assert set(rejected["generator"].to_pylist()) == {f"hf:{model_dir}"}
    assert all(0 < c <= 12 for c in rejected["completion_tokens"].to_pylist())
