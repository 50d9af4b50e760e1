"""Neural cohort-curve forecasters (btyd_ltv.adapters.curve_nets): MLP and TiDE.

The shapes below are chosen so that the jitted steps compile once per network and origin age and are reused
across calls (k = 7 with checkpoints up to 30 on the portfolio; k = 6 on the shared-shape table)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from btyd_ltv import backtest as bt
from btyd_ltv.adapters import MissingExtraError
from btyd_ltv.data.cohorts import CohortColumns
from btyd_ltv.errors import DataValidationError

pytest.importorskip("flax")
pytest.importorskip("optax")

from btyd_ltv.adapters import curve_nets  # noqa: E402
from btyd_ltv.adapters.curve_baselines import curve_baselines  # noqa: E402
from btyd_ltv.adapters.curve_nets import CurveMLP, CurveTiDE  # noqa: E402

NETS = [CurveMLP, CurveTiDE]
PORTFOLIO_COLUMNS = CohortColumns(active_users="active_users", groups=("app", "campaign"))


def shared_shape_table(n_cohorts: int = 40, cutoff: int = 45, seed: int = 0) -> pd.DataFrame:
    """Cohorts acquired on days 0..n-1, observed to ``cutoff``, whose revenue curves differ only by a scale:
    ``revenue_c(a) = s_c (1 + a)^-0.7``, so every development ratio ``L(H) / L(k)`` is the same for all cohorts
    (as in test_curve_gbdt.py)."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(n_cohorts):
        scale, installs = rng.uniform(0.5, 3.0), int(rng.integers(100, 1000))
        for a in range(cutoff - c + 1):
            rows.append({"cohort": f"c{c:02d}", "age": a, "installs": installs,
                         "revenue": installs * scale * (1.0 + a) ** -0.7})
    return pd.DataFrame(rows)


def true_ratio(k: int, h: int) -> float:
    rev = (1.0 + np.arange(h + 1)) ** -0.7
    return rev.sum() / rev[: k + 1].sum()


def check_curves(fc, history, cohorts, ages, columns) -> None:
    """Finite forecasts, non-decreasing in age for every cohort, ``>= L(k)`` beyond ``k``, observed values at
    ``H <= k``, and draws (where given) ``>= L(k)``."""
    s = bt._setup(history, cohorts, ages, columns, "t")
    mean = np.asarray(fc.mean)
    assert mean.shape == (len(cohorts), len(ages)) and np.isfinite(mean).all()
    assert (np.diff(mean[:, np.argsort(ages)], axis=1) >= 0).all()
    future = np.asarray(ages)[None, :] > s.k[:, None]
    lk = np.broadcast_to(s.lk[:, None], mean.shape)
    assert (mean[future] >= lk[future]).all()
    np.testing.assert_allclose(mean[~future], s.mean[~future])
    if fc.samples is not None:
        draws = np.asarray(fc.samples)
        has = ~np.isnan(draws).all(axis=2)
        assert has.any() and not np.isnan(draws[has]).any()
        assert (draws[has] >= lk[has][:, None] - 1e-12).all()


@pytest.fixture(scope="module")
def portfolio():
    from btyd_ltv.data.portfolio import simulate_portfolio

    table, _ = simulate_portfolio(seed=1, days=60)
    return table


@pytest.mark.parametrize("net", NETS, ids=["mlp", "tide"])
def test_a_shared_development_ratio_is_reproduced(net):
    # every cohort has the same L(H) / L(k): the pooled average increments the networks start from are exact,
    # no epoch improves on them, and early stopping keeps them (float32 arithmetic)
    table = shared_shape_table()
    fc = net()(table, ["c39"], [5, 10, 20, 30])
    s = bt._setup(table, ["c39"], [5, 10, 20, 30], CohortColumns(), "t")
    expected = s.lk[0] * np.array([true_ratio(6, h) for h in (10, 20, 30)])
    np.testing.assert_allclose(fc.mean[0, 1:], expected, rtol=2e-5)
    np.testing.assert_allclose(fc.mean[0, 0], s.curves.ltv[s.rows[0], 5])


@pytest.mark.parametrize("net", NETS, ids=["mlp", "tide"])
def test_monotone_non_negative_and_seeded(portfolio, net):
    history = bt.truncate(portfolio, 40, "acquired_day", columns=PORTFOLIO_COLUMNS)
    last = history.groupby("cohort")["age"].max()
    targets = sorted(last[last.isin([3, 7])].index)  # two origin ages in one call: one network each
    ages = [30, 7, 14]
    fc = net(columns=PORTFOLIO_COLUMNS)(history, targets, ages)
    check_curves(fc, history, targets, ages, PORTFOLIO_COLUMNS)
    assert fc.samples is not None  # 60+ held-out cohorts at H = 14: residual draws
    again = net(columns=PORTFOLIO_COLUMNS)(history, targets, ages)
    np.testing.assert_array_equal(fc.mean, again.mean)
    np.testing.assert_array_equal(fc.samples, again.samples)
    seven = [c for c in targets if last[c] == 7]
    other = net(columns=PORTFOLIO_COLUMNS, seed=1)(history, seven, ages)
    assert not np.allclose(fc.mean[np.isin(targets, seven)], other.mean)


def test_backtest_beats_no_growth_and_tracks_the_multiplier(portfolio):
    nets = curve_baselines(["mlp", "tide"], columns=PORTFOLIO_COLUMNS)
    res = bt.rolling_origin(portfolio, {"multiplier": bt.multiplier(columns=PORTFOLIO_COLUMNS), **nets},
                            ks=(7,), checkpoints=(14, 30), cutoffs=[30, 33, 36], acquired="acquired_day",
                            columns=PORTFOLIO_COLUMNS)
    r = res.rows[res.rows["checkpoint"] == 30]
    med = ((r["forecast"] - r["actual"]).abs() / r["actual"]).groupby(r["model"]).median()
    naive = float(((r["observed"] - r["actual"]).abs() / r["actual"]).median())
    # measured (seed 1, 27 cohorts at k=7, H=30): mlp 0.154, tide 0.161, multiplier 0.171, no growth 0.560
    for name in ("mlp", "tide"):
        assert med[name] < 0.5 * naive
        assert med[name] < 1.25 * med["multiplier"]
    assert (res.rows["forecast"] >= res.rows["observed"] - 1e-12).all()


def test_settings_and_missing_extra(monkeypatch):
    with pytest.raises(DataValidationError, match="dropout"):
        CurveMLP(dropout=1.0)
    with pytest.raises(DataValidationError, match="patience"):
        CurveTiDE(patience=0)
    with pytest.raises(TypeError):
        CurveMLP(CohortColumns())  # keyword-only

    def missing(module: str, extra: str = "deep"):
        raise MissingExtraError(f"this baseline needs {module!r}; install btyd_ltv[{extra}]")

    monkeypatch.setattr(curve_nets, "require", missing)
    with pytest.raises(MissingExtraError, match=r"\[deep\]"):
        CurveTiDE()
