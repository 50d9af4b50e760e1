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

    Per distinct ``x``: total weight ``x_weight``. Data constants: ``sum_logz = sum w log zbar`` and
    ``sum_logxz = sum w log(x zbar)``. Per row (distinct ``(x, zbar)``): ``x``, ``xz = x zbar``, ``weights``
    for the one coupled term, ``log1p(gamma / (x zbar))``.
    """

    x_levels: jnp.ndarray
    x_weight: jnp.ndarray
    sum_logz: float
    sum_logxz: float
    x: jnp.ndarray
    xz: jnp.ndarray
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
    xz = rows[:, 0] * rows[:, 1]
    return GammaGammaData(
        x_levels=jnp.asarray(x_levels),
        x_weight=jnp.asarray(np.bincount(x_inv.reshape(-1), weights=wsum)),
        sum_logz=float(np.sum(wsum * np.log(rows[:, 1]))),
        sum_logxz=float(np.sum(wsum * np.log(xz))),
        x=jnp.asarray(rows[:, 0]),
        xz=jnp.asarray(xz),
        weights=jnp.asarray(wsum),
        spend_scale=float(np.average(rows[:, 1], weights=wsum)),
    )


#: Above this argument :func:`_lgamma_ratio` uses Stirling's series (error below 1e-20 there).
_STIRLING_FROM = 1e4


def _lgamma_ratio(z, q):
    """``log Gamma(z + q) - log Gamma(z)`` without cancellation for large ``z``.

    For ``z > 1e4``: Stirling, ``q log(z+q) + (z - 1/2) log1p(q/z) - q + (1/(z+q) - 1/z) / 12``.
    """
    big = z > _STIRLING_FROM
    zs = jnp.where(big, z, _STIRLING_FROM)
    stirling = q * jnp.log(zs + q) + (zs - 0.5) * jnp.log1p(q / zs) - q + (1.0 / (zs + q) - 1.0 / zs) / 12.0
    zd = jnp.where(big, 1.0, z)
    direct = gammaln(zd + q) - gammaln(zd)
    return jnp.where(big, stirling, direct)


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
    """Weighted total Gamma-Gamma log-likelihood (Fader & Hardie 2013, eq. 3), rearranged to stay exact far
    along the ``p -> inf`` ridge:

    .. math::
        \\log f = \\log\\frac{\\Gamma(px+q)}{\\Gamma(px)} - \\log\\Gamma(q) + q\\log\\gamma - \\log\\bar z
          - q\\log(x\\bar z) - (px+q)\\log\\big(1 + \\gamma / (x\\bar z)\\big)

    The first three terms are summed per distinct ``x``, ``log zbar`` and ``log(x zbar)`` are data constants,
    and one ``log1p`` per row remains.
    """
    pxl = p * data.x_levels
    per_x = jnp.sum(data.x_weight * (_lgamma_ratio(pxl, q) - gammaln(q) + q * jnp.log(gamma)))
    rows = jnp.sum(data.weights * (p * data.x + q) * jnp.log1p(gamma / data.xz))
    return per_x - data.sum_logz - q * data.sum_logxz - rows


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
