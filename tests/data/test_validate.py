"""Every bad input to the validators raises DataValidationError naming the column, the row and the fix."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from btyd_ltv.data.validate import validate_summary, validate_transactions
from btyd_ltv.errors import DataValidationError


def _tx(n: int = 5) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [1, 1, 2, 3, 3][:n],
            "date": ["2024-01-01", "2024-01-05", "2024-01-02", "2024-01-03", "2024-02-01"][:n],
            "amount": [10.0, 5.5, 3.0, 0.0, 7.25][:n],
        },
        index=[10, 11, 12, 13, 14][:n],
    )


def _raises(match: str, fn, *args, **kwargs) -> str:
    with pytest.raises(DataValidationError, match=match) as info:
        fn(*args, **kwargs)
    return str(info.value)


# --------------------------------------------------------------------------------------------- transactions
def test_valid_transactions_parsed_copy():
    df = _tx()
    out = validate_transactions(df, "customer_id", "date", "amount")
    assert pd.api.types.is_datetime64_dtype(out["date"].dtype)
    assert out["date"].iloc[1] == pd.Timestamp("2024-01-05")
    assert out["amount"].dtype == np.float64
    assert df["date"].dtype != out["date"].dtype  # input left alone
    pd.testing.assert_index_equal(out.index, df.index)


def test_not_a_dataframe():
    _raises("must be a pandas DataFrame", validate_transactions, [1, 2], "customer_id", "date")


def test_missing_column_lists_existing():
    msg = _raises("missing column", validate_transactions, _tx(), "customer_id", "when")
    assert "'when'" in msg and "'customer_id', 'date', 'amount'" in msg


def test_empty():
    _raises("no rows", validate_transactions, _tx().iloc[:0], "customer_id", "date")


def test_nan_customer():
    df = _tx()
    df["customer_id"] = df["customer_id"].astype("float64")
    df.loc[12, "customer_id"] = np.nan
    _raises(r"column 'customer_id' row 12 \(position 2\): missing value", validate_transactions, df,
            "customer_id", "date")


def test_nan_date():
    df = _tx()
    df.loc[13, "date"] = None
    _raises(r"column 'date' row 13 \(position 3, customer_id=3\): missing", validate_transactions, df,
            "customer_id", "date")


def test_nan_amount():
    df = _tx()
    df.loc[11, "amount"] = np.nan
    _raises(r"column 'amount' row 11 \(position 1, customer_id=1\): missing", validate_transactions, df,
            "customer_id", "date", "amount")


def test_unparseable_date_names_raw_value():
    df = _tx()
    df.loc[14, "date"] = "2024-02-31"
    msg = _raises(r"column 'date' row 14 \(position 4, customer_id=3\): value '2024-02-31' cannot be parsed",
                  validate_transactions, df, "customer_id", "date")
    assert "datetime_format" in msg


def test_unparseable_date_with_format():
    df = _tx()
    df.loc[12, "date"] = "02/01/2024"
    _raises(r"column 'date' row 12 .*'02/01/2024'.*format '%Y-%m-%d'", validate_transactions, df,
            "customer_id", "date", datetime_format="%Y-%m-%d")


def test_integer_dates_need_format():
    df = _tx()
    df["date"] = [20240101, 20240105, 20240102, 20240103, 20240201]
    _raises(r"column 'date' row 10 .*datetime_format='%Y%m%d'", validate_transactions, df, "customer_id", "date")
    out = validate_transactions(df, "customer_id", "date", datetime_format="%Y%m%d")
    assert out["date"].iloc[4] == pd.Timestamp("2024-02-01")


def test_integer_date_invalid_with_format():
    df = _tx()
    df["date"] = [20240101, 20240105, 20241302, 20240103, 20240201]
    _raises(r"column 'date' row 12 \(position 2, customer_id=2\): value 20241302 cannot be parsed",
            validate_transactions, df, "customer_id", "date", datetime_format="%Y%m%d")


def test_datetime_and_tz_aware_columns_accepted():
    df = _tx()
    df["date"] = pd.to_datetime(df["date"])
    assert validate_transactions(df, "customer_id", "date")["date"].equals(df["date"])
    df["date"] = df["date"].dt.tz_localize("Europe/Paris")
    out = validate_transactions(df, "customer_id", "date")
    assert out["date"].dt.tz is None and out["date"].iloc[0] == pd.Timestamp("2024-01-01")


def test_non_numeric_amount():
    df = _tx()
    df["amount"] = ["10", "5.5", "$3.00", "0", "7.25"]
    _raises(r"column 'amount' row 12 \(position 2, customer_id=2\): value '\$3.00' is not a number",
            validate_transactions, df, "customer_id", "date", "amount")


def test_numeric_string_amount_coerced():
    df = _tx()
    df["amount"] = ["10", "5.5", "3", "0", "7.25"]
    assert validate_transactions(df, "customer_id", "date", "amount")["amount"].tolist() == [10, 5.5, 3, 0, 7.25]


def test_boolean_amount():
    df = _tx()
    df["amount"] = True
    _raises(r"column 'amount' row 10 .*boolean", validate_transactions, df, "customer_id", "date", "amount")


def test_negative_amount():
    df = _tx()
    df.loc[13, "amount"] = -2.0
    msg = _raises(r"column 'amount' row 13 \(position 3, customer_id=3\): negative amount -2.0",
                  validate_transactions, df, "customer_id", "date", "amount")
    assert ">= 0" in msg


def test_infinite_amount():
    df = _tx()
    df.loc[10, "amount"] = np.inf
    _raises(r"column 'amount' row 10 .*not finite", validate_transactions, df, "customer_id", "date", "amount")


def test_after_observation_end():
    msg = _raises(r"column 'date' row 14 \(position 4, customer_id=3\): transaction dated 2024-02-01.* after "
                  r"observation_end 2024-01-31", validate_transactions, _tx(), "customer_id", "date",
                  observation_end="2024-01-31")
    assert "later observation_end" in msg
    out = validate_transactions(_tx(), "customer_id", "date", observation_end="2024-02-01")
    assert len(out) == 5


def test_bad_observation_end():
    _raises("observation_end 'soon' is not a date", validate_transactions, _tx(), "customer_id", "date",
            observation_end="soon")


# --------------------------------------------------------------------------------------------------- summary
def _summary() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [40, 41, 42, 43],
            "frequency": [2, 0, 1, 3],
            "recency": [30.43, 0.0, 20.0, 10.0],
            "T": [38.86, 38.86, 38.86, 12.0],
            "monetary_value": [22.35, 0.0, 11.77, 5.0],
        },
        index=[15, 16, 17, 18],
    )


def test_valid_summary_float_copy():
    df = _summary()
    out = validate_summary(df, monetary_col="monetary_value")
    for c in ["frequency", "recency", "T", "monetary_value"]:
        assert out[c].dtype == np.float64
    assert df["frequency"].dtype == np.int64
    assert out["customer_id"].tolist() == [40, 41, 42, 43]


def test_summary_missing_and_empty():
    msg = _raises("missing column", validate_summary, _summary(), T_col="age")
    assert "'age'" in msg and "'T'" in msg
    _raises("no rows", validate_summary, _summary().iloc[:0])


def test_summary_nan():
    df = _summary()
    df.loc[17, "T"] = np.nan
    _raises(r"column 'T' row 17 \(position 2, customer_id=42\): missing", validate_summary, df)


def test_summary_non_numeric():
    df = _summary()
    df["recency"] = df["recency"].astype(object)
    df.loc[16, "recency"] = "zero"
    _raises(r"column 'recency' row 16 \(position 1, customer_id=41\): value 'zero' is not a number",
            validate_summary, df)


@pytest.mark.parametrize(
    ("col", "value", "pattern"),
    [
        ("frequency", -1, r"column 'frequency' row 17 \(position 2, customer_id=42\): frequency -1.0 < 0"),
        ("frequency", 1.5, r"column 'frequency' row 17 .*frequency 1.5 is not an integer"),
        ("recency", -0.5, r"column 'recency' row 17 .*recency -0.5 < 0"),
        ("T", -1.0, r"column 'T' row 17 .*T -1.0 < 0"),
        ("T", 0.0, r"column 'T' row 17 .*T 0 with frequency 1.0"),
        ("recency", 40.0, r"column 'recency' row 17 \(position 2, customer_id=42\): recency 40.0 > T 38.86; "
                          r"recency must not exceed T"),
        ("monetary_value", -1.0, r"column 'monetary_value' row 17 .*monetary value -1.0 < 0"),
        ("monetary_value", 0.0, r"column 'monetary_value' row 17 .*monetary value 0.0 <= 0 with frequency 1.0"),
    ],
)
def test_summary_bad_values(col, value, pattern):
    df = _summary()
    df[col] = df[col].astype("float64")
    df.loc[17, col] = value
    _raises(pattern, validate_summary, df, monetary_col="monetary_value")


def test_summary_zero_frequency_positive_recency():
    df = _summary()
    df.loc[16, "recency"] = 3.0
    _raises(r"column 'recency' row 16 .*recency 3.0 > 0 with frequency 0", validate_summary, df)


def test_summary_recency_slack():
    df = _summary()
    df.loc[18, "recency"] = 12.0 * (1 + 1e-12)
    validate_summary(df)
    df.loc[18, "recency"] = 12.0 * (1 + 1e-6)
    _raises("recency must not exceed T", validate_summary, df)


def test_summary_zero_spend_without_repeat_is_fine():
    df = _summary()
    assert validate_summary(df, monetary_col="monetary_value").loc[16, "monetary_value"] == 0.0


def test_summary_row_named_by_index_name():
    df = _summary().drop(columns="customer_id").set_index(pd.Index([40, 41, 42, 43], name="customer_id"))
    df.loc[42, "recency"] = 40.0
    msg = _raises(r"column 'recency' row customer_id=42 \(position 2\)", validate_summary, df)
    assert re.search(r"recency 40.0 > T 38.86", msg)


def test_error_is_value_error():
    with pytest.raises(ValueError):
        validate_summary(_summary().assign(T=-1.0))
