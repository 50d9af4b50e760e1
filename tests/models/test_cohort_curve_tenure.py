"""The saturating tenure term of revenue per active user (``tenure="saturating"``): the Box-Cox form against its
textbook expression, its limits, and recovery on cohorts simulated here with numpy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import jax.numpy as jnp

from btyd_ltv.models import cohort_curve as cc

TRUE = {"level0": 2.0, "rho": 0.4, "sigma": 0.8}  # arpdau rises from 2.0 to 2 e^(rho / sigma) = 3.30


def _box_cox(t, lam):
    """Box & Cox (1964): ``((1 + t)^lam - 1) / lam``."""
    return ((1.0 + t) ** lam - 1.0) / lam


@pytest.mark.parametrize("sigma", [0.05, 0.8, 3.0])
def test_saturating_term_is_box_cox_of_one_plus_age(sigma):
    """``log arpdau(t) = level + rho (h(t) - h(t_ref))`` with ``h`` the Box-Cox transform of ``1 + t`` at exponent
    ``-sigma``: ``level`` is the log ARPDAU at the reference age, and the curve levels off at ``rho / sigma`` above
    its age-0 value."""
    t = np.array([0.0, 1.0, 4.0, 30.0, 365.0, 1e7])
    center = np.log1p(6.0)  # reference age 6
    params = {"log_level": jnp.asarray(0.3), "rho": jnp.asarray(0.4), "log_saturation": jnp.asarray(np.log(sigma))}
    got = np.asarray(cc.log_arpdau(params, t, center))
    want = 0.3 + 0.4 * (_box_cox(t, -sigma) - _box_cox(6.0, -sigma))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert abs(float(cc.log_arpdau(params, 6.0, center)) - 0.3) < 1e-14  # level: the log ARPDAU at age 6
    rise = got[-1] - got[0]  # (1 + t)^-sigma at t = 1e7 is 0 to 1e-6 for sigma >= 0.8
    if sigma >= 0.8:
        np.testing.assert_allclose(rise, 0.4 / sigma, rtol=1e-5)


def test_saturating_term_tends_to_the_log_term():
    """``sigma -> 0``: the log-linear tenure term ``level + rho (log(1 + t) - center)``, with no cancellation
    error (``expm1``) at tiny ``sigma``."""
    t = np.arange(0.0, 400.0, 7.0)
    base = {"log_level": jnp.asarray(-1.2), "rho": jnp.asarray(0.25)}
    log_form = np.asarray(cc.log_arpdau(base, t, 1.7))
    for log_sigma, tol in ((-12.0, 1e-4), (-30.0, 1e-12)):
        sat = np.asarray(cc.log_arpdau({**base, "log_saturation": jnp.asarray(log_sigma)}, t, 1.7))
        np.testing.assert_allclose(sat, log_form, rtol=0, atol=tol)


def _cohorts(seed: int = 5) -> pd.DataFrame:
    """8 cohorts of 5k-20k installs, cohort ``c`` observed at ages ``0..47 - 5c``; activity x sBG retention
    (``pi_c = 0.3 exp(N(0, 0.15^2))``, ``m = 0.2``, ``kappa = 2``), binomial active users; revenue = active users x
    ``2 exp(rho h(t))`` (the saturating term at ``TRUE``) x log-normal cell noise (sd 0.1)."""
    rng = np.random.default_rng(seed)
    rows = []
    a, b = 0.2 * 2.0, 0.8 * 2.0
    for c in range(8):
        n = int(rng.integers(5000, 20000))
        pi = 0.3 * np.exp(rng.normal(0, 0.15))
        ages = np.arange(48 - 5 * c)
        step = np.log((b + ages[:-1]) / (a + b + ages[:-1]))
        share = np.where(ages == 0, 1.0, pi * np.exp(np.concatenate([[0.0], np.cumsum(step)])))
        active = rng.binomial(n, share)
        arpdau = TRUE["level0"] * np.exp(TRUE["rho"] * _box_cox(ages, -TRUE["sigma"]))
        revenue = active * arpdau * np.exp(rng.normal(-0.005, 0.1, ages.size))
        rows.append(pd.DataFrame({"cohort": f"c{c:02d}", "age": ages, "installs": n, "active_users": active,
                                  "revenue": revenue}))
    return pd.concat(rows, ignore_index=True)


def test_fit_recovers_the_saturation_and_the_far_revenue_per_active_user(fit_recovery_curves, tmp_path):
    """The saturating term's posterior covers the true saturation rate, and its revenue per active user at age
    300 (six times the longest history) covers the true ``2 e^(rho h(300))``; the log-linear term fitted to the
    same cohorts keeps rising, with the truth below its 90% interval, which is what the option is for. A
    re-forecast from the written posterior keeps the saturating term (its metadata), so a cohort the posterior has
    gets the fit's revenue per active user."""
    from btyd_ltv.cohort_workflow import expected_component_draws, predict_curves, write_curve_fit
    from btyd_ltv.io import read_posterior

    table = _cohorts()
    truth = TRUE["level0"] * np.exp(TRUE["rho"] * _box_cox(300.0, -TRUE["sigma"]))
    far = {}
    for tenure in ("saturating", "log"):
        # the saturating fit is written and re-forecast below: it needs the summary tables
        res = fit_recovery_curves(table, draws=200, seed=4, horizon=60, summarise=tenure == "saturating",
                                  tenure=tenure)
        far[tenure] = np.quantile(expected_component_draws(res, ["c07"], [300])["arpdau"][0, 0], [0.05, 0.95])
        if tenure == "saturating":
            assert res.diagnostics.divergences == 0 and res.diagnostics.max_rhat < 1.05
            sigma = np.exp(np.asarray(res.posterior.posterior["log_saturation_mu"]).ravel())
            lo, hi = np.quantile(sigma, [0.05, 0.95])
            assert lo < TRUE["sigma"] < hi, (lo, hi)
            assert "log_saturation_sd_cohort" not in res.posterior.posterior  # one portfolio-level rate
            write_curve_fit(res, tmp_path, plots=False)
            pred = predict_curves(read_posterior(tmp_path / "posterior.nc"), table, horizon=60, max_draws=200, seed=1)
            assert pred.settings.tenure == "saturating" and pred.data.tenure == "saturating"
            again = expected_component_draws(pred, ["c07"], [300])["arpdau"][0, 0]
            fitted = expected_component_draws(res, ["c07"], [300])["arpdau"][0, 0]
            np.testing.assert_allclose(np.sort(again), np.sort(fitted), rtol=1e-10)
    assert far["saturating"][0] < truth < far["saturating"][1], (far, truth)
    assert truth < far["log"][0], (far, truth)
