"""BG/NBD: likelihood and predictions against lifetimes and mpmath; published CDNOW estimates; recovery."""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest

from btyd_ltv.data.compress import compress_rfm
from btyd_ltv.data.simulate import cdnow_like_T, simulate_bgnbd
from btyd_ltv.inference import fit
from btyd_ltv.models import bgnbd

lifetimes = pytest.importorskip("lifetimes")

# Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way", Marketing Science 24(2), p. 279:
# MLE on the CDNOW 39-week calibration sample.
PUBLISHED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
# lifetimes 0.11.3 BetaGeoFitter on the same data: estimates and standard errors.
LIFETIMES_MLE = {"r": 0.2426, "alpha": 4.4135, "a": 0.7929, "b": 2.4258}
LIFETIMES_SE = {"r": 0.0126, "alpha": 0.378, "a": 0.186, "b": 0.705}


def _arrays(summary):
    return (summary["frequency"].to_numpy(float), summary["recency"].to_numpy(float), summary["T"].to_numpy(float))


def test_log_likelihood_matches_lifetimes_at_random_points(cdnow_summary):
    x, t_x, T = _arrays(cdnow_summary)
    rng = np.random.default_rng(0)
    for _ in range(20):
        r, alpha, a, b = rng.uniform(0.05, 3), rng.uniform(0.2, 30), rng.uniform(0.1, 4), rng.uniform(0.2, 8)
        w = rng.uniform(0.5, 2.0, size=x.size)  # random weights make the check sensitive row by row
        ours = float(np.sum(w * np.asarray(bgnbd.log_likelihood_rows(r, alpha, a, b, x, t_x, T))))
        fast = float(bgnbd.log_likelihood(r, alpha, a, b, bgnbd.make_data(x, t_x, T, w)))
        ref = -lifetimes.BetaGeoFitter._negative_log_likelihood(
            np.log([r, alpha, a, b]), x, t_x, T, w, 0.0
        ) * w.sum()
        assert ours == pytest.approx(ref, rel=1e-8)
        assert fast == pytest.approx(ref, rel=1e-8)


def test_float32_rows_stay_close(cdnow_summary):
    x, t_x, T = _arrays(cdnow_summary)
    ref = float(bgnbd.log_likelihood(0.3, 5.0, 0.8, 2.5, bgnbd.make_data(x, t_x, T)))
    f32 = float(bgnbd.log_likelihood(0.3, 5.0, 0.8, 2.5, bgnbd.make_data(x, t_x, T, dtype=np.float32)))
    assert f32 == pytest.approx(ref, rel=1e-6)


def test_compressed_likelihood_equals_per_customer(cdnow_summary):
    x, t_x, T = _arrays(cdnow_summary)
    rfm = compress_rfm(cdnow_summary)
    assert rfm.n_rows < 0.5 * rfm.n_customers
    full = bgnbd.log_likelihood(0.3, 5.0, 0.8, 2.5, bgnbd.make_data(x, t_x, T))
    comp = bgnbd.log_likelihood(0.3, 5.0, 0.8, 2.5, bgnbd.make_data_from_compressed(rfm))
    assert float(comp) == pytest.approx(float(full), rel=1e-12)


def _mp_row_likelihood(r, alpha, a, b, x, t_x, T):
    r, alpha, a, b, t_x, T = map(mp.mpf, (r, alpha, a, b, t_x, T))
    common = mp.gamma(r + x) * alpha**r / mp.gamma(r)
    L = mp.beta(a, b + x) / mp.beta(a, b) * common / (alpha + T) ** (r + x)
    if x > 0:
        L += mp.beta(a + 1, b + x - 1) / mp.beta(a, b) * common / (alpha + t_x) ** (r + x)
    return float(mp.log(L))


def test_log_likelihood_rows_match_mpmath():
    mp.mp.dps = 40
    rng = np.random.default_rng(3)
    x = rng.integers(0, 60, 40).astype(float)
    T = rng.uniform(1, 80, 40)
    t_x = np.where(x > 0, rng.uniform(0, 1, 40) * T, 0.0)
    r, alpha, a, b = 0.7, 3.0, 1.3, 0.6  # b < 1 exercises b + x - 1 < 1
    ours = np.asarray(bgnbd.log_likelihood_rows(r, alpha, a, b, x, t_x, T))
    ref = np.array([_mp_row_likelihood(r, alpha, a, b, int(xi), ti, Ti) for xi, ti, Ti in zip(x, t_x, T)])
    np.testing.assert_allclose(ours, ref, rtol=1e-11)


def test_predictions_match_lifetimes(cdnow_summary):
    x, t_x, T = _arrays(cdnow_summary)
    bgf = lifetimes.BetaGeoFitter().fit(x, t_x, T)
    r, alpha, a, b = (bgf.params_[k] for k in bgnbd.PARAM_NAMES)
    for t in (1.0, 10.0, 39.0, 150.0):
        np.testing.assert_allclose(
            bgnbd.conditional_expected_purchases(t, x, t_x, T, r, alpha, a, b),
            bgf.conditional_expected_number_of_purchases_up_to_time(t, x, t_x, T),
            rtol=1e-10,
        )
    np.testing.assert_allclose(
        bgnbd.probability_alive(x, t_x, T, r, alpha, a, b), bgf.conditional_probability_alive(x, t_x, T), rtol=1e-12
    )
    ts = np.array([0.5, 5.0, 39.0, 78.0, 500.0])
    np.testing.assert_allclose(
        bgnbd.expected_purchases(ts, r, alpha, a, b), bgf.expected_number_of_purchases_up_to_time(ts), rtol=1e-10
    )


def test_conditional_expectation_matches_mpmath_for_heavy_buyers():
    """Euler's transform keeps large x finite where the textbook form overflows (FHL 2005 eq. 10)."""
    mp.mp.dps = 50
    r, alpha, a, b = 0.25, 4.4, 0.8, 2.4
    for x, t_x, T, t in [(150, 30.0, 38.0, 52.0), (400, 37.0, 39.0, 200.0), (3, 10.0, 39.0, 1.0)]:
        A, B, C = r + x, b + x, a + b + x - 1
        z = mp.mpf(t) / (alpha + T + t)
        G = C / (a - 1) * (1 - ((alpha + T) / mp.mpf(alpha + T + t)) ** A * mp.hyp2f1(A, B, C, z))
        p_alive = 1 / (1 + a / (b + x - 1) * ((alpha + T) / mp.mpf(alpha + t_x)) ** A)
        ours = bgnbd.conditional_expected_purchases(t, x, t_x, T, r, alpha, a, b)
        assert np.isfinite(ours)
        assert float(ours) == pytest.approx(float(G * p_alive), rel=1e-9)


def test_posterior_predictive_counts_have_the_conditional_mean():
    rng = np.random.default_rng(11)
    r, alpha, a, b = 0.24, 4.4, 0.79, 2.43
    x, t_x, T, t = np.array([0.0, 2.0, 7.0]), np.array([0.0, 30.0, 12.0]), np.array([38.0, 38.0, 38.0]), 39.0
    n = 200_000
    draws = bgnbd.sample_conditional_purchases(
        t, np.broadcast_to(x, (n, 3)), t_x, T, r, alpha, a, b, rng
    )
    mean = draws.mean(axis=0)
    se = draws.std(axis=0) / np.sqrt(n)
    expected = bgnbd.conditional_expected_purchases(t, x, t_x, T, r, alpha, a, b)
    assert np.all(np.abs(mean - expected) < 4 * se)


def test_map_with_flat_priors_is_the_mle(cdnow_summary):
    data = bgnbd.make_data_from_compressed(compress_rfm(cdnow_summary))
    idata = fit(bgnbd, data, method="map", priors=bgnbd.BGNBDPriors(kind="flat"), num_samples=4000, seed=0)
    for k in bgnbd.PARAM_NAMES:
        assert idata.attrs[f"map_{k}"] == pytest.approx(LIFETIMES_MLE[k], rel=5e-4)
        assert idata.attrs[f"map_{k}"] == pytest.approx(PUBLISHED[k], rel=5e-3)
        # Laplace draws: log-normal around the MLE with the delta-method standard error
        sd = float(idata.posterior[k].std())
        assert sd == pytest.approx(LIFETIMES_SE[k], rel=0.12)


def test_nuts_reproduces_published_cdnow_estimates(cdnow_bgnbd_nuts):
    import arviz as az

    post = cdnow_bgnbd_nuts.posterior
    for k, tol in (("r", 0.03), ("alpha", 0.03), ("a", 0.10), ("b", 0.10)):
        assert float(post[k].mean()) == pytest.approx(PUBLISHED[k], rel=tol)
        lo, hi = np.asarray(az.hdi(cdnow_bgnbd_nuts, var_names=[k], hdi_prob=0.94)[k])
        assert lo < PUBLISHED[k] < hi
    assert int(cdnow_bgnbd_nuts.sample_stats["diverging"].sum()) == 0


def test_parameter_recovery_on_simulated_data():
    truth = {"r": 0.5, "alpha": 6.0, "a": 1.2, "b": 3.0}
    T = cdnow_like_T(6000, seed=5)
    sim = simulate_bgnbd(6000, T=T, seed=5, **truth).set_index("customer_id")
    data = bgnbd.make_data_from_compressed(compress_rfm(sim))
    idata = fit(bgnbd, data, seed=2, num_chains=2, num_warmup=500, num_samples=500, progress_bar=False, warn=False)
    import arviz as az

    hdi = az.hdi(idata, var_names=list(truth), hdi_prob=0.99)
    for k, v in truth.items():
        lo, hi = np.asarray(hdi[k])
        assert lo < v < hi, (k, lo, v, hi)
