"""BG/NBD model (Fader, Hardie & Lee 2005, "Counting Your Customers the Easy Way", Marketing Science 24(2)).

While active, a customer makes repeat purchases as a Poisson process with rate ``lambda ~ Gamma(r, alpha)``;
after each repeat purchase they drop out with probability ``p ~ Beta(a, b)``. A customer is summarised by
``x`` (repeat purchases), ``t_x`` (time of the last one) and ``T`` (time since the first purchase).

This module holds
- :func:`log_likelihood` / :func:`log_likelihood_rows`: the pure-JAX likelihood (FHL 2005, eq. 6),
- :func:`model`: the NumPyro model with the priors of :class:`BGNBDPriors`,
- predictive functions over posterior draws (numpy/scipy, vectorised over draws x rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import scipy.special as sps

import btyd_ltv._jax  # noqa: F401  (float64)
import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from jax.scipy.special import gammaln

if TYPE_CHECKING:
    from btyd_ltv.data.compress import CompressedRFM

__all__ = [
    "PARAM_NAMES",
    "BGNBDData",
    "BGNBDPriors",
    "make_data",
    "make_data_from_compressed",
    "log_likelihood_rows",
    "log_likelihood",
    "model",
    "expected_purchases",
    "conditional_expected_purchases",
    "probability_alive",
    "sample_conditional_purchases",
]

PARAM_NAMES: tuple[str, ...] = ("r", "alpha", "a", "b")


class BGNBDData(NamedTuple):
    """Likelihood data in sufficient-statistic form.

    The log-likelihood splits into terms of ``x`` alone, terms of ``T`` alone and one coupled term per row
    with ``x > 0`` (see :func:`log_likelihood`). The first two are summed through per-level weights
    (``x_weight``, ``T_weight``, ``T_xweight``), so each gradient costs one elementwise pass over the repeat
    customers' rows and no gather/scatter (slow on XLA:CPU). ``x, t_x, T, weights`` hold only rows with
    ``x > 0``, in ``dtype`` (float64 by default; float32 halves the cost and is offered for very large data).
    """

    x_levels: jnp.ndarray
    x_weight: jnp.ndarray
    T_levels: jnp.ndarray
    T_weight: jnp.ndarray
    T_xweight: jnp.ndarray
    x: jnp.ndarray
    t_x: jnp.ndarray
    T: jnp.ndarray
    weights: jnp.ndarray
    T_scale: float


def make_data(frequency, recency, T, weights=None, *, dtype=np.float64) -> BGNBDData:
    """Build :class:`BGNBDData` from per-customer (or per-unique-row, with ``weights``) arrays."""
    x = np.asarray(frequency, dtype=np.float64)
    t_x = np.asarray(recency, dtype=np.float64)
    T = np.asarray(T, dtype=np.float64)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64)
    x_levels, x_inv = np.unique(x, return_inverse=True)
    T_levels, T_inv = np.unique(T, return_inverse=True)
    x_inv, T_inv = x_inv.reshape(-1), T_inv.reshape(-1)
    rep = x > 0
    f64 = lambda v: jnp.asarray(v, dtype=jnp.float64)  # noqa: E731
    rows = lambda v: jnp.asarray(v[rep], dtype=dtype)  # noqa: E731
    return BGNBDData(
        x_levels=f64(x_levels),
        x_weight=f64(np.bincount(x_inv, weights=w)),
        T_levels=f64(T_levels),
        T_weight=f64(np.bincount(T_inv, weights=w)),
        T_xweight=f64(np.bincount(T_inv, weights=w * x)),
        x=rows(x),
        t_x=rows(t_x),
        T=rows(T),
        weights=rows(w),
        T_scale=float(np.average(T, weights=w)),
    )


def make_data_from_compressed(rfm: CompressedRFM, *, dtype=np.float64) -> BGNBDData:
    """:class:`BGNBDData` from a :class:`~btyd_ltv.data.compress.CompressedRFM`."""
    return make_data(rfm.frequency, rfm.recency, rfm.T, rfm.weights, dtype=dtype)


def _log_A(r, alpha, a, b, x):
    """``log Gamma(r+x) - log Gamma(r) + r log alpha + log B(a, b+x) - log B(a, b)`` (B via gammaln: jax's
    betaln is only ~1e-6 accurate in float64)."""
    return (
        gammaln(r + x) - gammaln(r) + r * jnp.log(alpha)
        + gammaln(b + x) - gammaln(b) + gammaln(a + b) - gammaln(a + b + x)
    )


def _log_odds_term(r, alpha, a, b, x, t_x, T):
    """``log(a/(b+x-1)) + (r+x) log((alpha+T)/(alpha+t_x))``: the log of the second term of L over the first."""
    return jnp.log(a) - jnp.log(b + x - 1.0) + (r + x) * jnp.log1p((T - t_x) / (alpha + t_x))


def log_likelihood_rows(r, alpha, a, b, x, t_x, T) -> jnp.ndarray:
    """Per-customer BG/NBD log-likelihood (FHL 2005, eq. 6), elementwise over arrays.

    .. math::
        L = \\frac{B(a, b+x)}{B(a, b)} \\frac{\\Gamma(r+x)\\alpha^r}{\\Gamma(r)(\\alpha+T)^{r+x}}
          + \\delta_{x>0} \\frac{B(a+1, b+x-1)}{B(a, b)}
            \\frac{\\Gamma(r+x)\\alpha^r}{\\Gamma(r)(\\alpha+t_x)^{r+x}}

    computed as ``log A(x) - (r+x) log(alpha+T) + delta_{x>0} softplus(log(a/(b+x-1)) + (r+x)
    log((alpha+T)/(alpha+t_x)))``, using ``B(a+1, b+x-1) / B(a, b+x) = a / (b+x-1)``.
    """
    x, t_x, T = (jnp.asarray(v, dtype=jnp.float64) for v in (x, t_x, T))
    rep = x > 0
    z = _log_odds_term(r, alpha, a, b, jnp.where(rep, x, 1.0), t_x, T)
    return _log_A(r, alpha, a, b, x) - (r + x) * jnp.log(alpha + T) + jnp.where(rep, jax.nn.softplus(z), 0.0)


def log_likelihood(r, alpha, a, b, data: BGNBDData) -> jnp.ndarray:
    """Weighted total BG/NBD log-likelihood ``sum_i w_i log L_i`` (FHL 2005, eq. 6), from sufficient statistics:

    .. math::
        \\sum_x W_x \\log A(x) - \\sum_T (r W_T + X_T) \\log(\\alpha + T)
        + \\sum_{i: x_i > 0} w_i \\operatorname{softplus}(z_i)

    with ``W_x``, ``W_T`` the weights per distinct ``x`` / ``T``, ``X_T = sum w x`` per ``T`` and ``z_i`` the
    log ratio of the two terms of ``L`` (:func:`log_likelihood_rows`).
    """
    separable = jnp.sum(data.x_weight * _log_A(r, alpha, a, b, data.x_levels)) - jnp.sum(
        (r * data.T_weight + data.T_xweight) * jnp.log(alpha + data.T_levels)
    )
    dt = data.x.dtype
    z = _log_odds_term(*(jnp.asarray(v, dtype=dt) for v in (r, alpha, a, b)), data.x, data.t_x, data.T)
    return separable + jnp.sum(data.weights * jax.nn.softplus(z)).astype(jnp.float64)


@dataclass(frozen=True)
class BGNBDPriors:
    """Priors of the BG/NBD model.

    ``kind="default"`` (weakly informative, on interpretable scales, after pymc-marketing's BetaGeoModel):

    - ``r ~ LogNormal(0, 2)``: shape of purchase-rate heterogeneity;
    - ``alpha / T_scale ~ LogNormal(log 0.2, 2)``: ``alpha`` has the unit of time, so its prior is set relative
      to the mean observation length ``T_scale`` and is the same whether time is in days or weeks;
    - ``phi_dropout = a / (a + b) ~ Uniform(0, 1)``: mean dropout probability after a purchase;
    - ``kappa_dropout = a + b ~ LogNormal(1, 1)``: concentration (polarisation) of dropout probabilities;
      median 2.7, 95% between 0.38 and 19. ``a + b < 1`` (U-shaped, polarised dropout) is allowed, and the
      tail is light enough for the posterior of ``a + b`` to have finite moments even when the data cannot
      identify it (the likelihood levels off as ``a + b -> inf`` with ``a/(a+b)`` fixed).
      ``kappa_dist="pareto"`` gives pymc-marketing's ``Pareto(kappa_m, kappa_alpha)`` instead: support
      ``a + b >= kappa_m`` and, with ``kappa_alpha = 1``, a posterior without a mean in that case
      (validation/cdnow_bgnbd.py and parameter_recovery.py show both).

    ``kind="flat"``: improper flat priors on ``r, alpha, a, b``, so that MAP is the maximum-likelihood
    estimate. The posterior is then improper (the likelihood stays bounded away from zero as ``a, b -> inf``
    with ``a/(a+b)`` fixed), so ``"flat"`` is for MAP only.
    """

    kind: str = "default"
    r_scale: float = 2.0
    alpha_loc: float = float(np.log(0.2))
    alpha_scale: float = 2.0
    kappa_dist: str = "lognormal"
    kappa_loc: float = 1.0
    kappa_scale: float = 1.0
    kappa_m: float = 1.0
    kappa_alpha: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in ("default", "flat"):
            raise ValueError(f"BGNBDPriors.kind must be 'default' or 'flat', got {self.kind!r}")
        if self.kappa_dist not in ("lognormal", "pareto"):
            raise ValueError(f"BGNBDPriors.kappa_dist must be 'lognormal' or 'pareto', got {self.kappa_dist!r}")


def model(data: BGNBDData, priors: BGNBDPriors | None = None) -> None:
    """NumPyro BG/NBD model: priors of :class:`BGNBDPriors` plus ``numpyro.factor`` of the likelihood."""
    priors = priors or BGNBDPriors()
    if priors.kind == "flat":
        positive = dist.ImproperUniform(dist.constraints.positive, (), ())
        r = numpyro.sample("r", positive)
        alpha = numpyro.sample("alpha", positive)
        a = numpyro.sample("a", positive)
        b = numpyro.sample("b", positive)
    else:
        r = numpyro.sample("r", dist.LogNormal(0.0, priors.r_scale))
        alpha = numpyro.sample(
            "alpha", dist.LogNormal(priors.alpha_loc + jnp.log(data.T_scale), priors.alpha_scale)
        )
        phi = numpyro.sample("phi_dropout", dist.Uniform(0.0, 1.0))
        if priors.kappa_dist == "pareto":
            kappa_prior = dist.Pareto(priors.kappa_m, priors.kappa_alpha)
        else:
            kappa_prior = dist.LogNormal(priors.kappa_loc, priors.kappa_scale)
        kappa = numpyro.sample("kappa_dropout", kappa_prior)
        a = numpyro.deterministic("a", phi * kappa)
        b = numpyro.deterministic("b", (1.0 - phi) * kappa)
    numpyro.factor("loglik", log_likelihood(r, alpha, a, b, data))


# ----------------------------------------------------------------------------------------------------------
# Predictive functions: numpy/scipy, broadcasting over draws (leading axes) and rows (last axis).
# scipy's hyp2f1 is used on the host: JAX's is ~250x slower on CPU and loses accuracy as z -> 1.
# ----------------------------------------------------------------------------------------------------------


def _arr(v) -> np.ndarray:
    return np.asarray(v, dtype=np.float64)


def _future_factor(t, x, T, r, alpha, a, b) -> np.ndarray:
    """Expected purchases in (T, T+t] of a customer known to be alive at T (FHL 2005, eq. 10 numerator).

    .. math::
        G = \\frac{a+b+x-1}{a-1}\\Big[1 - \\Big(\\frac{\\alpha+T}{\\alpha+T+t}\\Big)^{r+x}
            {}_2F_1\\big(r+x, b+x; a+b+x-1; \\tfrac{t}{\\alpha+T+t}\\big)\\Big]

    evaluated after Euler's transformation, ``(1-z)^{r+x} 2F1(r+x, b+x; c; z) = (1-z)^{a-1}
    2F1(a+b-1-r, a-1; c; z)`` with ``c = a+b+x-1``, which cannot overflow for large ``x``.
    """
    t, x, T, r, alpha, a, b = map(_arr, (t, x, T, r, alpha, a, b))
    z = t / (alpha + T + t)
    c = a + b + x - 1.0
    h = sps.hyp2f1(a + b - 1.0 - r, a - 1.0, c, z)
    return c / (a - 1.0) * (1.0 - np.exp((a - 1.0) * np.log1p(-z)) * h)


def expected_purchases(t, r, alpha, a, b) -> np.ndarray:
    """Population expectation ``E[X(t)]``: repeat purchases in ``(0, t]`` of a new customer (FHL 2005, eq. 9).

    .. math:: E[X(t)] = \\frac{a+b-1}{a-1}\\Big[1 - \\Big(\\frac{\\alpha}{\\alpha+t}\\Big)^r
              {}_2F_1\\big(r, b; a+b-1; \\tfrac{t}{\\alpha+t}\\big)\\Big]
    """
    return _future_factor(t, 0.0, 0.0, r, alpha, a, b)


def _log_odds_dead(x, t_x, T, r, alpha, a, b) -> np.ndarray:
    x, t_x, T, r, alpha, a, b = map(_arr, (x, t_x, T, r, alpha, a, b))
    lo = np.log(a) - np.log(b + np.maximum(x, 1.0) - 1.0) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
    return np.where(x > 0, lo, -np.inf)


def probability_alive(x, t_x, T, r, alpha, a, b) -> np.ndarray:
    """P(customer still active at T | x, t_x, T) (Fader, Hardie & Lee 2008 note; FHL 2005 eq. 10 denominator).

    .. math:: P(\\text{alive}) = \\Big[1 + \\delta_{x>0}\\frac{a}{b+x-1}
              \\Big(\\frac{\\alpha+T}{\\alpha+t_x}\\Big)^{r+x}\\Big]^{-1}
    """
    return sps.expit(-_log_odds_dead(x, t_x, T, r, alpha, a, b))


def conditional_expected_purchases(t, x, t_x, T, r, alpha, a, b) -> np.ndarray:
    """Expected repeat purchases in ``(T, T+t]`` given ``(x, t_x, T)`` (FHL 2005, eq. 10).

    Equals ``P(alive) * G(t; x, T)`` with ``G`` the expectation for a customer known to be alive.
    """
    return probability_alive(x, t_x, T, r, alpha, a, b) * _future_factor(t, x, T, r, alpha, a, b)


def sample_conditional_purchases(t, x, t_x, T, r, alpha, a, b, rng: np.random.Generator) -> np.ndarray:
    """Draw from the posterior predictive distribution of purchases in ``(T, T+t]``.

    Given one parameter draw and ``(x, t_x, T)``: the customer is alive at ``T`` with
    :func:`probability_alive`; if alive, ``lambda ~ Gamma(r+x, alpha+T)`` and ``p ~ Beta(a, b+x)`` (the
    conditional posteriors given activity), ``N ~ Poisson(lambda t)`` arrivals and the customer drops out
    after the ``J``-th of them, ``J ~ Geometric(p)`` on ``{1, 2, ...}``; the count is ``min(N, J)``.
    Arrays broadcast; one integer draw per element.
    """
    x, t_x, T, r, alpha, a, b = np.broadcast_arrays(*map(_arr, (x, t_x, T, r, alpha, a, b)))
    alive = rng.random(x.shape) < probability_alive(x, t_x, T, r, alpha, a, b)
    lam = rng.gamma(r + x, 1.0 / (alpha + T))
    p = rng.beta(a, b + x)
    n = rng.poisson(lam * _arr(t))
    j = rng.geometric(np.clip(p, 1e-300, 1.0))
    return np.where(alive, np.minimum(n, j), 0)
