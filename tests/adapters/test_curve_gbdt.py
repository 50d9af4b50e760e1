"""LightGBM cohort-curve forecaster (btyd_ltv.adapters.curve_gbdt) and the shared training problem and registry
of the learned curve baselines (btyd_ltv.adapters.curve_baselines)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from btyd_ltv import backtest as bt
from btyd_ltv.adapters import curve_baselines as cb
from btyd_ltv.data.cohorts import CohortColumns
from btyd_ltv.errors import DataValidationError

pytest.importorskip("lightgbm")

from btyd_ltv.adapters.curve_gbdt import CurveLightGBM  # noqa: E402

PORTFOLIO_COLUMNS = CohortColumns(active_users="active_users", groups=("app", "campaign"))


def shared_shape_table(n_cohorts: int = 40, cutoff: int = 45, seed: int = 0) -> pd.DataFrame:
    """Cohorts acquired on days 0..n-1, observed to ``cutoff``, whose revenue curves differ only by a scale:
    ``revenue_c(a) = s_c (1 + a)^-0.7``, so every development ratio ``L(H) / L(k)`` is the same for all cohorts."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(n_cohorts):
        scale, installs = rng.uniform(0.5, 3.0), int(rng.integers(100, 1000))
        for a in range(cutoff - c + 1):
            rows.append({"cohort": f"c{c:02d}", "age": a, "installs": installs,
                         "revenue": installs * scale * (1.0 + a) ** -0.7})
    return pd.DataFrame(rows)


def true_ratio(k: int, h: int) -> float:
    a = np.arange(h + 1)
    rev = (1.0 + a) ** -0.7
    return rev.sum() / rev[: k + 1].sum()


@pytest.fixture(scope="module")
def portfolio():
    from btyd_ltv.data.portfolio import simulate_portfolio

    table, _ = simulate_portfolio(seed=1, days=60)
    return table


# ============================================================================================= shared problem
def test_problem_masks_immature_cells_and_stratifies_the_validation_split():
    table = shared_shape_table()
    s = bt._setup(table, ["c39"], [10, 20, 30], CohortColumns(), "t")
    assert s.k.tolist() == [6]
    p = cb._problem(s, table, CohortColumns(), 6, np.array([0]), min_cohorts=5, seed=3)
    last = s.curves.last[(s.curves.last > 6)]
    # every cohort older than k trains the model; targets run k+1..30 and are NaN beyond a cohort's last age
    assert p.y.shape == (last.size, 30 - 6)
    np.testing.assert_array_equal(np.isnan(p.y), p.steps[None, :] > last[:, None])
    np.testing.assert_allclose(p.y[0, p.columns], np.log([true_ratio(6, h) for h in (10, 20, 30)]), rtol=1e-12)
    # lookback L(a) / L(k) ends at 1; static covariates standardised on the training split
    np.testing.assert_allclose(p.past[:, -1, 0], 1.0)
    np.testing.assert_allclose(p.static[p.train].mean(axis=0), 0.0, atol=1e-12)
    # one validation cohort per block of five, ordered by maturity (and one in a last block of 3-4): the five
    # most mature hold one
    assert p.valid.size == last.size // 5 + (last.size % 5 >= 3)
    assert np.isin(np.argsort(-last, kind="stable")[:5], p.valid).sum() == 1
    assert np.intersect1d(p.train, p.valid).size == 0 and p.train.size + p.valid.size == last.size


def test_problem_is_none_without_enough_mature_cohorts():
    table = shared_shape_table(n_cohorts=8, cutoff=12)
    s = bt._setup(table, ["c07"], [10], CohortColumns(), "t")
    # only cohorts c00..c02 have reached age 10
    assert cb._problem(s, table, CohortColumns(), 5, np.array([0]), min_cohorts=5, seed=0) is None
    assert cb._problem(s, table, CohortColumns(), 5, np.array([0]), min_cohorts=3, seed=0) is not None


def test_registry():
    out = cb.curve_baselines(["lightgbm"], seed=3)
    assert list(out) == ["lightgbm"] and isinstance(out["lightgbm"], CurveLightGBM) and out["lightgbm"].seed == 3
    with pytest.raises(DataValidationError, match="unknown curve baseline 'xgboost'; choose from mlp, tide, lightgbm"):
        cb.curve_baselines(["lightgbm", "xgboost"])
    with pytest.raises(DataValidationError, match="min_cohorts"):
        CurveLightGBM(min_cohorts=1)
    with pytest.raises(TypeError):
        CurveLightGBM(300)  # keyword-only


# ================================================================================================== LightGBM
def test_lightgbm_recovers_a_shared_development_ratio_exactly():
    table = shared_shape_table()
    targets = ["c37", "c39"]  # observed to ages 8 and 6: one model per k
    fc = CurveLightGBM()(table, targets, [5, 10, 20, 30])
    s = bt._setup(table, targets, [5, 10, 20, 30], CohortColumns(), "t")
    assert s.k.tolist() == [8, 6]
    expected = s.lk[:, None] * np.array([[true_ratio(k, h) for h in (10, 20, 30)] for k in (8, 6)])
    np.testing.assert_allclose(fc.mean[:, 1:], expected, rtol=1e-6)  # LightGBM keeps float32 leaf values
    np.testing.assert_allclose(fc.mean[:, 0], s.curves.ltv[s.rows, 5])  # H <= k: the observed value
    # 40 cohorts -> 7 held out, fewer than min_interval_residuals=10: point forecast only, as documented
    assert fc.samples is None or np.isnan(fc.samples[:, 1:]).all()


def test_lightgbm_falls_back_to_the_multiplier_with_few_mature_cohorts():
    table = shared_shape_table(n_cohorts=8, cutoff=12)
    ages = [10, 12]  # reached by 3 cohorts only (c00..c02): below min_cohorts=5
    fc = CurveLightGBM()(table, ["c06", "c07"], ages)
    ref = bt.multiplier()(table, ["c06", "c07"], ages)
    np.testing.assert_allclose(fc.mean, ref.mean, rtol=1e-12)


def _check_curves(fc, history, cohorts, ages, columns):
    s = bt._setup(history, cohorts, ages, columns, "t")
    mean = np.asarray(fc.mean)
    assert mean.shape == (len(cohorts), len(ages)) and np.isfinite(mean).all()
    order = np.argsort(ages)
    assert (np.diff(mean[:, order], axis=1) >= 0).all()  # non-decreasing in age, every cohort
    future = np.asarray(ages)[None, :] > s.k[:, None]
    assert (mean[future] >= np.broadcast_to(s.lk[:, None], mean.shape)[future]).all()
    np.testing.assert_allclose(mean[~future], s.mean[~future])
    if fc.samples is not None:
        draws = np.asarray(fc.samples)
        has = ~np.isnan(draws).all(axis=2)
        assert has.any() and not np.isnan(draws[has]).any()
        assert (draws[has] >= np.broadcast_to(s.lk[:, None], mean.shape)[has][:, None] - 1e-12).all()


def test_lightgbm_monotone_and_seeded(portfolio):
    history = bt.truncate(portfolio, 40, "acquired_day", columns=PORTFOLIO_COLUMNS)
    last = history.groupby("cohort")["age"].max()
    targets = sorted(last[last.isin([3, 7])].index)
    ages = [30, 7, 14]  # any order
    fc = CurveLightGBM(columns=PORTFOLIO_COLUMNS)(history, targets, ages)
    _check_curves(fc, history, targets, ages, PORTFOLIO_COLUMNS)
    again = CurveLightGBM(columns=PORTFOLIO_COLUMNS)(history, targets, ages)
    np.testing.assert_array_equal(fc.mean, again.mean)
    np.testing.assert_array_equal(fc.samples, again.samples)
    other = CurveLightGBM(columns=PORTFOLIO_COLUMNS, seed=1)(history, targets, ages)
    assert not np.array_equal(fc.mean, other.mean)


def test_lightgbm_backtest_beats_no_growth_and_tracks_the_multiplier(portfolio):
    res = bt.rolling_origin(portfolio, {"multiplier": bt.multiplier(columns=PORTFOLIO_COLUMNS),
                                        "lightgbm": CurveLightGBM(columns=PORTFOLIO_COLUMNS)},
                            ks=(7,), checkpoints=(14, 30), cutoffs=[30, 33, 36], acquired="acquired_day",
                            columns=PORTFOLIO_COLUMNS)
    r = res.rows[res.rows["checkpoint"] == 30]
    ape = (r["forecast"] - r["actual"]).abs() / r["actual"]
    med = ape.groupby(r["model"]).median()
    naive = float(((r["observed"] - r["actual"]).abs() / r["actual"]).median())
    # measured (seed 1, 27 cohorts at k=7, H=30): lightgbm 0.168, multiplier 0.171, no growth 0.560
    assert med["lightgbm"] < 0.5 * naive
    assert med["lightgbm"] < 1.25 * med["multiplier"]
