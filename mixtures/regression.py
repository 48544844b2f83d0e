"""From mixture weights to proxy loss: regressors, chosen by cross-validated Spearman correlation, and the
optimizer that proposes weights under epoch caps.

- `LogLinearLaw`: the data-mixing law L(w) = c + exp(b + t·w) (Ye et al. 2024). For a fixed c the law is
  linear in log(L - c), so it is fitted by least squares over a grid of c below the smallest loss.
- `LinearModel`: ordinary least squares, the baseline the report keeps.
- `LightGBMModel`: gradient-boosted trees as in RegMix, when the optional `lightgbm` package is installed.
The proposal is RegMix's simulation: many candidate mixtures drawn around the prior within the caps,
scored by the chosen regressor, and the mean of the best `top_k`.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from filters.metrics import spearman


class Regressor(Protocol):
    name: str

    def fit(self, w: np.ndarray, loss: np.ndarray) -> "Regressor": ...

    def predict(self, w: np.ndarray) -> np.ndarray: ...


class LinearModel:
    name = "linear"

    def fit(self, w: np.ndarray, loss: np.ndarray) -> "LinearModel":
        x = np.hstack([np.ones((len(w), 1)), w])
        self.coef, *_ = np.linalg.lstsq(x, loss, rcond=None)
        return self

    def predict(self, w: np.ndarray) -> np.ndarray:
        return self.coef[0] + w @ self.coef[1:]


class LogLinearLaw:
    """L(w) = c + exp(b + t·w)."""

    name = "loglinear"

    def __init__(self, grid: int = 60):
        self.grid = grid

    def fit(self, w: np.ndarray, loss: np.ndarray) -> "LogLinearLaw":
        x = np.hstack([np.ones((len(w), 1)), w])
        lo = float(loss.min())
        best = None
        # c from 0 up to just below the smallest loss (c is the irreducible part, L - c must stay > 0).
        for c in lo * (1 - np.geomspace(1.0, 1e-3, self.grid)):
            y = np.log(loss - c)
            coef, *_ = np.linalg.lstsq(x, y, rcond=None)
            sse = float(((c + np.exp(x @ coef) - loss) ** 2).sum())
            if best is None or sse < best[0]:
                best = (sse, c, coef)
        _, self.c, coef = best
        self.b, self.t = float(coef[0]), coef[1:]
        return self

    def predict(self, w: np.ndarray) -> np.ndarray:
        return self.c + np.exp(self.b + w @ self.t)


class LogWeightLinear:
    """L(w) = a + beta·log(w + eps): each bucket's returns diminish as its share grows (a power law in the
    tokens it contributes), which a law linear in w cannot bend to."""

    name = "logweight"
    eps = 1e-3

    def fit(self, w: np.ndarray, loss: np.ndarray) -> "LogWeightLinear":
        self.inner = LinearModel().fit(np.log(w + self.eps), loss)
        return self

    def predict(self, w: np.ndarray) -> np.ndarray:
        return self.inner.predict(np.log(w + self.eps))


class LightGBMModel:
    name = "lightgbm"

    def fit(self, w: np.ndarray, loss: np.ndarray) -> "LightGBMModel":
        import lightgbm  # the native API: its scikit-learn wrapper would need scikit-learn installed

        params = {
            "objective": "regression",
            "learning_rate": 0.05,
            "num_leaves": 15,
            "min_data_in_leaf": 3,
            "min_data_in_bin": 1,
            "verbose": -1,
            "seed": 0,
            "deterministic": True,
            "num_threads": 1,
        }
        self.model = lightgbm.train(params, lightgbm.Dataset(w, loss, params={"verbose": -1}), num_boost_round=300)
        return self

    def predict(self, w: np.ndarray) -> np.ndarray:
        return self.model.predict(w)


class PerTarget:
    """A law fitted to each target's loss separately, the prediction their mean (the data-mixing-laws
    way to combine validation domains: each one's loss has its own shape in the weights)."""

    def __init__(self, base: type):
        self.base = base
        self.name = base.name

    def fit(self, w: np.ndarray, parts: np.ndarray) -> "PerTarget":
        parts = parts.reshape(len(w), -1)
        self.models = [self.base().fit(w, parts[:, j]) for j in range(parts.shape[1])]
        return self

    def predict(self, w: np.ndarray) -> np.ndarray:
        return np.mean([m.predict(w) for m in self.models], axis=0)


def available_regressors() -> list:
    """Factories of the candidates: the laws fitted per target, and the whole-loss models."""
    out: list = [lambda: PerTarget(LogLinearLaw), lambda: PerTarget(LogWeightLinear), lambda: _Mean(LinearModel())]
    try:
        import lightgbm  # noqa: F401
    except ImportError:
        pass
    else:
        out.append(lambda: _Mean(LightGBMModel()))
    return out


class _Mean:
    """A model of the mean target loss (for models that do not take one law per target)."""

    def __init__(self, model):
        self.model, self.name = model, model.name

    def fit(self, w: np.ndarray, parts: np.ndarray) -> "_Mean":
        self.model.fit(w, parts.reshape(len(w), -1).mean(axis=1))
        return self

    def predict(self, w: np.ndarray) -> np.ndarray:
        return self.model.predict(w)


def cv_spearman(make, w: np.ndarray, parts: np.ndarray, folds: int = 5, seed: int = 0) -> float:
    """Spearman correlation of out-of-fold predictions with the mean target loss (k-fold)."""
    parts = parts.reshape(len(w), -1)
    order = np.random.default_rng(seed).permutation(len(w))
    pred = np.empty(len(w))
    for k in range(folds):
        test = order[k::folds]
        train = np.setdiff1d(order, test)
        pred[test] = make().fit(w[train], parts[train]).predict(w[test])
    return spearman(parts.mean(axis=1), pred)


def choose_regressor(w: np.ndarray, parts: np.ndarray) -> tuple:
    """The regressor with the best cross-validated Spearman, refitted on all of (w, per-target losses);
    and every candidate's score. `parts` is (mixtures,) or (mixtures, targets)."""
    makers = available_regressors()
    scores = {}
    for make in makers:
        scores[make().name] = cv_spearman(make, w, parts)
    best = max(range(len(makers)), key=lambda k: np.nan_to_num(scores[makers[k]().name], nan=-2.0))
    return makers[best]().fit(w, parts), scores


def project_to_caps(w: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """Mixtures (one per row, or a single vector) moved within the caps: the buckets over their cap are
    clipped and the excess goes to the others in proportion to their weights (water filling), repeated
    until none is over. The caps must sum to at least 1."""
    if caps.sum() < 1 - 1e-9:
        raise ValueError(f"the epoch caps allow at most {caps.sum():.3f} of the budget")
    single = np.ndim(w) == 1
    w = np.atleast_2d(np.asarray(w, dtype=np.float64))
    w = w / w.sum(axis=1, keepdims=True)
    fixed = np.zeros(w.shape, dtype=bool)
    for _ in range(w.shape[1] + 1):
        over = (w > caps + 1e-12) & ~fixed
        if not over.any():
            break
        fixed |= over
        w = np.where(fixed, caps, w)
        rest = 1.0 - (w * fixed).sum(axis=1, keepdims=True)
        free = np.where(fixed, 0.0, w)
        mass = free.sum(axis=1, keepdims=True)
        even = np.where(fixed, 0.0, 1.0)
        free = np.where(mass > 0, free / np.where(mass > 0, mass, 1.0), even / even.sum(axis=1, keepdims=True))
        w = np.where(fixed, w, free * rest)
    return w[0] if single else w


def sample_mixtures(
    prior: np.ndarray,
    caps: np.ndarray,
    n: int,
    rng: np.random.Generator,
    concentrations: tuple[float, float] = (0.1, 5.0),
) -> np.ndarray:
    """`n` mixtures from Dirichlet(alpha * k * prior), the concentration alpha log-uniform in the range
    (low: far from the prior, high: close to it), each projected onto the caps."""
    k = len(prior)
    base = np.maximum(prior, 1e-3) / np.maximum(prior, 1e-3).sum()
    alpha = np.exp(rng.uniform(np.log(concentrations[0]), np.log(concentrations[1]), size=(n, 1))) * base * k
    g = rng.gamma(alpha)
    g = np.where(g.sum(axis=1, keepdims=True) > 0, g, base)  # all-zero draws (tiny alphas) fall back to the prior
    return project_to_caps(g / g.sum(axis=1, keepdims=True), caps)


def propose(
    model: Regressor,
    prior: np.ndarray,
    caps: np.ndarray,
    rng: np.random.Generator,
    candidates: int = 100_000,
    top_k: int = 100,
) -> np.ndarray:
    """RegMix's simulation: the mean of the `top_k` best predicted of many candidate mixtures (within caps)."""
    w = sample_mixtures(prior, caps, candidates, rng)
    best = np.argsort(model.predict(w), kind="stable")[:top_k]
    return project_to_caps(w[best].mean(axis=0), caps)
