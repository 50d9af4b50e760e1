"""Distributions shared by the spend models and the deep baselines.

The zero-inflated log-normal (ZILN) of Wang, Liu & Miao (2019), "A Deep Probabilistic Model for Customer
Lifetime Value Prediction" (arXiv:1912.07753): a customer's value ``Y`` is ``0`` with probability ``1 - p``
(no purchase / churned) and otherwise ``LogNormal(loc, scale)``,

.. math::
    f(y) = (1 - p)\\,\\delta_0(y) + p\\,\\frac{1}{y\\,\\sigma\\sqrt{2\\pi}}
           \\exp\\Big(-\\frac{(\\log y - \\mu)^2}{2\\sigma^2}\\Big)\\,\\mathbb 1\\{y > 0\\}.

Here it is a NumPyro :class:`ZeroInflatedLogNormal` (for the Bayesian models) plus pure JAX functions
(:func:`ziln_log_prob`, :func:`ziln_mean`, :func:`ziln_quantile`) that the deep baselines share, and
:func:`mixture_quantiles`, which summarises a customer's posterior predictive distribution (an equal-weight
mixture of one ZILN per posterior draw) by its quantiles.
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np

import btyd_ltv._jax  # noqa: F401  (float64)
import jax
import jax.numpy as jnp
from jax import lax, random
from jax.nn import log_sigmoid, sigmoid
from jax.scipy.special import erfc, logit, ndtr, ndtri
from numpyro.distributions import constraints
from numpyro.distributions.distribution import Distribution
from numpyro.distributions.util import lazy_property, promote_shapes, validate_sample

__all__ = [
    "ZeroInflatedLogNormal",
    "ziln_log_prob",
    "ziln_mean",
    "ziln_quantile",
    "mixture_quantiles",
]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


# --------------------------------------------------------------------------------------------------------------
# pure JAX building blocks
# --------------------------------------------------------------------------------------------------------------


def _log_prob(y, log_p, log1m_p, loc, scale) -> jnp.ndarray:
    """ZILN log density from ``log p`` and ``log(1 - p)`` (w.r.t. a point mass at 0 plus Lebesgue on y > 0).

    ``log(1-p)`` at ``y == 0``; ``log p - log y - log sigma - log(2 pi)/2 - (log y - mu)^2 / (2 sigma^2)`` at
    ``y > 0``; ``-inf`` at ``y < 0``. The log-normal term is evaluated at ``safe_y = 1`` where ``y <= 0`` so that
    its gradient (masked out by ``where``) is finite and cannot poison the gradient with ``0 * nan``.
    """
    y = jnp.asarray(y)
    positive = y > 0
    log_y = jnp.log(jnp.where(positive, y, 1.0))
    z = (log_y - loc) / scale
    log_lognormal = -log_y - jnp.log(scale) - _HALF_LOG_2PI - 0.5 * z * z
    return jnp.where(positive, log_p + log_lognormal, jnp.where(y == 0, log1m_p, -jnp.inf))


def ziln_log_prob(y, logit_p, loc, scale) -> jnp.ndarray:
    """ZILN log density with ``p`` given as log-odds ``logit_p`` (Wang, Liu & Miao 2019, eq. 1), elementwise.

    .. math::
        \\log f(y) = \\begin{cases}
            \\log\\sigma(-\\ell) & y = 0 \\\\
            \\log\\sigma(\\ell) + \\log \\mathrm{LogNormal}(y; \\mu, \\sigma_{\\log}) & y > 0 \\\\
            -\\infty & y < 0
        \\end{cases}

    with ``log sigmoid`` forms for ``log p`` and ``log(1 - p)`` (stable for large ``|logit_p|``). Equal to
    ``ZeroInflatedLogNormal(logits=logit_p, loc=loc, scale=scale).log_prob(y)``.
    """
    logit_p = jnp.asarray(logit_p)
    return _log_prob(y, log_sigmoid(logit_p), log_sigmoid(-logit_p), loc, scale)


def ziln_mean(p_positive, loc, scale) -> jnp.ndarray:
    """ZILN mean ``E[Y] = p exp(mu + sigma^2 / 2)`` (the predictive mean of Wang, Liu & Miao 2019), elementwise."""
    scale = jnp.asarray(scale)
    return p_positive * jnp.exp(loc + 0.5 * scale * scale)


def _quantile(tau, p_positive, one_minus_p, loc, scale) -> jnp.ndarray:
    """ZILN quantile given ``p`` and ``1 - p`` separately (the latter exactly, when it comes from logits)."""
    tau = jnp.asarray(tau)
    positive = tau > one_minus_p
    u = jnp.where(positive, (tau - one_minus_p) / p_positive, 0.5)
    return jnp.where(positive, jnp.exp(loc + scale * ndtri(u)), 0.0)


def ziln_quantile(tau, p_positive, loc, scale) -> jnp.ndarray:
    """ZILN quantile function, elementwise (broadcasting):

    .. math::
        Q(\\tau) = \\begin{cases} 0 & \\tau \\le 1 - p \\\\
            \\exp\\big(\\mu + \\sigma\\,\\Phi^{-1}\\big((\\tau - (1 - p)) / p\\big)\\big) & \\tau > 1 - p
        \\end{cases}

    the generalised inverse ``inf{y : F(y) >= tau}`` of the ZILN cdf (so ``Q(1) = inf``).
    """
    p_positive = jnp.asarray(p_positive)
    return _quantile(tau, p_positive, 1.0 - p_positive, loc, scale)


def _cdf(y, p_positive, one_minus_p, loc, scale) -> jnp.ndarray:
    """ZILN cdf ``(1 - p) + p Phi((log y - mu) / sigma)`` for ``y >= 0`` (``1 - p`` at 0), ``0`` for ``y < 0``."""
    y = jnp.asarray(y)
    positive = y > 0
    z = (jnp.log(jnp.where(positive, y, 1.0)) - loc) / scale
    return jnp.where(positive, one_minus_p + p_positive * ndtr(z), jnp.where(y == 0, one_minus_p, 0.0))


# --------------------------------------------------------------------------------------------------------------
# the NumPyro distribution
# --------------------------------------------------------------------------------------------------------------


class ZeroInflatedLogNormal(Distribution):
    """Zero-inflated log-normal (Wang, Liu & Miao 2019): ``Y = 0`` w.p. ``1 - p``, else ``LogNormal(loc, scale)``.

    .. math::
        f(y) = (1 - p)\\,\\delta_0(y) + p\\,\\mathrm{LogNormal}(y; \\mu, \\sigma)\\,\\mathbb 1\\{y > 0\\}

    Give exactly one of ``p_positive`` (``P(Y > 0)``) and ``logits`` (its log-odds); the other is computed
    lazily, as in NumPyro's ``Bernoulli``. With ``logits``, ``log p`` and ``log(1 - p)`` are evaluated as
    ``log sigmoid(+-logits)``. Batch shapes of the three parameters broadcast. ``log_prob`` is a density with
    respect to a point mass at 0 plus Lebesgue measure on ``(0, inf)``.

    :param p_positive: probability that ``Y > 0``, in ``[0, 1]``.
    :param loc: log-scale location ``mu`` of the positive part.
    :param scale: log-scale standard deviation ``sigma > 0`` of the positive part.
    :param logits: log-odds of ``Y > 0`` (instead of ``p_positive``).
    """

    arg_constraints = {
        "p_positive": constraints.unit_interval,
        "logits": constraints.real,
        "loc": constraints.real,
        "scale": constraints.positive,
    }
    support = constraints.nonnegative
    reparametrized_params = ["loc", "scale"]
    # p_positive and logits are both lazy: list the data fields explicitly (NumPyro would drop lazy ones).
    pytree_data_fields = ("p_positive", "logits", "loc", "scale")
    pytree_aux_fields = ("_from_logits",)

    def __init__(
        self,
        p_positive=None,
        loc=0.0,
        scale=1.0,
        *,
        logits=None,
        validate_args: bool | None = None,
    ) -> None:
        if (p_positive is None) == (logits is None):
            raise ValueError("ZeroInflatedLogNormal: give exactly one of `p_positive` and `logits`")
        self._from_logits = logits is not None
        if self._from_logits:
            self.logits, self.loc, self.scale = promote_shapes(logits, loc, scale)
            param = self.logits
        else:
            self.p_positive, self.loc, self.scale = promote_shapes(p_positive, loc, scale)
            param = self.p_positive
        batch_shape = lax.broadcast_shapes(jnp.shape(param), jnp.shape(self.loc), jnp.shape(self.scale))
        super().__init__(batch_shape=batch_shape, validate_args=validate_args)

    @lazy_property
    def p_positive(self) -> jnp.ndarray:
        """``P(Y > 0) = sigmoid(logits)``."""
        return sigmoid(self.logits)

    @lazy_property
    def logits(self) -> jnp.ndarray:
        """Log-odds of ``Y > 0``: ``log p - log(1 - p)``."""
        return logit(self.p_positive)

    def _log_p(self) -> tuple[jnp.ndarray, jnp.ndarray]:
        """``(log p, log(1 - p))``, in log-sigmoid form when the distribution was built from logits."""
        if self._from_logits:
            return log_sigmoid(self.logits), log_sigmoid(-self.logits)
        p = jnp.asarray(self.p_positive)
        return jnp.log(p), jnp.log1p(-p)

    def _one_minus_p(self) -> jnp.ndarray:
        """``1 - p``; ``sigmoid(-logits)`` (no cancellation near ``p = 1``) when built from logits."""
        return sigmoid(-self.logits) if self._from_logits else 1.0 - jnp.asarray(self.p_positive)

    def sample(self, key: jax.Array, sample_shape: tuple[int, ...] = ()) -> jnp.ndarray:
        """Draw ``B * exp(mu + sigma eps)`` with ``B ~ Bernoulli(p)`` and ``eps ~ N(0, 1)`` independent."""
        key_bernoulli, key_normal = random.split(key)
        shape = sample_shape + self.batch_shape
        positive = random.uniform(key_bernoulli, shape) < self.p_positive
        eps = random.normal(key_normal, shape)
        return jnp.where(positive, jnp.exp(self.loc + self.scale * eps), 0.0)

    @validate_sample
    def log_prob(self, value) -> jnp.ndarray:
        """``log(1 - p)`` at ``y == 0``, ``log p + LogNormal(mu, sigma).log_prob(y)`` at ``y > 0``, ``-inf`` below.

        Finite gradients with respect to ``p``/``logits``, ``loc`` and ``scale`` everywhere on the support
        (the log-normal term is evaluated at ``y = 1`` where ``y = 0`` and masked).
        """
        log_p, log1m_p = self._log_p()
        return _log_prob(value, log_p, log1m_p, self.loc, self.scale)

    @property
    def mean(self) -> jnp.ndarray:
        """``E[Y] = p exp(mu + sigma^2 / 2)``."""
        return jnp.broadcast_to(ziln_mean(self.p_positive, self.loc, self.scale), self.batch_shape)

    @property
    def variance(self) -> jnp.ndarray:
        """``Var[Y] = p e^{2 mu + 2 sigma^2} - p^2 e^{2 mu + sigma^2} = p e^{2 mu + sigma^2}(expm1(sigma^2) + 1 - p)``.

        The second form has no cancellation when ``sigma`` is small and ``p`` is close to 1.
        """
        s2 = jnp.square(self.scale)
        var = self.p_positive * jnp.exp(2.0 * self.loc + s2) * (jnp.expm1(s2) + self._one_minus_p())
        return jnp.broadcast_to(var, self.batch_shape)

    def cdf(self, value) -> jnp.ndarray:
        """``F(y) = 0`` for ``y < 0``, ``(1 - p) + p Phi((log y - mu) / sigma)`` for ``y >= 0`` (``F(0) = 1 - p``)."""
        return _cdf(value, self.p_positive, self._one_minus_p(), self.loc, self.scale)

    def icdf(self, value) -> jnp.ndarray:
        """Quantile ``Q(tau)``: ``0`` for ``tau <= 1 - p``, else ``exp(mu + sigma Phi^-1((tau - (1 - p)) / p))``."""
        return _quantile(value, self.p_positive, self._one_minus_p(), self.loc, self.scale)


# --------------------------------------------------------------------------------------------------------------
# quantiles of a mixture of ZILNs (posterior predictive summaries)
# --------------------------------------------------------------------------------------------------------------

#: Bisection steps in ``log y``: the bracket ``[min(mu - 10 sigma), max(mu + 10 sigma)]`` shrinks by
#: ``2^-46 ~ 1.4e-14``: a relative error in ``y`` below 1.5e-12 for brackets up to 100 log units wide.
_BISECTION_STEPS = 46
#: Target number of ``(row, tau, draw)`` cdf terms per chunk when ``chunk_size`` is not given.
_CHUNK_ELEMENTS = 1 << 23
_SQRT_HALF = math.sqrt(0.5)


@partial(jax.jit, static_argnames=("steps",))
def _mixture_quantiles_chunk(taus, p_positive, loc, scale, steps: int = _BISECTION_STEPS) -> jnp.ndarray:
    """Bisection in ``log y`` for all rows of a chunk and all ``taus`` at once; inputs ``(m, S)``, out ``(m, K)``."""
    zero_mass = jnp.mean(1.0 - p_positive, axis=-1)  # F(0), (m,)
    inv_scale = 1.0 / scale
    weight = p_positive / p_positive.shape[-1]
    m, k = p_positive.shape[0], taus.shape[0]
    lo = jnp.broadcast_to(jnp.min(loc - 10.0 * scale, axis=-1)[:, None], (m, k))
    hi = jnp.broadcast_to(jnp.max(loc + 10.0 * scale, axis=-1)[:, None], (m, k))

    def cdf(log_y):  # (m, K) -> (m, K); Phi(z) = erfc(-z / sqrt 2) / 2
        z = (log_y[:, :, None] - loc[:, None, :]) * inv_scale[:, None, :]
        return zero_mass[:, None] + 0.5 * jnp.sum(weight[:, None, :] * erfc(-_SQRT_HALF * z), axis=-1)

    def step(_, bracket):
        lo, hi = bracket
        mid = 0.5 * (lo + hi)
        below = cdf(mid) < taus
        return jnp.where(below, mid, lo), jnp.where(below, hi, mid)

    lo, hi = lax.fori_loop(0, steps, step, (lo, hi))
    return jnp.where(taus <= zero_mass[:, None], 0.0, jnp.exp(0.5 * (lo + hi)))


def mixture_quantiles(taus, p_positive, loc, scale, *, chunk_size: int | None = None) -> np.ndarray:
    """Quantiles of an equal-weight mixture of ZILN components, one mixture per row.

    Row ``i`` is customer ``i``'s posterior predictive distribution summarised from ``S`` posterior draws
    ``(p_is, mu_is, sigma_is)`` of a ZILN (Wang, Liu & Miao 2019). Its cdf is

    .. math::
        F_i(y) = \\frac1S \\sum_s \\Big[(1 - p_{is}) + p_{is}\\,
                 \\Phi\\Big(\\frac{\\log y - \\mu_{is}}{\\sigma_{is}}\\Big)\\Big], \\quad y > 0,
        \\qquad F_i(0) = \\frac1S \\sum_s (1 - p_{is}),

    and ``Q_i(tau) = 0`` for ``tau <= F_i(0)``; otherwise ``Q_i(tau)`` solves ``F_i(y) = tau``, found by
    60 bisection steps in ``log y`` on ``[min_s(mu - 10 sigma), max_s(mu + 10 sigma)]`` (jitted, all rows of a
    chunk and all ``taus`` at once).

    :param taus: 1-D probabilities in ``(0, 1)``.
    :param p_positive, loc, scale: arrays of shape ``(n, S)`` (broadcastable to a common 2-D shape).
    :param chunk_size: rows per jitted call (bounds memory at ``chunk_size * S * len(taus)`` cdf terms);
        default: about ``2^23 / (S * len(taus))`` rows.
    :return: ``(n, len(taus))`` float64 numpy array.
    """
    taus = np.asarray(taus, dtype=np.float64)
    if taus.ndim != 1 or taus.size == 0 or not np.all((taus > 0) & (taus < 1)):
        raise ValueError(f"mixture_quantiles: `taus` must be a non-empty 1-D array in (0, 1), got {taus!r}")
    p_positive, loc, scale = np.broadcast_arrays(
        *(np.asarray(v, dtype=np.float64) for v in (p_positive, loc, scale))
    )
    if p_positive.ndim != 2:
        raise ValueError(
            "mixture_quantiles: `p_positive`, `loc` and `scale` must have shape (n_customers, n_draws), got "
            f"shape {p_positive.shape}"
        )
    n, s = p_positive.shape
    k = taus.size
    if n == 0:
        return np.zeros((0, k))
    if chunk_size is None:
        chunk_size = max(1, _CHUNK_ELEMENTS // (s * k))
    if chunk_size < 1:
        raise ValueError(f"mixture_quantiles: `chunk_size` must be a positive integer, got {chunk_size!r}")
    chunk_size = min(int(chunk_size), n)
    taus_j = jnp.asarray(taus)
    out = np.empty((n, k))
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        rows = [v[start:stop] for v in (p_positive, loc, scale)]
        if stop - start < chunk_size:  # pad the last chunk with copies of its first row: one compiled shape
            pad = chunk_size - (stop - start)
            rows = [np.concatenate([v, np.broadcast_to(v[:1], (pad, s))]) for v in rows]
        q = _mixture_quantiles_chunk(taus_j, *(jnp.asarray(v) for v in rows))
        out[start:stop] = np.asarray(q)[: stop - start]
    return out
