"""Synthetic game portfolio: reproducibility, censoring, invariants, closed-form truth vs brute force and data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import logit

from btyd_ltv.data.portfolio import (
    PortfolioTruth,
    bdw_survival,
    expected_arpdau,
    expected_retention,
    sbg_survival,
    simulate_portfolio,
)
from btyd_ltv.errors import DataValidationError

COLUMNS = ["cohort", "app", "campaign", "acquired_day", "age", "installs", "active_users", "payers", "revenue",
           "cost"]


@pytest.fixture(scope="module")
def default_portfolio() -> tuple[pd.DataFrame, PortfolioTruth]:
    return simulate_portfolio(seed=0)


def test_same_seed_identical_different_seed_differs(default_portfolio):
    table, truth = default_portfolio
    again, truth_again = simulate_portfolio(seed=0)
    pd.testing.assert_frame_equal(table, again)
    np.testing.assert_array_equal(truth.ltv, truth_again.ltv)
    pd.testing.assert_frame_equal(truth.cohorts, truth_again.cohorts)

    other, truth_other = simulate_portfolio(seed=1)
    assert other.shape == table.shape  # same design, different draws
    assert not np.array_equal(other["revenue"].to_numpy(), table["revenue"].to_numpy())
    assert not np.array_equal(other["installs"].to_numpy(), table["installs"].to_numpy())
    assert not np.allclose(truth_other.ltv, truth.ltv)


def test_default_size_and_columns(default_portfolio):
    table, truth = default_portfolio
    assert list(table.columns) == COLUMNS
    # 3 apps x 3 campaigns x 120 days; a cohort acquired on day d has ages 0 .. 119 - d.
    assert len(truth.cohorts) == table["cohort"].nunique() == 1080
    assert len(table) == 9 * sum(120 - d for d in range(120)) == 65_340
    assert table["cohort"].str.fullmatch(r"app[1-3]/camp[1-3]/d\d{3}").all()
    assert (table["campaign"] == table["cohort"].str.rsplit("/", n=1).str[0]).all()
    assert (table["app"] == table["cohort"].str.split("/").str[0]).all()
    assert table.attrs == {"observation_end_day": 119, "horizon": 365}
    assert truth.retention.shape == truth.arpdau.shape == truth.ltv.shape == (1080, 366)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        dict(n_apps=1, campaigns_per_app=2, days=30, horizon=20, observation_end_day=45),
        dict(n_apps=2, campaigns_per_app=1, days=5, cohorts_per_day=3, horizon=400, observation_end_day=200),
    ],
)
def test_censoring_pattern(kwargs):
    table, truth = simulate_portfolio(seed=3, **kwargs)
    E, H = truth.observation_end_day, truth.horizon
    g = table.groupby("cohort", sort=False)
    n_ages = g["age"].size()
    d = g["acquired_day"].first()
    np.testing.assert_array_equal(n_ages.to_numpy(), np.minimum(E - d.to_numpy(), H) + 1)
    # Ages run 0, 1, ..., n - 1 within each cohort, in order.
    expected_age = np.concatenate([np.arange(n) for n in n_ages])
    np.testing.assert_array_equal(table["age"].to_numpy(), expected_age)
    # Never observed past the end of observation in calendar time.
    assert (table["acquired_day"] + table["age"] <= E).all()
    assert len(n_ages) == len(truth.cohorts)
    assert list(n_ages.index) == list(truth.cohorts["cohort"])


def test_later_observation_end_only_adds_rows():
    early, truth_early = simulate_portfolio(days=40, horizon=60, seed=5)
    late, truth_late = simulate_portfolio(days=40, horizon=60, observation_end_day=80, seed=5)
    assert len(late) > len(early)
    merged = early.merge(late, on=["cohort", "age"], how="left", suffixes=("", "_late"), validate="1:1")
    for col in ["installs", "active_users", "payers", "revenue", "cost"]:
        np.testing.assert_array_equal(merged[col].to_numpy(), merged[f"{col}_late"].to_numpy())
    np.testing.assert_array_equal(truth_early.ltv, truth_late.ltv)


def test_invariants(default_portfolio):
    table, _ = default_portfolio
    assert (table["active_users"] >= 0).all() and (table["active_users"] <= table["installs"]).all()
    assert (table["payers"] >= 0).all() and (table["payers"] <= table["active_users"]).all()
    assert (table["revenue"] >= 0).all() and np.isfinite(table["revenue"]).all()
    assert (table.loc[table["payers"] == 0, "revenue"] == 0).all()
    assert (table.loc[table["payers"] > 0, "revenue"] > 0).all()
    assert table["installs"].between(1000, 20000).all()
    day0 = table[table["age"] == 0]
    assert (day0["active_users"] == day0["installs"]).all()
    per_cohort = table.groupby("cohort")[["cost", "installs", "acquired_day"]].nunique()
    assert (per_cohort == 1).all().all()
    assert (table["cost"] > 0).all()


def test_bgbb_retention_matches_user_level_simulation():
    """pi B(gamma, delta + t) / B(gamma, delta) vs users with p ~ Beta(alpha, beta), theta ~ Beta(gamma, delta)."""
    alpha, beta, gamma, delta = 1.2, 0.9, 0.7, 2.1
    n, ages = 400_000, np.array([1, 2, 3, 7, 14, 30, 60])
    rng = np.random.default_rng(11)
    p = rng.beta(alpha, beta, n)
    theta = rng.beta(gamma, delta, n)
    death = rng.geometric(theta)  # the period in which the user churns: alive at t iff death > t
    alive = death[:, None] > ages[None, :]
    active = alive & (rng.random((n, ages.size)) < p[:, None])
    share = active.mean(axis=0)
    expected = expected_retention(ages, pi=alpha / (alpha + beta), gamma=gamma, delta=delta)
    se = np.sqrt(expected * (1 - expected) / n)
    assert np.all(np.abs(share - expected) < 4 * se)
    np.testing.assert_allclose(alive.mean(axis=0), sbg_survival(ages, gamma, delta), atol=4 * 0.5 / np.sqrt(n))
    assert expected_retention(0, pi=0.3, gamma=gamma, delta=delta) == 1.0


@pytest.mark.parametrize("c", [0.6, 1.0, 1.5])
def test_bdw_survival_matches_brute_force(c):
    a, b, n, T = 0.8, 3.0, 200_000, 40
    rng = np.random.default_rng(int(10 * c))
    theta = rng.beta(a, b, n)
    alive = np.ones(n, dtype=bool)
    survival = np.empty(T)
    for t in range(1, T + 1):
        churn = 1 - (1 - theta) ** (t**c - (t - 1) ** c)
        alive &= rng.random(n) >= churn
        survival[t - 1] = alive.mean()
    expected = bdw_survival(np.arange(1, T + 1), a, b, c)
    se = np.sqrt(expected * (1 - expected) / n)
    assert np.all(np.abs(survival - expected) < 4.5 * se)


def test_bdw_with_c_one_is_sbg_closed_form():
    """sBG survival by the product form S(t) = prod_{i<t} (delta + i) / (gamma + delta + i) (Fader & Hardie 2007)."""
    gamma, delta, t = 0.65, 1.8, np.arange(0, 400)
    product = np.concatenate([[1.0], np.cumprod((delta + t[:-1]) / (gamma + delta + t[:-1]))])
    np.testing.assert_allclose(bdw_survival(t, gamma, delta, 1.0), product, rtol=1e-10)
    np.testing.assert_allclose(sbg_survival(t, gamma, delta), product, rtol=1e-10)
    # Duration dependence: c < 1 keeps more users, c > 1 fewer, for t >= 2 (t^c vs t).
    assert np.all(bdw_survival(t[2:], gamma, delta, 0.7) > product[2:])
    assert np.all(bdw_survival(t[2:], gamma, delta, 1.3) < product[2:])


@pytest.mark.parametrize("family", ["bgbb", "bdw"])
def test_observed_means_match_true_curves(family):
    """Mean over 3000 cohorts of active/installs and revenue/installs vs the closed-form truth, within 4 SE."""
    days, horizon = 10, 60
    table, truth = simulate_portfolio(
        n_apps=1, campaigns_per_app=1, days=days, cohorts_per_day=300, horizon=horizon,
        observation_end_day=days - 1 + horizon, retention=family, seed=7,
    )
    assert (table.groupby("cohort")["age"].size() == horizon + 1).all()
    n = len(truth.cohorts)
    installs = table["installs"].to_numpy().reshape(n, horizon + 1)
    active = table["active_users"].to_numpy().reshape(n, horizon + 1)
    revenue = table["revenue"].to_numpy().reshape(n, horizon + 1)
    for age in [1, 3, 7, 14, 30, 60]:
        diff = active[:, age] / installs[:, age] - truth.retention[:, age]
        assert abs(diff.mean()) < 4 * diff.std(ddof=1) / np.sqrt(n), ("active", age)
    for age in [0, 1, 7, 30, 60]:
        diff = revenue[:, age] / installs[:, age] - truth.revenue_per_install[:, age]
        assert abs(diff.mean()) < 4 * diff.std(ddof=1) / np.sqrt(n), ("revenue", age)
    # Cumulative: observed revenue per install to day 60 vs LTV(60).
    diff = revenue.sum(axis=1) / installs[:, 0] - truth.ltv[:, horizon]
    assert abs(diff.mean()) < 4 * diff.std(ddof=1) / np.sqrt(n)


def test_whale_spikes_present(default_portfolio):
    table, _ = default_portfolio
    paying = table[table["payers"] > 0]
    per_payer = paying["revenue"] / paying["payers"]
    # Regular payer amounts are Gamma; a whale purchase is ~ whale_share / whale_rate ~ 100x a payer's mean.
    assert per_payer.max() > 30 * per_payer.median()


def test_truth_curves_consistent(default_portfolio):
    table, truth = default_portfolio
    co = truth.cohorts
    t = truth.ages
    # Retention recomputed from the cohort parameters (sBG product form for c = 1, betaln otherwise).
    bg = (co["c"] == 1.0).to_numpy()
    g, d = co["gamma"].to_numpy()[bg, None], co["delta"].to_numpy()[bg, None]
    product = np.concatenate([np.ones((bg.sum(), 1)), np.cumprod((d + t[:-1]) / (g + d + t[:-1]), axis=1)], axis=1)
    pi = co["pi"].to_numpy()[bg, None]
    np.testing.assert_allclose(truth.retention[bg, 1:], pi * product[:, 1:], rtol=1e-9)
    np.testing.assert_allclose(co["pi"], co["alpha"] / (co["alpha"] + co["beta"]), rtol=1e-12)
    level, rho = co["level"].to_numpy()[:, None], co["rho"].to_numpy()[:, None]
    np.testing.assert_allclose(truth.arpdau, level * (1.0 + t) ** rho)
    assert np.all(truth.retention[:, 0] == 1.0)
    assert np.all(np.diff(truth.retention[:, 1:], axis=1) < 0)
    # LTV is the running sum of retention x ARPDAU and strictly increasing.
    np.testing.assert_allclose(truth.ltv, np.cumsum(truth.retention * truth.arpdau, axis=1), rtol=1e-12)
    assert np.all(np.diff(truth.ltv, axis=1) > 0)
    # ROAS at the horizon, per cohort and pooled per campaign.
    roas = co["installs"] * truth.ltv[:, -1] / co["cost"]
    np.testing.assert_allclose(co["roas"], roas, rtol=1e-12)
    np.testing.assert_allclose(truth.roas().to_numpy(), roas, rtol=1e-12)
    camp = truth.roas(level="campaign")
    revenue = (co["installs"] * truth.ltv[:, -1]).groupby(co["campaign"]).sum()
    pooled = revenue / co["cost"].groupby(co["campaign"]).sum()
    np.testing.assert_allclose(camp.sort_index(), pooled.sort_index(), rtol=1e-12)
    # Long curves table and the table's cost agree with the truth.
    curves = truth.curves()
    assert len(curves) == len(co) * (truth.horizon + 1)
    np.testing.assert_allclose(curves["ltv"], truth.ltv.ravel())
    cost = table.groupby("cohort", sort=False)["cost"].first()
    np.testing.assert_allclose(cost.to_numpy(), co["cost"].to_numpy())
    log_noise = np.log(co["cost"] / (co["installs"] * co["cpi"]))  # cost = installs x CPI x LogNormal(0, 0.05)
    assert abs(log_noise.mean()) < 0.01 and 0.04 < log_noise.std() < 0.06


@pytest.mark.parametrize("seed", range(5))
def test_some_campaigns_pay_back_and_some_do_not(seed):
    _, truth = simulate_portfolio(seed=seed)
    roas = truth.roas(level="campaign")
    assert len(roas) == 9
    assert (roas > 1).any() and (roas < 1).any()
    cohort_roas = truth.roas(365)
    assert (cohort_roas > 1).any() and (cohort_roas < 1).any()


def test_hierarchy_and_families(default_portfolio):
    _, truth = default_portfolio
    apps, camps, co = truth.apps, truth.campaigns, truth.cohorts
    assert list(apps["retention"]) == ["bgbb", "bdw", "bgbb"]
    fam = co["app"].map(apps.set_index("app")["retention"])
    assert (co.loc[fam == "bgbb", "c"] == 1.0).all()
    assert (co.loc[fam == "bdw", "c"] != 1.0).all()
    # Subscription-like (BdW, high pi) keeps far more users by day 30 than the game-like BG/BB apps.
    d30 = pd.Series(truth.retention[:, 30]).groupby(fam.to_numpy()).mean()
    assert d30["bdw"] > 1.5 * d30["bgbb"]
    # Cohorts scatter a little around their campaign; campaigns more around their app.
    for name, transform in [("pi", logit), ("level", np.log), ("gamma", np.log)]:
        cohort_dev = transform(co[name]) - co["campaign"].map(transform(camps.set_index("campaign")[name]))
        camp_dev = transform(camps[name]) - camps["app"].map(transform(apps.set_index("app")[name]))
        assert abs(cohort_dev.groupby(co["campaign"]).mean()).max() < 0.05
        assert cohort_dev.std() < camp_dev.std()


def test_retention_argument_and_cohorts_per_day():
    table, truth = simulate_portfolio(
        n_apps=2, campaigns_per_app=1, days=3, cohorts_per_day=2, retention=["bdw", "bdw"], seed=2
    )
    assert list(truth.apps["retention"]) == ["bdw", "bdw"]
    assert list(truth.cohorts["cohort"][:4]) == ["app1/camp1/d000/s0", "app1/camp1/d000/s1", "app1/camp1/d001/s0",
                                                 "app1/camp1/d001/s1"]
    assert table["cohort"].nunique() == 12


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_apps=0), "n_apps"),
        (dict(days=2.5), "days"),
        (dict(horizon=-1), "horizon"),
        (dict(cohorts_per_day=0), "cohorts_per_day"),
        (dict(installs_range=(500, 100)), "installs_range"),
        (dict(installs_range=5), "installs_range"),
        (dict(observation_end_day=50), "observation_end_day"),
        (dict(retention="weibull"), "retention family"),
        (dict(retention=["bgbb"]), "one per app"),
        (dict(calendar={"season": (0.1, 0.5)}), "'season' is not 'retention' or 'revenue'"),
        (dict(calendar={"revenue": (0.1, 1.0)}), "0 <= phi < 1"),
        (dict(calendar={"revenue": (-0.1, 0.5)}), "sd >= 0"),
        (dict(calendar={"revenue": 0.1}), "a pair"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(DataValidationError, match=match):
        simulate_portfolio(seed=0, **kwargs)


def test_expected_arpdau_formula():
    t = np.array([0, 1, 9, 99])
    np.testing.assert_allclose(expected_arpdau(t, level=0.2, rho=0.5), 0.2 * np.sqrt(1 + t))


def test_calendar_effects_scale_the_truth_along_an_ar1_process():
    """``calendar=``: the truth curves are those without calendar effects times ``exp(x_{day + age})`` (retention
    from age 1, capped at 1; ARPDAU at every age), the effects follow ``x_d = phi x_{d-1} + e_d`` with
    innovations of sd ``sd sqrt(1 - phi^2)`` (stationary sd ``sd``), and the parameters and installs are the same as
    without them."""
    kw = dict(n_apps=2, campaigns_per_app=1, days=40, horizon=120, seed=7, retention="bgbb")
    base_table, base = simulate_portfolio(**kw)
    table, truth = simulate_portfolio(**kw, calendar={"retention": (0.1, 0.5), "revenue": (0.2, 0.8)})
    assert base.calendar is None
    cal = truth.calendar
    assert cal["day"].tolist() == list(range(40 + 120)) and {"retention", "revenue"} <= set(cal.columns)
    pd.testing.assert_frame_equal(truth.cohorts, base.cohorts.assign(ltv=truth.cohorts["ltv"],
                                                                      roas=truth.cohorts["roas"]))
    np.testing.assert_array_equal(table["installs"], base_table["installs"])
    day = truth.cohorts["acquired_day"].to_numpy()[:, None] + np.arange(121)[None, :]
    np.testing.assert_allclose(truth.arpdau, base.arpdau * np.exp(cal["revenue"].to_numpy()[day]), rtol=1e-12)
    want = np.minimum(base.retention * np.exp(cal["retention"].to_numpy()[day]), 1.0)
    want[:, 0] = 1.0
    np.testing.assert_allclose(truth.retention, want, rtol=1e-12)
    np.testing.assert_allclose(truth.ltv, np.cumsum(truth.retention * truth.arpdau, axis=1), rtol=1e-12)
    for effect, (sd, phi) in (("retention", (0.1, 0.5)), ("revenue", (0.2, 0.8))):
        x = cal[effect].to_numpy()
        innovations = x[1:] - phi * x[:-1]
        assert abs(innovations.std() / (sd * np.sqrt(1 - phi**2)) - 1) < 0.15
        assert abs(np.corrcoef(innovations[1:], innovations[:-1])[0, 1]) < 0.2
    # the observed active users are binomial around the truth with the market in it, not around the truth without
    obs = table[table["age"] >= 1]
    row = pd.Index(truth.cohorts["cohort"]).get_indexer(obs["cohort"])
    n, age = obs["installs"].to_numpy(), obs["age"].to_numpy()
    for curve, ok in ((truth.retention, True), (base.retention, False)):
        p = curve[row, age]
        z = (obs["active_users"].to_numpy() - n * p) / np.sqrt(n * p * (1 - p))
        assert bool(abs(z.mean()) < 0.1 and 0.85 < z.std() < 1.15) == ok, (z.mean(), z.std())
