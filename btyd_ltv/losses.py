"""The zero-inflated log-normal (ZILN) loss of the deep LTV baselines, in pure JAX.

Reproduces the loss of Wang, Liu & Miao (2019), "A Deep Probabilistic Model for Customer Lifetime Value
Prediction" (arXiv:1912.07753), as published in ``google/lifetime_value``
(``lifetime_value/zero_inflated_lognormal.py``: ``zero_inflated_lognormal_loss`` and
``zero_inflated_lognormal_pred``); this is our own code, checked against a numpy/scipy transcription of the
published formula in ``tests/test_losses.py``.

A network emits three logits per example, ``(l, mu, s)``: the log-odds ``l`` of a positive value, the
log-scale location ``mu`` and a pre-softplus scale, ``sigma = max(softplus(s), sqrt(1e-7))`` (the floor is the
Keras ``epsilon`` of the published code). Per example, with ``b = 1{y > 0}``,

.. math::
    \\mathrm{loss}(y) = \\underbrace{\\mathrm{softplus}(l) - b\\,l}_{\\text{BCE}(b,\\ \\sigma(l))}
        \\; - \\; b \\log \\mathrm{LogNormal}(y;\\ \\mu, \\sigma),

i.e. ``softplus(l)`` at ``y = 0`` and ``softplus(-l) - log LogNormal(y; mu, sigma)`` at ``y > 0``. This is
exactly the ZILN negative log-likelihood, ``-ZeroInflatedLogNormal(logits=l, loc=mu, scale=sigma).log_prob(y)``
(:mod:`btyd_ltv.distributions`), for ``y >= 0``. As in the published code a negative label counts as "not
positive" (loss ``softplus(l)``), where the distribution would give ``+inf``. The published code runs in
float32; here the arithmetic is float64.
"""

from __future__ import annotations

import math

import btyd_ltv._jax  # noqa: F401  (float64)
import jax.numpy as jnp
from jax.nn import sigmoid, softplus

from btyd_ltv.distributions import ziln_mean, ziln_quantile

__all__ = [
    "SCALE_FLOOR",
    "ziln_split_logits",
    "ziln_loss",
    "ziln_predict",
    "ziln_predict_quantiles",
]

#: Lower bound on the log-normal scale: ``sqrt(K.epsilon())`` with Keras' ``epsilon = 1e-7``, as published.
SCALE_FLOOR: float = math.sqrt(1e-7)
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_REDUCTIONS = ("mean", "sum", "none")


def ziln_split_logits(logits) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:
    """Split ``(..., 3)`` network outputs into ``(logit_p, loc, scale)``, each of shape ``(...)``.

    ``logit_p = logits[..., 0]``, ``loc = logits[..., 1]``,
    ``scale = max(softplus(logits[..., 2]), sqrt(1e-7))`` (Wang, Liu & Miao 2019; ``google/lifetime_value``).
    """
    logits = jnp.asarray(logits)
    if logits.ndim == 0 or logits.shape[-1] != 3:
        raise ValueError(f"ZILN logits must have shape (..., 3), got {logits.shape}")
    scale = jnp.maximum(softplus(logits[..., 2]), SCALE_FLOOR)
    return logits[..., 0], logits[..., 1], scale


def _labels(y, batch_shape: tuple[int, ...]) -> jnp.ndarray:
    """Labels of shape ``batch_shape`` or ``batch_shape + (1,)`` (the Keras layout) -> ``batch_shape``."""
    y = jnp.asarray(y, dtype=jnp.float64)
    if y.shape == batch_shape:
        return y
    if y.shape == batch_shape + (1,):
        return y[..., 0]
    raise ValueError(
        f"ZILN labels must have shape {batch_shape} or {batch_shape + (1,)} to match logits of shape "
        f"{batch_shape + (3,)}, got {y.shape}"
    )


def ziln_loss(logits, y, *, reduction: str = "mean") -> jnp.ndarray:
    """ZILN loss (Wang, Liu & Miao 2019): BCE on ``1{y > 0}`` plus the masked log-normal NLL of positive ``y``.

    .. math::
        \\mathrm{loss} = \\mathrm{softplus}(l) - b\\,l - b\\Big(-\\log y - \\log\\sigma - \\tfrac12\\log 2\\pi
            - \\frac{(\\log y - \\mu)^2}{2\\sigma^2}\\Big), \\qquad b = \\mathbb 1\\{y > 0\\},

    with the log-normal term evaluated at ``safe_y = 1`` where ``y <= 0`` (finite gradients, masked by ``b``).

    :param logits: network outputs, shape ``(..., 3)`` (see :func:`ziln_split_logits`).
    :param y: labels, shape ``(...)`` or ``(..., 1)``.
    :param reduction: ``"mean"`` over all examples (the Keras default, ``SUM_OVER_BATCH_SIZE``), ``"sum"``,
        or ``"none"`` (per-example losses of shape ``(...)``).
    """
    if reduction not in _REDUCTIONS:
        raise ValueError(f"ziln_loss: `reduction` must be one of {_REDUCTIONS}, got {reduction!r}")
    logit_p, loc, scale = ziln_split_logits(logits)
    y = _labels(y, logit_p.shape)
    positive = (y > 0).astype(logit_p.dtype)
    classification = softplus(logit_p) - positive * logit_p
    log_y = jnp.log(jnp.where(y > 0, y, 1.0))
    z = (log_y - loc) / scale
    log_lognormal = -log_y - jnp.log(scale) - _HALF_LOG_2PI - 0.5 * z * z
    per_example = classification - positive * log_lognormal
    if reduction == "mean":
        return jnp.mean(per_example)
    if reduction == "sum":
        return jnp.sum(per_example)
    return per_example


def ziln_predict(logits) -> jnp.ndarray:
    """Predictive mean ``sigmoid(l) exp(mu + sigma^2 / 2)`` of shape ``(...)`` (published
    ``zero_inflated_lognormal_pred``, without its trailing unit axis)."""
    logit_p, loc, scale = ziln_split_logits(logits)
    return ziln_mean(sigmoid(logit_p), loc, scale)


def ziln_predict_quantiles(logits, taus) -> jnp.ndarray:
    """Predictive quantiles ``Q(tau)`` of the ZILN per example (:func:`btyd_ltv.distributions.ziln_quantile`).

    :param logits: shape ``(..., 3)``.
    :param taus: 1-D probabilities, shape ``(K,)``.
    :return: shape ``(..., K)``.
    """
    logit_p, loc, scale = ziln_split_logits(logits)
    taus = jnp.asarray(taus, dtype=jnp.float64)
    if taus.ndim != 1:
        raise ValueError(f"ziln_predict_quantiles: `taus` must be 1-D, got shape {taus.shape}")
    return ziln_quantile(taus, sigmoid(logit_p)[..., None], loc[..., None], scale[..., None])
