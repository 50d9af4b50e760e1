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

:func:`customer_features_at` builds the same kind of table in *relative* time, as the deep LTV baselines do
(Wang, Liu & Miao 2019; MEAN): each customer is observed for ``weeks`` weeks from their own first purchase and
the target is the spend of the following ``horizon_weeks`` weeks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from btyd_ltv.data.transactions import calibration_and_holdout, summary_from_transactions
from btyd_ltv.data.validate import _parse_timestamp, validate_transactions
from btyd_ltv.errors import DataValidationError

__all__ = ["spend_features", "customer_features_at", "FEATURE_COLUMNS", "FEATURE_COLUMNS_AT"]

#: Numeric calibration-period features produced by :func:`spend_features` (all known at ``calibration_end``).
FEATURE_COLUMNS = ("frequency", "recency", "T", "monetary_value", "first_purchase_value", "calibration_spend")

#: Features produced by :func:`customer_features_at` (all known ``weeks`` weeks after the first purchase).
FEATURE_COLUMNS_AT = (
    "first_purchase_value", "purchases_k", "spend_k", "days_to_second", "has_second", "first_purchase_weekday",
    "cohort_week", "frequency", "recency", "T", "monetary_value",
)

# Any fixed day: relative days are laid out from it to reuse the calendar-time RFM summary.
_EPOCH = np.datetime64("2000-01-03", "D")


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


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise DataValidationError(f"{name} must be a positive whole number of weeks, got {value!r}")
    return int(value)


def customer_features_at(
    transactions: pd.DataFrame,
    customer_col: str = "customer_id",
    date_col: str = "date",
    amount_col: str = "amount",
    *,
    weeks: int = 4,
    horizon_weeks: int = 52,
    sub_horizons_weeks: Sequence[int] = (13, 26),
    datetime_format: str | None = None,
) -> pd.DataFrame:
    """Features known ``k = weeks`` weeks after each customer's own first purchase, and the spend that follows.

    Time is relative to the customer: with ``d0`` the customer's first purchase day, a transaction on day ``d``
    has relative day ``r = d - d0`` (calendar days; times of day are ignored). The feature window is
    ``0 <= r <= 7k - 1`` (``k`` weeks, first day included), the target window ``7k <= r <= 7(k + H) - 1`` with
    ``H = horizon_weeks`` (the setting of the deep LTV baselines: Wang, Liu & Miao 2019, arXiv:1912.07753; MEAN).
    One row per customer, index ``customer_col`` (sorted):

    - ``first_purchase_value``: spend on day ``r = 0`` (all transactions of the first day summed);
    - ``purchases_k``: number of distinct purchase days with ``1 <= r <= 7k - 1`` (repeat purchase days);
    - ``spend_k``: total spend with ``0 <= r <= 7k - 1``;
    - ``days_to_second``: the first purchase day ``r >= 1`` within the window, else ``7k`` (censored), and
      ``has_second`` (1 if there is one, else 0);
    - ``first_purchase_weekday`` (0 = Monday) and ``cohort_week = floor((d0 - min d0) / 7)``, whole weeks since
      the earliest first purchase in the log;
    - ``frequency``, ``recency``, ``T`` (weeks) and ``monetary_value``: the RFM summary of the feature window
      (:func:`~btyd_ltv.data.transactions.summary_from_transactions` with ``freq="D", freq_multiplier=7``, i.e.
      lifetimes' ``summary_data_from_transaction_data`` of the customer's log up to day ``d0 + 7k - 1``):
      ``frequency = purchases_k``, ``recency = r_last / 7``, ``T = (7k - 1) / 7`` for everyone and
      ``monetary_value = (spend_k - first_purchase_value) / purchases_k`` (0 without repeats);
    - targets: ``target``, the spend with ``7k <= r <= 7(k + H) - 1``, and ``target_{h}w`` for each ``h`` in
      ``sub_horizons_weeks``, the spend with ``7k <= r <= 7(k + h) - 1`` (same start, ``h <= H``).

    A customer is kept only if the target window ends on or before the last day of the log,
    ``d0 + 7(k + H) - 1 <= max(date)``; the number dropped is ``df.attrs["dropped_customers"]`` (``weeks`` and
    ``horizon_weeks`` are recorded in ``attrs`` too). Input is checked with
    :func:`~btyd_ltv.data.validate.validate_transactions`; raises :class:`~btyd_ltv.errors.DataValidationError`
    for a bad log, bad week counts, or when no customer has enough follow-up.
    """
    k = _positive_int(weeks, "weeks")
    horizon = _positive_int(horizon_weeks, "horizon_weeks")
    subs = [_positive_int(h, "sub_horizons_weeks entry") for h in sub_horizons_weeks]
    too_long = [h for h in subs if h > horizon]
    if too_long:
        raise DataValidationError(
            f"sub_horizons_weeks {too_long} exceed horizon_weeks {horizon}; pass sub-horizons <= horizon_weeks"
        )
    if isinstance(transactions, pd.DataFrame) and all(
        c in transactions.columns for c in (customer_col, date_col, amount_col)
    ):
        transactions = transactions[[customer_col, date_col, amount_col]]
    df = validate_transactions(transactions, customer_col, date_col, amount_col, datetime_format=datetime_format)
    ids = df[customer_col].to_numpy()
    day = df[date_col].to_numpy().astype("datetime64[D]").view(np.int64)
    amount = df[amount_col].to_numpy(dtype=np.float64)
    first = pd.Series(day).groupby(ids, sort=False).transform("min").to_numpy()
    r = day - first
    window_days = 7 * k
    in_window = r < window_days

    # RFM of the feature window: relative days laid out from one epoch, observed to day 7k - 1 (lifetimes'
    # definitions depend on day differences only).
    relative = pd.DataFrame({
        customer_col: df[customer_col].to_numpy()[in_window],
        date_col: _EPOCH + r[in_window].astype("timedelta64[D]"),
        amount_col: amount[in_window],
    })
    out = summary_from_transactions(
        relative, customer_col, date_col, amount_col,
        observation_end=pd.Timestamp(_EPOCH + np.timedelta64(window_days - 1, "D")), freq="D", freq_multiplier=7,
    )
    n = len(out)
    code = out.index.get_indexer(df[customer_col])
    d0 = np.empty(n, dtype=np.int64)
    d0[code] = first

    def total(mask: np.ndarray) -> np.ndarray:
        return np.bincount(code[mask], weights=amount[mask], minlength=n).astype(np.float64)

    repeat = in_window & (r >= 1)
    pairs = np.unique(np.stack([code[repeat], r[repeat]]), axis=1)
    purchases = np.bincount(pairs[0], minlength=n)
    second = np.full(n, window_days, dtype=np.int64)
    np.minimum.at(second, code[repeat], r[repeat])
    first_day = d0.astype("datetime64[D]")
    features = pd.DataFrame({
        "first_purchase_value": total(r == 0),
        "purchases_k": purchases.astype(np.int64),
        "spend_k": total(in_window),
        "days_to_second": second,
        "has_second": (purchases > 0).astype(np.int64),
        "first_purchase_weekday": pd.DatetimeIndex(first_day).day_of_week.to_numpy().astype(np.int64),
        "cohort_week": (d0 - d0.min()) // 7,
    }, index=out.index)
    features[["frequency", "recency", "T", "monetary_value"]] = out[["frequency", "recency", "T", "monetary_value"]]
    features["target"] = total((r >= window_days) & (r < 7 * (k + horizon)))
    for h in subs:
        features[f"target_{h}w"] = total((r >= window_days) & (r < 7 * (k + h)))

    last_day = int(day.max())
    keep = d0 + 7 * (k + horizon) - 1 <= last_day
    if not keep.any():
        latest_start = np.datetime64(last_day - 7 * (k + horizon) + 1, "D")
        raise DataValidationError(
            f"no customer has {k} + {horizon} weeks (weeks={k}, horizon_weeks={horizon}) of follow-up before the "
            f"last date of the log, {np.datetime64(last_day, 'D')}: a first purchase on or before {latest_start} "
            f"is needed (the earliest is {first_day.min()}); pass fewer weeks or a shorter horizon_weeks"
        )
    features = features[keep]
    features.attrs = {"dropped_customers": int(n - keep.sum()), "weeks": k, "horizon_weeks": horizon}
    return features
