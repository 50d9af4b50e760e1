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
