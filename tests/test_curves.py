"""Cohort curves and decision summaries against brute force: explicit Python loops over cohorts, ages and draws
on small random monotone draws, and numpy quantiles."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from btyd_ltv.curves import (
    cohort_table,
    component_table,
    curve_table,
    group_curves,
    group_totals,
    payback_ages,
    roas_table,
)
from btyd_ltv.errors import DataValidationError

C, H, S = 4, 40, 200
COHORTS = ["2024-01", "2024-02", "2024-03", "2024-04"]
INSTALLS = np.array([100, 250, 80, 400])


def make_draws(seed: int = 0, c: int = C, h: int = H, s: int = S) -> np.ndarray:
    """Monotone cumulative curves with ties (zero-revenue days) so that payback lands on exact ages."""
    rng = np.random.default_rng(seed)
    daily = rng.gamma(0.7, 0.05, size=(c, h + 1, s)) * (rng.random((c, h + 1, s)) < 0.6)
    return np.cumsum(daily, axis=1)


@pytest.fixture(scope="module")
def draws() -> np.ndarray:
    return make_draws()


@pytest.fixture(scope="module")
def cost(draws) -> np.ndarray:
    """Costs that pay back at different ages: early, mid horizon, rarely, and one unknown."""
    mean_h = draws[:, H, :].mean(axis=1)
    return np.array([0.2 * mean_h[0] * INSTALLS[0], 0.95 * mean_h[1] * INSTALLS[1], 1.6 * mean_h[2] * INSTALLS[2],
                     np.nan])


# ------------------------------------------------------------------------------------------ brute-force references
def brute_payback(curve, installs, cost) -> int:
    """First age with installs x L(age) >= cost, or H + 1."""
    for age, value in enumerate(curve):
        if installs * value >= cost:
            return age
    return len(curve)


def brute_discrete_quantile(values, p) -> int:
    """Smallest a with #(values <= a) / n >= p."""
    n = len(values)
    for a in range(min(values), max(values) + 1):
        if sum(v <= a for v in values) / n >= p - 1e-12:
            return a
    raise AssertionError


# ------------------------------------------------------------------------------------------------ curve_table
def test_curve_table_matches_numpy_quantiles(draws):
    rng = np.random.default_rng(1)
    observed = np.full((C, H + 1), np.nan)
    last = [5, 0, 17, 40]
    for c, k in enumerate(last):
        observed[c, : k + 1] = draws[c, : k + 1, 0]
    table = curve_table(draws, COHORTS, observed)
    assert list(table.columns) == ["cohort", "age", "observed", "mean", "q05", "q25", "q50", "q75", "q95"]
    assert len(table) == C * (H + 1)
    for _ in range(20):
        c, age = int(rng.integers(C)), int(rng.integers(H + 1))
        row = table[(table["cohort"] == COHORTS[c]) & (table["age"] == age)].iloc[0]
        x = draws[c, age]
        assert row["mean"] == pytest.approx(sum(x) / len(x))
        for name, p in [("q05", 0.05), ("q25", 0.25), ("q50", 0.5), ("q75", 0.75), ("q95", 0.95)]:
            assert row[name] == pytest.approx(np.quantile(x, p))
    for c, k in enumerate(last):
        obs = table.loc[table["cohort"] == COHORTS[c], "observed"].to_numpy()
        assert np.all(np.isfinite(obs[: k + 1])) and np.all(np.isnan(obs[k + 1:]))
        np.testing.assert_array_equal(obs[: k + 1], draws[c, : k + 1, 0])


def test_curve_table_ages_quantiles_and_dataframe_observed(draws):
    triangle = pd.DataFrame(draws[::-1, :3, 0], index=COHORTS[::-1], columns=range(3))  # other order, 3 ages
    table = curve_table(draws, COHORTS, triangle, quantiles=(0.1, 0.975), ages=[0, 2, 30])
    assert list(table.columns) == ["cohort", "age", "observed", "mean", "q10", "q97.5"]
    assert table["age"].tolist() == [0, 2, 30] * C
    assert table["cohort"].tolist() == [c for c in COHORTS for _ in range(3)]
    np.testing.assert_allclose(table["q97.5"].to_numpy().reshape(C, 3),
                               np.quantile(draws[:, [0, 2, 30]], 0.975, axis=2))
    obs = table["observed"].to_numpy().reshape(C, 3)
    np.testing.assert_array_equal(obs[:, :2], draws[:, [0, 2], 0])
    assert np.isnan(obs[:, 2]).all()


def test_component_table_matches_numpy_and_keeps_the_cohort_order():
    """``component_table``: per (cohort, age) one row per component in the order given, the draws' mean and
    quantiles, the observed values where given; retention above 1, negative or NaN values and mismatched shapes are
    errors naming the component, cohort and age."""
    rng = np.random.default_rng(5)
    retention = np.concatenate([np.ones((C, 1, S)), rng.uniform(0.01, 0.5, (C, H, S))], axis=1)
    arpdau = rng.gamma(2.0, 0.3, (C, H + 1, S))
    observed = {"retention": np.full((C, H + 1), np.nan)}
    observed["retention"][:, :3] = retention[:, :3, 0]
    cohorts = COHORTS[::-1]  # not sorted: the table keeps this order
    table = component_table({"retention": retention, "arpdau": arpdau}, cohorts, observed, ages=[0, 2, 30])
    assert list(table.columns) == ["cohort", "age", "component", "observed", "mean", "q05", "q25", "q50", "q75",
                                   "q95"]
    assert table["cohort"].tolist() == [c for c in cohorts for _ in range(6)]
    assert table["age"].tolist() == [0, 0, 2, 2, 30, 30] * C
    assert table["component"].tolist() == ["retention", "arpdau"] * 3 * C
    for name, x in (("retention", retention), ("arpdau", arpdau)):
        part = table[table["component"] == name]
        np.testing.assert_allclose(part["mean"].to_numpy().reshape(C, 3), x[:, [0, 2, 30]].mean(axis=-1))
        np.testing.assert_allclose(part["q95"].to_numpy().reshape(C, 3), np.quantile(x[:, [0, 2, 30]], 0.95, axis=-1))
    obs = table.loc[table["component"] == "retention", "observed"].to_numpy().reshape(C, 3)
    np.testing.assert_array_equal(obs[:, :2], retention[:, [0, 2], 0])
    assert np.isnan(obs[:, 2]).all() and table.loc[table["component"] == "arpdau", "observed"].isna().all()
    too_high = retention.copy()
    too_high[2, 7, 3] = 1.2
    with pytest.raises(DataValidationError, match=r"'retention', cohort '2024-03' \(position 2\), age 7, draw 3: "
                                                  r"1.2 is not a share in \[0, 1\]"):
        component_table({"retention": too_high}, COHORTS)
    negative = arpdau.copy()
    negative[0, 4, 0] = np.nan
    with pytest.raises(DataValidationError, match="'arpdau', cohort '2024-01' .*age 4, draw 0: nan is not a finite"):
        component_table({"arpdau": negative}, COHORTS)
    with pytest.raises(DataValidationError, match="'arpdau' has shape"):
        component_table({"retention": retention, "arpdau": arpdau[:, :5]}, COHORTS)
    with pytest.raises(DataValidationError, match="non-empty mapping"):
        component_table({}, COHORTS)


def test_curve_table_without_observed_is_nan(draws):
    table = curve_table(draws[:1], ["only"], None)
    assert table["observed"].isna().all()


# ------------------------------------------------------------------------------------------------ payback / ROAS
def test_payback_ages_brute_force(draws, cost):
    got = payback_ages(draws, INSTALLS, cost)
    assert got.shape == (C, S)
    for c in range(3):
        for s in range(S):
            assert got[c, s] == brute_payback(draws[c, :, s], INSTALLS[c], cost[c])
    assert (got[3] == -1).all()  # unknown cost
    # the three costs give early, mid and rare payback
    assert (got[0] <= H).all() and 0 < (got[1] <= H).mean() < 1 and (got[2] == H + 1).mean() > 0.5
    assert (payback_ages(draws, INSTALLS, 0.0) == 0).all()


def test_cohort_table_brute_force(draws, cost):
    groups = pd.DataFrame({"app": ["a", "a", "b", "b"], "campaign": ["x", "y", "x", "y"]}, index=[9, 8, 7, 6])
    table = cohort_table(draws, COHORTS, INSTALLS, cost, observed_age=[3, 10, 20, 40], groups=groups,
                         checkpoints=(7, 30, 90))
    cps = [7, 30, H]
    assert list(table.columns) == (
        ["cohort", "app", "campaign", "installs", "cost", "observed_age"]
        + [f"ltv_d{k}_{s}" for k in cps for s in ("mean", "q05", "q95")]
        + ["roas_mean", "roas_q05", "roas_q95", "p_roas_ge_1"]
        + [f"p_payback_d{k}" for k in cps]
        + ["p_payback", "payback_age_median", "payback_age_q05", "payback_age_q95",
           "profit_mean", "profit_q05", "profit_q95"]
    )
    assert table["app"].tolist() == ["a", "a", "b", "b"]  # positional, frame index ignored
    assert table["installs"].tolist() == INSTALLS.tolist()
    for c in range(C):
        row = table.iloc[c]
        n, k = INSTALLS[c], cost[c]
        for age in cps:
            x = draws[c, age]
            assert row[f"ltv_d{age}_mean"] == pytest.approx(np.mean(x))
            assert row[f"ltv_d{age}_q05"] == pytest.approx(np.quantile(x, 0.05))
            assert row[f"ltv_d{age}_q95"] == pytest.approx(np.quantile(x, 0.95))
        if np.isnan(k):
            decision = [col for col in table.columns if col.startswith(("roas", "p_", "payback", "profit"))]
            assert row[decision].isna().all()
            continue
        roas = [n * draws[c, H, s] / k for s in range(S)]
        assert row["roas_mean"] == pytest.approx(sum(roas) / S)
        assert row["roas_q05"] == pytest.approx(np.quantile(roas, 0.05))
        assert row["roas_q95"] == pytest.approx(np.quantile(roas, 0.95))
        assert row["p_roas_ge_1"] == pytest.approx(sum(n * draws[c, H, s] >= k for s in range(S)) / S)
        for age in cps:
            assert row[f"p_payback_d{age}"] == pytest.approx(sum(n * draws[c, age, s] >= k for s in range(S)) / S)
        ages = [brute_payback(draws[c, :, s], n, k) for s in range(S)]
        assert row["p_payback"] == pytest.approx(sum(a <= H for a in ages) / S)
        assert row["p_payback"] == row["p_roas_ge_1"] == row[f"p_payback_d{H}"]
        for name, p in [("payback_age_median", 0.5), ("payback_age_q05", 0.05), ("payback_age_q95", 0.95)]:
            want = brute_discrete_quantile(ages, p)
            if want > H:
                assert np.isnan(row[name]), (c, name)
            else:
                assert row[name] == want, (c, name)
        profit = [n * draws[c, H, s] - k for s in range(S)]
        assert row["profit_mean"] == pytest.approx(n * np.mean(draws[c, H]) - k)
        assert row["profit_mean"] == pytest.approx(sum(profit) / S)
        assert row["profit_q05"] == pytest.approx(np.quantile(profit, 0.05))
        assert row["profit_q95"] == pytest.approx(np.quantile(profit, 0.95))
    # early / mid / late: the payback-age columns take every convention
    assert table.loc[0, "payback_age_q95"] <= H
    assert np.isfinite(table.loc[1, "payback_age_q05"]) and np.isnan(table.loc[1, "payback_age_q95"])
    assert np.isnan(table.loc[2, "payback_age_median"]) and table.loc[2, "p_payback"] < 0.5


def test_cohort_table_without_cost(draws):
    table = cohort_table(draws, COHORTS, INSTALLS)
    assert list(table.columns) == ["cohort", "installs"] + [
        f"ltv_d{k}_{s}" for k in (7, 30, H) for s in ("mean", "q05", "q95")]


def test_cohort_table_horizon_period_label_and_zero_cost(draws):
    table = cohort_table(draws, COHORTS, INSTALLS, [0.0, 1.0, 2.0, 3.0], checkpoints=(1, 4, 52), horizon=10,
                         period_label="w", groups=pd.Series(["p", "q", "p", "q"], name="app"))
    assert [c for c in table.columns if c.startswith("ltv_") and c.endswith("_mean")] == [
        "ltv_w1_mean", "ltv_w4_mean", "ltv_w10_mean"]
    assert table["app"].tolist() == ["p", "q", "p", "q"]
    np.testing.assert_allclose(table["ltv_w10_mean"], draws[:, 10].mean(axis=1))
    np.testing.assert_allclose(table["profit_mean"], INSTALLS * draws[:, 10].mean(axis=1) - [0, 1, 2, 3])
    zero = table.iloc[0]
    assert np.isnan(zero["roas_mean"]) and zero["p_payback"] == 1 and zero["payback_age_median"] == 0


def test_roas_table(draws, cost):
    observed = np.full((C, H + 1), np.nan)
    observed[:, :4] = draws[:, :4, 0]
    table = roas_table(draws, COHORTS, INSTALLS, cost, observed, ages=[0, 10, H])
    assert list(table.columns) == ["cohort", "age", "observed", "mean", "q05", "q25", "q50", "q75", "q95",
                                   "p_roas_ge_1"]
    assert table["cohort"].unique().tolist() == COHORTS[:3]  # cohort without cost left out
    for c in range(3):
        for age in (0, 10, H):
            row = table[(table["cohort"] == COHORTS[c]) & (table["age"] == age)].iloc[0]
            roas = [INSTALLS[c] * draws[c, age, s] / cost[c] for s in range(S)]
            assert row["mean"] == pytest.approx(np.mean(roas))
            assert row["q25"] == pytest.approx(np.quantile(roas, 0.25))
            assert row["p_roas_ge_1"] == pytest.approx(np.mean([r >= 1 for r in roas]))
            if age == 0:
                assert row["observed"] == pytest.approx(INSTALLS[c] * draws[c, 0, 0] / cost[c])
            else:
                assert np.isnan(row["observed"])


# ------------------------------------------------------------------------------------------------ groups
def test_group_curves_install_weighted(draws):
    groups = ["b", "a", "b", "b"]
    labels, pooled = group_curves(draws, INSTALLS, groups)
    assert labels.tolist() == ["a", "b"] and pooled.shape == (2, H + 1, S)
    for g, label in enumerate(labels):
        members = [c for c in range(C) if groups[c] == label]
        for age in (0, 7, H):
            for s in (0, 17, S - 1):
                want = sum(INSTALLS[c] * draws[c, age, s] for c in members) / sum(INSTALLS[c] for c in members)
                assert pooled[g, age, s] == pytest.approx(want)
    assert (np.diff(pooled, axis=1) >= 0).all()
    # a group-level table: installs and cost summed, unknown cost propagates
    totals = group_totals(groups, INSTALLS, [1.0, 2.0, np.nan, 4.0])
    assert totals.index.tolist() == ["a", "b"]
    assert totals["installs"].tolist() == [250, 580]
    assert totals.loc["a", "cost"] == 2.0 and np.isnan(totals.loc["b", "cost"])
    table = cohort_table(pooled, labels, totals["installs"], totals["cost"])
    assert table["cohort"].tolist() == ["a", "b"]


def test_group_curves_multi_column_frame(draws):
    frame = pd.DataFrame({"app": ["x", "x", "y", "x"], "campaign": ["1", "2", "1", "1"]})
    labels, pooled = group_curves(draws, INSTALLS, frame)
    assert labels.tolist() == ["x / 1", "x / 2", "y / 1"] and labels.name == "app / campaign"
    np.testing.assert_allclose(pooled[0], (100 * draws[0] + 400 * draws[3]) / 500)
    np.testing.assert_allclose(pooled[2], draws[2])


# ------------------------------------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda d: curve_table(d[..., 0], COHORTS),
         r"draws: expected a \(cohorts, ages, draws\).*draws\[\.\.\., None\]"),
        (lambda d: curve_table(d, COHORTS[:3]), r"cohorts: 3 labels for 4 cohorts"),
        (lambda d: curve_table(d, ["a", "b", "a", "c"]), r"cohorts: label 'a' is repeated \(position 2\)"),
        (lambda d: curve_table(d, COHORTS, np.zeros((C, H))), r"observed: expected shape .*\(4, 41\)"),
        (lambda d: curve_table(d, COHORTS, ages=[0, H + 1]), r"ages: age 41 is outside"),
        (lambda d: curve_table(d, COHORTS, quantiles=(0.5, 1.5)), r"quantiles: expected probabilities"),
        (lambda d: cohort_table(d, COHORTS, INSTALLS[:3]), r"installs: expected one value per cohort"),
        (lambda d: cohort_table(d, COHORTS, [100, 0, 80, 400]),
         r"installs: cohort '2024-02' \(position 1\) has 0 installs"),
        (lambda d: cohort_table(d, COHORTS, INSTALLS, [1.0, 2.0, -3.0, 4.0]),
         r"cost: cohort '2024-03' \(position 2\) has cost -3"),
        (lambda d: cohort_table(d, COHORTS, INSTALLS, [1.0, np.inf, 3.0, 4.0]), r"cost: cohort '2024-02'"),
        (lambda d: cohort_table(d, COHORTS, INSTALLS, [1.0, "x", 3.0, 4.0]),
         r"cost: cohort '2024-02' \(position 1\): 'x' is not a number"),
        (lambda d: cohort_table(d, COHORTS, INSTALLS, horizon=H + 1), r"horizon: 41 is not a whole age"),
        (lambda d: cohort_table(d, COHORTS, INSTALLS, groups=["a", "b"]), r"groups: expected one value per cohort"),
        (lambda d: cohort_table(d, COHORTS, INSTALLS, groups=pd.DataFrame({"cost": [1, 2, 3, 4]})),
         r"groups: column 'cost' clashes"),
        (lambda d: group_curves(d, INSTALLS, ["a", None, "b", "b"]), r"groups: missing label .* position 1"),
        (lambda d: group_curves(d, INSTALLS, ["a", "b"]), r"groups: 2 labels for 4 cohorts"),
        (lambda d: roas_table(d, COHORTS, INSTALLS, [1.0, 2.0]), r"cost: expected one value per cohort"),
    ],
)
def test_validation_errors(draws, call, match):
    with pytest.raises(DataValidationError, match=match):
        call(draws)


def test_not_monotone_names_first_cohort_and_age(draws):
    bad = draws.copy()
    bad[2, 12, 5] = bad[2, 11, 5] - 0.5  # falls at 11 -> 12 (and rises again at 13)
    bad[3, 3, 0] = bad[3, 2, 0] - 0.5  # a later cohort
    for call in (lambda: curve_table(bad, COHORTS), lambda: cohort_table(bad, COHORTS, INSTALLS)):
        with pytest.raises(DataValidationError, match=r"cohort '2024-03' .*draw 5 falls .* at age 11 to .* at age 12"):
            call()
    # position-labelled where no labels are passed
    for call in (lambda: payback_ages(bad, INSTALLS, 1.0), lambda: group_curves(bad, INSTALLS, ["a"] * C)):
        with pytest.raises(DataValidationError, match=r"cohort at position 2 is not non-decreasing .* age 11"):
            call()
    # floating-point noise is tolerated
    noisy = draws.copy()
    noisy[0, 5, 0] = noisy[0, 4, 0] * (1 - 1e-12)
    noisy[0, 6:, 0] = np.maximum(noisy[0, 6:, 0], noisy[0, 4, 0])
    curve_table(noisy, COHORTS)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_draws(draws, value):
    bad = draws.copy()
    bad[1, 7, 3] = value
    with pytest.raises(DataValidationError, match=r"draws: cohort '2024-02' \(position 1\), age 7, draw 3: .* not a "
                                                  r"finite number"):
        cohort_table(bad, COHORTS, INSTALLS)


def test_import_is_light():
    code = ("import sys, btyd_ltv.curves; bad = [m for m in ('jax', 'matplotlib', 'numpyro') if m in sys.modules]; "
            "sys.exit(str(bad) if bad else 0)")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_blocked_processing_gives_the_same_tables(draws, cost, monkeypatch):
    import btyd_ltv.curves as curves

    full = (curve_table(draws, COHORTS), roas_table(draws, COHORTS, INSTALLS, cost),
            cohort_table(draws, COHORTS, INSTALLS, cost), payback_ages(draws, INSTALLS, cost))
    monkeypatch.setattr(curves, "_BLOCK", 1)  # one cohort per block
    blocked = (curve_table(draws, COHORTS), roas_table(draws, COHORTS, INSTALLS, cost),
               cohort_table(draws, COHORTS, INSTALLS, cost), payback_ages(draws, INSTALLS, cost))
    for a, b in zip(full[:3], blocked[:3]):
        pd.testing.assert_frame_equal(a, b)
    np.testing.assert_array_equal(full[3], blocked[3])
    bad = draws.copy()
    bad[3, 9, 1] = -1.0
    with pytest.raises(DataValidationError, match=r"cohort '2024-04' \(position 3\) .* at age 8 to -1 at age 9"):
        curve_table(bad, COHORTS)
