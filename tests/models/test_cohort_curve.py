"""Cohort-curve model: retention, ARPDAU and cell likelihoods against scipy, the data layer, predictive curves."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special as sp
import scipy.stats as st

import jax.numpy as jnp

from btyd_ltv.data.portfolio import sbg_survival, simulate_portfolio
from btyd_ltv.errors import DataValidationError
from btyd_ltv.models import cohort_curve as cc

RNG = np.random.default_rng(20261125)


def _params(n: int, names) -> dict:
    draws = {"log_ret": RNG.uniform(-3, -0.2, n), "logit_churn": RNG.uniform(-3, 1, n),
             "log_kappa": RNG.uniform(-1, 3, n), "log_c": RNG.uniform(-0.7, 0.5, n),
             "log_level": RNG.uniform(-4, 1, n), "rho": RNG.uniform(-0.3, 0.6, n),
             "logit_stay": RNG.uniform(-5, 1, n), "log_saturation": RNG.uniform(-3, 1.5, n)}
    return {k: jnp.asarray(draws[k]) for k in names}


@pytest.mark.parametrize("retention", cc.RETENTION_FAMILIES)
def test_log_retention_matches_scipy_beta_functions(retention):
    names = cc.RETENTION_PARAMS[retention]
    p = _params(7, names)
    t = np.arange(0, 60)
    ref = 5.0
    got = np.asarray(cc.log_retention(retention, {k: v[:, None] for k, v in p.items()}, t, ref))
    m = sp.expit(np.asarray(p["logit_churn"]))[:, None]
    kappa = np.exp(np.asarray(p["log_kappa"]))[:, None]
    a, b = m * kappa, (1 - m) * kappa
    c = np.exp(np.asarray(p["log_c"]))[:, None] if "log_c" in p else 1.0
    w = sp.expit(np.asarray(p["logit_stay"]))[:, None] if "logit_stay" in p else 0.0  # stayers (mover-stayer)
    log_S = lambda x: np.log(w + (1 - w) * np.exp(sp.betaln(a, b + x ** c) - sp.betaln(a, b)))  # noqa: E731
    want = log_S(t[None, :].astype(float))
    if "log_ret" in p:
        want = want + np.asarray(p["log_ret"])[:, None] - log_S(ref)
    want[:, 0] = 0.0
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    if retention == "bgbb":  # s(t) = pi S(t), S the sBG survival of the generator (Fader & Hardie 2007)
        pi = np.exp(np.asarray(cc.log_pi(p, ref)))
        S = np.exp(log_S(t.astype(float)))
        np.testing.assert_allclose(np.exp(got[:, 1:]), pi[:, None] * S[:, 1:], rtol=1e-10)
        np.testing.assert_allclose(np.exp(got[:, int(ref)]), np.exp(np.asarray(p["log_ret"])), rtol=1e-10)


def test_stayers_level_retention_off_at_pi_w():
    """``bgbb-ms``: retention ``pi (w + (1 - w) S(t))`` tends to ``pi w`` (the stayers' activity) where the sBG
    part has died out, and is the ``bgbb`` curve when ``w -> 0``."""
    p = {"log_ret": jnp.asarray([-2.0]), "logit_churn": jnp.asarray([0.5]), "log_kappa": jnp.asarray([1.0]),
         "logit_stay": jnp.asarray([-1.0])}
    pi = float(np.exp(cc.log_pi(p, 4.0))[0])
    far = float(np.exp(cc.log_retention("bgbb-ms", p, 1e9, 4.0))[0])
    assert far == pytest.approx(pi * sp.expit(-1.0), rel=1e-6)
    none = dict(p, logit_stay=jnp.asarray([-60.0]))
    t = np.arange(1, 50)
    np.testing.assert_allclose(np.asarray(cc.log_retention("bgbb-ms", none, t, 4.0)),
                               np.asarray(cc.log_retention("bgbb", {k: v for k, v in p.items() if k != "logit_stay"},
                                                           t, 4.0)), rtol=1e-12)


def test_sbg_survival_helper_agrees():
    """The generator's closed form and ours are the same sBG survival (independent code paths)."""
    p = {"logit_churn": jnp.asarray([-1.2]), "log_kappa": jnp.asarray([0.7])}
    m, kappa = sp.expit(-1.2), np.exp(0.7)
    t = np.arange(1, 40)
    ours = np.exp(np.asarray(cc._log_survival({k: v[:, None] for k, v in p.items()}, jnp.asarray(t, dtype=float))))[0]
    np.testing.assert_allclose(ours, sbg_survival(t, m * kappa, (1 - m) * kappa), rtol=1e-10)


@pytest.mark.parametrize("retention", ["bgbb", "bdw", "bgbb-ms"])
def test_grid_path_equals_lgamma_path(retention):
    names = cc.RETENTION_PARAMS[retention]
    p = _params(9, names)
    grid = np.asarray(cc._log_retention_grid(retention, p, 120, 7.0))
    direct = np.asarray(cc.log_retention(retention, {k: v[:, None] for k, v in p.items()}, np.arange(120), 7.0))
    np.testing.assert_allclose(grid, direct, rtol=1e-9, atol=1e-10)


def test_active_log_prob_beta_binomial_and_normal_moments():
    n = RNG.integers(10, 5000, 50).astype(float)
    s = RNG.uniform(0.01, 0.9, 50)
    k = RNG.binomial(n.astype(int), s).astype(float)
    log_phi = 3.0
    phi = np.exp(log_phi)
    bb = np.asarray(cc._active_log_prob(jnp.asarray(k), jnp.asarray(n), jnp.log(jnp.asarray(s)), log_phi,
                                        "beta-binomial"))
    # numpyro's BetaBinomial evaluates log B with a series for large arguments: it agrees with scipy (and
    # mpmath) to ~1e-7 nats, not to machine precision
    np.testing.assert_allclose(bb, st.betabinom.logpmf(k, n, s * phi, (1 - s) * phi), rtol=0, atol=1e-6)
    normal = np.asarray(cc._active_log_prob(jnp.asarray(k), jnp.asarray(n), jnp.log(jnp.asarray(s)), log_phi,
                                            "normal"))
    mean, var = st.betabinom.stats(n, s * phi, (1 - s) * phi, moments="mv")
    np.testing.assert_allclose(normal, st.norm.logpdf(k, mean, np.sqrt(var)), rtol=1e-9)


def test_revenue_cell_is_ziln_with_mean_users_times_arpdau():
    users = RNG.integers(1, 3000, 40).astype(float)
    log_a = RNG.uniform(-4, 1, 40)
    log_k, log_nu, log_tau = -2.0, -1.0, -1.3
    revenue = np.where(RNG.random(40) < 0.3, 0.0, RNG.lognormal(2, 1, 40))
    got = np.asarray(cc._revenue_log_prob(jnp.asarray(revenue), jnp.asarray(users), jnp.log(jnp.asarray(users)),
                                          jnp.asarray(log_a), log_k, log_nu, log_tau))
    p0 = np.exp(-np.exp(log_nu) * users)
    cv2 = np.exp(-log_k) / users + np.exp(2 * log_tau)
    sigma = np.sqrt(np.log1p(cv2))
    mean_pos = users * np.exp(log_a) / (1 - p0)
    mu = np.log(mean_pos) - sigma ** 2 / 2
    log_p0 = -np.exp(log_nu) * users  # log P(no purchase), exact where p0 underflows
    want = np.where(revenue > 0, np.log1p(-p0) + st.lognorm.logpdf(revenue, sigma, scale=np.exp(mu)), log_p0)
    np.testing.assert_allclose(got, want, rtol=1e-9)
    # E[revenue] = (1 - p0) exp(mu + sigma^2 / 2) = users * arpdau, and CV^2 of the positive part as stated
    np.testing.assert_allclose((1 - p0) * np.exp(mu + sigma ** 2 / 2), users * np.exp(log_a), rtol=1e-12)
    np.testing.assert_allclose(np.expm1(sigma ** 2), cv2, rtol=1e-12)
    # no active users: revenue must be zero
    zero = np.asarray(cc._revenue_log_prob(jnp.asarray([0.0, 5.0]), jnp.asarray([0.0, 0.0]),
                                           jnp.asarray([-30.0, -30.0]), jnp.asarray([0.0, 0.0]), 0.0, 0.0, 0.0))
    assert zero[0] == 0.0 and zero[1] == -np.inf


def test_gamma_revenue_cell_matches_scipy_with_mean_users_times_arpdau():
    users = RNG.integers(1, 3000, 40).astype(float)
    log_a = RNG.uniform(-4, 1, 40)
    log_k, log_nu, log_tau = -2.0, -1.0, -1.3
    revenue = np.where(RNG.random(40) < 0.3, 0.0, RNG.lognormal(2, 1, 40))
    got = np.asarray(cc._revenue_log_prob(jnp.asarray(revenue), jnp.asarray(users), jnp.log(jnp.asarray(users)),
                                          jnp.asarray(log_a), log_k, log_nu, log_tau, "gamma"))
    p0 = np.exp(-np.exp(log_nu) * users)
    cv2 = np.exp(-log_k) / users + np.exp(2 * log_tau)
    mean_pos = users * np.exp(log_a) / (1 - p0)
    shape = 1 / cv2
    want = np.where(revenue > 0, np.log1p(-p0) + st.gamma.logpdf(revenue, shape, scale=mean_pos / shape),
                    -np.exp(log_nu) * users)
    np.testing.assert_allclose(got, want, rtol=1e-9)
    # E[revenue] = (1 - p0) * shape * scale = users * arpdau; CV^2 of the positive part = 1 / shape
    np.testing.assert_allclose((1 - p0) * st.gamma.mean(shape, scale=mean_pos / shape), users * np.exp(log_a),
                               rtol=1e-12)
    np.testing.assert_allclose(st.gamma.var(shape, scale=mean_pos / shape) / mean_pos ** 2, cv2, rtol=1e-12)


def test_gamma_revenue_mean_estimate_is_the_sample_mean_under_whales():
    """The gamma cell's maximum-likelihood mean (fixed shape) is the average of the positive amounts even when
    they come from a whale mixture; the log-normal's mean (fixed CV) is pulled towards the typical amount."""
    rng = np.random.default_rng(5)
    y = np.where(rng.random(4000) < 0.01, rng.lognormal(np.log(400), 1.0, 4000), rng.gamma(4.0, 2.5, 4000))
    grid = np.linspace(np.log(y.mean()) - 0.5, np.log(y.mean()) + 0.5, 2001)

    def best(kind):
        ll = [float(jnp.sum(cc._revenue_log_prob(jnp.asarray(y), jnp.full(y.shape, 1e9), jnp.full(y.shape, 9.0),
                                                  jnp.full(y.shape, g - 9.0), 30.0, 30.0, np.log(0.8), kind)))
              for g in grid]
        return np.exp(grid[int(np.argmax(ll))])

    assert abs(best("gamma") / y.mean() - 1) < 1e-3
    assert best("lognormal") < 0.8 * y.mean()


def _whale_log_prob(revenue, users, log_a, whale, log_k=-2.0, log_nu=-3.0, log_tau=-1.5):
    y = jnp.asarray(revenue, dtype=jnp.float64)
    u = jnp.broadcast_to(jnp.asarray(users, dtype=jnp.float64), y.shape)
    return cc._revenue_log_prob(y, u, jnp.log(u), jnp.broadcast_to(jnp.asarray(log_a), y.shape), log_k, log_nu,
                                log_tau, "whale", whale)


@pytest.mark.parametrize("users", [3.0, 50.0, 800.0, 20000.0])
def test_whale_mixture_cell_integrates_to_one_with_mean_users_times_arpdau(users):
    from scipy import integrate

    log_a = np.log(0.2)
    whale = (-1.5, -2.0, 0.1, 500.0)
    p0 = float(np.exp(_whale_log_prob(0.0, users, log_a, whale)))
    dens = lambda ly: float(np.exp(_whale_log_prob(np.exp(ly), users, log_a, whale) + ly))  # noqa: E731
    centre = np.log(users * 0.2)
    total = p0 + integrate.quad(dens, centre - 25, centre + 25, limit=500, points=[centre])[0]
    mean = integrate.quad(lambda ly: dens(ly) * np.exp(ly), centre - 25, centre + 25, limit=500, points=[centre])[0]
    assert total == pytest.approx(1.0, abs=1e-8)
    assert mean == pytest.approx(users * 0.2, rel=1e-8)


def test_whale_component_cv_matches_a_compound_poisson_simulation():
    """Component 1 (cells with at least one whale) has the mean and squared CV of regular revenue plus a
    zero-truncated Poisson number of log-normal whale amounts, checked by Monte Carlo."""
    rng = np.random.default_rng(7)
    users, log_mean, cv2, ref = 400.0, np.log(50.0), 0.05, 400.0
    logit_s, logit_w, log_sd = -1.0, 0.3, np.log(0.9)
    log_omega, _, log_m0, log_m1, cv1 = (float(v) for v in cc._whale_components(
        jnp.asarray(users), jnp.asarray(log_mean), jnp.asarray(cv2), (logit_s, logit_w, log_sd, ref)))
    mu = np.log1p(np.exp(logit_w)) / ref * users  # softplus(logit omega_ref) / A_ref per user
    n = 2_000_000
    counts = st.poisson.ppf(rng.uniform(st.poisson.cdf(0, mu), 1.0, n), mu).astype(int)  # N | N >= 1
    sd = np.exp(log_sd)
    whale_mean = np.exp(log_m1) - np.exp(log_m0)  # mean of the whale sum given N >= 1
    amount = whale_mean / (mu / -np.expm1(-mu))  # mean of one whale purchase
    idx = np.repeat(np.arange(n), counts)
    whales = np.bincount(idx, rng.lognormal(np.log(amount) - sd ** 2 / 2, sd, idx.size), minlength=n)
    regular = rng.lognormal(log_m0 - np.log1p(cv2) / 2, np.sqrt(np.log1p(cv2)), n)
    total = regular + whales
    assert np.exp(log_omega) == pytest.approx(-np.expm1(-mu), rel=1e-12)
    assert total.mean() == pytest.approx(np.exp(log_m1), rel=5e-3)
    assert total.var() / total.mean() ** 2 == pytest.approx(cv1, rel=3e-2)
    # the whales carry the share s of the expected positive revenue
    assert np.exp(log_omega) * whale_mean / ((1 - np.exp(log_omega)) * np.exp(log_m0) + np.exp(log_omega)
                                             * np.exp(log_m1)) == pytest.approx(1 / (1 + np.exp(-logit_s)))


def test_whale_mixture_recovers_the_mean_that_the_lognormal_misses():
    """Cells of regular gamma revenue plus rare log-normal whale purchases (the shape of the synthetic game
    portfolio): the maximum-likelihood mean under the whale mixture is within 3% of the true mean; the single
    log-normal's (whose free CV widens to take the whales) stays more than 5% below it."""
    from scipy.optimize import minimize

    rng = np.random.default_rng(11)
    cells, users, arpdau, share, rate = 3000, 500.0, 0.1, 0.25, 2e-4
    regular = rng.gamma(40.0, (1 - share) * users * arpdau / 40.0, cells)
    counts = rng.poisson(rate * users, cells)
    amount = share * arpdau / rate
    idx = np.repeat(np.arange(cells), counts)
    y = regular + np.bincount(idx, rng.lognormal(np.log(amount) - 0.5, 1.0, idx.size), minlength=cells)
    truth = users * arpdau

    def fit(kind):
        def loss(x):
            whale = (x[2], x[3], x[4], users) if kind == "whale" else None
            return -jnp.sum(cc._revenue_log_prob(jnp.asarray(y), jnp.full(cells, users), jnp.full(cells, np.log(users)),
                                                 jnp.full(cells, x[0]), 30.0, 30.0, x[1], kind, whale))
        import jax
        f = jax.jit(jax.value_and_grad(loss))
        x0 = np.array([np.log(np.median(y) / users), -1.5, -2.0, -2.0, 0.0])
        res = minimize(lambda x: tuple(np.asarray(v, dtype=np.float64) for v in f(jnp.asarray(x))), x0, jac=True,
                       method="L-BFGS-B")
        return users * np.exp(res.x[0])

    whale, lognormal = fit("whale"), fit("lognormal")
    print(f"truth {truth}, whale mixture {whale:.3f}, log-normal {lognormal:.3f}")
    assert whale == pytest.approx(truth, rel=0.03)
    assert lognormal < 0.95 * truth


def _cell_log_prob(kind, revenue, users, log_a, log_k, log_nu, log_tau, whale=None):
    y = jnp.atleast_1d(jnp.asarray(revenue, dtype=jnp.float64))
    u = jnp.broadcast_to(jnp.asarray(users, dtype=jnp.float64), y.shape)
    return cc._revenue_log_prob(y, u, jnp.log(u), jnp.full(y.shape, log_a), log_k, log_nu, log_tau, kind, whale)


@pytest.mark.parametrize("m", [0.3, 4.0, 20.0, 34.0])
@pytest.mark.parametrize("k", [0.5, 2.0])
def test_compound_cell_is_the_poisson_gamma_series_of_scipy(m, k):
    """Without day-level noise the compound cell is exactly a Poisson(m) number of Gamma(k) purchases of mean
    arpdau / nu: P(0) = exp(-m) and the positive density the series of scipy's Poisson and gamma densities (to 96
    purchases; the whole series wherever the log density is above -30)."""
    users, arpdau = 250.0, 0.4
    nu = m / users
    purchase = arpdau / nu
    y = np.array([0.0, 1e-3, 0.05, 0.5, 1.0, 2.0, 4.0]) * m * purchase
    y[0] = 0.0
    got = np.asarray(_cell_log_prob("compound", y, users, np.log(arpdau), np.log(k), np.log(nu), -30.0))
    n = np.arange(1, 400)[:, None]
    terms = st.poisson.pmf(n, m) * st.gamma.pdf(y[None, 1:], n * k, scale=purchase / k)
    np.testing.assert_allclose(got[0], -m, rtol=1e-12)
    np.testing.assert_allclose(got[1:], np.log(terms[:96].sum(axis=0)), rtol=1e-10)  # the model's 96 terms
    full = np.log(terms.sum(axis=0))  # the whole series: the same but in the far tail of m = 34
    np.testing.assert_allclose(got[1:][full > -30], full[full > -30], rtol=1e-8)


@pytest.mark.parametrize("kind", ["compound", "whale-compound"])
@pytest.mark.parametrize("users", [3.0, 50.0, 800.0, 1500.0, 20000.0])
def test_compound_cells_integrate_to_one_with_mean_users_times_arpdau(kind, users):
    """Series (m = 0.09, 1.5, 24 expected purchases), blend (m = 45: a geometric blend of two densities, off by
    at most 2e-5) and gamma (m = 600) regions, with day-level noise and, for the mixture, whale purchases."""
    from scipy import integrate

    import jax

    log_a, whale, tol = np.log(0.2), (-1.5, -2.0, 0.1, 500.0), 2e-5 if users == 1500.0 else 1e-8
    lp = jax.jit(lambda y: _cell_log_prob(kind, y, users, log_a, np.log(0.7), np.log(0.03), -1.5, whale)[0])
    p0 = float(np.exp(lp(0.0)))
    dens = lambda ly: float(np.exp(lp(np.exp(ly)) + ly))  # noqa: E731
    centre = np.log(users * 0.2)
    span = (centre - 80, centre + 25)  # a single Gamma(0.7) purchase has mass near zero
    total = p0 + integrate.quad(dens, *span, limit=1000, points=[centre])[0]
    mean = integrate.quad(lambda ly: dens(ly) * np.exp(ly), *span, limit=1000, points=[centre])[0]
    assert p0 == pytest.approx(np.exp(-0.03 * users), rel=1e-12)
    assert total == pytest.approx(1.0, abs=tol)
    assert mean == pytest.approx(users * 0.2, rel=tol)


@pytest.mark.parametrize("kind", ["compound", "whale-compound", "whale", "gamma", "lognormal"])
def test_revenue_draws_follow_the_cell_density(kind):
    """The predictive simulation's revenue draws (:func:`cc._draw_revenue`) have the density's zero mass, mean and
    distribution function (at its quartiles, by quadrature)."""
    from scipy import integrate

    users, log_a, log_k, log_nu, log_tau, whale = 200.0, np.log(0.3), np.log(0.8), np.log(0.03), -1.2, \
        (-1.2, -1.5, np.log(0.9), 200.0)
    import jax
    n = 400_000
    noise = {"log_k": log_k, "log_nu": log_nu, "log_tau": log_tau}
    u = jnp.full(n, users)
    y = np.asarray(cc._draw_revenue(jax.random.PRNGKey(3), jax.random.PRNGKey(4), u, jnp.log(u), jnp.full(n, log_a),
                                    noise, kind, whale if kind in cc.WHALE_LIKELIHOODS else None))
    lp = jax.jit(lambda v: _cell_log_prob(kind, v, users, log_a, log_k, log_nu, log_tau,
                                          whale if kind in cc.WHALE_LIKELIHOODS else None))
    p0 = float(np.exp(lp(0.0)[0]))
    assert (y == 0).mean() == pytest.approx(p0, abs=4 * np.sqrt(p0 * (1 - p0) / n))
    assert y.mean() == pytest.approx(users * np.exp(log_a), rel=0.02)
    dens = lambda ly: float(np.exp(lp(np.exp(ly))[0] + ly))  # noqa: E731
    for q in np.quantile(y[y > 0], [0.25, 0.5, 0.75]):
        cdf = p0 + integrate.quad(dens, np.log(q) - 80, np.log(q), limit=1000)[0]
        assert (y <= q).mean() == pytest.approx(cdf, abs=0.004)


def test_whale_compound_recovers_share_and_level_where_the_lognormal_mixture_fails():
    """Cells like the synthetic game portfolio's: a few payers per cell (Binomial(A, 3%)), each spending
    Gamma(0.8), and whale purchases (Binomial(payers, 0.5%), log-normal sd 1) carrying 20% of the revenue. By
    maximum likelihood the compound mixture finds the share, the amounts' sd and shape and the realised level;
    the log-normal mixture spends its whale component on the many small cells (share near 0, a very wide sd) and
    puts the level more than 5% low."""
    import jax
    from scipy.optimize import minimize

    rng = np.random.default_rng(5)
    cells, q, k, w, share, sd, arpdau = 20000, 0.03, 0.8, 0.005, 0.2, 1.0, 0.1
    users = np.round(np.exp(rng.uniform(np.log(20), np.log(400), cells)))
    payers = rng.binomial(users.astype(int), q)
    spend = arpdau / q
    regular = np.where(payers > 0, rng.gamma(np.maximum(payers * k, 1e-9), (1 - share) * spend / k), 0.0)
    whales = rng.binomial(payers, w)
    idx = np.repeat(np.arange(cells), whales)
    y = regular + np.bincount(idx, rng.lognormal(np.log(share * spend / w) - sd ** 2 / 2, sd, idx.size),
                              minlength=cells)
    realised = y.sum() / (users.sum() * arpdau)
    ref = float(np.median(users[y > 0]))

    def fit(kind):
        yy, u = jnp.asarray(y), jnp.asarray(users)
        f = jax.jit(jax.value_and_grad(lambda x: -jnp.sum(cc._revenue_log_prob(
            yy, u, jnp.log(u), np.log(arpdau) + x[0], x[5], x[6], x[1], kind, (x[2], x[3], x[4], ref)))))
        x0 = np.array([0.0, -1.5, -2.2, -2.0, 0.0, -1.0, -3.0])
        res = minimize(lambda x: tuple(np.asarray(v, dtype=np.float64) for v in f(jnp.asarray(x))), x0, jac=True,
                       method="L-BFGS-B")
        return np.exp(res.x[0]), sp.expit(res.x[2]), np.exp(res.x[4]), np.exp(res.x[5])

    level, s, sd_w, shape = fit("whale-compound")
    print(f"realised {realised:.3f}; compound level {level:.3f} share {s:.3f} sd {sd_w:.3f} shape {shape:.3f}")
    assert level == pytest.approx(realised, abs=0.02)
    assert s == pytest.approx(share, abs=0.03)
    assert sd_w == pytest.approx(sd, abs=0.2)
    assert shape == pytest.approx(k, abs=0.05)
    level, s, sd_w, _ = fit("whale")
    print(f"log-normal mixture: level {level:.3f} share {s:.3f} sd {sd_w:.3f}")
    assert s < 0.05 and sd_w > 3.0 and level < 0.95 * realised


def _small_table():
    table, truth = simulate_portfolio(n_apps=2, campaigns_per_app=2, days=6, seed=3, retention="bgbb")
    return table, truth


def test_make_data_arrays_and_hierarchy():
    table, _ = _small_table()
    data, index = cc.make_data(table, group_cols=("app", "campaign"), centered_min_ages=3,
                               centered_min_actives=5000)
    C = table["cohort"].nunique()
    assert data.observed.shape == (C, 6) and data.observed.sum() == len(table)
    row = table.iloc[17]
    c = index["cohorts"].index(row["cohort"])
    assert data.active[c, row["age"]] == row["active_users"] and data.revenue[c, row["age"]] == row["revenue"]
    assert data.level_sizes == (2, 4) and data.level_names == ("app", "campaign")
    # every campaign's parent is its app; every cohort's parent is its campaign
    camp_of = table.groupby("cohort")["campaign"].first()
    for i, cohort in enumerate(index["cohorts"]):
        assert index["groups"]["campaign"][data.parent[2][i]].endswith(camp_of[cohort])
    assert all(c.all() for c in data.centered[:2])  # groups are centred
    assert data.cohort_effects == ("log_ret", "log_level") and data.centered[2].shape == (2, C)
    n_act = (data.active[:, 1:] * data.observed[:, 1:]).sum(axis=1)
    assert data.centered[2][0].tolist() == (n_act >= 5000).tolist() and 0 < data.centered[2][0].sum() < C
    n_rev = (data.observed & (data.revenue > 0)).sum(axis=1)
    assert data.centered[2][1].tolist() == (n_rev >= 3).tolist()
    assert data.ref_age >= 1 and np.isfinite(data.log_arpdau_center)


def test_cohort_shapes_are_centred_only_with_a_long_history():
    """With every curve parameter at the cohort level, the retention level and the revenue level follow their
    data rules, while churn, polarisation and the tenure slope rho are centred only in cohorts with at least
    ``centered_min_shape_ages`` observed ages as well (a short cohort cannot pin its day-365 shape)."""
    table, _ = _small_table()
    kw = dict(group_cols=("app", "campaign"), cohort_effects="all", centered_min_ages=3, centered_min_actives=5000)
    data, _ = cc.make_data(table, centered_min_shape_ages=5, **kw)
    eff = list(data.cohort_effects)
    assert eff == ["log_ret", "logit_churn", "log_kappa", "log_level", "rho"]
    n_act = (data.active[:, 1:] * data.observed[:, 1:]).sum(axis=1)
    n_rev = (data.observed & (data.revenue > 0)).sum(axis=1)
    long = data.observed.sum(axis=1) >= 5
    assert 0 < long.sum() < len(long)
    cen = data.centered[-1]
    assert cen[eff.index("log_ret")].tolist() == (n_act >= 5000).tolist()
    assert cen[eff.index("log_level")].tolist() == (n_rev >= 3).tolist()
    for p in ("logit_churn", "log_kappa"):
        assert cen[eff.index(p)].tolist() == ((n_act >= 5000) & long).tolist()
    assert cen[eff.index("rho")].tolist() == ((n_rev >= 3) & long).tolist()
    short, _ = cc.make_data(table, **kw)  # default 60 ages: no 6-day cohort has a centred shape
    assert not short.centered[-1][[eff.index(p) for p in ("logit_churn", "log_kappa", "rho")]].any()


def test_redundant_level_is_dropped_and_bad_options_raise():
    table, _ = _small_table()
    one = table[table["campaign"].str.endswith("camp1")]
    data, index = cc.make_data(one, group_cols=("app", "campaign"))
    assert data.level_names == ("app",) and index["group_cols"] == ["app"]
    with pytest.raises(DataValidationError, match="retention must be one of"):
        cc.make_data(table, retention="weibull")
    with pytest.raises(DataValidationError, match="'log_c' is not a parameter of retention='bgbb'"):
        cc.make_data(table, cohort_effects=["log_c"])
    with pytest.raises(DataValidationError, match="tenure must be one of log, saturating, got 'linear'"):
        cc.make_data(table, tenure="linear")


def test_predictive_ltv_is_monotone_and_anchored():
    table, _ = _small_table()
    data, index = cc.make_data(table, group_cols=("app", "campaign"), anchored=False)
    values = cc.init_values(data)
    S = 20
    vals = {}
    for p in cc.family_params(data.retention):
        vals[f"{p}_mu"] = np.full(S, float(values[f"{p}_mu"]))
        for suffix, lvl in cc._levels(data, p):
            raw = np.asarray(values[f"{p}_{suffix}_raw"])
            loc = float(values[f"{p}_mu"])
            vals[f"{p}_{suffix}"] = np.tile(np.where(cc._centered(data, p, lvl), raw, loc + 0.2 * raw), (S, 1)) + \
                RNG.normal(0, 0.1, (S, raw.shape[0]))
    for n in ("log_k", "log_tau", "log_nu", "log_phi"):
        vals[n] = np.full(S, float(values[n]))
    draws = cc.predictive_ltv(vals, data, 60, max_draws=None, seed=1)
    assert draws.shape == (data.installs.shape[0], 61, S)
    assert (np.diff(draws, axis=1) >= -1e-6).all()  # float32 output
    obs, last = cc._observed_cumulative(data, 60)
    for c in range(len(last)):
        np.testing.assert_allclose(draws[c, : last[c] + 1, :], obs[c, : last[c] + 1, None] * np.ones((1, S)),
                                   rtol=1e-6)
    assert (draws[:, -1, :] > draws[np.arange(len(last)), last, :]).all()
    # same seed, same draws
    np.testing.assert_array_equal(draws, cc.predictive_ltv(vals, data, 60, max_draws=None, seed=1))
    # expected curve: cumulative sum of s(t) * arpdau(t) from age 0
    exp = cc.predictive_ltv(vals, data, 60, kind="expected", max_draws=None)
    inc = cc.expected_revenue_per_install(vals, data, 60)
    np.testing.assert_allclose(exp, np.cumsum(inc, axis=-1).transpose(1, 2, 0), rtol=1e-5)


def _fused_case(precision: str, retention: str = "bgbb", tenure: str = "log"):
    """Small cohorts (zero-revenue cells, a cohort-day with no active users) and random parameters."""
    table, _ = simulate_portfolio(n_apps=2, campaigns_per_app=2, days=8, seed=11, retention="bgbb",
                                  installs_range=(15, 400), horizon=30)
    table.loc[table.index[(table["age"] == 3)][:1], ["active_users", "revenue"]] = 0.0
    data, _ = cc.make_data(table, group_cols=("app", "campaign"), likelihood="normal", precision=precision,
                           retention=retention, tenure=tenure)
    C = data.installs.shape[0]
    params = _params(C, cc.param_list(data))
    params["log_ret"] = jnp.asarray(RNG.uniform(-4.0, -2.5, C))  # retention inside (0, 1) at every age
    T = data.observed.shape[1]
    assert float(jnp.max(cc._log_retention_grid(retention, params, T, data.ref_age)[:, 1:])) < 0.0
    noise = {"log_phi": jnp.asarray(2.5), "log_k": jnp.asarray(-0.4), "log_tau": jnp.asarray(-1.2),
             "log_nu": jnp.asarray(-1.7)}
    return data, params, noise


@pytest.mark.parametrize("retention, tenure", [("bgbb", "log"), ("bgbb-dw", "log"), ("bgbb-ms", "log"),
                                               ("bgbb", "saturating")])
@pytest.mark.parametrize("precision, rtol", [("float64", 1e-10), ("float32", 1e-5)])
def test_fused_cell_pass_equals_autodiff_of_the_reference(precision, rtol, retention, tenure):
    """The fused value-and-gradient (btyd_ltv.models._fused_cells; with the sBG grid inside the pass for
    ``bgbb`` with the log tenure term) against jax.grad of the sum of the double-precision cell log-likelihood,
    itself checked against scipy above."""
    import jax

    data, params, noise = _fused_case(precision, retention, tenure)
    assert (data.observed & (data.revenue == 0)).any() and (data.observed & (data.active == 0)).any()
    assert cc._fused_cells.applies(data)
    ref = jax.value_and_grad(lambda p, n: jnp.sum(cc.log_likelihood(p, n, data._replace(precision="float64"))),
                             argnums=(0, 1))(params, noise)
    got = jax.jit(jax.value_and_grad(lambda p, n: cc.total_log_likelihood(p, n, data), argnums=(0, 1)))(params, noise)
    np.testing.assert_allclose(float(got[0]), float(ref[0]), rtol=rtol)
    for part in (0, 1):
        for k, want in ref[1][part].items():
            want, have = np.asarray(want), np.asarray(got[1][part][k])
            np.testing.assert_allclose(have, want, rtol=rtol * 10, atol=rtol * 10 * np.abs(want).max(), err_msg=k)


def test_fused_pass_only_where_it_applies_and_bad_precision_raises():
    table, _ = _small_table()
    assert not cc._fused_cells.applies(cc.make_data(table)[0])  # beta-binomial actives
    assert not cc._fused_cells.applies(cc.make_data(table, likelihood="normal", revenue_likelihood="gamma")[0])
    assert not cc._fused_cells.applies(cc.make_data(table, likelihood="normal", active_col=None)[0])
    with pytest.raises(DataValidationError, match="precision must be one of"):
        cc.make_data(table, precision="half")


@pytest.mark.parametrize("T", [1, 5, 16, 17, 365])
def test_blocked_cumsum_equals_numpy(T):
    x = RNG.normal(size=(3, T))
    np.testing.assert_allclose(np.asarray(cc._fused_cells.cumsum(jnp.asarray(x))), np.cumsum(x, axis=1),
                               rtol=1e-12, atol=1e-12)
    reverse = np.flip(np.cumsum(np.flip(x, axis=1), axis=1), axis=1)  # y_t = sum_{s >= t} x_s
    np.testing.assert_allclose(np.asarray(cc._fused_cells.cumsum(jnp.asarray(x), reverse=True)), reverse,
                               rtol=1e-12, atol=1e-12)


def test_mass_blocks_name_latent_sites_of_the_model():
    """Every site of the dense blocks is a latent site of the model, each at most once, and every group level
    pairs the retention shape parameters (their posterior correlation is close to -1)."""
    import jax
    from numpyro.infer.util import initialize_model

    table, _ = _small_table()
    for retention in ("bgbb", "bdw"):
        data, _ = cc.make_data(table, group_cols=("app", "campaign"), retention=retention)
        blocks = cc.mass_blocks(data)
        z = initialize_model(jax.random.PRNGKey(0), cc.model, model_kwargs={"data": data},
                             init_strategy=cc.init_strategy(data)).param_info.z
        flat = [site for block in blocks for site in block]
        assert set(flat) <= set(z) and len(flat) == len(set(flat))
        assert ("logit_churn_campaign_raw", "log_kappa_campaign_raw") in blocks
        assert ("logit_churn_app_raw", "log_kappa_app_raw") in blocks
        assert not any("cohort" in site for site in flat)


@pytest.mark.parametrize("effects", [None, "all"])
def test_log_kappa_sampled_as_log_a_keeps_the_normal_prior_on_log_kappa(effects):
    """At its finest level a centred log_kappa is sampled as ``log a = log sigmoid(logit_churn) + log_kappa``: the
    deterministic site is ``raw - log sigmoid(logit_churn)`` and the prior factor is the normal density of that
    value around its parent (a unit-Jacobian change of coordinates, so the model is unchanged). The starting
    point puts log_kappa at its prior location."""
    from numpyro import handlers
    from scipy.stats import norm

    table, _ = _small_table()
    data, _ = cc.make_data(table, group_cols=("app", "campaign"), cohort_effects=effects, centered_min_shape_ages=3,
                           anchored=False)
    suffix = cc._levels(data, "log_kappa")[-1][0]
    rng = np.random.default_rng(3)
    init = cc.init_values(data)
    z = {k: jnp.asarray(np.asarray(v) + 0.3 * rng.standard_normal(np.shape(v))) for k, v in init.items()}
    z = {k: (jnp.abs(v) + 0.05 if "_sd_" in k else v) for k, v in z.items()}
    tr = handlers.trace(handlers.substitute(cc.model, data=z)).get_trace(data)
    churn = np.asarray(cc._level_value({k: v["value"] for k, v in tr.items()}, data, "logit_churn",
                                       cc._levels(data, "log_kappa")[-1][1]))
    raw = np.asarray(z[f"log_kappa_{suffix}_raw"])
    value = np.asarray(tr[f"log_kappa_{suffix}"]["value"])
    centred = cc._centered(data, "log_kappa", cc._levels(data, "log_kappa")[-1][1])
    assert centred.any()
    np.testing.assert_allclose(value[centred], (raw + np.log1p(np.exp(-churn)))[centred], rtol=1e-12)
    parents = {f"log_kappa_{s}": tr[f"log_kappa_{s}"]["value"] for s, _ in cc._levels(data, "log_kappa")}
    levels = cc._levels(data, "log_kappa")
    parent = (np.asarray(parents[f"log_kappa_{levels[-2][0]}"])[np.asarray(data.parent[levels[-1][1]])]
              if len(levels) > 1 else float(z["log_kappa_mu"]))
    sd = float(z[f"log_kappa_sd_{suffix}"])
    expected = np.where(centred, norm.logpdf(value, parent, sd), norm.logpdf(raw)).sum()
    np.testing.assert_allclose(float(tr[f"log_kappa_{suffix}_prior"]["fn"].log_factor), expected, rtol=1e-10)
    start = handlers.trace(handlers.substitute(cc.model, data=init)).get_trace(data)
    assert np.allclose(np.asarray(start[f"log_kappa_{suffix}"]["value"])[centred], 0.0, atol=1e-12)


def _tree_posterior(data, p, level_values, sds, loc, scale):
    """Dense Gaussian conditioning, written independently of the model's two-pass recursion: the portfolio mean
    and the conditioned group elements of ``p`` given its independent elements (``cc.independent``; their
    values ``level_values[lvl]``). Prior: ``mu ~ N(loc, scale^2)``, every element ``N(parent, sd_level^2)``, so
    two nodes covary by ``scale^2`` plus the variances of the levels on their common path. Returns the
    posterior mean and covariance of the hidden nodes (``mu``, then the levels above the finest in order)."""
    levels = cc._levels(data, p)
    indep = cc.independent(data, p)
    paths = {}  # (level, index) -> path of (level, index) pairs from the top
    for i, (suffix, lvl) in enumerate(levels):
        parent = np.asarray(data.parent[lvl])
        for j in range(len(parent)):
            up = () if i == 0 else paths[(levels[i - 1][1], int(parent[j]))]
            paths[(lvl, j)] = up + ((lvl, j),)
    hidden = [()] + [paths[(lvl, j)] for _, lvl in levels[:-1] for j in np.flatnonzero(~indep[lvl])]
    observed = [paths[(lvl, j)] for _, lvl in levels for j in np.flatnonzero(indep[lvl])]
    values = np.array([level_values[lvl][j] for _, lvl in levels for j in np.flatnonzero(indep[lvl])])

    def cov(a, b):
        common = [x for x, y in zip(a, b) if x == y]
        return scale ** 2 + sum(sds[lvl] ** 2 for lvl, _ in common)

    S_hh = np.array([[cov(a, b) for b in hidden] for a in hidden])
    S_ho = np.array([[cov(a, b) for b in observed] for a in hidden])
    S_oo = np.array([[cov(a, b) for b in observed] for a in observed])
    mean = loc + S_ho @ np.linalg.solve(S_oo, values - loc)
    post = S_hh - S_ho @ np.linalg.solve(S_oo, S_ho.T)
    return mean, post


@pytest.mark.parametrize("effects", [None, "all"])
def test_anchored_parents_change_coordinates_not_the_model(effects):
    """Anchored group elements (sampled top-down from their normal conditional given their parent and the
    independent elements below them) are a change of coordinates: at a random point the anchored log density
    equals the log density of the same values in parent-relative coordinates (``anchored=False``) plus ``log|J|
    = 1/2 log det Cov(conditioned | independent elements)`` (the product of the conditional sds of a triangular
    map), and at the starting point (``eta = 0``) the portfolio mean and every conditioned group element are the
    posterior mean given the independent elements. Both are checked against dense Gaussian conditioning; with
    ``cohort_effects="all"`` the shape parameters have no centred cohorts, so their campaigns are independent."""
    from numpyro import handlers
    from numpyro.infer.util import log_density

    table, _ = _small_table()
    kw = dict(group_cols=("app", "campaign"), cohort_effects=effects, centered_min_ages=3,
              centered_min_actives=5000, centered_min_shape_ages=4, revenue_likelihood="whale")
    new, _ = cc.make_data(table, **kw)
    old, _ = cc.make_data(table, anchored=False, **kw)
    pr = cc.CohortCurvePriors()
    rng = np.random.default_rng(5)
    z = {k: np.asarray(v) + 0.3 * rng.standard_normal(np.shape(v)) for k, v in cc.init_values(new).items()}
    z = {k: jnp.asarray(np.abs(v) + 0.05 if "_sd_" in k else v) for k, v in z.items()}
    ld_new, tr = log_density(cc.model, (new,), {}, z)
    vals = {k: v["value"] for k, v in tr.items() if v["type"] == "deterministic"}
    z_old = {k: v for k, v in z.items() if not k.endswith("_raw")}
    log_jac, anchored = 0.0, 0
    for p in cc.param_list(new):
        if not cc.is_anchored(new, p):  # the whale parameters keep their coordinates
            z_old.update({k: v for k, v in z.items() if k.startswith(p) and k.endswith("_raw")})
            continue
        levels = cc._levels(new, p)
        sds = {lvl: float(z[f"{p}_sd_{s}"]) for s, lvl in levels}
        loc, scale = cc._prior_loc_scale(p, new, pr)
        level_values = {lvl: np.asarray(vals[f"{p}_{s}"]) for s, lvl in levels}
        _, post = _tree_posterior(new, p, level_values, sds, loc, scale)
        log_jac += 0.5 * np.linalg.slogdet(post)[1]
        anchored += len(post)
        z_old[f"{p}_mu"] = vals[f"{p}_mu"]
        parent = np.asarray(vals[f"{p}_mu"])[None]
        for suffix, lvl in levels:
            value, sd = np.asarray(vals[f"{p}_{suffix}"]), sds[lvl]
            offset = np.asarray(cc._raw_offset(vals, new, p, lvl))
            centred = cc._centered(old, p, lvl)
            z_old[f"{p}_{suffix}_raw"] = jnp.asarray(np.where(centred, value - offset,
                                                              (value - parent[new.parent[lvl]]) / sd))
            parent = value
    ld_old, tr_old = log_density(cc.model, (old,), {}, z_old)
    assert anchored > 0
    # both kinds of group element are exercised: independent ones (no centred children) and conditioned ones
    kinds = np.concatenate([cc.independent(new, p)[1] for p in cc.param_list(new) if cc.is_anchored(new, p)])
    assert kinds.any() and not kinds.all()
    for k, v in vals.items():
        np.testing.assert_allclose(np.asarray(tr_old[k]["value"]), np.asarray(v), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(float(ld_new), float(ld_old) + log_jac, rtol=1e-10)

    start = dict(cc.init_values(new))
    start.update({k: jnp.asarray(0.1 + 0.2 * rng.random()) for k in start if "_sd_" in k})  # distinct sds
    for p in cc.param_list(new):  # independent elements away from the prior location
        if cc.is_anchored(new, p):
            for (suffix, lvl) in cc._levels(new, p):
                shift = np.where(cc.independent(new, p)[lvl], rng.standard_normal(len(new.parent[lvl])), 0.0)
                start[f"{p}_{suffix}_raw"] = start[f"{p}_{suffix}_raw"] + jnp.asarray(shift)
    tr0 = handlers.trace(handlers.substitute(cc.model, data=start)).get_trace(new)
    for p in cc.param_list(new):
        if not cc.is_anchored(new, p):
            continue
        levels = cc._levels(new, p)
        sds = {lvl: float(start[f"{p}_sd_{s}"]) for s, lvl in levels}
        loc, scale = cc._prior_loc_scale(p, new, pr)
        indep = cc.independent(new, p)
        level_values = {lvl: np.asarray(tr0[f"{p}_{s}"]["value"]) for s, lvl in levels}
        mean, _ = _tree_posterior(new, p, level_values, sds, loc, scale)
        got = np.concatenate([np.atleast_1d(np.asarray(tr0[f"{p}_mu"]["value"]))]
                             + [level_values[lvl][~indep[lvl]] for _, lvl in levels[:-1]])
        np.testing.assert_allclose(got, mean, rtol=1e-9, atol=1e-9)


def test_level_offsets_change_coordinates_not_the_model():
    """Centred cohort retention levels are sampled relative to the level their group's curve shape implies at the
    cohort's effective age (``raw = log_ret + log S(t*) - log S(ref_age)``): a function of the shape alone, so
    at the same parameter values the log density equals that of ``level_offsets=False`` (Jacobian 1), and the
    starting point puts every level at its prior location either way. The effective age is the information-
    weighted geometric mean observed age: a cohort observed at ages 0..k >= 1 has ``1 <= t* <= k``."""
    from numpyro import handlers
    from numpyro.infer.util import log_density

    table, _ = _small_table()
    kw = dict(group_cols=("app", "campaign"), centered_min_ages=3, centered_min_actives=5000)
    new, _ = cc.make_data(table, **kw)
    old, _ = cc.make_data(table, level_offsets=False, **kw)
    assert old.level_ages is None and new.level_ages is not None
    later = new.n_observed >= 2  # a cohort seen at age 0 only gets the reference age
    assert np.all(new.level_ages[later] >= 1) and np.all(new.level_ages[later] <= new.n_observed[later] - 1 + 1e-9)
    np.testing.assert_allclose(new.level_ages[~later], new.ref_age)
    cohort = len(new.level_sizes)
    centred = new.centered[-1][new.cohort_effects.index("log_ret")]
    assert 0 < centred.sum() < len(centred)  # both kinds of cohort element are exercised
    rng = np.random.default_rng(8)
    z = {k: np.asarray(v) + 0.3 * rng.standard_normal(np.shape(v)) for k, v in cc.init_values(new).items()}
    z = {k: jnp.asarray(np.abs(v) + 0.05 if "_sd_" in k else v) for k, v in z.items()}
    ld_new, tr = log_density(cc.model, (new,), {}, z)
    vals = {k: v["value"] for k, v in tr.items() if v["type"] == "deterministic"}
    offset = np.asarray(cc._raw_offset(vals, new, "log_ret", cohort))
    assert np.ptp(offset) > 1e-3  # cohorts of different ages get different offsets
    z_old = dict(z)
    z_old["log_ret_cohort_raw"] = jnp.asarray(np.where(centred, np.asarray(vals["log_ret_cohort"]),
                                                       np.asarray(z["log_ret_cohort_raw"])))
    ld_old, tr_old = log_density(cc.model, (old,), {}, z_old)
    for k, v in vals.items():
        np.testing.assert_allclose(np.asarray(tr_old[k]["value"]), np.asarray(v), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(float(ld_new), float(ld_old), rtol=1e-12)
    for data in (new, old):
        start = handlers.trace(handlers.substitute(cc.model, data=cc.init_values(data))).get_trace(data)
        level = np.asarray(start["log_ret_cohort"]["value"])
        np.testing.assert_allclose(level[centred], new.log_retention_center, rtol=1e-12)


def test_effective_ages_weight_the_ages_that_pin_the_level():
    """``t*`` is ``exp`` of the ``s / (1 - s)``-weighted mean ``log t`` over the observed ages ``>= 1``: checked
    by hand on two cohorts, one of them with a gap; equal weights without active users."""
    observed = np.array([[1, 1, 1, 1, 0], [1, 1, 0, 1, 1]], dtype=bool)
    installs = np.array([100.0, 50.0])
    active = np.array([[100.0, 50, 20, 10, 0], [50, 25, 0, 10, 5]])
    got = cc._effective_ages(observed, active, installs, ref_age=2.0)
    w0 = np.array([0.5 / 0.5, 0.2 / 0.8, 0.1 / 0.9])
    w1 = np.array([0.5 / 0.5, 0.2 / 0.8, 0.1 / 0.9])
    np.testing.assert_allclose(got[0], np.exp((w0 * np.log([1, 2, 3])).sum() / w0.sum()), rtol=1e-12)
    np.testing.assert_allclose(got[1], np.exp((w1 * np.log([1, 3, 4])).sum() / w1.sum()), rtol=1e-12)
    flat = cc._effective_ages(observed, None, installs, ref_age=2.0)
    np.testing.assert_allclose(flat, [np.exp(np.log([1, 2, 3]).mean()), np.exp(np.log([1, 3, 4]).mean())])
    only_day0 = cc._effective_ages(np.array([[True, False]]), np.array([[5.0, 0.0]]), np.array([5.0]), 3.0)
    np.testing.assert_allclose(only_day0, [3.0])
