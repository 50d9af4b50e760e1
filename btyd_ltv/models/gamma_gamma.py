"""Gamma-Gamma model of monetary value (Fader & Hardie 2013, "The Gamma-Gamma Model of Monetary Value";
Colombo & Jiang 1999).

A customer's transaction values are ``z_j ~ Gamma(p, nu)`` (shape ``p``, rate ``nu``) with
``nu ~ Gamma(q, gamma)`` across customers. The mean ``zbar`` of a repeat customer's ``x`` transactions is then
``Gamma(p x, nu x)`` given ``nu``. Fit on repeat customers only (``x > 0``); spend is assumed independent of
the purchase process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

import btyd_ltv._jax  # noqa: F401  (float64)
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from jax.scipy.special import gammaln

from btyd_ltv.errors import DataValidationError

__all__ = [
    "PARAM_NAMES",
    "GammaGammaData",
    "GammaGammaPriors",
    "make_data",
    "log_likelihood_rows",
    "log_likelihood",
    "model",
    "conditional_expected_average_spend",
    "expected_average_spend",
]

PARAM_NAMES: tuple[str, ...] = ("p", "q", "gamma")


class GammaGammaData(NamedTuple):
    """Repeat customers in sufficient-statistic form.

    Per distinct ``x``: total weight ``x_weight`` and ``x_logz = sum w log zbar``; per row (distinct
    ``(x, zbar)``): ``x``, ``zbar``, ``weights`` for the one term that couples them, ``log(gamma + x zbar)``.
    """

    x_levels: jnp.ndarray
    x_weight: jnp.ndarray
    x_logz: jnp.ndarray
    x: jnp.ndarray
    zbar: jnp.ndarray
    weights: jnp.ndarray
    spend_scale: float


def make_data(frequency, monetary_value, weights=None) -> GammaGammaData:
    """Build :class:`GammaGammaData` from repeat customers (rows with ``frequency == 0`` are dropped).

    Identical ``(x, zbar)`` pairs are merged into weighted rows.
    """
    x = np.asarray(frequency, dtype=np.float64)
    m = np.asarray(monetary_value, dtype=np.float64)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64)
    keep = x > 0
    if not keep.any():
        raise DataValidationError(
            "column 'frequency': no repeat customers (frequency > 0); the Gamma-Gamma model needs at least one "
            "customer with a repeat purchase"
        )
    bad = np.flatnonzero(keep & ~(m > 0))
    if bad.size:
        i = int(bad[0])
        raise DataValidationError(
            f"column 'monetary_value' row {i}: value {m[i]!r} for a repeat customer; the Gamma-Gamma model "
            "needs a positive mean repeat spend for every customer with frequency > 0"
        )
    rows, inv = np.unique(np.column_stack([x[keep], m[keep]]), axis=0, return_inverse=True)
    wsum = np.bincount(inv.reshape(-1), weights=w[keep])
    x_levels, x_inv = np.unique(rows[:, 0], return_inverse=True)
    x_inv = x_inv.reshape(-1)
    return GammaGammaData(
        x_levels=jnp.asarray(x_levels),
        x_weight=jnp.asarray(np.bincount(x_inv, weights=wsum)),
        x_logz=jnp.asarray(np.bincount(x_inv, weights=wsum * np.log(rows[:, 1]))),
        x=jnp.asarray(rows[:, 0]),
        zbar=jnp.asarray(rows[:, 1]),
        weights=jnp.asarray(wsum),
        spend_scale=float(np.average(rows[:, 1], weights=wsum)),
    )


def log_likelihood_rows(p, q, gamma, x, zbar) -> jnp.ndarray:
    """Per-customer log density of ``zbar`` given ``x`` (Fader & Hardie 2013, eq. 3), elementwise.

    .. math::
        \\log f(\\bar z \\mid x) = \\log\\Gamma(px+q) - \\log\\Gamma(px) - \\log\\Gamma(q) + q\\log\\gamma
          + px\\log x + (px-1)\\log\\bar z - (px+q)\\log(\\gamma + x\\bar z)
    """
    x, z = jnp.asarray(x, dtype=jnp.float64), jnp.asarray(zbar, dtype=jnp.float64)
    px = p * x
    return (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * jnp.log(gamma)
        + px * jnp.log(x)
        + (px - 1.0) * jnp.log(z)
        - (px + q) * jnp.log(gamma + x * z)
    )


def log_likelihood(p, q, gamma, data: GammaGammaData) -> jnp.ndarray:
    """Weighted total Gamma-Gamma log-likelihood from sufficient statistics: the gamma-function and
    ``px log x`` terms per distinct ``x``, ``sum w (px-1) log zbar`` from ``x_logz``, and one log per row."""
    xl = data.x_levels
    pxl = p * xl
    per_x = data.x_weight * (gammaln(pxl + q) - gammaln(pxl) - gammaln(q) + q * jnp.log(gamma) + pxl * jnp.log(xl))
    per_x = per_x + (pxl - 1.0) * data.x_logz
    px = p * data.x
    rows = data.weights * (px + q) * jnp.log(gamma + data.x * data.zbar)
    return jnp.sum(per_x) - jnp.sum(rows)


@dataclass(frozen=True)
class GammaGammaPriors:
    """Priors of the Gamma-Gamma model.

    ``kind="default"`` (weakly informative; sampled as ``p``, ``q`` and the population mean spend so the
    sampler does not walk the ``(q, gamma)`` ridge):

    - ``p ~ LogNormal(0, 2)``: shape of transaction values around a customer's mean;
    - ``q - 1 ~ LogNormal(0, 2)``: ``q > 1`` so that the mean spend ``p gamma / (q - 1)`` is finite;
    - ``mean_spend = p gamma / (q - 1) ~ LogNormal(log(spend_scale), 2)`` where ``spend_scale`` is the
      weighted mean of ``zbar`` (a currency unit, not a fit), and ``gamma = mean_spend (q - 1) / p``.

    ``kind="flat"``: improper flat priors on ``p, q, gamma`` (MAP = maximum likelihood; MAP only).
    """

    kind: str = "default"
    p_scale: float = 2.0
    q_scale: float = 2.0
    mean_spend_scale: float = 2.0

    def __post_init__(self) -> None:
        if self.kind not in ("default", "flat"):
            raise ValueError(f"GammaGammaPriors.kind must be 'default' or 'flat', got {self.kind!r}")


def model(data: GammaGammaData, priors: GammaGammaPriors | None = None) -> None:
    """NumPyro Gamma-Gamma model: :class:`GammaGammaPriors` plus ``numpyro.factor`` of the likelihood."""
    priors = priors or GammaGammaPriors()
    if priors.kind == "flat":
        positive = dist.ImproperUniform(dist.constraints.positive, (), ())
        p = numpyro.sample("p", positive)
        q = numpyro.sample("q", positive)
        gamma = numpyro.sample("gamma", positive)
    else:
        p = numpyro.sample("p", dist.LogNormal(0.0, priors.p_scale))
        q_minus_1 = numpyro.sample("q_minus_1", dist.LogNormal(0.0, priors.q_scale))
        mean_spend = numpyro.sample(
            "mean_spend", dist.LogNormal(jnp.log(data.spend_scale), priors.mean_spend_scale)
        )
        q = numpyro.deterministic("q", 1.0 + q_minus_1)
        gamma = numpyro.deterministic("gamma", mean_spend * q_minus_1 / p)
    numpyro.factor("loglik", log_likelihood(p, q, gamma, data))


def conditional_expected_average_spend(frequency, monetary_value, p, q, gamma) -> np.ndarray:
    """E[mean transaction value | x, zbar] (Fader & Hardie 2013, eq. 5).

    .. math:: E[Z \\mid p, q, \\gamma, x, \\bar z] = \\frac{p(\\gamma + x\\bar z)}{px + q - 1}

    a weighted average of the population mean ``p gamma / (q - 1)`` and the observed ``zbar``. For
    ``x = 0`` it is the population mean.
    """
    x = np.asarray(frequency, dtype=np.float64)
    z = np.where(x > 0, np.asarray(monetary_value, dtype=np.float64), 0.0)
    p, q, gamma = (np.asarray(v, dtype=np.float64) for v in (p, q, gamma))
    return p * (gamma + x * z) / (p * x + q - 1.0)


def expected_average_spend(p, q, gamma) -> np.ndarray:
    """Population mean transaction value ``E[Z] = p gamma / (q - 1)`` (Fader & Hardie 2013, eq. 4)."""
    p, q, gamma = (np.asarray(v, dtype=np.float64) for v in (p, q, gamma))
    return p * gamma / (q - 1.0)
