"""Bayesian ZILN regression: likelihood vs scipy, parameter recovery from simulations, predictive functions vs
closed forms and quadrature."""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pytest
import scipy.integrate
import scipy.stats
from scipy.special import expit, log_expit

from btyd_ltv.data.simulate import simulate_ziln
from btyd_ltv.inference import fit
from btyd_ltv.models import ziln


def _scipy_ziln_logpdf(y, logit_p, loc, scale):
    """Independent reference: Bernoulli(p) x LogNormal with scipy."""
    pos = y > 0
    out = np.where(pos, log_expit(logit_p), log_expit(-logit_p))
    ln = scipy.stats.lognorm.logpdf(np.where(pos, y, 1.0), s=scale, scale=np.exp(loc))
    return out + np.where(pos, ln, 0.0)


def _random_params(rng, k, n_groups=0):
    params = {
        "intercept_p": rng.normal(), "coef_p": rng.normal(size=k), "intercept_loc": rng.normal(3, 1),
        "coef_loc": rng.normal(size=k), "intercept_scale": rng.normal(), "coef_scale": 0.3 * rng.normal(size=k),
    }
    if n_groups:
        params.update(group_sd_p=0.5, group_sd_loc=0.7, group_p=rng.normal(size=n_groups),
                      group_loc=rng.normal(size=n_groups))
    return params


def _reference_predictors(params, X, g, n_groups):
    lp = params["intercept_p"] + X @ params["coef_p"]
    loc = params["intercept_loc"] + X @ params["coef_loc"]
    if n_groups:
        lp = lp + params["group_p"][g]
        loc = loc + params["group_loc"][g]
    scale = np.log1p(np.exp(params["intercept_scale"] + X @ params["coef_scale"])) + 1e-6
    return lp, loc, scale


@pytest.mark.parametrize("n_groups", [0, 4])
def test_log_likelihood_matches_scipy(n_groups):
    rng = np.random.default_rng(1)
    n, k = 300, 3
    X = rng.normal(size=(n, k))
    y = np.where(rng.random(n) < 0.4, rng.lognormal(3, 1.5, n), 0.0)
    g = rng.integers(0, max(n_groups, 1), n)
    data = ziln.make_data(X, y, g if n_groups else None, n_groups)
    for _ in range(5):
        params = _random_params(rng, k, n_groups)
        ref = _scipy_ziln_logpdf(y, *_reference_predictors(params, X, g, n_groups)).sum()
        assert float(ziln.log_likelihood(params, data)) == pytest.approx(ref, rel=1e-10)


def test_model_likelihood_term_is_log_likelihood():
    from numpyro.infer.util import log_likelihood as nl_log_likelihood

    rng = np.random.default_rng(2)
    X = rng.normal(size=(50, 2))
    y = np.where(rng.random(50) < 0.5, rng.lognormal(2, 1, 50), 0.0)
    data = ziln.make_data(X, y)
    params = _random_params(rng, 2)
    sites = {k: v for k, v in params.items() if not k.startswith("coef")}
    for name in ("coef_p", "coef_loc", "coef_scale"):  # the model samples theta = R beta (QR reparameterisation)
        sites[f"{name}_qr"] = np.linalg.solve(data.R_inv, params[name])
    ll = nl_log_likelihood(ziln.model, {k: np.asarray(v)[None] for k, v in sites.items()}, data=data)["y"]
    assert float(ll.sum()) == pytest.approx(float(ziln.log_likelihood(params, data)), rel=1e-12)


def test_make_data_rejects_all_zero_target():
    with pytest.raises(ValueError, match="no positive"):
        ziln.make_data(np.zeros((3, 1)), np.zeros(3))


def test_map_recovers_simulated_parameters():
    """20,000 simulated customers: every coefficient within 4 Laplace sd of the truth."""
    table, truth = simulate_ziln(20_000, intercept_p=-0.5, coef_p=(1.0, -0.5), intercept_loc=3.0,
                                 coef_loc=(0.5, 0.0), intercept_scale=0.8, coef_scale=(0.2, 0.0), seed=7)
    data = ziln.make_data(table[["x0", "x1"]].to_numpy(), table["y"].to_numpy())
    idata = fit(ziln, data, method="map", num_samples=2000, seed=0)
    for name in ziln.PARAM_NAMES:
        est = idata.posterior[name].values.reshape(2000, -1)
        true = np.atleast_1d(truth[name])
        z = (est.mean(axis=0) - true) / est.std(axis=0)
        assert np.all(np.abs(z) < 4), (name, est.mean(axis=0), true)


def test_nuts_with_groups_recovers_truth_and_is_reproducible():
    table, truth = simulate_ziln(3000, coef_p=(1.0,), coef_loc=(0.5,), n_groups=6, group_sd_p=0.6,
                                 group_sd_loc=0.8, seed=11)
    g = np.array([int(v[1:]) for v in table["group"]])
    data = ziln.make_data(table[["x0"]].to_numpy(), table["y"].to_numpy(), g, 6)
    kw = dict(num_chains=2, num_warmup=300, num_samples=300, seed=3, chain_method="sequential")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = fit(ziln, data, **kw)
        again = fit(ziln, data, **kw)
    np.testing.assert_array_equal(idata.posterior["coef_loc"].values, again.posterior["coef_loc"].values)
    assert idata.posterior["group_p"].dims[-1] == "group"
    assert int(idata.sample_stats["diverging"].sum()) == 0
    summ = az.summary(idata, var_names=["coef_p", "coef_loc", "intercept_scale"], hdi_prob=0.99)
    assert (summ["r_hat"] < 1.02).all()
    for name, true in (("coef_p", truth["coef_p"][0]), ("coef_loc", truth["coef_loc"][0]),
                       ("intercept_scale", truth["intercept_scale"])):
        row = summ.loc[name + "[x0]" if name.startswith("coef") else name]
        assert row["hdi_0.5%"] <= true <= row["hdi_99.5%"], (name, row)
    # group effects: the estimated intercept shifts track the simulated ones
    eff = idata.posterior["group_loc"].mean(("chain", "draw")).values
    assert np.corrcoef(eff, truth["group_sd_loc"] * truth["z_loc"])[0, 1] > 0.9


def _idata(params: dict, n_draws: int = 1, groups: list[str] | None = None):
    post = {k: np.broadcast_to(np.asarray(v, dtype=float), (1, n_draws) + np.shape(v)).copy()
            for k, v in params.items()}
    dims = {k: ["feature"] for k in ("coef_p", "coef_loc", "coef_scale")}
    if groups:
        dims.update(group_p=["group"], group_loc=["group"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return az.from_dict(posterior=post, dims=dims)


def test_predictive_summary_of_one_draw_is_the_ziln_law():
    rng = np.random.default_rng(4)
    params = _random_params(rng, 2)
    X = rng.normal(size=(40, 2))
    lp, loc, scale = _reference_predictors(params, X, None, 0)
    p = expit(lp)
    cols = ziln.predictive_summary(_idata(params), X, taus=(0.05, 0.5, 0.9))
    np.testing.assert_allclose(cols["prediction"], p * np.exp(loc + scale**2 / 2), rtol=1e-10)
    np.testing.assert_allclose(cols["p_positive"], p, rtol=1e-12)
    np.testing.assert_allclose(cols["expected_q05"], cols["prediction"], rtol=1e-12)
    for tau, name in ((0.05, "q05"), (0.5, "q50"), (0.9, "q90")):
        u = (tau - (1 - p)) / p
        ref = np.where(u > 0, scipy.stats.lognorm.ppf(np.clip(u, 1e-300, 1), s=scale, scale=np.exp(loc)), 0.0)
        np.testing.assert_allclose(cols[name], ref, rtol=1e-6, atol=1e-9)
    totals = ziln.population_totals(_idata(params), X)
    assert totals["expected"]["mean"] == pytest.approx(cols["prediction"].sum(), rel=1e-10)


def test_sample_predictive_and_pointwise_log_likelihood():
    rng = np.random.default_rng(5)
    params = _random_params(rng, 1)
    params["coef_scale"] = np.array([0.0])
    params["intercept_scale"] = -0.5  # scale ~ 0.47: finite higher moments for a tight Monte Carlo check
    X = rng.normal(size=(3, 1))
    lp, loc, scale = _reference_predictors(params, X, None, 0)
    S = 20_000
    draws = ziln.sample_predictive(_idata(params, S), X, max_draws=None, seed=1)
    assert draws.shape == (3, S)
    p = expit(lp)
    assert np.all(np.abs((draws > 0).mean(axis=1) - p) < 4 * np.sqrt(p * (1 - p) / S))
    mean = p * np.exp(loc + scale**2 / 2)
    var = p * np.exp(2 * loc + 2 * scale**2) - mean**2
    assert np.all(np.abs(draws.mean(axis=1) - mean) < 5 * np.sqrt(var / S))
    y = np.array([0.0, 3.0, 250.0])
    ll = ziln.pointwise_log_likelihood(_idata(params, 2), X, y)
    np.testing.assert_allclose(ll, np.repeat(_scipy_ziln_logpdf(y, lp, loc, scale)[:, None], 2, 1), rtol=1e-10)


def test_unseen_group_integrates_over_the_group_distribution():
    """A customer of a group not seen in fitting gets P(y > 0) = E_u[sigmoid(a + u)], u ~ N(0, sd_p)."""
    params = {"intercept_p": 0.3, "coef_p": np.zeros(1), "intercept_loc": 2.0, "coef_loc": np.zeros(1),
              "intercept_scale": 0.0, "coef_scale": np.zeros(1), "group_sd_p": 1.2, "group_sd_loc": 0.5,
              "group_p": np.array([2.0, -2.0]), "group_loc": np.array([0.1, -0.1])}
    S = 40_000
    idata = _idata(params, S, groups=["a", "b"])
    X = np.zeros((3, 1))
    cols = ziln.predictive_summary(idata, X, np.array([0, 1, -1]), taus=(0.5,), max_draws=None, seed=2)
    ref, _ = scipy.integrate.quad(lambda u: expit(0.3 + u) * scipy.stats.norm.pdf(u, 0, 1.2), -12, 12)
    assert cols["p_positive"][0] == pytest.approx(expit(2.3), rel=1e-12)
    assert cols["p_positive"][1] == pytest.approx(expit(-1.7), rel=1e-12)
    assert cols["p_positive"][2] == pytest.approx(ref, abs=4 * 0.5 / np.sqrt(S))


def test_group_parameterisation_follows_the_signal_to_noise_ratio():
    """Large, well-measured group effects -> centred; effects far below their standard errors -> non-centred."""
    big, _ = simulate_ziln(3000, coef_p=(1.0,), coef_loc=(0.5,), n_groups=6, group_sd_p=0.6, group_sd_loc=0.8,
                           seed=11)
    small, _ = simulate_ziln(3000, coef_p=(1.0,), coef_loc=(0.5,), n_groups=6, group_sd_p=0.01,
                             group_sd_loc=0.01, seed=11)
    for table, expected in ((big, True), (small, False)):
        g = np.array([int(v[1:]) for v in table["group"]])
        data = ziln.make_data(table[["x0"]].to_numpy(), table["y"].to_numpy(), g, 6)
        assert (data.centered_p, data.centered_loc) == (expected, expected)
    # the non-centred form samples the standardised effects and keeps the effects as a deterministic site
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = fit(ziln, data, num_chains=1, num_warmup=50, num_samples=20, seed=0, warn=False)
    assert {"group_p_decentered", "group_p", "group_loc_decentered"} <= set(idata.posterior.data_vars)
