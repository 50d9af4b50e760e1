"""LTV metrics against independent references: scipy, brute force, Google's pandas recipe, hand-computed
tables, closed forms, numerical integration and mpmath."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys

import mpmath
import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from btyd_ltv.errors import DataValidationError
from btyd_ltv.metrics import (
    auc,
    auc_positive,
    bucket_mape,
    bucket_table,
    coverage_from_samples,
    crps_normal,
    crps_samples,
    decile_mape,
    gain_curve,
    gini,
    interval_coverage,
    log_predictive_density,
    mae,
    normalized_mae,
    normalized_rmse,
    percentile_mape,
    r2,
    report,
    report_markdown,
    rmse,
    rmsle,
    spearman,
    top_k_auc,
)


# ---------------------------------------------------------------------------------------------------------------
# independent references
# ---------------------------------------------------------------------------------------------------------------

def brute_auc(labels, scores) -> float:
    """P(s+ > s-) + P(s+ = s-)/2 by counting every (positive, negative) pair."""
    labels = np.asarray(labels, dtype=bool)
    pos, neg = np.asarray(scores)[labels], np.asarray(scores)[~labels]
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in pos for b in neg)
    return wins / (len(pos) * len(neg))


def google_cumulative_true(y_true, y_pred) -> np.ndarray:
    """``cumulative_true`` of google/lifetime_value/metrics.py."""
    df = pd.DataFrame({"y_true": y_true, "y_pred": y_pred}).sort_values(by="y_pred", ascending=False)
    return (df["y_true"].cumsum() / df["y_true"].sum()).values


def google_raw_gini(gain: np.ndarray) -> float:
    """``gini_from_gain`` of google/lifetime_value/metrics.py, for one column."""
    return 2 * gain.sum() / gain.shape[0] - 1.0


def heavy_tailed(rng: np.random.Generator, n: int, p_zero: float = 0.7) -> np.ndarray:
    return np.where(rng.random(n) < p_zero, 0.0, rng.lognormal(3.0, 1.5, n))


# ---------------------------------------------------------------------------------------------------------------
# Spearman, AUC
# ---------------------------------------------------------------------------------------------------------------

def test_spearman_matches_scipy_with_ties():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 6, 300).astype(float)
    p = y + rng.integers(-3, 4, 300)
    assert spearman(y, p) == pytest.approx(stats.spearmanr(y, p).statistic, abs=1e-13)
    y2, p2 = rng.normal(size=50), rng.normal(size=50)
    assert spearman(y2, p2) == pytest.approx(stats.spearmanr(y2, p2).statistic, abs=1e-13)


def test_spearman_constant_is_nan():
    assert math.isnan(spearman([1.0, 2.0, 3.0], [5.0, 5.0, 5.0]))
    assert math.isnan(spearman([0.0, 0.0], [1.0, 2.0]))


def test_auc_matches_brute_force_pair_count_with_ties():
    rng = np.random.default_rng(1)
    labels = rng.random(200) < 0.3
    scores = rng.integers(0, 8, 200).astype(float) + labels  # many ties, informative
    assert auc(labels, scores) == pytest.approx(brute_auc(labels, scores), abs=1e-14)
    assert auc([0, 1, 0, 1], [0.2, 0.2, 0.1, 0.3]) == pytest.approx(0.875)  # (1/2 + 1 + 1 + 1) / 4


def test_auc_one_class_raises():
    with pytest.raises(DataValidationError, match="both classes"):
        auc([1, 1, 1], [0.1, 0.2, 0.3])


def test_auc_positive_is_auc_of_positive_label():
    rng = np.random.default_rng(2)
    y = heavy_tailed(rng, 150)
    score = np.round(y / 50 + rng.random(150), 1)
    assert auc_positive(y, score) == pytest.approx(brute_auc(y > 0, score), abs=1e-14)


def test_top_k_auc_matches_brute_force_on_constructed_labels():
    rng = np.random.default_rng(3)
    n = 240
    y = np.round(heavy_tailed(rng, n, 0.5), 0)
    p = np.round(np.log1p(y) + rng.normal(0.0, 1.0, n), 1)
    for k in (0.01, 0.1, 0.25):
        m = math.ceil(k * n - 1e-9)
        threshold = np.sort(y)[::-1][m - 1]
        labels = (y >= threshold) & (y > 0)
        assert top_k_auc(y, p, k) == pytest.approx(brute_auc(labels, p), abs=1e-14)


def test_top_k_auc_includes_every_tie_at_the_boundary():
    y = [0.0, 5.0, 3.0, 3.0, 1.0, 0.0]  # k = 2/6: m = 2, 2nd largest = 3, so both 3s are positives
    p = [0.1, 0.9, 0.2, 0.8, 0.7, 0.0]
    assert top_k_auc(y, p, 2 / 6) == pytest.approx(8 / 9)  # positives 0.9, 0.2, 0.8 vs 0.1, 0.7, 0.0
    with pytest.raises(DataValidationError):
        top_k_auc([0.0, 0.0, 0.0], [1.0, 2.0, 3.0], 0.5)  # no positive value: one class


# ---------------------------------------------------------------------------------------------------------------
# gain curve and Gini
# ---------------------------------------------------------------------------------------------------------------

def test_gain_curve_shape_and_ends():
    y = np.array([0.0, 4.0, 1.0, 5.0])
    g = gain_curve(y, [0.1, 0.3, 0.2, 0.4])
    assert list(g.columns) == ["fraction_customers", "model", "oracle", "random"]
    np.testing.assert_allclose(g["fraction_customers"], [0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(g["random"], g["fraction_customers"])
    np.testing.assert_allclose(g["model"], [0, 0.5, 0.9, 1.0, 1.0])
    np.testing.assert_allclose(g["oracle"], [0, 0.5, 0.9, 1.0, 1.0])


def test_gain_curve_ties_equal_the_mean_over_all_tie_breaks():
    y = np.array([3.0, 0.0, 7.0, 1.0, 2.0, 9.0])
    p = np.array([2.0, 1.0, 1.0, 1.0, 0.0, 1.0])  # one block of four tied predictions
    tied = np.flatnonzero(p == 1.0)
    curves = []
    for perm in itertools.permutations(tied):  # every order of the block, by Google's recipe
        order = np.r_[[0], list(perm), [4]]
        curves.append(np.cumsum(y[order]) / y.sum())
    np.testing.assert_allclose(gain_curve(y, p)["model"].to_numpy()[1:], np.mean(curves, axis=0), rtol=1e-13)


def test_gini_matches_google_recipe_without_ties():
    rng = np.random.default_rng(4)
    y = rng.lognormal(2.0, 1.2, 500)
    p = y * rng.lognormal(0.0, 0.8, 500)
    raw_model = google_raw_gini(google_cumulative_true(y, p))
    raw_oracle = google_raw_gini(google_cumulative_true(y, y))
    assert gini(y, p, normalized=False) == pytest.approx(raw_model, rel=1e-12)
    assert gini(y, p) == pytest.approx(raw_model / raw_oracle, rel=1e-12)


def test_gini_perfect_reversed_and_random():
    rng = np.random.default_rng(5)
    y = heavy_tailed(rng, 1_000_000)
    assert gini(y, np.sqrt(y) + 1.0) == 1.0  # any increasing transform is a perfect ranking
    assert gini(y, -y) < 0
    assert abs(gini(y, rng.random(y.size))) < 0.01


def test_gini_tie_invariance():
    rng = np.random.default_rng(6)
    y = heavy_tailed(rng, 400, 0.4)
    p = rng.integers(0, 5, 400).astype(float)
    base = gini(y, p)
    y_shuffled = y.copy()
    for value in np.unique(p):  # reassign outcomes among customers with the same prediction
        idx = np.flatnonzero(p == value)
        y_shuffled[idx] = y[rng.permutation(idx)]
    assert gini(y_shuffled, p) == base
    rows = rng.permutation(400)
    assert gini(y[rows], p[rows]) == base


def test_gini_constant_prediction():
    rng = np.random.default_rng(7)
    y = heavy_tailed(rng, 1000, 0.5)
    oracle_raw = google_raw_gini(np.cumsum(np.sort(y)[::-1]) / y.sum())
    assert gini(y, np.full(1000, 3.0), normalized=False) == pytest.approx(1 / 1000, rel=1e-9)
    assert gini(y, np.full(1000, 3.0)) == pytest.approx((1 / 1000) / oracle_raw, rel=1e-9)


def test_gini_zero_total_raises():
    with pytest.raises(DataValidationError, match="positive total"):
        gini([0.0, 0.0, 0.0], [1.0, 2.0, 3.0])


# ---------------------------------------------------------------------------------------------------------------
# bucket MAPE
# ---------------------------------------------------------------------------------------------------------------

def test_bucket_mape_hand_computed():
    y = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    p = [3.0, 1.0, 2.0, 6.0, 4.0, 5.0]
    # by prediction: (p 1,2 | y 2,3) (p 3,4 | y 1,5) (p 5,6 | y 6,4) -> APE 1/2.5, 0.5/3, 0.5/5
    t = bucket_table(y, p, 3)
    np.testing.assert_allclose(t["pred"], [1.5, 3.5, 5.5])
    np.testing.assert_allclose(t["true"], [2.5, 3.0, 5.0])
    np.testing.assert_allclose(t["ape"], [0.4, 1 / 6, 0.1])
    assert bucket_mape(y, p, 3) == pytest.approx((0.4 + 1 / 6 + 0.1) / 3)
    # by truth: (y 1,2 | p 3,1) (y 3,4 | p 2,6) (y 5,6 | p 4,5) -> APE 0.5/1.5, 0.5/3.5, 1/5.5
    assert bucket_mape(y, p, 3, sort_by="true") == pytest.approx((1 / 3 + 1 / 7 + 1 / 5.5) / 3)


def test_bucket_mape_median():
    y = [1.0, 2.0, 30.0, 4.0, 5.0, 60.0]
    p = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert bucket_mape(y, p, 2, agg="median") == 0.0
    assert bucket_mape(y, p, 2) == pytest.approx((9 / 11 + 18 / 23) / 2)


def test_bucket_sizes_equal_count_and_qcut_membership():
    rng = np.random.default_rng(8)
    t = bucket_table(rng.random(23), rng.random(23), 10)
    assert t["n"].sum() == 23 and t["n"].max() - t["n"].min() <= 1
    assert list(t["n"]) == [3, 3, 3, 2, 2, 2, 2, 2, 2, 2]
    y = heavy_tailed(rng, 50)
    p = rng.integers(0, 4, 50).astype(float)  # heavy ties: pd.qcut(p) itself would fail
    bucket = pd.qcut(pd.Series(p).rank(method="first"), 10, labels=False)
    ref = pd.DataFrame({"y": y, "p": p, "b": bucket}).groupby("b").mean()
    t = bucket_table(y, p, 10)
    np.testing.assert_allclose(t["pred"], ref["p"], rtol=1e-13)
    np.testing.assert_allclose(t["true"], ref["y"], rtol=1e-13)


def test_zero_truth_bucket_is_excluded_and_flagged():
    y = [0.0, 0.0, 0.0, 1.0, 2.0, 3.0]
    p = [0.1, 0.2, 0.3, 1.0, 2.0, 4.0]
    t = bucket_table(y, p, 2)
    assert list(t["excluded"]) == [True, False]
    assert math.isnan(t["ape"].iloc[0])
    assert bucket_mape(y, p, 2) == pytest.approx((1 / 3) / 2)
    assert math.isnan(bucket_mape([0.0] * 4, [1.0, 2.0, 3.0, 4.0], 2))


def test_fewer_customers_than_buckets_drops_empty_buckets():
    t = bucket_table([1.0, 2.0, 4.0, 8.0], [2.0, 2.0, 2.0, 2.0], 10)
    assert len(t) == 4 and list(t["n"]) == [1, 1, 1, 1]
    assert bucket_mape([1.0, 2.0, 4.0, 8.0], [2.0, 2.0, 2.0, 2.0], 10) == pytest.approx((1 + 0 + 0.5 + 0.75) / 4)


def test_decile_and_percentile_mape_are_bucket_mape():
    rng = np.random.default_rng(9)
    y = heavy_tailed(rng, 1234, 0.3)
    p = y * rng.lognormal(0.0, 0.5, 1234) + 1.0
    assert percentile_mape(y, p) == bucket_mape(y, p, 100)
    assert decile_mape(y, p) == bucket_mape(y, p, 10)
    assert len(bucket_table(y, p, 100)) == 100


# ---------------------------------------------------------------------------------------------------------------
# point errors
# ---------------------------------------------------------------------------------------------------------------

def test_point_errors_hand_example():
    y = [1.0, 2.0, 3.0, 4.0]
    p = [2.0, 2.0, 2.0, 6.0]  # errors 1, 0, -1, 2: SSE 6; SST 5; mean y 2.5
    assert rmse(y, p) == pytest.approx(math.sqrt(1.5), rel=1e-15)
    assert mae(y, p) == pytest.approx(1.0, rel=1e-15)
    assert normalized_rmse(y, p) == pytest.approx(math.sqrt(1.5) / 2.5, rel=1e-15)
    assert normalized_mae(y, p) == pytest.approx(0.4, rel=1e-15)
    assert r2(y, p) == pytest.approx(1 - 6 / 5, rel=1e-14)
    d = [math.log(3 / 2), 0.0, math.log(3 / 4), math.log(7 / 5)]
    assert rmsle(y, p) == pytest.approx(math.sqrt(sum(v * v for v in d) / 4), rel=1e-14)


def test_rmsle_negative_names_row_and_r2_constant_raises():
    with pytest.raises(DataValidationError, match=r"y_pred.*row 2"):
        rmsle([1.0, 2.0, 3.0], [1.0, 0.0, -0.5])
    with pytest.raises(DataValidationError, match=r"y_true.*row 0"):
        rmsle([-1.0, 2.0, 3.0], [1.0, 0.0, 0.5])
    with pytest.raises(DataValidationError):
        r2([2.0, 2.0], [1.0, 3.0])


def test_length_mismatch_and_nan_raise():
    with pytest.raises(DataValidationError, match="rows"):
        rmse([1.0, 2.0], [1.0])
    with pytest.raises(DataValidationError, match="row 1"):
        mae([1.0, np.nan], [1.0, 2.0])


# ---------------------------------------------------------------------------------------------------------------
# probabilistic scores
# ---------------------------------------------------------------------------------------------------------------

def test_crps_normal_reference_value():
    assert crps_normal(0.0, 0.0, 1.0) == pytest.approx(0.2336949772551091, abs=1e-12)
    assert crps_normal(0.0, 0.0, 1.0) == pytest.approx(2 / math.sqrt(2 * math.pi) - 1 / math.sqrt(math.pi), abs=1e-15)


@pytest.mark.parametrize("y, mu, sigma", [(0.3, 0.0, 1.0), (-2.5, 1.0, 0.7), (40.0, 35.0, 6.0)])
def test_crps_normal_matches_numerical_integration(y, mu, sigma):
    F = lambda x: stats.norm.cdf(x, mu, sigma)  # noqa: E731
    left = integrate.quad(lambda x: F(x) ** 2, -np.inf, y, epsabs=1e-13, epsrel=1e-12)[0]
    right = integrate.quad(lambda x: (F(x) - 1.0) ** 2, y, np.inf, epsabs=1e-13, epsrel=1e-12)[0]
    assert crps_normal(y, mu, sigma) == pytest.approx(left + right, rel=1e-8, abs=1e-11)


def test_crps_samples_normal_draws_match_closed_form():
    # Monte-Carlo tolerance for S = 20000 draws: Var|X - y| <= Var X = sigma^2, so E|X - y| is estimated with
    # sd <= sigma / sqrt(S) = 0.0071 sigma; the spread term is a U-statistic whose error is of the same order and
    # partly cancels (empirical sd of the whole estimator: 0.0016 sigma at z = 0, 0.0062 sigma at z = 1.4).
    # 0.03 sigma is over 4 of those bound-sds.
    rng = np.random.default_rng(10)
    mu = np.array([0.0, 2.0, -1.0, 10.0])
    sigma = np.array([1.0, 0.5, 2.0, 3.0])
    y = np.array([0.0, 2.7, 1.5, 4.0])
    draws = mu[:, None] + sigma[:, None] * rng.standard_normal((4, 20_000))
    assert np.all(np.abs(crps_samples(y, draws) - crps_normal(y, mu, sigma)) < 0.03 * sigma)
    assert np.all(np.abs(crps_samples(y, draws, fair=True) - crps_normal(y, mu, sigma)) < 0.03 * sigma)


def test_crps_samples_fair_and_plain_match_brute_force_pairs():
    rng = np.random.default_rng(11)
    x = rng.gamma(2.0, 3.0, (5, 7))
    y = rng.gamma(2.0, 3.0, 5)
    term1 = np.abs(x - y[:, None]).mean(axis=1)
    pair_sum = np.abs(x[:, :, None] - x[:, None, :]).sum(axis=(1, 2))
    S = x.shape[1]
    plain, fair = crps_samples(y, x), crps_samples(y, x, fair=True)
    np.testing.assert_allclose(plain, term1 - 0.5 * pair_sum / S**2, rtol=1e-13)
    np.testing.assert_allclose(fair, term1 - 0.5 * pair_sum / (S * (S - 1)), rtol=1e-13)
    np.testing.assert_allclose(plain - fair, (term1 - plain) / (S - 1), rtol=1e-12)  # spread x S/(S-1)


def test_log_predictive_density():
    rng = np.random.default_rng(12)
    a = rng.normal(-3.0, 2.0, 6)
    np.testing.assert_allclose(log_predictive_density(np.repeat(a[:, None], 9, axis=1)), a, rtol=1e-14)
    ll = np.array([[-1000.0, -1001.0], [-5.0, 2.0], [-np.inf, -1.0]])
    mpmath.mp.dps = 50
    ref = [float(mpmath.log((mpmath.exp(mpmath.mpf(u)) + mpmath.exp(mpmath.mpf(v))) / 2)) for u, v in ll[:2]]
    ref.append(-1.0 - math.log(2.0))
    np.testing.assert_allclose(log_predictive_density(ll), ref, rtol=1e-14)


def test_interval_coverage_and_coverage_from_samples():
    assert interval_coverage([1.0, 2.0, 3.0, 4.0], [0.0, 2.0, 3.5, 0.0], [1.0, 3.0, 4.0, 3.9]) == 0.5
    rng = np.random.default_rng(13)
    samples = rng.normal(size=(200, 101))
    y = rng.normal(size=200) * 1.5
    lo, hi = np.quantile(samples, 0.1, axis=1), np.quantile(samples, 0.9, axis=1)
    assert coverage_from_samples(y, samples, 0.8) == np.mean((lo <= y) & (y <= hi))
    # draws 0..100 per row: the 80% interval is [10, 90] exactly, endpoints included
    grid = np.tile(np.arange(101.0), (5, 1))
    assert coverage_from_samples([9.9, 10.0, 50.0, 90.0, 90.1], grid, 0.8) == 0.6


# ---------------------------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def scored():
    rng = np.random.default_rng(14)
    n = 400
    y = heavy_tailed(rng, n, 0.6)
    mu = np.log1p(y) + rng.normal(0.0, 0.5, n)
    samples = np.maximum(np.expm1(mu[:, None] + rng.normal(0.0, 1.0, (n, 300))), 0.0)
    log_lik = rng.normal(-4.0, 1.0, (n, 300))
    point = samples.mean(axis=1)
    q = {f"q{k}": np.quantile(samples, float(k) / 100, axis=1) for k in ("2.5", "10", "50", "90", "97.5")}
    predictions = {
        "zeta": pd.DataFrame({"prediction": point, "p_positive": 1 / (1 + np.exp(-mu)), "customer": 1, **q}),
        "bayes": {"prediction": point, "samples": samples, "log_lik": log_lik, "expected_q05": point * 0},
        "naive": list(np.full(n, y.mean())),
    }
    return y, predictions, report(y, predictions)


def test_report_columns_rows_and_order(scored):
    _, _, table = scored
    assert list(table.index) == ["zeta", "bayes", "naive"] and table.index.name == "model"
    assert list(table.columns) == [
        "n", "mean_true", "mean_pred", "gini", "decile_mape", "percentile_mape", "spearman", "auc_positive",
        "top_1pct_auc", "top_10pct_auc", "rmse", "mae", "normalized_rmse", "normalized_mae", "rmsle", "r2",
        "coverage_80", "coverage_95", "crps", "lpd",
    ]
    assert list(report([1.0, 0.0, 2.0], {"m": [1.0, 1.0, 1.0]}, levels=(0.5,), top_k=(0.005,)).columns)[-5:] == [
        "rmsle", "r2", "coverage_50", "crps", "lpd"]


def test_report_values_equal_individual_functions(scored):
    y, preds, table = scored
    point = preds["bayes"]["prediction"]
    for name in ("zeta", "bayes"):
        row = table.loc[name]
        assert row["n"] == len(y) and row["mean_true"] == pytest.approx(y.mean())
        assert row["gini"] == gini(y, point)
        assert row["decile_mape"] == decile_mape(y, point)
        assert row["percentile_mape"] == percentile_mape(y, point)
        assert row["spearman"] == spearman(y, point)
        assert row["top_1pct_auc"] == top_k_auc(y, point, 0.01)
        assert row["top_10pct_auc"] == top_k_auc(y, point, 0.1)
        for fn in (rmse, mae, normalized_rmse, normalized_mae, rmsle, r2):
            assert row[fn.__name__] == fn(y, point)
    zeta, bayes, naive = (table.loc[k] for k in ("zeta", "bayes", "naive"))
    assert zeta["auc_positive"] == auc_positive(y, preds["zeta"]["p_positive"])
    assert bayes["auc_positive"] == auc_positive(y, point)
    q = preds["zeta"]
    assert zeta["coverage_80"] == interval_coverage(y, q["q10"], q["q90"])
    assert zeta["coverage_95"] == interval_coverage(y, q["q2.5"], q["q97.5"])
    assert math.isnan(zeta["crps"]) and math.isnan(zeta["lpd"])
    s = preds["bayes"]["samples"]
    assert bayes["coverage_80"] == coverage_from_samples(y, s, 0.8)
    assert bayes["coverage_95"] == coverage_from_samples(y, s, 0.95)
    assert bayes["crps"] == pytest.approx(crps_samples(y, s).mean(), rel=1e-14)
    assert bayes["lpd"] == pytest.approx(log_predictive_density(preds["bayes"]["log_lik"]).mean(), rel=1e-14)
    assert math.isnan(naive["spearman"]) and math.isnan(naive["coverage_80"]) and math.isnan(naive["crps"])
    assert naive["auc_positive"] == 0.5


def test_report_undefined_metrics_are_nan():
    table = report([0.0, 0.0, 0.0], {"m": [0.5, 1.0, 2.0]})
    for col in ("gini", "auc_positive", "top_1pct_auc", "normalized_rmse", "r2", "decile_mape"):
        assert math.isnan(table.loc["m", col]), col
    assert table.loc["m", "rmse"] == pytest.approx(rmse([0.0, 0.0, 0.0], [0.5, 1.0, 2.0]))


def test_report_rejects_bad_inputs():
    y = np.array([1.0, 0.0, 2.0, 5.0])
    with pytest.raises(DataValidationError, match=r"'short'.*3 rows"):
        report(y, {"ok": y, "short": [1.0, 2.0, 3.0]})
    with pytest.raises(DataValidationError, match=r"'m'.*'prediction'.*row 2"):
        report(y, {"m": [1.0, 1.0, np.nan, 1.0]})
    with pytest.raises(DataValidationError, match=r"'m'.*'q90'.*row 3"):
        report(y, {"m": pd.DataFrame({"prediction": y, "q10": y * 0, "q90": [1, 2, 3, np.inf]})})
    with pytest.raises(DataValidationError, match=r"'m'.*negative.*row 1"):
        report(y, {"m": [1.0, -0.1, 2.0, 3.0]})
    with pytest.raises(DataValidationError, match=r"y_true.*row 3"):
        report([1.0, 0.0, 2.0, np.nan], {"m": y})
    with pytest.raises(DataValidationError, match=r"y_true.*negative.*row 0"):
        report([-1.0, 0.0, 2.0, 1.0], {"m": y})
    with pytest.raises(DataValidationError, match=r"'m'.*samples.*row 1"):
        report(y, {"m": {"prediction": y, "samples": [[1, 2], [np.nan, 1], [1, 1], [2, 2]]}})
    with pytest.raises(DataValidationError, match="prediction"):
        report(y, {"m": pd.DataFrame({"q50": y})})


def test_report_markdown(scored):
    _, _, table = scored
    md = report_markdown(table)
    lines = md.strip().split("\n")
    assert len(lines) == 2 + len(table)
    assert lines[0].startswith("| model | n | mean_true | mean_pred | gini |")
    assert set(lines[1]) <= set("|-:")
    assert lines[2].startswith("| zeta | 400 | ") and lines[4].startswith("| naive | 400 | ")
    assert all(line.count("|") == len(table.columns) + 2 for line in lines)
    assert f"| {table.loc['zeta', 'gini']:.4g} |" in lines[2]


def test_import_is_light():
    code = "import sys, btyd_ltv.metrics; print(any(m == 'jax' or m.startswith('jax.') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
