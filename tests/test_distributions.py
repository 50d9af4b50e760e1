"""ZeroInflatedLogNormal and mixture quantiles: log_prob / cdf / icdf against scipy, moments and quantiles against
Monte Carlo, gradients at the edges of the support, and mixture quantiles against brentq."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest
import scipy.optimize
import scipy.special
import scipy.stats

from btyd_ltv.distributions import (
    ZeroInflatedLogNormal,
    mixture_quantiles,
    ziln_log_prob,
    ziln_mean,
    ziln_quantile,
)

N_MC = 1_000_000


def _scipy_log_prob(y, p, loc, scale):
    """log(1-p) at 0 (Bernoulli pmf at 0), log p + log-normal logpdf at y > 0."""
    y = np.asarray(y, dtype=float)
    zero = scipy.stats.bernoulli.logpmf(0, p)
    safe_y = np.where(y > 0, y, 1.0)
    pos = scipy.stats.bernoulli.logpmf(1, p) + scipy.stats.lognorm.logpdf(safe_y, s=scale, scale=np.exp(loc))
    return np.where(y > 0, pos, zero)


def _scipy_cdf(y, p, loc, scale):
    y = np.asarray(y, dtype=float)
    safe_y = np.where(y > 0, y, 1.0)
    pos = (1 - p) + p * scipy.stats.lognorm.cdf(safe_y, s=scale, scale=np.exp(loc))
    return np.where(y > 0, pos, np.where(y == 0, 1 - p, 0.0))


def _random_points(seed=0, n=200):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.02, 0.98, n)
    loc = rng.normal(0.0, 2.0, n)
    scale = rng.uniform(0.1, 3.0, n)
    y = np.exp(rng.normal(loc, 2.0 * scale))
    y[rng.uniform(size=n) < 0.3] = 0.0  # zeros mixed in
    return y, p, loc, scale


# ----------------------------------------------------------------------------------------------------------------
# log_prob
# ----------------------------------------------------------------------------------------------------------------


def test_log_prob_matches_scipy_probability_parameterisation():
    y, p, loc, scale = _random_points(0)
    assert (y == 0).sum() > 30 and (y > 0).sum() > 100
    ours = np.asarray(ZeroInflatedLogNormal(p, loc, scale).log_prob(y))
    np.testing.assert_allclose(ours, _scipy_log_prob(y, p, loc, scale), rtol=1e-12, atol=1e-12)


def test_log_prob_matches_scipy_logits_parameterisation():
    y, p, loc, scale = _random_points(1)
    logits = np.log(p) - np.log1p(-p)
    ref = _scipy_log_prob(y, p, loc, scale)
    ours = np.asarray(ZeroInflatedLogNormal(logits=logits, loc=loc, scale=scale).log_prob(y))
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.asarray(ziln_log_prob(y, logits, loc, scale)), ref, rtol=1e-12, atol=1e-12)


def test_log_prob_with_extreme_logits_stays_finite():
    # log sigmoid(-50) = -50 - log1p(e^-50); the naive log(1 - sigmoid(50)) would be log(0).
    d = ZeroInflatedLogNormal(logits=jnp.array([50.0, -50.0]), loc=0.0, scale=1.0)
    lp0 = np.asarray(d.log_prob(0.0))
    np.testing.assert_allclose(lp0, [-50.0 - np.log1p(np.exp(-50.0)), -np.log1p(np.exp(-50.0))], rtol=1e-14)
    lp1 = np.asarray(d.log_prob(1.0))
    half_log_2pi = 0.5 * np.log(2 * np.pi)
    np.testing.assert_allclose(lp1, [-np.log1p(np.exp(-50.0)) - half_log_2pi, -50.0 - half_log_2pi], rtol=1e-14)


def test_log_prob_negative_values_and_extreme_magnitudes():
    d = ZeroInflatedLogNormal(0.4, 1.0, 2.0, validate_args=False)
    assert float(d.log_prob(-1.0)) == -np.inf
    for y in (1e-300, 1e300):
        ref = np.log(0.4) + scipy.stats.lognorm.logpdf(y, s=2.0, scale=np.exp(1.0))
        assert np.isfinite(ref)
        assert float(d.log_prob(y)) == pytest.approx(ref, rel=1e-12)


@pytest.mark.parametrize("y", [0.0, 1e-300, 1e300, 2.5])
def test_gradients_are_finite_at_the_edges(y):
    def lp_prob(p, loc, scale):
        return ZeroInflatedLogNormal(p, loc, scale).log_prob(y)

    def lp_logits(logits, loc, scale):
        return ZeroInflatedLogNormal(logits=logits, loc=loc, scale=scale).log_prob(y)

    g_prob = jax.grad(lp_prob, argnums=(0, 1, 2))(0.3, 0.5, 1.5)
    g_logits = jax.grad(lp_logits, argnums=(0, 1, 2))(-0.7, 0.5, 1.5)
    g_fn = jax.grad(ziln_log_prob, argnums=(1, 2, 3))(y, -0.7, 0.5, 1.5)
    for g in (*g_prob, *g_logits, *g_fn):
        assert np.isfinite(float(g))
    p, loc, scale = 0.3, 0.5, 1.5
    if y == 0:
        # d/dp log(1-p) = -1/(1-p); d/dlogit log sigmoid(-l) = -sigmoid(l); nothing flows to loc/scale
        assert float(g_prob[0]) == pytest.approx(-1 / (1 - p), rel=1e-12)
        assert float(g_logits[0]) == pytest.approx(-scipy.special.expit(-0.7), rel=1e-12)
        assert float(g_prob[1]) == 0.0 and float(g_prob[2]) == 0.0
    else:
        # d/dmu = z / sigma, d/dsigma = (z^2 - 1) / sigma with z = (log y - mu) / sigma
        z = (np.log(y) - loc) / scale
        assert float(g_prob[0]) == pytest.approx(1 / p, rel=1e-12)
        assert float(g_prob[1]) == pytest.approx(z / scale, rel=1e-12)
        assert float(g_prob[2]) == pytest.approx((z * z - 1) / scale, rel=1e-12)


# ----------------------------------------------------------------------------------------------------------------
# shapes, parameters, jit
# ----------------------------------------------------------------------------------------------------------------


def test_batch_shapes_broadcast():
    d = ZeroInflatedLogNormal(jnp.full((4, 1), 0.3), jnp.zeros(5), 1.0)
    assert d.batch_shape == (4, 5)
    assert d.mean.shape == (4, 5) and d.variance.shape == (4, 5)
    assert d.sample(jax.random.PRNGKey(0), (7,)).shape == (7, 4, 5)
    assert d.log_prob(jnp.ones((3, 1, 1))).shape == (3, 4, 5)
    assert d.cdf(jnp.ones(5)).shape == (4, 5)
    d2 = ZeroInflatedLogNormal(logits=0.0, loc=jnp.zeros(3), scale=jnp.ones((2, 1)))
    assert d2.batch_shape == (2, 3)
    np.testing.assert_allclose(np.asarray(d2.p_positive), 0.5)


def test_exactly_one_of_p_and_logits():
    with pytest.raises(ValueError, match="exactly one"):
        ZeroInflatedLogNormal()
    with pytest.raises(ValueError, match="exactly one"):
        ZeroInflatedLogNormal(0.5, logits=0.0)


def test_lazy_parameters_agree():
    p = np.array([0.1, 0.5, 0.9])
    d = ZeroInflatedLogNormal(p, 0.0, 1.0)
    np.testing.assert_allclose(np.asarray(d.logits), np.log(p / (1 - p)), rtol=1e-13)
    d2 = ZeroInflatedLogNormal(logits=np.log(p / (1 - p)), loc=0.0, scale=1.0)
    np.testing.assert_allclose(np.asarray(d2.p_positive), p, rtol=1e-13)


def test_validate_args_rejects_bad_parameters():
    with pytest.raises(ValueError):
        ZeroInflatedLogNormal(1.5, 0.0, 1.0, validate_args=True)
    with pytest.raises(ValueError):
        ZeroInflatedLogNormal(0.5, 0.0, -1.0, validate_args=True)


def test_distribution_is_a_pytree_under_jit():
    d = ZeroInflatedLogNormal(logits=jnp.array([0.3, -1.0]), loc=1.0, scale=0.5)
    y = jnp.array([0.0, 2.0])
    np.testing.assert_allclose(np.asarray(jax.jit(lambda d, y: d.log_prob(y))(d, y)), np.asarray(d.log_prob(y)),
                               rtol=1e-14)
    np.testing.assert_allclose(np.asarray(jax.jit(lambda d: d.mean)(d)), np.asarray(d.mean), rtol=1e-14)
    dp = ZeroInflatedLogNormal(jnp.array([0.3, 0.8]), 1.0, 0.5)
    np.testing.assert_allclose(np.asarray(jax.jit(lambda d: d.icdf(jnp.array(0.9)))(dp)),
                               np.asarray(dp.icdf(0.9)), rtol=1e-14)


# ----------------------------------------------------------------------------------------------------------------
# moments, cdf, icdf
# ----------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def draws():
    """1e6 draws from each of two ZILNs with finite 4th moments (scale 0.5)."""
    params = [(0.35, 1.0, 0.5), (0.8, -0.5, 0.5)]
    d = ZeroInflatedLogNormal(jnp.array([0.35, 0.8]), jnp.array([1.0, -0.5]), jnp.array([0.5, 0.5]))
    x = np.asarray(d.sample(jax.random.PRNGKey(20190101), (N_MC,)))
    return params, d, x


def test_mean_and_variance_closed_forms_and_sample_moments(draws):
    params, d, x = draws
    assert x.shape == (N_MC, 2) and np.all(x >= 0)
    for j, (p, loc, scale) in enumerate(params):
        # closed forms by hand: E Y = p E[L], Var Y = p E[L^2] - (p E[L])^2 with scipy's log-normal moments
        m1 = scipy.stats.lognorm.moment(1, s=scale, scale=np.exp(loc))
        m2 = scipy.stats.lognorm.moment(2, s=scale, scale=np.exp(loc))
        m4 = scipy.stats.lognorm.moment(4, s=scale, scale=np.exp(loc))
        mean, var = p * m1, p * m2 - (p * m1) ** 2
        assert float(d.mean[j]) == pytest.approx(mean, rel=1e-12)
        assert float(d.variance[j]) == pytest.approx(var, rel=1e-12)
        assert float(ziln_mean(p, loc, scale)) == pytest.approx(mean, rel=1e-12)
        # Monte Carlo within 5 standard errors: se(mean) = sd / sqrt(n); se(var) ~ sqrt((mu4 - var^2) / n)
        xs = x[:, j]
        mu4 = p * m4 - 4 * mean * p * scipy.stats.lognorm.moment(3, s=scale, scale=np.exp(loc)) \
            + 6 * mean**2 * p * m2 - 3 * mean**4
        assert abs(xs.mean() - mean) < 5 * np.sqrt(var / N_MC)
        assert abs(xs.var() - var) < 5 * np.sqrt((mu4 - var**2) / N_MC)
        assert abs((xs == 0).mean() - (1 - p)) < 5 * np.sqrt(p * (1 - p) / N_MC)


def test_variance_without_cancellation_near_p_one():
    """p = sigmoid(40), sigma = 1e-4: the textbook form p e^{2mu+2s^2} - p^2 e^{2mu+s^2} cancels to ~1e-8 of
    its terms; compare with 50-digit arithmetic."""
    mp.mp.dps = 50
    logits, loc, scale = 40.0, 0.7, 1e-4
    p = 1 / (1 + mp.exp(-logits))
    ref = p * mp.exp(2 * loc + 2 * mp.mpf(scale) ** 2) - p**2 * mp.exp(2 * loc + mp.mpf(scale) ** 2)
    d = ZeroInflatedLogNormal(logits=logits, loc=loc, scale=scale)
    assert float(d.variance) == pytest.approx(float(ref), rel=1e-12)
    assert float(d.mean) == pytest.approx(float(p * mp.exp(loc + mp.mpf(scale) ** 2 / 2)), rel=1e-14)


def test_cdf_matches_scipy_and_the_empirical_cdf(draws):
    params, d, x = draws
    grid = np.array([-1.0, 0.0, 1e-3, 0.3, 1.0, 2.0, 3.0, 5.0, 10.0])
    ours = np.asarray(d.cdf(grid[:, None]))
    for j, (p, loc, scale) in enumerate(params):
        ref = _scipy_cdf(grid, p, loc, scale)
        np.testing.assert_allclose(ours[:, j], ref, rtol=1e-13, atol=1e-15)
        emp = (x[:, j][None, :] <= grid[:, None]).mean(axis=1)
        assert np.all(np.abs(emp - ref) < 5 * np.sqrt(ref * (1 - ref) / N_MC) + 1e-9)
    assert np.all(ours[0] == 0.0)
    np.testing.assert_allclose(ours[1], [0.65, 0.2], rtol=1e-14)
    # the logits parameterisation gives the same cdf
    y, p, loc, scale = _random_points(2)
    dl = ZeroInflatedLogNormal(logits=np.log(p / (1 - p)), loc=loc, scale=scale)
    np.testing.assert_allclose(np.asarray(dl.cdf(y)), _scipy_cdf(y, p, loc, scale), rtol=1e-12, atol=1e-14)


def test_icdf_inverts_the_cdf_and_is_zero_on_the_point_mass(draws):
    params, d, x = draws
    taus = np.linspace(0.01, 0.99, 99)
    q = np.asarray(d.icdf(taus[:, None]))
    for j, (p, loc, scale) in enumerate(params):
        zero = taus <= 1 - p
        assert np.all(q[zero, j] == 0.0)
        assert np.all(q[~zero, j] > 0)
        np.testing.assert_allclose(_scipy_cdf(q[~zero, j], p, loc, scale), taus[~zero], rtol=1e-12)
        np.testing.assert_allclose(np.asarray(ziln_quantile(taus, p, loc, scale)), q[:, j], rtol=1e-14)
        # vs Monte Carlo quantiles: the error of a sample quantile is ~ sqrt(tau(1-tau)/n) / f(Q)
        mc = np.quantile(x[:, j], taus[~zero])
        dens = p * scipy.stats.lognorm.pdf(q[~zero, j], s=scale, scale=np.exp(loc))
        se = np.sqrt(taus[~zero] * (1 - taus[~zero]) / N_MC) / dens
        assert np.all(np.abs(mc - q[~zero, j]) < 5 * se)
    # the logits parameterisation: F(Q(tau)) = tau
    dl = ZeroInflatedLogNormal(logits=jnp.array([-1.0, 2.0]), loc=0.3, scale=1.2)
    ql = np.asarray(dl.icdf(taus[:, None]))
    fl = np.asarray(dl.cdf(ql))
    pl = scipy.special.expit([-1.0, 2.0])
    above = taus[:, None] > 1 - pl
    np.testing.assert_allclose(fl[above], np.broadcast_to(taus[:, None], fl.shape)[above], rtol=1e-12)
    assert np.all(ql[~above] == 0.0)


# ----------------------------------------------------------------------------------------------------------------
# mixture quantiles
# ----------------------------------------------------------------------------------------------------------------


def _mixture_cdf(y, p, loc, scale):
    return np.mean((1 - p) + p * scipy.stats.lognorm.cdf(y, s=scale, scale=np.exp(loc)))


def _brentq_quantile(tau, p, loc, scale):
    f0 = np.mean(1 - p)
    if tau <= f0:
        return 0.0
    lo, hi = np.exp(np.min(loc - 12 * scale)), np.exp(np.max(loc + 12 * scale))
    return scipy.optimize.brentq(lambda y: _mixture_cdf(y, p, loc, scale) - tau, lo, hi, xtol=1e-300,
                                 rtol=1e-14, maxiter=500)


@pytest.fixture(scope="module")
def mixture():
    rng = np.random.default_rng(7)
    n, s = 6, 40
    p = rng.uniform(0.1, 0.95, (n, s))
    loc = rng.normal(2.0, 1.0, (n, s))
    scale = rng.uniform(0.2, 1.5, (n, s))
    p[5] = rng.uniform(0.97, 0.999, s)  # nearly no zero mass
    return p, loc, scale


def test_mixture_quantiles_match_brentq(mixture):
    p, loc, scale = mixture
    taus = np.array([0.05, 0.25, 0.5, 0.75, 0.9, 0.99])
    q = mixture_quantiles(taus, p, loc, scale)
    assert isinstance(q, np.ndarray) and q.dtype == np.float64 and q.shape == (6, 6)
    ref = np.array([[_brentq_quantile(t, p[i], loc[i], scale[i]) for t in taus] for i in range(p.shape[0])])
    np.testing.assert_allclose(q, ref, rtol=1e-10, atol=0)
    assert (ref == 0).sum() > 3 and (ref > 0).sum() > 20  # both branches exercised
    # chunking does not change the answer (including a padded last chunk)
    for chunk in (1, 4, 100):
        np.testing.assert_array_equal(mixture_quantiles(taus, p, loc, scale, chunk_size=chunk), q)


def test_mixture_quantiles_match_monte_carlo(mixture):
    p, loc, scale = mixture
    i = 2
    taus = np.array([0.5, 0.8, 0.95])
    rng = np.random.default_rng(11)
    comp = rng.integers(0, p.shape[1], N_MC)
    positive = rng.uniform(size=N_MC) < p[i, comp]
    x = np.where(positive, np.exp(loc[i, comp] + scale[i, comp] * rng.standard_normal(N_MC)), 0.0)
    q = mixture_quantiles(taus, p[i : i + 1], loc[i : i + 1], scale[i : i + 1])[0]
    assert np.all(q > 0)
    dens = np.array([np.mean(p[i] * scipy.stats.lognorm.pdf(v, s=scale[i], scale=np.exp(loc[i]))) for v in q])
    se = np.sqrt(taus * (1 - taus) / N_MC) / dens
    assert np.all(np.abs(np.quantile(x, taus) - q) < 5 * se)


def test_one_component_mixture_is_the_icdf():
    rng = np.random.default_rng(3)
    n = 50
    p, loc, scale = rng.uniform(0.05, 0.95, n), rng.normal(0, 3, n), rng.uniform(0.1, 4.0, n)
    taus = np.linspace(0.02, 0.98, 25)
    q = mixture_quantiles(taus, p[:, None], loc[:, None], scale[:, None])
    ref = np.asarray(ZeroInflatedLogNormal(p[:, None], loc[:, None], scale[:, None]).icdf(taus))
    np.testing.assert_allclose(q, ref, rtol=1e-11)
    assert np.array_equal(q == 0, taus[None, :] <= 1 - p[:, None])


def test_mixture_quantiles_zero_mass_branch():
    # F(0) = mean(1 - p) = 0.6: every tau <= 0.6 has quantile exactly 0; just above, F(y) = 0.6 + 0.4 Phi(log y)
    p = np.array([[0.2, 0.6]])
    loc, scale = np.zeros((1, 2)), np.ones((1, 2))
    taus = np.array([0.1, 0.6, 0.6001, 0.9])
    q = mixture_quantiles(taus, p, loc, scale)[0]
    assert q[0] == 0.0 and q[1] == 0.0
    assert q[2] == pytest.approx(np.exp(scipy.stats.norm.ppf(0.0001 / 0.4)), rel=1e-9)
    assert q[3] == pytest.approx(np.exp(scipy.stats.norm.ppf(0.3 / 0.4)), rel=1e-12)
    # a customer certain to spend nothing (p = 0): all quantiles 0
    assert np.all(mixture_quantiles([0.5, 0.99], np.zeros((1, 3)), np.zeros((1, 3)), np.ones((1, 3))) == 0.0)


def test_mixture_quantiles_rejects_bad_input():
    with pytest.raises(ValueError, match="taus"):
        mixture_quantiles([0.0, 0.5], np.ones((2, 3)) * 0.5, np.zeros((2, 3)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="shape"):
        mixture_quantiles([0.5], np.ones(3) * 0.5, np.zeros(3), np.ones(3))
