"""`curate ablate`: regression and optimizer on a known mixing law, the proxies, and the whole job on a
real pool of five sources from ../shared/data (its gates), feeding `curate mix`."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
import yaml

from curation.job import run_job
from curation.progress import Progress
from curation.spec import parse_spec
from mixtures import ablate as ablate_module
from mixtures.ablate import run_ablate
from mixtures.job import run_mix
from mixtures.proxy import ByteNgramLM
from mixtures.regression import choose_regressor, project_to_caps, propose, sample_mixtures
from mixtures.spec import parse_ablate_spec, parse_mix_spec
from tests.conftest import SHARED_DATA, shared_file


def test_optimum_of_a_known_mixing_law_is_recovered():
    """Two target domains, each following L_j(w) = c_j + exp(b_j + t_j·w), averaged; epoch caps bind."""
    rng = np.random.default_rng(1)
    prior = np.array([0.5, 0.25, 0.12, 0.08, 0.05])
    caps = np.array([1.0, 1.0, 0.35, 0.3, 0.1])
    t = np.array([[0.8, -0.2, -1.5, 0.3, -0.5], [0.6, 0.1, -0.3, -1.8, -0.2]])
    c, b = np.array([1.0, 1.3]), np.array([0.3, 0.1])

    def parts(w):
        return c + np.exp(b + np.atleast_2d(w) @ t.T)

    def true_loss(w):
        return parts(w).mean(axis=1)

    w = sample_mixtures(prior, caps, 60, rng)
    observed = parts(w) + rng.normal(0, 0.003, (60, 2))
    model, cv = choose_regressor(w[:48], observed[:48])
    held = spearman_of(true_loss(w[48:]), model.predict(w[48:]))
    assert cv[model.name] > 0.95 and held > 0.9, (cv, held)
    proposal = propose(choose_regressor(w, observed)[0], prior, caps, rng)
    assert np.isclose(proposal.sum(), 1) and (proposal <= caps + 1e-9).all()
    dense = sample_mixtures(prior, caps, 400_000, np.random.default_rng(2), (0.05, 50))
    best = true_loss(dense).min()
    natural = true_loss(project_to_caps(prior, caps))[0]
    got = true_loss(proposal)[0]
    print(f"\ntrue loss: natural {natural:.4f}, proposal {got:.4f}, best of 400k {best:.4f}")
    assert got - best <= 0.1 * (natural - best)  # within 10% of the way from natural to the optimum


def spearman_of(a, b):
    from filters.metrics import spearman

    return spearman(np.asarray(a), np.asarray(b))


def test_caps_projection_and_sampling():
    caps = np.array([0.5, 0.2, 0.6])
    w = project_to_caps(np.array([[0.1, 0.8, 0.1], [0.3, 0.3, 0.4], [1.0, 0.0, 0.0]]), caps)
    assert np.allclose(w.sum(axis=1), 1) and (w <= caps + 1e-12).all()
    assert np.allclose(w[1], [0.8 * 3 / 7, 0.2, 0.8 * 4 / 7])  # 0.1 over the cap goes to the others by weight
    assert np.allclose(project_to_caps(np.array([0.4, 0.2, 0.4]), caps), [0.4, 0.2, 0.4])
    with pytest.raises(ValueError, match="at most 0.900"):
        project_to_caps(np.array([0.5, 0.5]), np.array([0.5, 0.4]))
    s = sample_mixtures(np.array([0.7, 0.2, 0.1]), caps, 2000, np.random.default_rng(0), (0.1, 5.0))
    assert s.shape == (2000, 3) and np.allclose(s.sum(axis=1), 1) and (s <= caps + 1e-9).all()
    assert s[:, 2].std() > 0.05 and s[:, 2].max() > 0.5  # low concentrations reach far from the prior


def test_ngram_proxy_prefers_in_domain_data():
    def docs(name, n, skip=0):
        out = []
        with gzip.open(shared_file(name), "rt") as f:
            for k, line in enumerate(f):
                if k >= skip:
                    out.append(json.loads(line)["text"].encode())
                if len(out) == n:
                    return out
        return out

    news, code = docs("news_reuters21578.jsonl.gz", 1500), docs("code_files.jsonl.gz", 300)
    target = docs("news_reuters21578.jsonl.gz", 200, skip=20000)
    on_news = ByteNgramLM().fit(news).loss(target)
    on_code = ByteNgramLM().fit(code).loss(target)
    on_less = ByteNgramLM().fit(news[:150]).loss(target)
    assert on_news < on_less < on_code
    assert ByteNgramLM().fit(news).loss(target) == on_news  # deterministic


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    """Five sources of ../shared/data curated (engine local, no filters) into one pool."""
    d = tmp_path_factory.mktemp("ablate_pool")
    inputs = []

    def write(name, rows):
        path = d / f"{name}.jsonl"
        with path.open("w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
        inputs.append({"path": str(path), "format": "jsonl", "source": name})

    def read(name, field="text"):
        with gzip.open(shared_file(name), "rt") as f:
            return [{"id": r["id"], "text": r[field]} for r in map(json.loads, f) if r.get(field)]

    write("reuters", read("news_reuters21578.jsonl.gz"))
    write("web", read("web_trafilatura_eval.jsonl.gz", "main_text"))
    write("code", read("code_files.jsonl.gz"))
    write("math", read("math_problems.jsonl.gz"))
    by_lang: dict[str, list] = {}
    with gzip.open(SHARED_DATA / "lid_tatoeba_laser.jsonl.gz", "rt") as f:
        for r in map(json.loads, f):
            by_lang.setdefault(r["lang"], []).append(r)
    write(
        "tatoeba",
        [
            {"id": rs[i]["id"], "text": "\n".join(x["text"] for x in rs[i : i + 10])}
            for rs in by_lang.values()
            for i in range(0, len(rs), 10)
        ],
    )
    out = d / "pool"
    run_job(
        parse_spec(
            {"output": str(out), "inputs": inputs, "languages": "all", "stages": {}, "execution": {"engine": "local"}}
        ),
        progress=Progress(enabled=False),
    )
    return out


def test_ablation_gates_on_a_real_pool_and_mix_uses_the_weights(pool, tmp_path):
    """The default swarm (64 proxies, 12 held out, 5 seeds) for a target of held-out web pages and math."""
    spec = {
        "kind": "ablate",
        "inputs": [str(pool)],
        "output": str(tmp_path / "ab"),
        "bucket_by": ["source"],
        "target_tokens": 30_000_000,
        "target": {"buckets": ["web", "math"]},
        "execution": {"engine": "local"},
    }
    r = run_ablate(parse_ablate_spec(spec), progress=Progress(enabled=False))
    on_disk = json.loads((tmp_path / "ab" / "ablation.json").read_text())
    for key in ("heldout_spearman", "n_heldout", "vs_uniform", "vs_natural", "weights"):
        assert key in on_disk
    print(
        f"\nheld-out Spearman {r['heldout_spearman']:.3f} on {r['n_heldout']} mixtures ({r['regressor']}); "
        f"gain vs uniform {r['vs_uniform']['mean_gain']:.4f} +- {r['vs_uniform']['stderr']:.4f}, vs natural "
        f"{r['vs_natural']['mean_gain']:.4f} +- {r['vs_natural']['stderr']:.4f} bits/byte over "
        f"{r['vs_uniform']['seeds']} seeds"
    )
    assert len(r["weights"]) == 5 and r["n_heldout"] >= 10 and not r["failed"]
    assert r["heldout_spearman"] >= 0.8
    for vs in ("vs_uniform", "vs_natural"):
        assert r[vs]["seeds"] >= 5 and r[vs]["mean_gain"] > 2 * r[vs]["stderr"] > 0, r[vs]
    assert all(r["gates"].values())
    w = np.array(list(r["weights"].values()))
    assert np.isclose(w.sum(), 1) and (w <= np.array(list(r["caps"].values())) + 1e-9).all()
    assert (tmp_path / "ab" / "report.html").exists() and (tmp_path / "ab" / "ablate_predicted.png").exists()

    # curate mix takes the proposal as it is.
    weights_file = tmp_path / "ab" / "weights.yaml"
    assert yaml.safe_load(weights_file.read_text())["weights"] == r["weights"]
    manifest = run_mix(
        parse_mix_spec(
            {
                "kind": "mix",
                "inputs": [str(pool)],
                "output": str(tmp_path / "mix"),
                "bucket_by": ["source"],
                "target_tokens": 3_000_000,
                "weights_file": str(weights_file),
                "execution": {"engine": "local"},
            }
        ),
        progress=Progress(enabled=False),
    )
    got = {b["name"]: b["selected_tokens"] / manifest["achieved_tokens"] for b in manifest["buckets"]}
    for b, x in r["weights"].items():
        assert got[b] == pytest.approx(x, abs=0.01), (b, got[b], x)
        assert next(m for m in manifest["buckets"] if m["name"] == b)["requested_weight"] == pytest.approx(x)


@pytest.mark.parametrize("proxy", ["ngram", "gpt"])
def test_small_swarm_on_ray(pool, tmp_path, ray_session, proxy):
    if proxy == "gpt":
        pytest.importorskip("torch")
    spec = {
        "kind": "ablate",
        "inputs": [str(pool)],
        "output": str(tmp_path / proxy),
        "target_tokens": 30_000_000,
        "n_mixtures": 10,
        "n_heldout": 3,
        "seeds": 2,
        "proxy": proxy,
        "proxy_tokens": 100_000,
        "gpt": {"d_model": 16, "train_bytes": 40_000, "context": 64},
        "execution": {"engine": "ray"},
    }
    r = run_ablate(parse_ablate_spec(spec), progress=Progress(enabled=False))
    assert len(r["mixtures"]) == 10 and not r["failed"] and r["proxy"]["kind"] == proxy
    assert len(r["confirmation"]["proposal"]) == 2 and all(x > 0 for x in r["confirmation"]["uniform"])
    assert r["gates"]["heldout_spearman_0.8"] is False  # 3 held-out mixtures cannot pass the >= 10 rule


def test_a_failing_proxy_is_retried_then_reported(pool, tmp_path, monkeypatch):
    real = ablate_module.train_proxy
    calls: dict[bytes, int] = {}
    order: list[bytes] = []

    def flaky(corpus, rows, target, kind, options, seed):
        key = rows.tobytes()
        if key not in calls:
            order.append(key)
        calls[key] = calls.get(key, 0) + 1
        if len(order) > 1 and key == order[1]:  # the second run fails every time
            return {"loss": None, "error": "MemoryError: out of memory", "seconds": 0.0}
        if order.index(key) % 5 == 0 and calls[key] == 1:  # every fifth run fails once, then succeeds
            return {"loss": None, "error": "RuntimeError: worker lost", "seconds": 0.0}
        return real(corpus, rows, target, kind, options, seed)

    monkeypatch.setattr(ablate_module, "train_proxy", flaky)
    spec = {
        "kind": "ablate",
        "inputs": [str(pool)],
        "output": str(tmp_path / "f"),
        "target_tokens": 30_000_000,
        "n_mixtures": 12,
        "n_heldout": 4,
        "seeds": 2,
        "proxy_tokens": 100_000,
        "execution": {"engine": "local"},
    }
    r = run_ablate(parse_ablate_spec(spec), progress=Progress(enabled=False))
    assert [f["error"] for f in r["failed"]] == ["MemoryError: out of memory"]  # reported, never silently missing
    assert len(r["mixtures"]) == 11 and r["n_fit"] + r["n_heldout"] == 11
    assert any(v == 2 for v in calls.values())  # retried


def test_budget_beyond_the_caps_is_a_spec_error(pool, tmp_path):
    from curation.spec import SpecError

    spec = {
        "kind": "ablate",
        "inputs": [str(pool)],
        "output": str(tmp_path / "x"),
        "target_tokens": 10**12,
        "execution": {"engine": "local"},
    }
    with pytest.raises(SpecError, match="cannot be met within the epoch caps"):
        run_ablate(parse_ablate_spec(spec), progress=Progress(enabled=False))


def test_ablate_spec_errors():
    from curation.spec import SpecError

    with pytest.raises(SpecError, match="n_heldout"):
        parse_ablate_spec({"inputs": ["x"], "output": "y", "target_tokens": 1, "n_mixtures": 10, "n_heldout": 8})
    with pytest.raises(SpecError, match=r"proxy: .*'ngram' or 'gpt'"):
        parse_ablate_spec({"inputs": ["x"], "output": "y", "target_tokens": 1, "proxy": "mamba"})
    with pytest.raises(SpecError, match="d_model"):
        parse_ablate_spec({"inputs": ["x"], "output": "y", "target_tokens": 1, "gpt": {"d_model": 30, "heads": 4}})


@pytest.mark.parametrize("engine", ["local", "ray"])
def test_task_map_reports_progress_while_it_runs(engine, request, tmp_path):
    from curation.execution import LocalExecutor, RayExecutor

    job = parse_ablate_spec(
        {"inputs": ["x"], "output": str(tmp_path), "target_tokens": 1, "execution": {"engine": engine}}
    )
    if engine == "ray":
        request.getfixturevalue("ray_session")
        executor = RayExecutor(job)
    else:
        executor = LocalExecutor(job)
    import time

    seen: list[tuple[int, int]] = []
    with executor:
        executor.map(lambda s: time.sleep(s), [(0.3,)] * 6, report=lambda d, t: seen.append((d, t)), every=0.05)
        out = executor.map(lambda a, b: a**b, [(2, k) for k in range(6)])
    assert out == [2**k for k in range(6)]  # in order, whatever order they finished in
    assert seen and all(t == 6 and 0 <= d <= 6 for d, t in seen)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
