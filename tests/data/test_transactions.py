"""RFM summaries and calibration/holdout splits: exact parity with lifetimes 0.11.3 (the reference definition)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

lifetimes_utils = pytest.importorskip("lifetimes.utils")

from btyd_ltv.data.datasets import load_cdnow_sample  # noqa: E402
from btyd_ltv.data.simulate import simulate_transactions  # noqa: E402
from btyd_ltv.data.transactions import (  # noqa: E402
    _period_ordinals,
    calibration_and_holdout,
    summary_from_transactions,
)
from btyd_ltv.errors import DataValidationError  # noqa: E402

RTOL = 1e-12  # sums may differ in the last bit (pandas uses compensated summation)


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return load_cdnow_sample()


@pytest.fixture(scope="module")
def simulated() -> pd.DataFrame:
    """A simulated log in shuffled row order, with times of day and string customer ids."""
    df = simulate_transactions(
        3000, r=0.5, alpha=10.0, a=0.8, b=2.5, p=6.0, q=3.7, gamma=15.0, observation_days=300, seed=11
    )
    rng = np.random.default_rng(12)
    df["date"] = df["date"] + pd.to_timedelta(rng.integers(0, 86400, len(df)), unit="s")
    df["customer_id"] = "c" + df["customer_id"].astype(str).str.zfill(5)
    return df.sample(frac=1.0, random_state=13).reset_index(drop=True)


def _lifetimes_summary(df, amount_col, **kw) -> pd.DataFrame:
    return lifetimes_utils.summary_data_from_transaction_data(df, "customer_id", "date", amount_col, **kw)


@pytest.mark.parametrize(("freq", "mult"), [("D", 1), ("D", 7), ("W", 1)])
@pytest.mark.parametrize("amount_col", [None, "amount"])
@pytest.mark.parametrize("include_first", [False, True])
def test_summary_parity_cdnow(cdnow, freq, mult, amount_col, include_first):
    ref = _lifetimes_summary(
        cdnow, amount_col, freq=freq, freq_multiplier=mult, include_first_transaction=include_first
    )
    ours = summary_from_transactions(
        cdnow, "customer_id", "date", amount_col, freq=freq, freq_multiplier=mult,
        include_first_transaction=include_first,
    )
    pd.testing.assert_frame_equal(ours, ref, check_exact=False, rtol=RTOL)


@pytest.mark.parametrize(("freq", "mult"), [("D", 1), ("D", 7), ("W", 1)])
@pytest.mark.parametrize("observation_end", ["1997-12-15", "1998-02-01 15:30"])
def test_summary_parity_early_observation_end(cdnow, freq, mult, observation_end):
    ref = _lifetimes_summary(cdnow, "amount", freq=freq, freq_multiplier=mult, observation_period_end=observation_end)
    ours = summary_from_transactions(
        cdnow, amount_col="amount", freq=freq, freq_multiplier=mult, observation_end=observation_end
    )
    full = summary_from_transactions(cdnow, amount_col="amount", freq=freq, freq_multiplier=mult)
    assert ours["frequency"].sum() < full["frequency"].sum()  # later transactions were dropped
    pd.testing.assert_frame_equal(ours, ref, check_exact=False, rtol=RTOL)


def _monthly_reference(df: pd.DataFrame, amount_col: str | None, observation_end: str | None) -> pd.DataFrame:
    """freq="M" reference: lifetimes' period-collapsed table (its summary divides by np.timedelta64(1, "M"),
    which pandas >= 2 rejects), with recency and T counted in calendar months."""
    end = pd.Period(observation_end or df["date"].max(), "M")
    rep = lifetimes_utils._find_first_transactions(
        df, "customer_id", "date", amount_col, observation_period_end=end.to_timestamp(), freq="M"
    )
    g = rep.groupby("customer_id")
    first = g["date"].min()
    out = pd.DataFrame(
        {
            "frequency": g.size() - 1.0,
            "recency": (g["date"].max() - first).map(lambda d: d.n).astype(float),
            "T": first.map(lambda p: (end - p).n).astype(float),
        }
    )
    if amount_col:
        out["monetary_value"] = rep[~rep["first"]].groupby("customer_id")[amount_col].mean()
        out["monetary_value"] = out["monetary_value"].fillna(0.0)
    return out


@pytest.mark.parametrize("observation_end", [None, "1998-03-20"])
def test_summary_monthly(cdnow, observation_end):
    ref = _monthly_reference(cdnow, "amount", observation_end)
    ours = summary_from_transactions(cdnow, amount_col="amount", freq="M", observation_end=observation_end)
    pd.testing.assert_frame_equal(ours, ref, check_exact=False, rtol=RTOL)


@pytest.mark.parametrize(("freq", "mult"), [("D", 1), ("D", 7), ("W", 1)])
def test_calibration_holdout_parity_cdnow(cdnow, freq, mult):
    kw = dict(freq=freq, freq_multiplier=mult)
    ref = lifetimes_utils.calibration_and_holdout_data(
        cdnow, "customer_id", "date", "1997-09-30", "1998-06-30", monetary_value_col="amount", **kw
    )
    ours = calibration_and_holdout(
        cdnow, calibration_end="1997-09-30", observation_end="1998-06-30", amount_col="amount", **kw
    )
    pd.testing.assert_frame_equal(ours, ref, check_exact=False, rtol=RTOL)
    # Without amounts (lifetimes' own no-amount path fails under pandas 3: compare the other columns).
    plain = calibration_and_holdout(cdnow, "customer_id", "date", "1997-09-30", observation_end="1998-06-30", **kw)
    pd.testing.assert_frame_equal(
        plain, ref.drop(columns=["monetary_value_cal", "monetary_value_holdout"]), check_exact=False, rtol=RTOL
    )


def test_calibration_holdout_default_observation_end_and_include_first(cdnow):
    ref = lifetimes_utils.calibration_and_holdout_data(
        cdnow, "customer_id", "date", "1997-06-15", monetary_value_col="amount", include_first_transaction=True
    )
    ours = calibration_and_holdout(cdnow, calibration_end="1997-06-15", amount_col="amount",
                                   include_first_transaction=True)
    pd.testing.assert_frame_equal(ours, ref, check_exact=False, rtol=RTOL)


@pytest.mark.parametrize(("freq", "mult"), [("D", 1), ("W", 1), ("h", 24)])
def test_parity_simulated(simulated, freq, mult):
    ref = _lifetimes_summary(simulated, "amount", freq=freq, freq_multiplier=mult)
    ours = summary_from_transactions(simulated, amount_col="amount", freq=freq, freq_multiplier=mult)
    pd.testing.assert_frame_equal(ours, ref, check_exact=False, rtol=RTOL)
    assert list(ours.index[:2]) == ["c00001", "c00002"]
    cal_end = simulated["date"].min() + pd.Timedelta(days=100)
    ref = lifetimes_utils.calibration_and_holdout_data(
        simulated, "customer_id", "date", cal_end, monetary_value_col="amount", freq=freq, freq_multiplier=mult
    )
    ours = calibration_and_holdout(simulated, calibration_end=cal_end, amount_col="amount", freq=freq,
                                   freq_multiplier=mult)
    pd.testing.assert_frame_equal(ours, ref, check_exact=False, rtol=RTOL)


def test_string_and_integer_dates(cdnow):
    ref = summary_from_transactions(cdnow, amount_col="amount", freq="D", freq_multiplier=7)
    as_str = cdnow.assign(date=cdnow["date"].dt.strftime("%Y-%m-%d"))
    pd.testing.assert_frame_equal(summary_from_transactions(as_str, amount_col="amount", freq_multiplier=7), ref)
    as_int = cdnow.assign(date=cdnow["date"].dt.strftime("%Y%m%d").astype(int))
    ours = summary_from_transactions(
        as_int, amount_col="amount", freq_multiplier=7, datetime_format="%Y%m%d", observation_end=19980630
    )
    pd.testing.assert_frame_equal(ours, ref)


def test_small_example_by_hand():
    df = pd.DataFrame(
        {
            "customer_id": [2, 1, 1, 1, 1, 3],
            "date": ["2024-01-03", "2024-01-01", "2024-01-01", "2024-01-05", "2024-01-10", "2024-01-12"],
            "amount": [5.0, 1.0, 2.0, 4.0, 8.0, 9.0],
        }
    )
    out = summary_from_transactions(df, amount_col="amount", observation_end="2024-01-11")
    assert out.index.name == "customer_id" and out.index.tolist() == [1, 2]  # customer 3 starts after the end
    assert out.loc[1].tolist() == [2.0, 9.0, 10.0, 6.0]  # days 0 (3.0 summed), 4, 9; repeat mean (4 + 8) / 2
    assert out.loc[2].tolist() == [0.0, 0.0, 8.0, 0.0]


def test_week_ordinals_match_pandas():
    dates = np.arange(np.datetime64("1969-06-01"), np.datetime64("1971-01-01")).astype("datetime64[us]")
    np.testing.assert_array_equal(_period_ordinals(dates, "W"), pd.DatetimeIndex(dates).to_period("W").asi8)
    np.testing.assert_array_equal(_period_ordinals(dates, "D"), pd.DatetimeIndex(dates).to_period("D").asi8)


def test_calibration_errors(cdnow):
    with pytest.raises(DataValidationError, match="not before observation_end"):
        calibration_and_holdout(cdnow, calibration_end="1998-06-30", observation_end="1998-06-30")
    with pytest.raises(DataValidationError, match="no transaction on or before calibration_end"):
        calibration_and_holdout(cdnow, calibration_end="1996-12-31")
    with pytest.raises(DataValidationError, match="calibration_end is required"):
        calibration_and_holdout(cdnow)


def test_empty_holdout_gives_zeros(cdnow):
    cal = cdnow[cdnow["date"] <= "1997-09-30"]
    out = calibration_and_holdout(cal, calibration_end="1997-09-30", observation_end="1998-06-30",
                                  amount_col="amount", freq_multiplier=7)
    assert (out["frequency_holdout"] == 0).all() and (out["monetary_value_holdout"] == 0).all()
    assert (out["duration_holdout"] == 39.0).all()


def test_freq_errors(cdnow):
    with pytest.raises(DataValidationError, match="not a pandas period frequency"):
        summary_from_transactions(cdnow, freq="fortnight")
    with pytest.raises(DataValidationError, match="freq_multiplier"):
        summary_from_transactions(cdnow, freq="2D")
    with pytest.raises(DataValidationError, match="every transaction is after observation_end"):
        summary_from_transactions(cdnow, observation_end="1990-01-01")


def test_input_is_validated(cdnow):
    bad = cdnow.copy()
    bad.loc[5, "amount"] = -1.0
    with pytest.raises(DataValidationError, match=r"column 'amount' row 5"):
        summary_from_transactions(bad, amount_col="amount")
