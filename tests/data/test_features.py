"""Calibration-period features and holdout spend: checked against a direct pandas computation on CDNOW."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from btyd_ltv.data.datasets import DATASETS, load_dataset
from btyd_ltv.data.features import spend_features
from btyd_ltv.data.transactions import calibration_and_holdout
from btyd_ltv.errors import DataValidationError


@pytest.fixture(scope="module")
def cdnow():
    info = DATASETS["cdnow"]
    log = load_dataset("cdnow")
    feats = spend_features(log, calibration_end=info.calibration_end, observation_end=info.observation_end,
                           freq="D", freq_multiplier=7)
    return log, feats


def test_features_match_direct_computation(cdnow):
    log, feats = cdnow
    assert len(feats) == log["customer_id"].nunique() == 2357
    cal = log[log["date"] <= "1997-09-30"]
    hold = log[(log["date"] > "1997-09-30") & (log["date"] <= "1998-06-30")]
    first_day = cal.groupby("customer_id")["date"].transform("min")
    expected_first = cal[cal["date"] == first_day].groupby("customer_id")["amount"].sum()
    np.testing.assert_allclose(feats["first_purchase_value"], expected_first.loc[feats.index])
    np.testing.assert_allclose(feats["calibration_spend"], cal.groupby("customer_id")["amount"].sum().loc[feats.index])
    expected_hold = hold.groupby("customer_id")["amount"].sum().reindex(feats.index, fill_value=0.0)
    np.testing.assert_allclose(feats["holdout_spend"], expected_hold)
    assert feats["holdout_spend"].sum() == pytest.approx(hold["amount"].sum())
    first = cal.groupby("customer_id")["date"].min().loc[feats.index]
    np.testing.assert_array_equal(feats["first_purchase_weekday"], first.dt.day_of_week)
    weeks = (first.dt.to_period("W") - first.dt.to_period("W").min()).map(lambda d: d.n)
    np.testing.assert_array_equal(feats["cohort"], weeks)
    ref = calibration_and_holdout(log, calibration_end="1997-09-30", observation_end="1998-06-30",
                                  amount_col="amount", freq_multiplier=7)
    for col in ("frequency", "recency", "T", "monetary_value"):
        np.testing.assert_allclose(feats[col], ref[f"{col}_cal"].loc[feats.index])


def test_bad_log_is_reported():
    log = pd.DataFrame({"customer_id": [1, 2], "date": ["2020-01-01", "2020-01-05"], "amount": [5.0, -1.0]})
    with pytest.raises(DataValidationError, match="amount"):
        spend_features(log, calibration_end="2020-01-03")


# ------------------------------------------------------------------------------------------------------------------
# customer_features_at: features k weeks after each customer's own first purchase
# ------------------------------------------------------------------------------------------------------------------
from btyd_ltv.data.features import FEATURE_COLUMNS_AT, customer_features_at  # noqa: E402


def _tiny_log() -> pd.DataFrame:
    """weeks=1 (feature days 0..6), horizon 2 weeks (target days 7..20), sub-horizon 1 week (days 7..13).

    1: first day (Mon 2020-01-06) twice, day 3 twice (one purchase day), day 6, day 7 (the boundary: target),
       day 13, day 14, day 21 (after the target window).
    2: first day Wed 2020-01-08, then only day 7 (boundary): no second purchase within the week.
    3: first day Tue 2020-01-14 (with a time of day), a free order on day 1; its target window ends on the
       last day of the log (2020-02-03): kept.
    4: first day 2020-01-20: target window ends 2020-02-09, after the log: dropped.
    """
    rows = [
        (1, "2020-01-06", 10.0), (1, "2020-01-06 17:00", 5.0), (1, "2020-01-09", 20.0), (1, "2020-01-09", 1.0),
        (1, "2020-01-12", 4.0), (1, "2020-01-13", 100.0), (1, "2020-01-19", 8.0), (1, "2020-01-20", 50.0),
        (1, "2020-01-27", 1000.0),
        (2, "2020-01-08", 7.0), (2, "2020-01-15", 30.0),
        (3, "2020-01-14 18:30", 12.5), (3, "2020-01-15", 0.0),
        (4, "2020-01-20", 3.0), (4, "2020-02-03", 9.0),
    ]
    log = pd.DataFrame(rows, columns=["customer_id", "date", "amount"])
    return log.sample(frac=1.0, random_state=0).reset_index(drop=True)  # row order must not matter


TINY_EXPECTED = pd.DataFrame(
    {
        "first_purchase_value": [15.0, 7.0, 12.5],
        "purchases_k": [2, 0, 1],
        "spend_k": [40.0, 7.0, 12.5],
        "days_to_second": [3, 7, 1],
        "has_second": [1, 0, 1],
        "first_purchase_weekday": [0, 2, 1],
        "cohort_week": [0, 0, 1],
        "frequency": [2.0, 0.0, 1.0],
        "recency": [6 / 7, 0.0, 1 / 7],
        "T": [6 / 7, 6 / 7, 6 / 7],
        "monetary_value": [12.5, 0.0, 0.0],
        "target": [158.0, 30.0, 0.0],
        "target_1w": [108.0, 30.0, 0.0],
    },
    index=pd.Index([1, 2, 3], name="customer_id"),
)


def test_customer_features_at_tiny_log_exact():
    feats = customer_features_at(_tiny_log(), weeks=1, horizon_weeks=2, sub_horizons_weeks=(1,))
    pd.testing.assert_frame_equal(feats, TINY_EXPECTED, check_exact=False, rtol=1e-12)
    assert tuple(feats.columns[: len(FEATURE_COLUMNS_AT)]) == FEATURE_COLUMNS_AT
    assert feats.attrs == {"dropped_customers": 1, "weeks": 1, "horizon_weeks": 2}


def test_customer_features_at_string_ids_and_column_names():
    log = _tiny_log().rename(columns={"customer_id": "cust", "date": "day", "amount": "spend"})
    log["cust"] = "c" + log["cust"].astype(str)
    log["day"] = pd.to_datetime(log["day"], format="mixed").dt.strftime("%Y%m%d %H:%M")
    feats = customer_features_at(log, "cust", "day", "spend", weeks=1, horizon_weeks=2, sub_horizons_weeks=(1,),
                                 datetime_format="%Y%m%d %H:%M")
    expected = TINY_EXPECTED.set_axis(pd.Index(["c1", "c2", "c3"], name="cust"))
    pd.testing.assert_frame_equal(feats, expected, check_exact=False, rtol=1e-12, check_index_type=False)


def test_customer_features_at_no_follow_up_is_an_error():
    with pytest.raises(DataValidationError, match=r"weeks=4, horizon_weeks=52"):
        customer_features_at(_tiny_log(), weeks=4, horizon_weeks=52)
    with pytest.raises(DataValidationError, match="sub_horizons_weeks"):
        customer_features_at(_tiny_log(), weeks=1, horizon_weeks=2, sub_horizons_weeks=(13,))
    with pytest.raises(DataValidationError, match="weeks"):
        customer_features_at(_tiny_log(), weeks=0)


@pytest.mark.parametrize(
    ("column", "value", "match"),
    [("amount", -1.0, "negative amount"), ("date", np.nan, "'date'.*missing value")],
)
def test_customer_features_at_bad_input(column, value, match):
    log = _tiny_log()
    log[column] = log[column].astype(object)
    log.loc[3, column] = value
    with pytest.raises(DataValidationError, match=match):
        customer_features_at(log, weeks=1, horizon_weeks=2, sub_horizons_weeks=(1,))


@pytest.fixture(scope="module")
def cdnow_at():
    log = load_dataset("cdnow")
    return log, customer_features_at(log, weeks=4, horizon_weeks=52)


def test_customer_features_at_matches_pandas_on_cdnow_sample(cdnow_at):
    log, feats = cdnow_at
    assert len(feats) == 2357 and feats.attrs["dropped_customers"] == 0
    d0 = log.groupby("customer_id")["date"].transform("min")
    rel = (log["date"] - d0).dt.days
    g = lambda mask: log[mask].groupby("customer_id")  # noqa: E731
    expect = pd.DataFrame(index=feats.index)
    expect["first_purchase_value"] = g(rel == 0)["amount"].sum()
    expect["purchases_k"] = g((rel >= 1) & (rel < 28))["date"].nunique()
    expect["spend_k"] = g(rel < 28)["amount"].sum()
    expect["days_to_second"] = rel[(rel >= 1) & (rel < 28)].groupby(log["customer_id"]).min()
    expect["target"] = g((rel >= 28) & (rel < 28 + 364))["amount"].sum()
    expect["target_13w"] = g((rel >= 28) & (rel < 28 + 91))["amount"].sum()
    expect["target_26w"] = g((rel >= 28) & (rel < 28 + 182))["amount"].sum()
    expect = expect.fillna({"purchases_k": 0, "days_to_second": 28, "target": 0.0, "target_13w": 0.0,
                            "target_26w": 0.0})
    for col in expect.columns:
        np.testing.assert_allclose(feats[col], expect[col], rtol=1e-12, err_msg=col)
    np.testing.assert_array_equal(feats["has_second"], (expect["purchases_k"] > 0).astype(int))
    first = log.groupby("customer_id")["date"].min().loc[feats.index]
    np.testing.assert_array_equal(feats["first_purchase_weekday"], first.dt.day_of_week)
    np.testing.assert_array_equal(feats["cohort_week"], (first - first.min()).dt.days // 7)


def test_customer_features_at_rfm_matches_lifetimes(cdnow_at):
    lifetimes_utils = pytest.importorskip("lifetimes.utils")
    log, feats = cdnow_at
    repeaters = feats.index[feats["purchases_k"] >= 2][:4].tolist()
    others = feats.index[feats["purchases_k"] == 1][:2].tolist() + feats.index[feats["purchases_k"] == 0][:2].tolist()
    for cid in repeaters + others:
        own = log[log["customer_id"] == cid]
        end = own["date"].min() + pd.Timedelta(days=27)  # day 7k - 1 of this customer
        ref = lifetimes_utils.summary_data_from_transaction_data(
            own[own["date"] <= end], "customer_id", "date", "amount", observation_period_end=end, freq="D",
            freq_multiplier=7,
        )
        for col in ("frequency", "recency", "T", "monetary_value"):
            assert feats.loc[cid, col] == pytest.approx(ref.loc[cid, col], rel=1e-12), (cid, col)


def test_customer_features_at_keeps_every_cdnow_master_customer():
    feats = customer_features_at(load_dataset("cdnow-master"), weeks=4, horizon_weeks=52)
    assert len(feats) == DATASETS["cdnow-master"].n_customers == 23570
    assert feats.attrs["dropped_customers"] == 0
    assert feats.notna().all().all()
    assert (feats["target_13w"] <= feats["target_26w"]).all() and (feats["target_26w"] <= feats["target"]).all()
