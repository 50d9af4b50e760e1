"""Simulators against closed forms: BG/NBD E[X(T)] and P(X(T) = 0) (FHL 2005), Gamma-Gamma mean spend."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import hyp2f1
from scipy.stats import ks_2samp

from btyd_ltv.data.simulate import cdnow_like_T, simulate_bgnbd, simulate_gamma_gamma, simulate_transactions
from btyd_ltv.data.transactions import summary_from_transactions
from btyd_ltv.errors import DataValidationError

CDNOW = dict(r=0.243, alpha=4.414, a=0.793, b=2.426)  # FHL (2005) BG/NBD estimates, weeks
GG = dict(p=6.25, q=3.74, gamma=15.44)  # FHL (2005) "RFM and CLV" Gamma-Gamma estimates, dollars


def expected_x(t, r, alpha, a, b):
    """FHL (2005) eq. 9: E[X(t)] = (a+b-1)/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b; a+b-1; t/(alpha+t))]."""
    t = np.asarray(t, dtype=float)
    return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, t / (alpha + t)))


def p_zero(t, r, alpha, a, b):
    """FHL (2005) eq. 8 at x = 0: P(X(t) = 0) = (alpha/(alpha+t))^r (nobody drops out before a repeat purchase)."""
    return (alpha / (alpha + np.asarray(t, dtype=float))) ** r


@pytest.mark.parametrize(
    "params", [CDNOW, dict(r=1.5, alpha=3.0, a=2.0, b=5.0), dict(r=0.5, alpha=20.0, a=1.5, b=0.8)]
)
def test_bgnbd_moments(params):
    n, T = 200_000, 39.0
    df = simulate_bgnbd(n, T=T, seed=1, **params)
    x = df["frequency"].to_numpy()
    se = x.std(ddof=1) / np.sqrt(n)
    assert abs(x.mean() - expected_x(T, **params)) < 4 * se
    p0 = p_zero(T, **params)
    assert abs((x == 0).mean() - p0) < 4 * np.sqrt(p0 * (1 - p0) / n)


def test_bgnbd_per_customer_T_and_invariants():
    n = 100_000
    T = cdnow_like_T(n, seed=2)
    df = simulate_bgnbd(n, T=T, seed=3, **CDNOW)
    np.testing.assert_array_equal(df["T"], T)
    assert list(df.columns) == ["customer_id", "frequency", "recency", "T"]
    x, t_x = df["frequency"].to_numpy(), df["recency"].to_numpy()
    assert np.all((t_x >= 0) & (t_x <= T)) and np.all((x > 0) == (t_x > 0))
    target = expected_x(T, **CDNOW)
    se = np.sqrt(np.var(x - target, ddof=1) / n)
    assert abs(x.mean() - target.mean()) < 4 * se


def test_bgnbd_matches_event_by_event_simulation():
    """The order-statistic shortcut vs the story told purchase by purchase (exponential gaps, a coin after each)."""
    n, K, T = 40_000, 200, 39.0
    params = dict(r=0.8, alpha=8.0, a=1.2, b=2.5)
    rng = np.random.default_rng(21)
    lam = rng.gamma(params["r"], 1 / params["alpha"], n)
    p = rng.beta(params["a"], params["b"], n)
    times = np.cumsum(rng.exponential(1.0, (n, K)) / lam[:, None], axis=1)
    dropped_after = rng.random((n, K)) < p[:, None]
    active_before = np.concatenate([np.ones((n, 1), bool), np.cumprod(~dropped_after, axis=1)[:, :-1] > 0], axis=1)
    made = (times <= T) & active_before
    x_ref = made.sum(axis=1)
    assert (times[:, -1] > T).all()  # K arrivals are enough
    tx_ref = np.where(x_ref > 0, times[np.arange(n), np.maximum(x_ref - 1, 0)], 0.0)
    df = simulate_bgnbd(n, T=T, seed=22, **params)
    x, t_x = df["frequency"].to_numpy(), df["recency"].to_numpy()
    assert abs(x.mean() - x_ref.mean()) < 4 * np.sqrt((x.var() + x_ref.var()) / n)
    for k in (0, 1, 2, 5):
        assert abs(np.mean(x == k) - np.mean(x_ref == k)) < 4 * np.sqrt(2 * 0.25 / n)
    assert ks_2samp(t_x[x > 0], tx_ref[x_ref > 0]).pvalue > 1e-3
    assert ks_2samp(t_x[x == 1], tx_ref[x_ref == 1]).pvalue > 1e-3


def test_cdnow_like_T_grid():
    T = cdnow_like_T(50_000, seed=4)
    days = T * 7
    np.testing.assert_allclose(days, np.round(days), atol=1e-9)
    assert days.min() == 189 and days.max() == 273  # 27 and 39 weeks
    assert abs(T.mean() - 33.0) < 0.05


def test_time_grid_recency():
    T = cdnow_like_T(20_000, seed=5)
    df = simulate_bgnbd(20_000, T=T, seed=6, time_grid=1 / 7, **CDNOW)
    plain = simulate_bgnbd(20_000, T=T, seed=6, **CDNOW)
    days = df["recency"].to_numpy() * 7
    np.testing.assert_allclose(days, np.round(days), atol=1e-9)
    assert np.all(df["recency"] <= df["T"]) and np.all(df["recency"] >= plain["recency"] - 1e-12)
    assert np.all(df["recency"] - plain["recency"] < 1 / 7 + 1e-9)
    np.testing.assert_array_equal(df["frequency"], plain["frequency"])
    assert df.drop_duplicates(["frequency", "recency", "T"]).shape[0] < 0.5 * len(df)


def test_latent_alive():
    df = simulate_bgnbd(50_000, T=39.0, seed=7, return_latent=True, **CDNOW)
    assert {"lambda", "p", "alive"} <= set(df.columns)
    assert df.loc[df["frequency"] == 0, "alive"].all()  # no repeat purchase, no chance to drop out


def test_gamma_gamma_mean():
    n = 100_000
    p, q, gamma = 6.0, 5.0, 15.0  # q > 2: finite variance
    for x in (1, 4):
        z = simulate_gamma_gamma(np.full(n, x), p, q, gamma, seed=8)
        se = z.std(ddof=1) / np.sqrt(n)
        assert abs(z.mean() - p * gamma / (q - 1)) < 4 * se
    # Var(zbar | x) = E[Var | nu] + Var(E | nu) = p/x E[1/nu^2] + p^2 Var(1/nu), E[1/nu^2] = gamma^2/((q-1)(q-2))
    z = simulate_gamma_gamma(np.full(n, 4), p, q, gamma, seed=9)
    e2 = gamma**2 / ((q - 1) * (q - 2))
    var = p / 4 * e2 + p**2 * (e2 - (gamma / (q - 1)) ** 2)
    assert abs(z.var() / var - 1) < 0.1
    zero = simulate_gamma_gamma(np.array([0, 2, 0]), p, q, gamma, seed=10)
    assert zero[0] == 0 and zero[2] == 0 and zero[1] > 0


def test_gamma_gamma_bad_frequency():
    with pytest.raises(DataValidationError, match="frequency row 1"):
        simulate_gamma_gamma(np.array([1, 1.5]), 6.0, 4.0, 15.0, seed=0)


def test_seeds_reproduce():
    pd.testing.assert_frame_equal(simulate_bgnbd(1000, T=30.0, seed=3, **CDNOW),
                                  simulate_bgnbd(1000, T=30.0, seed=3, **CDNOW))
    assert not simulate_bgnbd(1000, T=30.0, seed=4, **CDNOW).equals(simulate_bgnbd(1000, T=30.0, seed=3, **CDNOW))
    np.testing.assert_array_equal(cdnow_like_T(100, seed=1), cdnow_like_T(100, seed=1))
    np.testing.assert_array_equal(simulate_gamma_gamma(np.arange(10), 6, 4, 15, seed=1),
                                  simulate_gamma_gamma(np.arange(10), 6, 4, 15, seed=1))
    kw = dict(**CDNOW, **GG, time_unit_days=7, seed=5)
    pd.testing.assert_frame_equal(simulate_transactions(500, **kw), simulate_transactions(500, **kw))


def test_transactions_log():
    n, days, acq = 60_000, 546, 84
    df = simulate_transactions(n, **CDNOW, **GG, time_unit_days=7, acquisition_days=acq, observation_days=days,
                               seed=11)
    assert list(df.columns) == ["customer_id", "date", "amount"]
    assert pd.api.types.is_datetime64_dtype(df["date"].dtype)
    start, end = pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-01") + pd.Timedelta(days=days - 1)
    assert df.attrs["observation_end"] == end
    assert df["date"].min() >= start and df["date"].max() <= end
    assert df["customer_id"].nunique() == n and (df["amount"] > 0).all()
    # sorted by (customer, date); first purchase within the acquisition window
    assert df["customer_id"].is_monotonic_increasing
    assert (df.groupby("customer_id")["date"].diff().dropna() >= pd.Timedelta(0)).all()
    first = df.groupby("customer_id")["date"].min()
    assert first.max() < start + pd.Timedelta(days=acq)
    # repeat transactions (records beyond the first) vs E[X(T_i)] with T_i = (days - acquisition day) / 7 weeks
    x = df.groupby("customer_id").size().to_numpy() - 1
    T_weeks = (days - (first - start).dt.days.to_numpy()) / 7
    target = expected_x(T_weeks, **CDNOW)
    assert abs(x.mean() - target.mean()) < 4 * np.sqrt(np.var(x - target, ddof=1) / n)
    p0 = p_zero(T_weeks, **CDNOW).mean()
    assert abs((x == 0).mean() - p0) < 4 * np.sqrt(p0 * (1 - p0) / n)
    # mean spend per transaction: E[p / nu] = p gamma / (q - 1)
    a = df["amount"].to_numpy()
    per_customer = df.groupby("customer_id")["amount"].first().to_numpy()  # one draw per customer: independent
    mean = GG["p"] * GG["gamma"] / (GG["q"] - 1)
    assert abs(per_customer.mean() - mean) < 4 * per_customer.std(ddof=1) / np.sqrt(n)
    assert a.min() > 0
    summary = summary_from_transactions(df, amount_col="amount", freq="D", freq_multiplier=7,
                                        observation_end=df.attrs["observation_end"])
    assert (summary["frequency"] <= x).all() and len(summary) == n


def test_bad_parameters():
    with pytest.raises(DataValidationError, match="alpha"):
        simulate_bgnbd(10, r=1.0, alpha=-1.0, a=1.0, b=1.0, T=10.0, seed=0)
    with pytest.raises(DataValidationError, match="T must be a scalar or an array of length"):
        simulate_bgnbd(10, r=1.0, alpha=1.0, a=1.0, b=1.0, T=np.ones(3), seed=0)
    with pytest.raises(DataValidationError, match="acquisition_days"):
        simulate_transactions(10, **CDNOW, **GG, acquisition_days=600, seed=0)


def test_transactions_match_bgnbd_summary():
    """One acquisition day, 39 weeks: the log's repeat counts and last-purchase day match simulate_bgnbd's."""
    n = 40_000
    df = simulate_transactions(n, **CDNOW, **GG, acquisition_days=1, observation_days=273, time_unit_days=7,
                               seed=31)
    g = df.groupby("customer_id")["date"]
    x_log = g.size().to_numpy() - 1
    last_day_log = (g.max() - g.min()).dt.days.to_numpy()
    ref = simulate_bgnbd(n, T=39.0, seed=32, **CDNOW)
    x_ref = ref["frequency"].to_numpy()
    last_day_ref = np.floor(ref["recency"].to_numpy() * 7)
    assert abs(x_log.mean() - x_ref.mean()) < 4 * np.sqrt((x_log.var() + x_ref.var()) / n)
    assert ks_2samp(last_day_log[x_log > 0], last_day_ref[x_ref > 0]).pvalue > 1e-3
