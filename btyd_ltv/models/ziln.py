"""Bayesian zero-inflated log-normal (ZILN) regression of customer revenue.

Wang, Liu & Miao (2019), "A Deep Probabilistic Model for Customer Lifetime Value Prediction", model a
customer's future revenue ``y`` as zero with probability ``1 - p`` and log-normal otherwise. Here the three
ZILN parameters are linear in standardised features ``x`` (known early: first purchase, first-k-days activity,
channel), with optional partially pooled group intercepts (cohort, campaign, app; centred or non-centred, see
:func:`group_signal_to_noise`):

    logit p_i     = a_p + x_i . b_p + u_p[g_i]
    loc_i         = a_m + x_i . b_m + u_m[g_i]
    scale_i       = softplus(a_s + x_i . b_s)
    y_i           ~ ZILN(p_i, loc_i, scale_i),   u_p ~ N(0, sd_p),  u_m ~ N(0, sd_m)

The scale link is softplus, as in the published network's output layer: it grows linearly, whereas a log
link grows exponentially and, through ``exp(scale^2 / 2)`` in the mean, lets one extreme customer dominate
the predicted total.

Priors (``ZILNPriors``) are weakly informative on the standardised scale: the log-normal intercept is centred
on the mean log positive revenue of the training data and scaled by its spread ``s`` (as rstanarm's
autoscaling), coefficients ``N(0, 1)`` on the logit scale and ``N(0, s)`` on the log scale, group sds
``HalfNormal(1)`` and ``HalfNormal(s)``.

Predictions are over posterior draws: the posterior predictive of a customer is the equal-weight mixture of the
ZILN laws of the draws, so its mean is ``mean_s p_s exp(loc_s + scale_s^2 / 2)``, ``P(y > 0) = mean_s p_s``
and its quantiles solve the mixture CDF (:func:`btyd_ltv.distributions.mixture_quantiles`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy.special import expit

import btyd_ltv._jax  # noqa: F401  (float64)
import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from numpyro.distributions import constraints
from numpyro.infer.reparam import LocScaleReparam

from btyd_ltv.data.predictions import quantile_column
from btyd_ltv.distributions import ZeroInflatedLogNormal, mixture_quantiles, ziln_log_prob

__all__ = [
    "ZILNData", "ZILNPriors", "make_data", "log_likelihood_rows", "log_likelihood", "model", "PARAM_NAMES",
    "param_names", "posterior_dims", "init_strategy", "group_signal_to_noise", "linear_predictors", "expected_value", "predictive_summary",
    "sample_predictive", "pointwise_log_likelihood", "population_totals", "DEFAULT_TAUS",
]

PARAM_NAMES = ["intercept_p", "coef_p", "intercept_loc", "coef_loc", "intercept_scale", "coef_scale"]
GROUP_PARAM_NAMES = ["group_sd_p", "group_sd_loc", "group_p", "group_loc"]

#: Added to the softplus scale so it stays positive in floating point.
SCALE_FLOOR = 1e-6
DEFAULT_TAUS = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)


class ZILNData(NamedTuple):
    """Likelihood data: standardised features ``X`` (n, k), revenue ``y`` (n,), group index (n,), the number
    of groups (0: no group level), the log-scale centre/spread of the positive revenue, whether the group effects
    on ``logit p`` / ``loc`` are sampled centred (:func:`group_signal_to_noise`), and the thin QR factors of ``X`` (``Q`` scaled by sqrt(n-1), ``R_inv`` the inverse of
    the matching ``R``) used to decorrelate the coefficients for NUTS."""

    X: np.ndarray
    y: np.ndarray
    group: np.ndarray
    n_groups: int
    loc_center: float
    loc_spread: float
    centered_p: bool
    centered_loc: bool
    Q: np.ndarray
    R_inv: np.ndarray


def make_data(X, y, group=None, n_groups: int = 0) -> ZILNData:
    """Build :class:`ZILNData` from a feature matrix (already encoded, see :mod:`btyd_ltv.data.design`)."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] != y.shape[0]:
        raise ValueError(f"X must be (n, k) with n = len(y) = {y.shape[0]}, got shape {X.shape}")
    pos = y[y > 0]
    if pos.size == 0:
        raise ValueError("y has no positive values: the log-normal part cannot be fitted")
    logs = np.log(pos)
    spread = float(logs.std()) if pos.size > 1 and logs.std() > 0 else 1.0
    g = np.zeros(y.shape[0], dtype=np.int32) if group is None else np.asarray(group, dtype=np.int32)
    centered_p = centered_loc = False
    if n_groups:
        if g.min() < 0 or g.max() >= n_groups:
            raise ValueError(f"group indices must lie in 0..{n_groups - 1}")
        snr_p, snr_loc = group_signal_to_noise(y, g, n_groups)
        centered_p, centered_loc = snr_p > 1.0, snr_loc > 1.0
    n, k = X.shape
    if k:
        Q, R = np.linalg.qr(X)
        c = np.sqrt(max(n - 1, 1))
        Q, R = Q * c, R / c
        if np.min(np.abs(np.diag(R))) < 1e-10 * max(1.0, np.max(np.abs(np.diag(R)))):
            raise ValueError("the feature columns are linearly dependent (one is a combination of others); drop one")
        R_inv = np.linalg.solve(R, np.eye(k))
    else:
        Q, R_inv = np.zeros((n, 0)), np.zeros((0, 0))
    return ZILNData(X, y, g, int(n_groups), float(logs.mean()), spread, bool(centered_p), bool(centered_loc),
                    Q, R_inv)


def group_signal_to_noise(y: np.ndarray, group: np.ndarray, n_groups: int) -> tuple[float, float]:
    """Moment estimate of (between-group variance) / (mean squared standard error of a group's own estimate),
    for ``logit p`` (empirical logits, se^2 = 1/(k + 1/2) + 1/(n - k + 1/2)) and for ``loc`` (mean log revenue of
    a group's buyers, se^2 = pooled variance / buyers). Above 1 the data pin each group's effect down and the
    centred parameterisation samples well; below 1 the effects are shrunk strongly and the non-centred one
    avoids the funnel (Betancourt & Girolami 2015). This only chooses the sampler's coordinates, not the model.
    """
    n = np.bincount(group, minlength=n_groups).astype(float)
    k = np.bincount(group, weights=(y > 0).astype(float), minlength=n_groups)
    est = np.log((k + 0.5) / (n - k + 0.5))
    se2 = 1.0 / (k + 0.5) + 1.0 / (n - k + 0.5)
    ok = n > 0
    snr_p = max(float(np.var(est[ok]) - np.mean(se2[ok])), 0.0) / float(np.mean(se2[ok])) if ok.sum() > 1 else 0.0
    pos = y > 0
    logs = np.log(y[pos])
    gp = group[pos]
    kk = np.bincount(gp, minlength=n_groups).astype(float)
    sums = np.bincount(gp, weights=logs, minlength=n_groups)
    has = kk > 0
    if has.sum() < 2:
        return snr_p, 0.0
    means = sums[has] / kk[has]
    within = float(np.sum((logs - (sums / np.maximum(kk, 1))[gp]) ** 2) / max(pos.sum() - has.sum(), 1))
    se2_loc = within / kk[has]
    snr_loc = max(float(np.var(means) - np.mean(se2_loc)), 0.0) / max(float(np.mean(se2_loc)), 1e-300)
    return snr_p, snr_loc


@dataclass(frozen=True)
class ZILNPriors:
    """Prior scales (see the module docstring); ``group_sd`` multiplies ``HalfNormal(1)`` / ``HalfNormal(s)``.
    ``group_centered``: ``None`` chooses per effect by :func:`group_signal_to_noise`; it changes the sampler's
    geometry, not the model."""

    intercept_p_sd: float = 2.5
    coef_p_sd: float = 1.0
    loc_intercept_sd: float = 2.5
    coef_loc_sd: float = 1.0
    coef_scale_sd: float = 0.5
    group_sd: float = 1.0
    group_centered: bool | None = None
    kind: str = "default"


def linear_predictors(params: dict, X, group, n_groups: int):
    """``(logit p, loc, scale)`` for each row of ``X`` from one set of parameters (arrays broadcast)."""
    logit_p = params["intercept_p"] + X @ params["coef_p"]
    loc = params["intercept_loc"] + X @ params["coef_loc"]
    if n_groups:
        logit_p = logit_p + params["group_p"][group]
        loc = loc + params["group_loc"][group]
    scale = jax.nn.softplus(params["intercept_scale"] + X @ params["coef_scale"]) + SCALE_FLOOR
    return logit_p, loc, scale


def log_likelihood_rows(logit_p, loc, scale, y):
    """Per-customer ZILN log density, eq. (1) of Wang et al. (2019): ``log(1-p)`` at ``y = 0``,
    ``log p + log LogNormal(y; loc, scale)`` at ``y > 0`` (pure JAX)."""
    return ziln_log_prob(y, logit_p, loc, scale)


def log_likelihood(params: dict, data: ZILNData):
    """Total log-likelihood of the regression at ``params`` (pure JAX, no NumPyro)."""
    lp, loc, scale = linear_predictors(params, data.X, data.group, data.n_groups)
    return jnp.sum(log_likelihood_rows(lp, loc, scale, data.y))


def model(data: ZILNData, priors: ZILNPriors | None = None) -> None:
    """NumPyro model: priors of :class:`ZILNPriors`, ZILN likelihood of ``data.y`` (module docstring)."""
    pr = priors or ZILNPriors()
    k = data.X.shape[1]
    s = data.loc_spread
    Q, R_inv = jnp.asarray(data.Q), jnp.asarray(data.R_inv)

    def coefficients(name: str, sd: float):
        # sampled on the QR scale (theta = R beta: nearly uncorrelated), with the prior stated on beta; the map is
        # linear, so the posterior of beta is the same as sampling it directly (Stan User's Guide, QR section)
        theta = numpyro.sample(f"{name}_qr", dist.ImproperUniform(constraints.real_vector, (), (k,)))
        beta = numpyro.deterministic(name, R_inv @ theta)
        numpyro.factor(f"{name}_prior", dist.Normal(0.0, sd).log_prob(beta).sum())
        return theta, beta

    theta_p, coef_p = coefficients("coef_p", pr.coef_p_sd)
    theta_loc, coef_loc = coefficients("coef_loc", pr.coef_loc_sd * s)
    theta_scale, coef_scale = coefficients("coef_scale", pr.coef_scale_sd)
    params = {
        "intercept_p": numpyro.sample("intercept_p", dist.Normal(0.0, pr.intercept_p_sd)),
        "coef_p": theta_p,
        "intercept_loc": numpyro.sample("intercept_loc", dist.Normal(data.loc_center, pr.loc_intercept_sd * s)),
        "coef_loc": theta_loc,
        "intercept_scale": numpyro.sample("intercept_scale", dist.Normal(float(np.log(np.expm1(s))), 1.0)),
        "coef_scale": theta_scale,
    }
    if data.n_groups:
        G = data.n_groups
        cp = data.centered_p if pr.group_centered is None else pr.group_centered
        cl = data.centered_loc if pr.group_centered is None else pr.group_centered
        sd_p = params["group_sd_p"] = numpyro.sample("group_sd_p", dist.HalfNormal(pr.group_sd))
        sd_m = params["group_sd_loc"] = numpyro.sample("group_sd_loc", dist.HalfNormal(pr.group_sd * s))
        config = {**({} if cp else {"group_p": LocScaleReparam(0.0)}),
                  **({} if cl else {"group_loc": LocScaleReparam(0.0)})}
        with numpyro.handlers.reparam(config=config):
            params["group_p"] = numpyro.sample("group_p", dist.Normal(0.0, sd_p).expand([G]).to_event(1))
            params["group_loc"] = numpyro.sample("group_loc", dist.Normal(0.0, sd_m).expand([G]).to_event(1))
    lp, loc, scale = linear_predictors(params, Q, jnp.asarray(data.group), data.n_groups)
    numpyro.sample("y", ZeroInflatedLogNormal(logits=lp, loc=loc, scale=scale), obs=jnp.asarray(data.y))


def init_strategy():
    """NUTS starting points: uniform in (-0.5, 0.5) on the unconstrained scale (numpyro's default is (-2, 2)).
    On CDNOW master (six features) the default left one of four chains stuck (R-hat 1.6) where the softplus scale
    link is flat; with (-0.5, 0.5) all chains mixed (validation/cdnow_ziln.py). Chains still start apart."""
    from numpyro.infer.initialization import init_to_uniform

    return init_to_uniform(radius=0.5)


def param_names(data: ZILNData) -> list[str]:
    """Posterior variables of a fit on ``data`` (group terms only with a group level)."""
    return PARAM_NAMES + (GROUP_PARAM_NAMES if data.n_groups else [])


def posterior_dims(data: ZILNData, feature_names=None, group_names=None) -> tuple[dict, dict]:
    """ArviZ ``dims`` and ``coords`` naming the ``feature`` and ``group`` axes of the posterior."""
    k = data.X.shape[1]
    coords = {"feature": list(feature_names) if feature_names is not None else [f"x{j}" for j in range(k)]}
    dims = {"coef_p": ["feature"], "coef_loc": ["feature"], "coef_scale": ["feature"],
            "coef_p_qr": ["feature_qr"], "coef_loc_qr": ["feature_qr"], "coef_scale_qr": ["feature_qr"]}
    if data.n_groups:
        coords["group"] = (list(group_names) if group_names is not None
                           else [f"g{j}" for j in range(data.n_groups)])
        dims.update({k: ["group"] for k in ("group_p", "group_loc", "group_p_decentered",
                                            "group_loc_decentered")})
    return dims, coords


# --- predictions over posterior draws -----------------------------------------------------------------------

def _draws(idata, max_draws: int | None) -> dict[str, np.ndarray]:
    """Posterior draws flattened to (S, ...) and evenly thinned to ``max_draws``."""
    post = idata.posterior
    out = {}
    for name in PARAM_NAMES + GROUP_PARAM_NAMES:
        if name not in post:
            continue
        v = np.asarray(post[name].values, dtype=np.float64)
        v = v.reshape((-1,) + v.shape[2:])
        if max_draws is not None and v.shape[0] > max_draws:
            v = v[np.linspace(0, v.shape[0] - 1, max_draws).round().astype(int)]
        out[name] = v
    return out


def _params_rows(d: dict, X: np.ndarray, group: np.ndarray, key) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(logit p, loc, scale)`` of shape (n, S) for customers ``X`` over draws ``d``; a group index of -1 (unseen
    group) draws its intercepts from the group-level distribution, independently per draw and customer."""
    logit_p = d["intercept_p"][None, :] + X @ d["coef_p"].T
    loc = d["intercept_loc"][None, :] + X @ d["coef_loc"].T
    if "group_sd_p" in d:
        n, S = logit_p.shape
        seen = group >= 0
        gi = np.where(seen, group, 0)
        up = np.where(seen[:, None], d["group_p"][:, gi].T, 0.0)
        ul = np.where(seen[:, None], d["group_loc"][:, gi].T, 0.0)
        if not seen.all():
            k1, k2 = jax.random.split(key)
            new = ~seen
            up[new] = d["group_sd_p"][None, :] * np.asarray(jax.random.normal(k1, (int(new.sum()), S)))
            ul[new] = d["group_sd_loc"][None, :] * np.asarray(jax.random.normal(k2, (int(new.sum()), S)))
        logit_p = logit_p + up
        loc = loc + ul
    scale = np.logaddexp(0.0, d["intercept_scale"][None, :] + X @ d["coef_scale"].T) + SCALE_FLOOR
    return logit_p, loc, scale


class _RowChunks(NamedTuple):
    """Posterior draws and customers prepared for chunked evaluation (see :func:`_chunks`)."""

    draws: dict
    X: np.ndarray
    group: np.ndarray
    n_draws: int


def _prepare(idata, X, group, max_draws: int | None) -> _RowChunks:
    d = _draws(idata, max_draws)
    X = np.asarray(X, dtype=np.float64)
    group = np.zeros(len(X), np.int32) if group is None else np.asarray(group)
    return _RowChunks(d, X, group, d["intercept_p"].shape[0])


def _chunks(rows: _RowChunks, seed: int, elements: int = 2_000_000):
    """Yield ``(slice, key, logit p, loc, scale)`` over chunks of about ``elements`` customer x draw cells;
    ``key`` is the chunk's own PRNG key (``seed`` folded with the chunk start)."""
    key = jax.random.PRNGKey(seed)
    n = len(rows.X)
    step = max(1, elements // max(rows.n_draws, 1))
    for start in range(0, n, step):
        sl = slice(start, min(n, start + step))
        k = jax.random.fold_in(key, start)
        yield (sl, k, *_params_rows(rows.draws, rows.X[sl], rows.group[sl], k))


def expected_value(idata, X, group=None, *, max_draws: int | None = None, seed: int = 0) -> np.ndarray:
    """E[y | parameters] per customer and draw, shape (n, S): ``p exp(loc + scale^2 / 2)``."""
    rows = _prepare(idata, X, group, max_draws)
    out = np.empty((len(rows.X), rows.n_draws))
    for sl, _, logit, loc, scale in _chunks(rows, seed):
        out[sl] = expit(logit) * np.exp(loc + 0.5 * scale**2)
    return out


def predictive_summary(
    idata, X, group=None, *, taus=DEFAULT_TAUS, max_draws: int | None = 1000, seed: int = 0
) -> dict[str, np.ndarray]:
    """Posterior predictive summary per customer: ``prediction`` (mean), ``p_positive`` = P(y > 0),
    quantiles ``qNN`` of the predictive mixture (``q50`` is the median), and the 90% interval of the expected
    value over parameter uncertainty (``expected_q05``, ``expected_q95``)."""
    rows = _prepare(idata, X, group, max_draws)
    taus = np.asarray(taus, dtype=np.float64)
    names = [quantile_column(t) for t in taus]
    cols = {k: np.empty(len(rows.X)) for k in ["prediction", "p_positive", *names, "expected_q05", "expected_q95"]}
    for sl, _, logit, loc, scale in _chunks(rows, seed, 500_000):
        p = expit(logit)
        ev = p * np.exp(loc + 0.5 * scale**2)
        cols["prediction"][sl] = ev.mean(axis=1)
        cols["p_positive"][sl] = p.mean(axis=1)
        q = mixture_quantiles(taus, p, loc, scale)
        for j, name in enumerate(names):
            cols[name][sl] = q[:, j]
        lo, hi = np.quantile(ev, [0.05, 0.95], axis=1)
        cols["expected_q05"][sl], cols["expected_q95"][sl] = lo, hi
    return cols


def sample_predictive(idata, X, group=None, *, max_draws: int | None = 1000, seed: int = 0) -> np.ndarray:
    """One posterior predictive draw of ``y`` per posterior draw and customer, shape (n, S)."""
    rows = _prepare(idata, X, group, max_draws)
    out = np.empty((len(rows.X), rows.n_draws))
    for sl, k, logit, loc, scale in _chunks(rows, seed):
        out[sl] = np.asarray(ZeroInflatedLogNormal(logits=logit, loc=loc, scale=scale).sample(jax.random.fold_in(k, 1)))
    return out


def pointwise_log_likelihood(idata, X, y, group=None, *, max_draws: int | None = 1000, seed: int = 0) -> np.ndarray:
    """``log p(y_i | theta_s)`` for held-out customers, shape (n, S): the input of the log predictive density
    (:func:`btyd_ltv.metrics.log_predictive_density`)."""
    rows = _prepare(idata, X, group, max_draws)
    y = np.asarray(y, dtype=np.float64)
    out = np.empty((len(rows.X), rows.n_draws))
    for sl, _, logit, loc, scale in _chunks(rows, seed):
        out[sl] = np.asarray(ziln_log_prob(y[sl, None], logit, loc, scale))
    return out


def population_totals(idata, X, group=None, *, max_draws: int | None = 1000, seed: int = 0,
                      levels=(0.05, 0.5, 0.95)) -> dict[str, dict[str, float]]:
    """Total revenue of the customers in ``X``: ``expected`` = sum_i E[y_i | theta] (parameter uncertainty
    only) and ``predictive`` = sum_i y_i with ``y_i`` drawn from the posterior predictive (parameter and
    customer-level noise); mean, sd and quantiles over draws."""
    ev = expected_value(idata, X, group, max_draws=max_draws, seed=seed).sum(axis=0)
    pred = sample_predictive(idata, X, group, max_draws=max_draws, seed=seed + 1).sum(axis=0)
    out = {}
    for name, v in (("expected", ev), ("predictive", pred)):
        row = {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if v.size > 1 else float("nan")}
        for q, val in zip(levels, np.quantile(v, levels)):
            row[quantile_column(q)] = float(val)
        out[name] = row
    return out
