"""Customer-level features known at a cut-off date, and the spend that follows: the table a revenue regression
(ZILN, the deep baselines) learns from.

From a transaction log, per customer with a purchase on or before ``calibration_end``:

- the BTYD summary of the calibration period (``frequency``, ``recency``, ``T``, ``monetary_value``; see
  :func:`btyd_ltv.data.transactions.calibration_and_holdout`), in units of ``freq`` / ``freq_multiplier``;
- ``first_purchase_value``: spend on the first purchase day (all transactions of that day summed);
- ``calibration_spend``: total spend up to and including ``calibration_end``;
- ``first_purchase_weekday`` (0 = Monday) and ``cohort`` (the first purchase's period index since the earliest
  first purchase, e.g. the acquisition week);
- the target ``holdout_spend``: total spend in ``calibration_end < date <= observation_end`` (0 if none).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from btyd_ltv.data.transactions import calibration_and_holdout
from btyd_ltv.data.validate import _parse_timestamp, validate_transactions

__all__ = ["spend_features", "FEATURE_COLUMNS"]

#: Numeric calibration-period features produced by :func:`spend_features` (all known at ``calibration_end``).
FEATURE_COLUMNS = ("frequency", "recency", "T", "monetary_value", "first_purchase_value", "calibration_spend")


def spend_features(
    transactions: pd.DataFrame,
    customer_col: str = "customer_id",
    date_col: str = "date",
    amount_col: str = "amount",
    *,
    calibration_end: Any,
    observation_end: Any = None,
    freq: str = "D",
    freq_multiplier: float = 1.0,
    cohort_freq: str = "W",
    datetime_format: str | None = None,
) -> pd.DataFrame:
    """Calibration-period features and holdout spend, one row per customer (index ``customer_col``).

    Columns: ``frequency, recency, T, monetary_value, first_purchase_value, calibration_spend,
    first_purchase_weekday, cohort, holdout_spend``. Raises :class:`~btyd_ltv.errors.DataValidationError` for a
    bad log (missing columns, NaN, negative amounts, unparsable dates; see
    :func:`~btyd_ltv.data.validate.validate_transactions`) or bad cut-off dates.
    """
    df = validate_transactions(transactions, customer_col, date_col, amount_col, datetime_format=datetime_format)
    cal_end = _parse_timestamp(calibration_end, "calibration_end", datetime_format)
    obs_end = (df[date_col].max() if observation_end is None
               else _parse_timestamp(observation_end, "observation_end", datetime_format))
    summary = calibration_and_holdout(
        df, customer_col, date_col, calibration_end=cal_end, observation_end=obs_end, amount_col=amount_col,
        freq=freq, freq_multiplier=freq_multiplier,
    )
    out = summary[["frequency_cal", "recency_cal", "T_cal", "monetary_value_cal"]].rename(
        columns=lambda c: c[: -len("_cal")]
    )
    day = df[date_col].dt.floor("D")
    cal = df[day <= cal_end.floor("D")] if cal_end == cal_end.floor("D") else df[df[date_col] <= cal_end]
    keys = cal[customer_col]
    first_day = day.loc[cal.index].groupby(keys).transform("min")
    first_rows = cal[day.loc[cal.index] == first_day]
    out["first_purchase_value"] = first_rows.groupby(customer_col)[amount_col].sum()
    out["calibration_spend"] = cal.groupby(customer_col)[amount_col].sum()
    first = day.loc[cal.index].groupby(keys).min()
    out["first_purchase_weekday"] = first.dt.day_of_week.astype(np.int64)
    cohort_period = first.dt.to_period(cohort_freq)
    out["cohort"] = (cohort_period - cohort_period.min()).map(lambda d: d.n).astype(np.int64)
    hold = df[(df[date_col] > cal_end) & (df[date_col] <= obs_end)]
    out["holdout_spend"] = hold.groupby(customer_col)[amount_col].sum().reindex(out.index, fill_value=0.0)
    out.index.name = customer_col
    return out
