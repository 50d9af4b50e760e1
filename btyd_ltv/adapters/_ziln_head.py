"""Pieces shared by the deep customer-level baselines (DNN-ZILN, MTL-ZILN, MEAN): the tabular input layer
(one embedding per categorical feature concatenated with the standardised numeric features), a ReLU MLP, the
prediction pass, and the conversion of ZILN logits ``(l, mu, s)`` into a :class:`Prediction`.

flax, optax and jax are imported inside the functions, never when this module is imported: the network classes
are built on first use by :func:`nnx_modules`.
"""

from __future__ import annotations

from functools import lru_cache
from types import SimpleNamespace
from typing import Any, Sequence

import numpy as np

from btyd_ltv.adapters._extras import require
from btyd_ltv.adapters._features import TabularEncoder
from btyd_ltv.adapters.base import CustomerData, Prediction
from btyd_ltv.errors import DataValidationError, FitError

__all__ = [
    "QUANTILES",
    "embedding_dim",
    "require_deep",
    "feature_arrays",
    "nnx_modules",
    "forward_numpy",
    "ziln_prediction",
    "check_fitted",
]

#: Quantile levels every ZILN baseline reports.
QUANTILES: tuple[float, ...] = (0.05, 0.25, 0.5, 0.75, 0.95)


def embedding_dim(cardinality: int) -> int:
    """Embedding width of a categorical feature with ``cardinality`` codes: ``floor(cardinality ** 0.25) + 1``,
    the rule of the DNN-ZILN notebooks published with Wang, Liu & Miao (2019) (``google/lifetime_value``)."""
    return int(cardinality ** 0.25) + 1


def require_deep() -> None:
    """Fail early, with the install hint of the ``[deep]`` extra, when flax (nnx) or optax is missing; then set
    the package's float64 mode (:mod:`btyd_ltv._jax`; losses and metrics are evaluated in float64)."""
    require("jax")
    require("flax.nnx")
    require("optax")
    import btyd_ltv._jax  # noqa: F401


def feature_arrays(encoder: TabularEncoder, data: CustomerData) -> dict[str, np.ndarray]:
    """``{"numeric": (n, k) float32, "categorical": (n, c) int32}`` from a fitted encoder."""
    return {"numeric": encoder.numeric_matrix(data), "categorical": encoder.categorical_codes(data)}


def check_fitted(model: Any, name: str) -> None:
    """Raise :class:`FitError` when ``predict`` is called before ``fit``."""
    if getattr(model, "network_", None) is None:
        raise FitError(f"{name}: call fit(train) before predict(data)")


@lru_cache(maxsize=None)
def nnx_modules() -> SimpleNamespace:
    """The shared flax ``nnx`` building blocks, defined on first call (so importing this module needs no flax).

    ``TabularInput(n_numeric, cardinalities, rngs=...)``: ``concat(numeric, Embed_1(c_1), ..., Embed_J(c_J))``,
    of width :attr:`out_features`; ``MLP(in_features, hidden, rngs=...)``: ``Linear -> ReLU`` per entry of
    ``hidden`` (the identity when ``hidden`` is empty), of width :attr:`out_features`.
    """
    jnp = require("jax").numpy
    nnx = require("flax.nnx")

    class TabularInput(nnx.Module):
        """Numeric features concatenated with one learned embedding per categorical feature."""

        def __init__(self, n_numeric: int, cardinalities: Sequence[int], *, rngs: Any) -> None:
            self.embeddings = nnx.List([nnx.Embed(int(c), embedding_dim(int(c)), rngs=rngs)
                                        for c in cardinalities])
            self.out_features = int(n_numeric) + sum(embedding_dim(int(c)) for c in cardinalities)

        def __call__(self, numeric: Any, categorical: Any) -> Any:
            parts = [numeric.astype(jnp.float32)]
            parts += [emb(categorical[:, j]) for j, emb in enumerate(self.embeddings)]
            return jnp.concatenate(parts, axis=-1)

    class MLP(nnx.Module):
        """``Linear -> ReLU`` per hidden width."""

        def __init__(self, in_features: int, hidden: Sequence[int], *, rngs: Any) -> None:
            widths = [int(in_features), *map(int, hidden)]
            self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(widths[:-1], widths[1:])])
            self.out_features = widths[-1]

        def __call__(self, x: Any) -> Any:
            for layer in self.layers:
                x = nnx.relu(layer(x))
            return x

    return SimpleNamespace(TabularInput=TabularInput, MLP=MLP)


def forward_numpy(network: Any, arrays: dict[str, np.ndarray], chunk: int = 8192) -> Any:
    """Run ``network(numeric, categorical)`` over ``arrays`` in row chunks; returns the outputs as numpy
    arrays (float64), with the same pytree structure as one call's output, concatenated along rows."""
    jax = require("jax")
    run = _jitted_call()
    n = arrays["numeric"].shape[0]
    outs = [run(network, jax.numpy.asarray(arrays["numeric"][s:s + chunk]),
                jax.numpy.asarray(arrays["categorical"][s:s + chunk])) for s in range(0, n, chunk)]
    return jax.tree.map(lambda *xs: np.concatenate([np.asarray(x, np.float64) for x in xs], axis=0), *outs)


@lru_cache(maxsize=None)
def _jitted_call() -> Any:
    nnx = require("flax.nnx")

    @nnx.jit
    def run(net, numeric, categorical):
        return net(numeric, categorical)

    return run


def ziln_prediction(
    logits: np.ndarray,
    data: CustomerData,
    *,
    n_samples: int = 200,
    seed: int = 0,
    quantiles: Sequence[float] = QUANTILES,
) -> Prediction:
    """A :class:`Prediction` from per-customer ZILN logits ``(l, mu, s)`` (Wang, Liu & Miao 2019).

    ``mean = sigmoid(l) exp(mu + sigma^2 / 2)`` (:func:`btyd_ltv.losses.ziln_predict`), ``p_positive =
    sigmoid(l)``, the ZILN quantiles (:func:`btyd_ltv.losses.ziln_predict_quantiles`), ``n_samples`` draws per
    customer (``Y = B exp(mu + sigma Z)``, ``B ~ Bernoulli(p)``, ``Z ~ N(0, 1)``, from
    ``numpy.random.default_rng(seed)``) and, when ``data`` has its target, ``log_lik`` ``(n, 1)``: the ZILN log
    density of the observed ``y`` (``log(1 - p)`` at 0, ``log p + log LogNormal(y; mu, sigma)`` above).
    """
    from btyd_ltv.distributions import ziln_log_prob
    from btyd_ltv.losses import ziln_predict, ziln_predict_quantiles, ziln_split_logits

    logits = np.asarray(logits, np.float64)
    if logits.ndim != 2 or logits.shape[1] != 3 or logits.shape[0] != data.n:
        raise DataValidationError(f"ZILN logits must have shape ({data.n}, 3), got {logits.shape}")
    if n_samples < 1:
        raise DataValidationError(f"n_samples must be a positive number of draws, got {n_samples}")
    logit_p, loc, scale = (np.asarray(a, np.float64) for a in ziln_split_logits(logits))
    p_positive = 1.0 / (1.0 + np.exp(-logit_p))
    mean = np.asarray(ziln_predict(logits), np.float64)
    q = np.asarray(ziln_predict_quantiles(logits, np.asarray(quantiles, np.float64)), np.float64)

    rng = np.random.default_rng(seed)
    positive = rng.random((data.n, n_samples)) < p_positive[:, None]
    z = rng.standard_normal((data.n, n_samples))
    with np.errstate(over="ignore"):
        samples = np.where(positive, np.exp(loc[:, None] + scale[:, None] * z), 0.0)

    log_lik = None
    if data.has_target:
        log_lik = np.asarray(ziln_log_prob(data.y, logit_p, loc, scale), np.float64)[:, None]
    return Prediction(mean=mean, p_positive=p_positive,
                      quantiles={float(t): q[:, j] for j, t in enumerate(quantiles)},
                      samples=samples, log_lik=log_lik)
