"""`curate ablate`: choose mixture weights with a swarm of small proxy models (RegMix), as a managed job.

1. The pool (the mixer's own index of the curated outputs: buckets, Qwen token counts) minus a held-out
   slice (a seeded hash of the id) that is the target, unless target files are given.
2. `n_mixtures` candidate mixtures: Dirichlet draws around the natural token distribution, concentration
   log-uniform in `concentration`, each within the epoch caps.
3. One proxy per mixture, as parallel tasks (Ray, or in-process with engine local). A proxy's training
   set is the final mixture scaled down: each bucket keeps `proxy_tokens / target_tokens` of its
   documents (seeded hash order), and the mixer's own selection (`mixtures.select.select`) draws
   `w_b * proxy_tokens` tokens from that, so every bucket is repeated at the rate the final budget gives
   it. Loss is bits per byte on the target (each target bucket weighing the same).
4. Regressors from weights to loss, chosen by cross-validated Spearman on the fitting mixtures: the
   log-linear mixing law and a law linear in log-weights, each fitted per target group and averaged, a
   linear model (the baseline) and LightGBM (when installed) on the mean loss; the held-out Spearman on `n_heldout` mixtures never
   used for fitting is the first gate.
5. The proposal (simulation top-k under the caps, regressor refitted on every mixture), then
   confirmation: proposal, uniform and natural mixtures trained with the same `seeds` fresh seeds (paired:
   one seed draws the same documents for all three); the mean paired gain must exceed two standard errors.
Outputs: `ablation.json`, `weights.yaml` (what `curate mix` reads as `weights_file`), `report.html` + PNGs.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from curation.execution import executor_for
from curation.job import claim_output
from curation.outputs import Layout
from curation.progress import Progress
from curation.spec import SpecError, model_yaml
from filters.metrics import spearman
from mixtures.pool import curated_files
from mixtures.regression import LinearModel, _Mean, choose_regressor, project_to_caps, propose, sample_mixtures
from mixtures.select import id_hashes, select
from mixtures.spec import AblateJob

TARGET_BYTES_PER_BUCKET = 2_000_000  # enough for a stable loss, small enough to score in a blink


def make_proxy(kind: str, options: dict[str, Any], seed: int):
    if kind == "gpt":
        from mixtures.gpt_proxy import TinyGPT

        return TinyGPT(**options, seed=seed)
    from mixtures.proxy import ByteNgramLM

    return ByteNgramLM(**options)


def train_proxy(
    corpus: Sequence[bytes],
    rows: np.ndarray,
    target: dict[str, list[bytes]],
    kind: str,
    options: dict[str, Any],
    seed: int,
) -> dict[str, Any]:
    """One proxy: fit on corpus[rows] (with repeats), loss on every target group; errors are returned."""
    t0 = time.perf_counter()
    try:
        model = make_proxy(kind, options, seed).fit([corpus[i] for i in rows.tolist()])
        losses = {name: model.loss(docs) for name, docs in target.items()}
        return {
            "loss": float(np.mean(list(losses.values()))),
            "by_target": losses,
            "seconds": time.perf_counter() - t0,
            "error": None,
        }
    except Exception as e:  # reported and retried by the driver, never silently missing
        return {"loss": None, "error": f"{type(e).__name__}: {e}", "seconds": time.perf_counter() - t0}


def _read_texts(files: list[str], pool: pa.Table, wanted: np.ndarray) -> dict[int, bytes]:
    """UTF-8 texts of the given pool rows, read from their curated files."""
    from curation.io.sources import filesystem_for

    out: dict[int, bytes] = {}
    by_file: dict[int, list[int]] = defaultdict(list)
    file_col, row_col = pool["file"].to_numpy(), pool["row"].to_numpy()
    for i in wanted.tolist():
        by_file[int(file_col[i])].append(i)
    for f, idx in sorted(by_file.items()):
        fs, path = filesystem_for(files[f])
        texts = pq.read_table(path, columns=["text"], filesystem=fs)["text"]
        for i, t in zip(idx, texts.take(pa.array(row_col[idx])).to_pylist()):
            out[i] = t.encode("utf-8")
    return out


def _target_files(paths: list[str], limit: int) -> list[bytes]:
    from curation.train_quality import iter_texts

    out, size = [], 0
    for text, _ in iter_texts(paths):
        out.append(text.encode("utf-8"))
        size += len(out[-1])
        if size >= limit:
            break
    return out


class _Swarm:
    """Builds proxy training sets (the mixer's selection on a scaled-down pool) and runs them as tasks."""

    def __init__(
        self,
        job: AblateJob,
        executor,
        pool: pa.Table,
        train_idx: np.ndarray,
        buckets: list[str],
        caps: np.ndarray,
        files: list[str],
        progress: Progress,
    ):
        self.job, self.executor, self.progress = job, executor, progress
        self.pool, self.train_idx, self.buckets, self.caps, self.files = pool, train_idx, buckets, caps, files
        self.fraction = min(1.0, job.proxy_tokens / job.target_tokens)
        self.subpools: dict[int, pa.Table] = {}
        self.texts: dict[int, bytes] = {}

    def subpool(self, seed: int) -> pa.Table:
        """Each bucket's first `fraction` of tokens in seeded hash order (at least one document)."""
        if seed not in self.subpools:
            t = self.pool.take(pa.array(self.train_idx))
            b = t["bucket"].to_numpy(zero_copy_only=False)
            tok = t["n_tokens"].to_numpy()
            h = id_hashes(t["id"].to_pylist(), seed, "proxy")
            keep = []
            for bucket in self.buckets:
                idx = np.flatnonzero(b == bucket)
                idx = idx[np.argsort(h[idx], kind="stable")]
                cum = np.cumsum(tok[idx])
                n = max(1, int(np.searchsorted(cum, self.fraction * cum[-1], side="left")) + 1)
                keep.append(idx[:n])
            sel = np.sort(np.concatenate(keep))
            self.subpools[seed] = pa.table(
                {
                    "id": t["id"].take(pa.array(sel)),
                    "id_hash": t["id_hash"].take(pa.array(sel)),
                    "bucket": t["bucket"].take(pa.array(sel)),
                    "n_tokens": t["n_tokens"].take(pa.array(sel)),
                    "pool_index": pa.array(self.train_idx[sel]),
                }
            )
        return self.subpools[seed]

    def rows(self, w: np.ndarray, seed: int) -> np.ndarray:
        """Pool indices (with repeats) of the proxy training set for mixture `w`."""
        sp = self.subpool(seed)
        alloc = {b: int(round(x * self.job.proxy_tokens)) for b, x in zip(self.buckets, w)}
        sel = select(sp, alloc, seed)
        return sp["pool_index"].to_numpy()[sel["pool_index"].to_numpy()]

    def run(
        self, mixtures: np.ndarray, seeds: list[int], target: dict[str, list[bytes]], what: str
    ) -> list[dict[str, Any]]:
        """Loss of each (mixture, seed); failed proxies are retried once, then reported with their error."""
        jobs = [(w, s, self.rows(w, s)) for w, s in zip(mixtures, seeds)]
        need = np.unique(np.concatenate([r for _, _, r in jobs]))
        missing = np.array([i for i in need.tolist() if i not in self.texts], dtype=np.int64)
        if len(missing):
            self.texts.update(_read_texts(self.files, self.pool, missing))
        index = {i: k for k, i in enumerate(need.tolist())}
        corpus = [self.texts[i] for i in need.tolist()]
        corpus_arg, target_arg = self.executor.share(corpus), self.executor.share(target)
        kind = self.job.proxy
        options = self.job.gpt.model_dump() if kind == "gpt" else {"order": self.job.ngram_order}
        args = [
            (corpus_arg, np.array([index[i] for i in r.tolist()], dtype=np.int64), target_arg, kind, options, s)
            for _, s, r in jobs
        ]
        t0 = time.monotonic()
        cpus = 1.0 if kind == "gpt" else 0.5  # a transformer proxy keeps its core busy

        def report(done: int, total: int) -> None:
            self.progress.say(f"{what}: {done}/{total} proxies trained ({time.monotonic() - t0:.0f}s)")

        results = self.executor.map(train_proxy, args, report=report, num_cpus=cpus)
        retry = [k for k, r in enumerate(results) if r["error"]]
        if retry:
            self.progress.say(
                f"{what}: {len(retry)} proxy run(s) failed, retrying once (first error: {results[retry[0]]['error']})"
            )
            for k, r in zip(retry, self.executor.map(train_proxy, [args[k] for k in retry], num_cpus=cpus)):
                results[k] = r
        for (w, s, r), res in zip(jobs, results):
            res.update(weights=w.tolist(), seed=s, train_tokens=int(self.pool["n_tokens"].to_numpy()[r].sum()))
        ok = sum(1 for r in results if not r["error"])
        self.progress.say(f"{what}: {ok}/{len(results)} proxies trained in {time.monotonic() - t0:.1f}s")
        return results


def _paired(prop: list[dict], base: list[dict]) -> dict[str, Any]:
    gains = [b["loss"] - p["loss"] for p, b in zip(prop, base) if p["loss"] is not None and b["loss"] is not None]
    n = len(gains)
    mean = float(np.mean(gains)) if n else float("nan")
    stderr = float(np.std(gains, ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    return {
        "mean_gain": mean,
        "stderr": stderr,
        "seeds": n,
        "gains": gains,
        "passed": bool(n > 1 and mean > 2 * stderr),
    }


def run_ablate(job: AblateJob, *, address: str | None = None, progress: Progress | None = None) -> dict[str, Any]:
    """Run the ablation; returns what is written to OUT/ablation.json."""

    t_start = time.monotonic()
    files = curated_files(job.inputs)
    layout, lock = claim_output(job, model_yaml(job))
    with lock:
        return _run_ablate(job, files, layout, address, progress or Progress(), t_start)


def _run_ablate(
    job: AblateJob, files: list[str], layout: Layout, address: str | None, progress: Progress, t_start: float
) -> dict[str, Any]:
    from mixtures.job import _available, _load_or_build_pool

    executor = executor_for(job, address)
    rng = np.random.default_rng(job.seed)
    with executor:
        pool = _load_or_build_pool(executor, layout, files, job)
        ids = pool["id"].to_pylist()
        held = id_hashes(ids, job.seed, "heldout").astype(np.float64) / 2.0**64 < job.target.heldout_fraction
        train_idx = np.flatnonzero(~held)
        available = _available(pool.take(pa.array(train_idx)))
        buckets = sorted(available)
        if len(buckets) < 2:
            raise SpecError(
                [("bucket_by", f"the pool has {len(buckets)} bucket(s) by {job.bucket_by}: nothing to mix")]
            )
        unknown = sorted(set(job.max_epochs_by_bucket) - set(buckets)) + sorted(
            set(job.target.buckets or []) - set(buckets)
        )
        if unknown:
            raise SpecError(
                [
                    (
                        "max_epochs_by_bucket/target.buckets",
                        f"unknown bucket {u!r} (the pool has: {', '.join(buckets)})",
                    )
                    for u in unknown
                ]
            )
        tokens = np.array([available[b] for b in buckets], dtype=np.float64)
        prior = tokens / tokens.sum()
        caps = np.array([job.max_epochs_by_bucket.get(b, job.max_epochs) for b in buckets]) * tokens / job.target_tokens
        if caps.sum() < 1:
            raise SpecError(
                [
                    (
                        "target_tokens",
                        f"{job.target_tokens:,} tokens cannot be met within the epoch caps: "
                        f"the pool holds {tokens.sum():,.0f} tokens, at most "
                        f"{caps.sum() * job.target_tokens:,.0f} with the caps",
                    )
                ]
            )
        progress.say(
            f"ablate {job.name!r}: {len(pool):,} documents in {len(buckets)} buckets, "
            f"{int(held.sum()):,} held out; target {job.target_tokens:,} tokens, proxies of "
            f"{job.proxy_tokens:,} tokens"
        )

        if job.target.files:
            target = {"files": _target_files(job.target.files, TARGET_BYTES_PER_BUCKET * 4)}
        else:
            names = job.target.buckets or buckets
            held_idx = np.flatnonzero(held)
            hb = pool["bucket"].to_numpy(zero_copy_only=False)[held_idx]
            texts = _read_texts(files, pool, held_idx[np.isin(hb, names)])
            target = {}
            for name in names:
                docs, size = [], 0
                for i in held_idx[hb == name].tolist():
                    docs.append(texts[i])
                    size += len(docs[-1])
                    if size >= TARGET_BYTES_PER_BUCKET:
                        break
                if not docs:
                    raise SpecError(
                        [
                            (
                                "target",
                                f"bucket {name!r} has no held-out documents; raise "
                                "target.heldout_fraction or give target.files",
                            )
                        ]
                    )
                target[name] = docs
        swarm = _Swarm(job, executor, pool, train_idx, buckets, caps, files, progress)

        mixtures = sample_mixtures(prior, caps, job.n_mixtures, rng, tuple(job.concentration))
        runs = swarm.run(mixtures, [job.seed] * len(mixtures), target, "swarm")
        ok = [k for k, r in enumerate(runs) if r["loss"] is not None]
        failed = [{"weights": runs[k]["weights"], "error": runs[k]["error"]} for k in range(len(runs)) if k not in ok]
        w_ok = mixtures[ok]
        groups = sorted(target)
        parts = np.array([[runs[k]["by_target"][g] for g in groups] for k in ok])  # loss per target group
        loss_ok = parts.mean(axis=1)
        n_held = min(job.n_heldout, max(0, len(ok) - 5))
        fit_w, ho_w, ho_l = w_ok[:-n_held], w_ok[-n_held:], loss_ok[-n_held:]
        model, cv = choose_regressor(fit_w, parts[:-n_held])
        ho_pred = model.predict(ho_w)
        heldout_rho = spearman(ho_l, ho_pred)
        linear_rho = spearman(ho_l, _Mean(LinearModel()).fit(fit_w, parts[:-n_held]).predict(ho_w))
        progress.say(
            f"regressor {model.name} (cross-validated Spearman {cv[model.name]:.3f}); held-out Spearman "
            f"{heldout_rho:.3f} on {n_held} mixtures never used for fitting (linear: {linear_rho:.3f})"
        )

        final, _ = choose_regressor(w_ok, parts)  # the proposal uses every mixture
        proposal = propose(final, prior, caps, rng)
        uniform = project_to_caps(np.full(len(buckets), 1.0 / len(buckets)), caps)
        natural = project_to_caps(prior, caps)
        seeds = [job.seed + 1 + k for k in range(job.seeds)]
        confirm = swarm.run(
            np.array([proposal] * len(seeds) + [uniform] * len(seeds) + [natural] * len(seeds)),
            seeds * 3,
            target,
            "confirmation",
        )
        n = len(seeds)
        prop_runs, uni_runs, nat_runs = confirm[:n], confirm[n : 2 * n], confirm[2 * n :]
        vs_uniform, vs_natural = _paired(prop_runs, uni_runs), _paired(prop_runs, nat_runs)

    gates = {
        "heldout_spearman_0.8": bool(heldout_rho >= 0.8 and n_held >= 10),
        "beats_uniform": vs_uniform["passed"],
        "beats_natural": vs_natural["passed"],
    }
    result = {
        "heldout_spearman": float(heldout_rho),
        "n_heldout": int(n_held),
        "n_fit": int(len(fit_w)),
        "regressor": model.name,
        "cv_spearman": cv,
        "linear_heldout_spearman": float(linear_rho),
        "vs_uniform": vs_uniform,
        "vs_natural": vs_natural,
        "gates": gates,
        "weights": dict(zip(buckets, proposal.tolist())),
        "uniform": dict(zip(buckets, uniform.tolist())),
        "natural": dict(zip(buckets, natural.tolist())),
        "caps": dict(zip(buckets, caps.tolist())),
        "bucket_tokens": {b: int(available[b]) for b in buckets},
        "predicted_loss": {
            "proposal": float(final.predict(proposal[None])[0]),
            "uniform": float(final.predict(uniform[None])[0]),
            "natural": float(final.predict(natural[None])[0]),
        },
        "confirmation": {
            "proposal": [r["loss"] for r in prop_runs],
            "uniform": [r["loss"] for r in uni_runs],
            "natural": [r["loss"] for r in nat_runs],
            "seeds": seeds,
        },
        "mixtures": [
            {
                "weights": runs[k]["weights"],
                "loss": runs[k]["loss"],
                "predicted": float(pred),
                "split": "heldout" if j >= len(ok) - n_held else "fit",
            }
            for j, (k, pred) in enumerate(zip(ok, np.concatenate([model.predict(fit_w), ho_pred])))
        ],
        "failed": failed
        + [{"weights": r["weights"], "seed": r["seed"], "error": r["error"]} for r in confirm if r["error"]],
        "proxy": {
            "kind": job.proxy,
            "tokens": job.proxy_tokens,
            **({"gpt": job.gpt.model_dump()} if job.proxy == "gpt" else {"order": job.ngram_order}),
            "loss": "bits per byte on the target, each target group weighing the same",
            "target": sorted(target),
        },
        "seconds": round(time.monotonic() - t_start, 1),
    }
    layout.write_bytes(layout.path("ablation.json"), json.dumps(result, indent=2).encode())
    header = (
        f"# proposed by curate ablate {job.name!r}: held-out Spearman {heldout_rho:.3f}; "
        f"gain vs uniform {vs_uniform['mean_gain']:.4f} +- {vs_uniform['stderr']:.4f}, vs natural "
        f"{vs_natural['mean_gain']:.4f} +- {vs_natural['stderr']:.4f} bits/byte ({n} seeds)\n"
        f"# use as `weights_file:` in a mix spec with the same inputs and bucket_by {job.bucket_by}\n"
    )
    layout.write_bytes(
        layout.path("weights.yaml"),
        (
            header + yaml.safe_dump({"bucket_by": list(job.bucket_by), "weights": result["weights"]}, sort_keys=False)
        ).encode(),
    )
    from mixtures.ablate_report import write_ablate_report

    write_ablate_report(layout, result)
    progress.say(f"proposal: {', '.join(f'{b} {w:.3f}' for b, w in result['weights'].items())}")
    progress.say(
        f"vs uniform: gain {vs_uniform['mean_gain']:.4f} +- {vs_uniform['stderr']:.4f} "
        f"({'passed' if vs_uniform['passed'] else 'NOT passed'}); vs natural: gain "
        f"{vs_natural['mean_gain']:.4f} +- {vs_natural['stderr']:.4f} "
        f"({'passed' if vs_natural['passed'] else 'NOT passed'}); held-out Spearman {heldout_rho:.3f} "
        f"({'passed' if gates['heldout_spearman_0.8'] else 'NOT passed'})"
    )
    progress.say(f"done in {result['seconds']:.1f}s: {layout.path('ablation.json')}, {layout.path('weights.yaml')}")
    return result
