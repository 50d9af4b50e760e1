"""Design matrices for the ZILN regression: encoding, round trip, unseen groups and clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from btyd_ltv.data.design import Design, build_design
from btyd_ltv.errors import DataValidationError


@pytest.fixture
def table():
    return pd.DataFrame({
        "spend": [0.0, 10.0, 0.0, 55.5, 3.0, 0.0],
        "first": [5.0, 20.0, 1.0, 80.0, 7.0, 2.0],
        "days": [1, 3, 0, 9, 2, 1],
        "channel": ["ads", "organic", "ads", "email", "organic", "ads"],
        "campaign": ["c1", "c1", "c2", "c2", "c3", "c3"],
    }, index=pd.Index([11, 12, 13, 14, 15, 16], name="customer_id"))


def test_encoding_standardises_and_one_hot_encodes(table):
    d = build_design(table, "spend", ["first", "days", "channel"], group="campaign", log1p=["first"])
    assert d.columns == ("first", "days", "channel[email]", "channel[organic]")
    X, g = d.matrix(table)
    raw = np.column_stack([np.log1p(table["first"]), table["days"], table["channel"] == "email",
                           table["channel"] == "organic"]).astype(float)
    np.testing.assert_allclose(X, (raw - raw.mean(0)) / raw.std(0))
    np.testing.assert_array_equal(g, [0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(d.target_values(table), table["spend"].to_numpy())


def test_json_round_trip_and_unseen_group(table):
    d = build_design(table, "spend", ["first", "channel"], group="campaign")
    again = Design.from_json(d.to_json())
    assert again == d
    new = table.iloc[:2].assign(campaign=["c9", "c3"], channel=["email", "unknown-channel"])
    X, g = again.matrix(new)
    np.testing.assert_array_equal(g, [-1, 2])
    # an unseen category level has no indicator: it is treated as the reference level
    assert np.allclose(X[1, 1:], (0 - np.asarray(d.center[1:])) / np.asarray(d.scale[1:]))


@pytest.mark.parametrize(
    "change, kwargs, match",
    [
        (lambda t: t.assign(spend=[0, -1.0, 0, 1, 1, 1]), {}, r"target 'spend': negative value -1 at row 1 \(index 12\)"),
        (lambda t: t.assign(first=[1.0, np.nan, 1, 1, 1, 1]), {}, r"column 'first': missing value at row 1"),
        (lambda t: t.assign(first=[1.0, np.inf, 1, 1, 1, 1]), {}, r"column 'first': infinite value at row 1"),
        (lambda t: t.assign(first=2.0), {}, r"feature\(s\) first are constant"),
        (lambda t: t.assign(spend=0.0), {}, "never positive"),
        (lambda t: t.iloc[:0], {}, "empty"),
        (lambda t: t, {"features": ["first", "nope"]}, r"column\(s\) 'nope' not found"),
        (lambda t: t, {"features": ["first", "spend"]}, "also listed as a feature"),
        (lambda t: t.assign(campaign=["c1", None, "c2", "c2", "c3", "c3"]), {"group": "campaign"},
         r"group column 'campaign': missing value at row 1"),
        (lambda t: t.assign(first=[-5.0, 1, 2, 3, 4, 5]), {"log1p": ["first"]},
         r"column 'first': negative value at row 0 \(index 11\) cannot be log1p"),
    ],
)
def test_bad_input_names_column_and_row(table, change, kwargs, match):
    args = {"features": ["first", "days"], **kwargs}
    with pytest.raises(DataValidationError, match=match):
        build_design(change(table), "spend", **args)
