"""Gamma-Gamma: likelihood against lifetimes and numerical integration; published CDNOW estimates; data checks."""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest
import scipy.integrate
import scipy.stats

from btyd_ltv.errors import DataValidationError
from btyd_ltv.inference import fit
from btyd_ltv.models import gamma_gamma as gg

lifetimes = pytest.importorskip("lifetimes")

# Fader & Hardie (2013), "The Gamma-Gamma Model of Monetary Value", p. 4: MLE on the CDNOW 39-week calibration
# sample (946 repeat customers).
PUBLISHED = {"p": 6.25, "q": 3.74, "gamma": 15.44}
# lifetimes 0.11.3 GammaGammaFitter on the same data (its ``v`` is our ``gamma``): estimates and standard errors.
LIFETIMES_MLE = {"p": 6.2488, "q": 3.7446, "gamma": 15.4477}
LIFETIMES_SE = {"p": 1.190, "q": 0.290, "gamma": 4.160}


def _repeat(summary):
    rep = summary[summary["frequency"] > 0]
    return rep["frequency"].to_numpy(float), rep["monetary_value"].to_numpy(float)


def test_log_likelihood_matches_lifetimes_at_random_points(cdnow_summary):
    x, m = _repeat(cdnow_summary)
    rng = np.random.default_rng(0)
    for _ in range(20):
        p, q, gamma = rng.uniform(0.3, 15), rng.uniform(0.5, 10), rng.uniform(0.5, 60)
        w = rng.uniform(0.5, 2.0, size=x.size)
        rows = gg.log_likelihood_rows(p, q, gamma, x, m)
        ours = float(np.sum(w * np.asarray(rows)))
        merged = float(gg.log_likelihood(p, q, gamma, gg.make_data(x, m, w)))
        ref = -lifetimes.GammaGammaFitter._negative_log_likelihood(np.log([p, q, gamma]), x, m, w, 0.0) * w.sum()
        assert ours == pytest.approx(ref, rel=1e-8)
        assert merged == pytest.approx(ref, rel=1e-8)


def _mp_log_likelihood(p, q, gamma, x, zbar) -> float:
    """Fader & Hardie (2013) eq. 3 summed over rows, in 60-digit arithmetic."""
    mp.mp.dps = 60
    p, q, gamma = mp.mpf(p), mp.mpf(q), mp.mpf(gamma)
    total = mp.mpf(0)
    for xi, zi in zip(x, zbar):
        xi, zi = mp.mpf(xi), mp.mpf(zi)
        px = p * xi
        total += (mp.loggamma(px + q) - mp.loggamma(px) - mp.loggamma(q) + q * mp.log(gamma) + px * mp.log(xi)
                  + (px - 1) * mp.log(zi) - (px + q) * mp.log(gamma + xi * zi))
    return float(total)


def test_log_likelihood_far_out_on_the_p_ridge(cdnow_summary):
    """As p -> inf with the mean spend p gamma / (q - 1) fixed, the likelihood tends to a finite limit (about
    84 nats below its maximum on CDNOW). The total must stay below the maximum there: a spurious high value
    far out (cancellation between large sums) turns the posterior's mode into p = inf."""
    x, m = _repeat(cdnow_summary)
    data = gg.make_data(cdnow_summary["frequency"], cdnow_summary["monetary_value"])
    at_mle = float(gg.log_likelihood(*LIFETIMES_MLE.values(), data))
    assert at_mle == pytest.approx(_mp_log_likelihood(*LIFETIMES_MLE.values(), x, m), abs=1e-6)
    q, mean_spend = 3.76, 35.0
    for p in (1e3, 1e6):
        gamma = mean_spend * (q - 1) / p
        assert float(gg.log_likelihood(p, q, gamma, data)) == pytest.approx(
            _mp_log_likelihood(p, q, gamma, x, m), abs=1e-3)
    for p in (1e9, 1e12, 1e15, 1e17):
        gamma = mean_spend * (q - 1) / p
        ll = float(gg.log_likelihood(p, q, gamma, data))
        assert np.isfinite(ll) and ll < at_mle - 50.0, (p, ll, at_mle)


def _integrated_density(zbar, x, p, q, gamma):
    """f(zbar | x) = int_0^inf Gamma(zbar; shape p x, rate nu x) Gamma(nu; shape q, rate gamma) dnu."""

    def integrand(nu):
        return scipy.stats.gamma.pdf(zbar, p * x, scale=1.0 / (nu * x)) * scipy.stats.gamma.pdf(
            nu, q, scale=1.0 / gamma
        )

    # split at the prior mode-ish scale so quad sees the peak
    mid = q / gamma
    parts = [scipy.integrate.quad(integrand, lo, hi, epsabs=0, epsrel=1e-13, limit=500)[0]
             for lo, hi in ((0, mid), (mid, 10 * mid), (10 * mid, np.inf))]
    return sum(parts)


@pytest.mark.parametrize(
    "p, q, gamma",
    [(6.25, 3.74, 15.44), (0.8, 1.5, 3.0), (2.0, 8.0, 40.0)],
)
def test_log_likelihood_rows_match_numerical_integration(p, q, gamma):
    x = np.array([1.0, 2.0, 5.0, 12.0, 3.0])
    zbar = np.array([10.0, 35.5, 2.3, 80.0, 18.0])
    ours = np.exp(np.asarray(gg.log_likelihood_rows(p, q, gamma, x, zbar)))
    ref = np.array([_integrated_density(z, xi, p, q, gamma) for z, xi in zip(zbar, x)])
    np.testing.assert_allclose(ours, ref, rtol=1e-7)


def test_conditional_expected_average_spend_matches_lifetimes(cdnow_summary):
    x, m = _repeat(cdnow_summary)
    ggf = lifetimes.GammaGammaFitter().fit(x, m)
    p, q, v = ggf.params_["p"], ggf.params_["q"], ggf.params_["v"]
    # all customers, including x = 0 (population mean)
    freq = cdnow_summary["frequency"].to_numpy(float)
    spend = cdnow_summary["monetary_value"].to_numpy(float)
    ours = gg.conditional_expected_average_spend(freq, spend, p, q, v)
    ref = ggf.conditional_expected_average_profit(freq, spend)
    np.testing.assert_allclose(ours, np.asarray(ref), rtol=1e-12)
    assert np.all(ours[freq == 0] == pytest.approx(float(gg.expected_average_spend(p, q, v)), rel=1e-12))
    # Fader & Hardie (2013) eq. 4: population mean p gamma / (q - 1)
    assert float(gg.expected_average_spend(p, q, v)) == pytest.approx(p * v / (q - 1), rel=1e-14)


def test_conditional_expected_average_spend_broadcasts_over_draws():
    freq = np.array([0.0, 1.0, 4.0])
    spend = np.array([0.0, 20.0, 7.5])
    p = np.array([[2.0], [6.0]])
    q = np.array([[3.0], [4.0]])
    gamma = np.array([[10.0], [15.0]])
    out = gg.conditional_expected_average_spend(freq, spend, p, q, gamma)
    assert out.shape == (2, 3)
    # p (gamma + x zbar) / (p x + q - 1), by hand
    assert out[0, 0] == pytest.approx(2 * 10 / 2)
    assert out[1, 2] == pytest.approx(6 * (15 + 4 * 7.5) / (6 * 4 + 4 - 1))


def test_map_with_flat_priors_is_the_mle(cdnow_summary):
    data = gg.make_data(cdnow_summary["frequency"], cdnow_summary["monetary_value"])
    idata = fit(gg, data, method="map", priors=gg.GammaGammaPriors(kind="flat"), num_samples=4000, seed=0)
    for k in gg.PARAM_NAMES:
        assert idata.attrs[f"map_{k}"] == pytest.approx(LIFETIMES_MLE[k], rel=5e-4)
        assert idata.attrs[f"map_{k}"] == pytest.approx(PUBLISHED[k], rel=5e-3)
        # Laplace draws: log-normal around the MLE with the delta-method standard error
        assert float(idata.posterior[k].std()) == pytest.approx(LIFETIMES_SE[k], rel=0.12)


@pytest.mark.parametrize("seed", [0, 1])
def test_map_reports_convergence_at_the_mle(cdnow_summary, seed):
    """map_converged must say 1 when the optimiser has reached the MLE (to 1e-8 here): the flag is what a user
    checks before trusting a MAP fit."""
    data = gg.make_data(cdnow_summary["frequency"], cdnow_summary["monetary_value"])
    idata = fit(gg, data, method="map", priors=gg.GammaGammaPriors(kind="flat"), num_samples=10, seed=seed)
    assert idata.attrs["map_p"] == pytest.approx(6.248802, rel=1e-6)
    assert idata.attrs["map_converged"] == 1


def test_make_data_merges_identical_rows_and_drops_non_repeaters():
    data = gg.make_data([0, 2, 2, 3, 2], [0.0, 10.0, 10.0, 5.0, 12.0])
    np.testing.assert_array_equal(np.asarray(data.x), [2.0, 2.0, 3.0])
    np.testing.assert_allclose(np.asarray(data.xz) / np.asarray(data.x), [10.0, 12.0, 5.0])
    np.testing.assert_array_equal(np.asarray(data.weights), [2.0, 1.0, 1.0])
    assert data.spend_scale == pytest.approx((10 * 2 + 12 + 5) / 4)


def test_nuts_reproduces_published_cdnow_estimates(cdnow_gamma_gamma_nuts):
    import arviz as az

    post = cdnow_gamma_gamma_nuts.posterior
    for k, v in PUBLISHED.items():
        assert float(post[k].mean()) == pytest.approx(v, rel=0.05), k
        lo, hi = np.asarray(az.hdi(cdnow_gamma_gamma_nuts, var_names=[k], hdi_prob=0.94)[k])
        assert lo < v < hi, (k, lo, v, hi)
    assert int(cdnow_gamma_gamma_nuts.sample_stats["diverging"].sum()) == 0


def test_make_data_needs_repeat_customers():
    with pytest.raises(DataValidationError, match="frequency"):
        gg.make_data([0, 0, 0], [0.0, 0.0, 0.0])


@pytest.mark.parametrize("bad", [0.0, -3.0, np.nan])
def test_make_data_needs_positive_spend(bad):
    with pytest.raises(DataValidationError, match=r"monetary_value' row 2"):
        gg.make_data([1, 0, 2, 3], [5.0, 0.0, bad, 4.0])


def test_priors_kind_is_checked():
    with pytest.raises(ValueError, match="kind"):
        gg.GammaGammaPriors(kind="uniform")
