"""Calendar-period effects of the cohort-curve model: the offsets' indexing, their place in the likelihood (a
constant offset is a level shift), the AR(1) prior and its continuation in the forecasts (against the process's
closed-form moments), bad input, and recovery of a simulated market's calendar process."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import jax
import jax.numpy as jnp
from numpyro import handlers
from numpyro.infer import Predictive

from btyd_ltv.data.cohorts import CohortColumns
from btyd_ltv.data.portfolio import simulate_portfolio
from btyd_ltv.errors import DataValidationError
from btyd_ltv.models import cohort_curve as cc


def _table():
    return simulate_portfolio(n_apps=1, campaigns_per_app=2, days=8, seed=5, retention="bgbb")[0]


def _data(table, effects=("retention", "revenue")):
    return cc.make_data(table, group_cols=("campaign",), calendar_effects=effects,
                        acquired=table["acquired_day"].to_numpy())[0]


def test_calendar_offsets_take_the_process_at_the_period_of_each_cell():
    table = _table()
    data = _data(table)
    assert data.n_periods == 8 and data.calendar_effects == ("retention", "revenue")
    acq = table.groupby("cohort", sort=False)["acquired_day"].first().to_numpy()
    np.testing.assert_array_equal(data.acquired, acq)
    x = 0.01 * np.arange(data.n_periods) + 0.5
    off = cc.calendar_offsets({"retention": x, "revenue": x}, data, 6)
    period = np.minimum(acq[:, None] + np.arange(6)[None, :], data.n_periods - 1)
    np.testing.assert_allclose(off["revenue"], x[period])
    np.testing.assert_allclose(off["retention"][:, 1:], x[period][:, 1:])
    assert (np.asarray(off["retention"][:, 0]) == 0).all()  # everybody is active on the install day
    # leading draw axes broadcast
    assert cc.calendar_offsets({"revenue": np.tile(x, (3, 1))}, data, 6)["revenue"].shape == (3, len(acq), 6)


def test_a_constant_calendar_offset_is_a_shift_of_the_levels():
    """A process stuck at ``g`` adds ``g`` to every cell's log ARPDAU, i.e. to ``log_level``; stuck at ``h`` on
    retention it adds ``h`` to ``log s(t)`` for ``t >= 1``, i.e. to the BG/BB level ``log_ret``."""
    table = _table()
    data = _data(table)
    C, T = data.observed.shape
    rng = np.random.default_rng(0)
    params = {"log_ret": jnp.asarray(rng.uniform(-2.5, -1.5, C)), "logit_churn": jnp.asarray(rng.uniform(-2, 0, C)),
              "log_kappa": jnp.asarray(rng.uniform(0, 2, C)), "log_level": jnp.asarray(rng.uniform(-3, -1, C)),
              "rho": jnp.asarray(rng.uniform(0, 0.4, C))}
    noise = {"log_phi": 4.0, "log_k": -2.0, "log_tau": -1.5, "log_nu": -2.0}
    g, h = 0.3, -0.2
    offsets = cc.calendar_offsets({"revenue": np.full(data.n_periods, g), "retention": np.full(data.n_periods, h)},
                                  data, T)
    got = cc.log_likelihood(params, noise, data, offsets)
    shifted = dict(params, log_level=params["log_level"] + g, log_ret=params["log_ret"] + h)
    np.testing.assert_allclose(got, cc.log_likelihood(shifted, noise, data), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(cc.total_log_likelihood(params, noise, data, offsets), jnp.sum(got), rtol=1e-12)
    assert not np.allclose(got, cc.log_likelihood(params, noise, data))


def test_calendar_prior_is_a_stationary_ar1():
    """Prior draws of the process given its stationary sd ``sigma`` and ``phi``: variance ``sigma^2`` at every
    period and lag-``k`` correlation ``phi^k`` (Hamilton 1994, eqs. 3.4.3-3.4.5)."""
    data = _data(_table(), ("revenue",))
    sd, phi = 0.3, 0.8
    conditioned = handlers.condition(cc._calendar_processes, {"cal_revenue_sd": sd, "cal_revenue_ar": phi})
    x = np.asarray(Predictive(conditioned, num_samples=20000)(jax.random.PRNGKey(1), data, cc.CohortCurvePriors())[
        "cal_revenue"])
    assert x.shape == (20000, data.n_periods)
    np.testing.assert_allclose(x.var(axis=0), sd**2, rtol=0.05)
    for k in (1, 3):
        r = [np.corrcoef(x[:, p], x[:, p + k])[0, 1] for p in range(data.n_periods - k)]
        np.testing.assert_allclose(r, phi**k, atol=0.03)


def test_forecasts_continue_the_ar1_past_the_fitted_periods():
    """Past the last fitted period ``P - 1`` the process is ``x_{P-1+k} = phi^k x_{P-1} + noise`` with variance
    ``sigma^2 (1 - phi^{2k})`` (``sigma`` the stationary sd); the offsets are the process less its mean over the
    fitted periods, at every period."""
    data = _data(_table(), ("revenue",))
    P, S, phi, sd = data.n_periods, 40000, 0.6, 0.2
    x = np.tile(np.linspace(-0.1, 0.4, P), (S, 1))
    xbar = x[0].mean()
    values = {"cal_revenue": x, "cal_revenue_sd": np.full(S, sd), "cal_revenue_ar": np.full(S, phi)}
    ext = np.asarray(cc._extend_processes(jax.random.PRNGKey(2), values, data, P + 6)["revenue"])
    np.testing.assert_allclose(ext[:, :P], x - xbar, rtol=0, atol=1e-12)
    k = np.arange(1, 7)
    np.testing.assert_allclose(ext[:, P:].mean(axis=0), 0.4 * phi**k - xbar, atol=0.005)
    np.testing.assert_allclose(ext[:, P:].var(axis=0), sd**2 * (1 - phi ** (2 * k)), rtol=0.05)
    still = dict(values, cal_revenue_sd=np.zeros(S))
    np.testing.assert_allclose(np.asarray(cc._extend_processes(jax.random.PRNGKey(2), still, data, P + 6)[
        "revenue"])[0, P:], 0.4 * phi**k - xbar, rtol=1e-12)


def test_expected_components_share_the_forecasts_calendar_continuation():
    """``expected_components`` are the two factors of the expected curve: with the same seed and chunks their
    product, summed over ages, is ``predictive_ltv(kind="expected")``, so both use the same continued calendar
    processes; another seed changes them only at calendar periods past the fitted ones."""
    table = _table()
    data = cc.make_data(table, group_cols=("campaign",), calendar_effects=("retention", "revenue"),
                        acquired=table["acquired_day"].to_numpy(), anchored=False)[0]
    init, S, rng = cc.init_values(data), 24, np.random.default_rng(4)
    values = {n: np.full(S, float(init[n])) for n in cc.noise_names(data)}
    for p in cc.param_list(data):
        values[f"{p}_mu"] = np.full(S, float(init[f"{p}_mu"]))
        for suffix, lvl in cc._levels(data, p):
            n = len(data.parent[lvl])
            values[f"{p}_{suffix}"] = float(init[f"{p}_mu"]) + rng.normal(0, 0.1, (S, n))
    for effect in data.calendar_effects:
        values[f"cal_{effect}"] = rng.normal(0, 0.1, (S, data.n_periods))
        values[f"cal_{effect}_sd"], values[f"cal_{effect}_ar"] = np.full(S, 0.1), np.full(S, 0.5)
    H = data.observed.shape[1] + 9
    parts = cc.expected_components(values, data, H, seed=7, chunk=10)
    want = cc.predictive_ltv(values, data, H, kind="expected", seed=7, chunk=10)
    np.testing.assert_allclose(np.cumsum(parts["retention"] * parts["arpdau"], axis=1), want, rtol=1e-4)
    assert parts["retention"].shape == parts["arpdau"].shape == (data.installs.shape[0], H + 1, 24)
    assert (parts["retention"][:, 0] == 1).all() and (parts["retention"] <= 1).all()
    other = cc.expected_components(values, data, H, seed=8, chunk=10)
    period = np.asarray(data.acquired)[:, None] + np.arange(H + 1)[None, :]
    fitted = period < data.n_periods
    for name in ("retention", "arpdau"):
        np.testing.assert_array_equal(other[name][fitted], parts[name][fitted])
        assert (other[name][~fitted & (np.arange(H + 1)[None, :] > 0)] != parts[name][
            ~fitted & (np.arange(H + 1)[None, :] > 0)]).all()


def test_the_model_uses_the_process_less_its_mean_over_the_fitted_periods():
    """The offsets in the likelihood are ``cal_{effect}`` (the AR(1) process) less its mean over the fitted
    periods: the returned processes are centred, and innovations that add a constant to the whole process leave
    the model's log-likelihood unchanged (the portfolio levels carry a constant)."""
    data = _data(_table(), ("retention", "revenue"))
    with handlers.trace() as tr, handlers.seed(rng_seed=3):
        got = cc._calendar_processes(data, cc.CohortCurvePriors())
    for effect in ("retention", "revenue"):
        x = np.asarray(tr[f"cal_{effect}"]["value"])
        np.testing.assert_allclose(np.asarray(got[effect]), x - x.mean(), atol=1e-12)

    def loglik(values):
        t = handlers.trace(handlers.substitute(handlers.seed(cc.model, 0), data=values)).get_trace(data)
        return float(t["loglik"]["fn"].log_factor)

    base = dict(cc.init_values(data))  # the NUTS start, with a non-flat calendar process
    rng = np.random.default_rng(4)
    for effect in ("retention", "revenue"):
        base.update({f"cal_{effect}_sd": 0.15, f"cal_{effect}_ar": 0.7,
                     f"cal_{effect}_z": jnp.asarray(rng.standard_normal(data.n_periods))})
    shifted = dict(base)
    for effect, c in (("retention", 0.3), ("revenue", -0.2)):
        sd, phi, z = (np.asarray(base[f"cal_{effect}_{p}"]) for p in ("sd", "ar", "z"))
        # x_0 = sd z_0 and x_p = phi x_{p-1} + sd sqrt(1 - phi^2) z_p: adding c to every x_p takes these shifts
        dz = np.full_like(z, c * (1.0 - phi) / (sd * np.sqrt(1.0 - phi**2)))
        dz[0] = c / sd
        shifted[f"cal_{effect}_z"] = jnp.asarray(z + dz)
    tr_shift = handlers.trace(handlers.substitute(handlers.seed(cc.model, 0), data=shifted)).get_trace(data)
    np.testing.assert_allclose(np.asarray(tr_shift["cal_retention"]["value"]),
                               np.asarray(handlers.trace(handlers.substitute(handlers.seed(cc.model, 0), data=base))
                                          .get_trace(data)["cal_retention"]["value"]) + 0.3, atol=1e-9)
    assert loglik(shifted) == pytest.approx(loglik(base), rel=1e-10, abs=1e-8)


def test_calendar_effects_bad_input():
    table = _table()
    acq = table["acquired_day"].to_numpy()
    with pytest.raises(DataValidationError, match="'season' is not one of retention, revenue"):
        cc.make_data(table, calendar_effects=("season",), acquired=acq)
    with pytest.raises(DataValidationError, match="need each cohort's acquisition period"):
        cc.make_data(table, calendar_effects="revenue")
    with pytest.raises(DataValidationError, match=r"period -1 at row 0 .* is negative"):
        cc.make_data(table, calendar_effects="revenue", acquired=acq - 1)
    two = acq.copy()
    two[1] += 1  # row 1 belongs to the first cohort
    with pytest.raises(DataValidationError, match="has more than one acquisition period"):
        cc.make_data(table, calendar_effects="revenue", acquired=two)
    with pytest.raises(DataValidationError, match="whole period indices"):
        cc.make_data(table, calendar_effects="revenue", acquired=acq + 0.5)
    first = table[table["age"] == 0].iloc[:1]
    with pytest.raises(DataValidationError, match="at least two calendar periods"):
        cc.make_data(first, calendar_effects="revenue", acquired=first["acquired_day"].to_numpy())
    data, _ = cc.make_data(table)  # without calendar effects nothing changes
    assert data.calendar_effects == () and data.acquired is None and "cal_revenue_sd" not in cc.param_names(data)


def _detrend(x: np.ndarray) -> np.ndarray:
    t = np.arange(x.size)
    return x - np.polyval(np.polyfit(t, x, 1), t)


def test_fit_recovers_a_simulated_calendar_process():
    """One app, 24 daily cohorts of 50k-100k installs in a market whose retention and ARPDAU move with AR(1)
    calendar processes (stationary sd 0.15 / 0.35, phi 0.7): the posterior mean processes follow the true ones.
    (At 5k-20k installs whale purchases swamp a day's revenue: the raw revenue per active user by calendar day
    correlates 0.65 with the true revenue process, and the fit 0.68.) Only the non-linear part of a process is
    identified: period = acquisition + age, so a linear trend in calendar time can move into the cohort levels and
    the age curve (the age-period-cohort identification problem; Holford 1983, Biometrics 39(2)). So compare the
    processes after removing a linear trend from each."""
    from btyd_ltv.cohort_workflow import CurveOptions, fit_curves
    from btyd_ltv.workflow import FitOptions

    table, truth = simulate_portfolio(n_apps=1, campaigns_per_app=1, days=24, horizon=60,
                                      installs_range=(50000, 100000), retention="bgbb",
                                      calendar={"retention": (0.15, 0.7), "revenue": (0.35, 0.7)}, seed=1)
    settings = CurveOptions(calendar_effects=("retention", "revenue"), acquired="acquired_day", horizon=60,
                            max_draws=100, options=FitOptions(num_chains=2, num_warmup=200, num_samples=200, seed=1,
                                                              progress_bar=False, target_accept_prob=0.9))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = fit_curves(table, CohortColumns(active_users="active_users"), settings=settings)
    post = res.posterior.posterior
    for effect, sd in (("retention", 0.15), ("revenue", 0.35)):
        fitted = np.asarray(post[f"cal_{effect}"]).reshape(-1, res.data.n_periods).mean(axis=0)
        true = truth.calendar[effect].to_numpy()[: res.data.n_periods]
        assert np.corrcoef(_detrend(fitted), _detrend(true))[0, 1] > 0.9, effect
        lo, hi = np.quantile(np.asarray(post[f"cal_{effect}_sd"]), [0.01, 0.99])
        assert lo < sd < hi, (effect, lo, hi)
    assert (np.diff(res.draws, axis=1) >= -1e-6).all() and np.isfinite(res.draws).all()
