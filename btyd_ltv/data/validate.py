"""Input checks for transaction logs and RFM summaries.

Every check is vectorised (one pass per column) and raises :class:`~btyd_ltv.errors.DataValidationError` whose
message names the column, the first offending row (index label, position and customer id where known), the bad
value and the fix, e.g.::

    column 'recency' row 17 (position 16, customer_id=42): recency 40.0 > T 38.86; recency must not exceed T
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from btyd_ltv.errors import DataValidationError

__all__ = ["validate_summary", "validate_transactions"]

# Relative slack allowed in ``recency <= T`` (rounding of recency and T to a few decimals in published tables).
RECENCY_T_RTOL = 1e-9


def _v(value: Any) -> str:
    """Show a data value in a message: numpy scalars as plain Python, strings quoted."""
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value) if isinstance(value, str) else str(value)


def _row(df: pd.DataFrame, pos: int, *key_cols: str | None) -> str:
    """Describe row ``pos`` of ``df`` as ``row <label> (position <pos>, <key_col>=<value>, ...)``; the position
    is left out when the label is the position (a default ``RangeIndex``), and ``None`` or absent key columns
    are skipped."""
    label = df.index[pos]
    name = df.index.name
    head = f"row {name}={_v(label)}" if name is not None else f"row {_v(label)}"
    extra = []
    if not (isinstance(label, (int, np.integer)) and int(label) == pos and name is None):
        extra.append(f"position {pos}")
    extra += [f"{col}={_v(df[col].iloc[pos])}" for col in key_cols if col is not None and col in df.columns]
    return head + (f" ({', '.join(extra)})" if extra else "")


def _first(mask: np.ndarray | pd.Series) -> int | None:
    """Position of the first True in ``mask``, or None."""
    hits = np.flatnonzero(np.asarray(mask, dtype=bool))
    return int(hits[0]) if hits.size else None


def _check_columns(df: Any, required: Sequence[str], what: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise DataValidationError(
            f"{what} must be a pandas DataFrame, got {type(df).__name__}; load it with pandas.read_csv or "
            "pandas.DataFrame(...) first"
        )
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataValidationError(
            f"{what}: missing column(s) {missing}; the frame has columns {list(map(str, df.columns))}. "
            "Rename the columns or pass the right column names."
        )
    if len(df) == 0:
        raise DataValidationError(f"{what} has no rows; pass a non-empty frame")


def _check_no_nan(df: pd.DataFrame, col: str, customer_col: str | None, fix: str) -> None:
    pos = _first(df[col].isna().to_numpy())
    if pos is not None:
        raise DataValidationError(
            f"column {col!r} {_row(df, pos, customer_col)}: missing value ({_v(df[col].iloc[pos])}); {fix}"
        )


def _to_numeric(df: pd.DataFrame, col: str, customer_col: str | None) -> pd.Series:
    """Coerce ``df[col]`` to float64, naming the first non-numeric or non-finite entry."""
    s = df[col]
    if pd.api.types.is_bool_dtype(s.dtype):
        raise DataValidationError(
            f"column {col!r} {_row(df, 0, customer_col)}: value {_v(s.iloc[0])} is a boolean, not a number; "
            f"convert column {col!r} to numbers"
        )
    if not pd.api.types.is_numeric_dtype(s.dtype):
        coerced = pd.to_numeric(s, errors="coerce")
        pos = _first((coerced.isna() & s.notna()).to_numpy())
        if pos is not None:
            raise DataValidationError(
                f"column {col!r} {_row(df, pos, customer_col)}: value {_v(s.iloc[pos])} is not a number; "
                f"convert column {col!r} to numbers (e.g. strip currency symbols)"
            )
        s = coerced
    values = s.to_numpy(dtype=np.float64, na_value=np.nan)
    pos = _first(np.isinf(values))
    if pos is not None:
        raise DataValidationError(
            f"column {col!r} {_row(df, pos, customer_col)}: value {_v(values[pos])} is not finite; "
            "drop or fix the row"
        )
    return pd.Series(values, index=df.index, name=col)


def _parse_timestamp(value: Any, name: str, datetime_format: str | None) -> pd.Timestamp:
    """Parse a scalar date (string, datetime, Timestamp or YYYYMMDD integer with ``datetime_format``)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = str(value)
    try:
        ts = pd.to_datetime(value, format=datetime_format) if datetime_format else pd.to_datetime(value)
    except (ValueError, TypeError):
        try:
            ts = pd.to_datetime(value)
        except (ValueError, TypeError) as exc:
            raise DataValidationError(
                f"{name} {value!r} is not a date; pass an ISO date such as '1998-06-30' or a datetime"
            ) from exc
    if ts is pd.NaT or pd.isna(ts):
        raise DataValidationError(f"{name} is missing (NaT); pass a date such as '1998-06-30'")
    if ts.tzinfo is not None:
        ts = ts.tz_localize(None)
    return pd.Timestamp(ts)


def _parse_dates(df: pd.DataFrame, col: str, customer_col: str | None, datetime_format: str | None) -> pd.Series:
    """Return ``df[col]`` as naive datetime64, naming the first unparseable entry."""
    s = df[col]
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        return s.dt.tz_localize(None)
    if pd.api.types.is_datetime64_dtype(s.dtype):
        return s
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        if datetime_format is None:
            raise DataValidationError(
                f"column {col!r} {_row(df, 0, customer_col)}: dates are numbers ({_v(s.iloc[0])}) and no "
                "datetime_format was given; pass datetime_format='%Y%m%d' for values like 19970101, or convert "
                "the column to dates"
            )
        values = s.to_numpy()
        if values.dtype.kind == "f":
            frac = _first(values != np.round(values))
            if frac is not None:
                raise DataValidationError(
                    f"column {col!r} {_row(df, frac, customer_col)}: value {_v(values[frac])} is not a date in "
                    f"format {datetime_format!r}; fix the value or the datetime_format"
                )
            values = values.astype(np.int64)
        raw = pd.Series(values.astype(str), index=s.index)
    else:
        raw = s
    try:
        parsed = pd.to_datetime(raw, format=datetime_format, errors="coerce")
    except (ValueError, TypeError):
        parsed = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]")
    bad = parsed.isna().to_numpy() & raw.notna().to_numpy()
    if bad.any() and datetime_format is None:
        # Inferred from the first value; retry element-wise before giving up.
        try:
            parsed = pd.to_datetime(raw, format="mixed", errors="coerce")
        except (ValueError, TypeError):
            pass
        bad = parsed.isna().to_numpy() & raw.notna().to_numpy()
    pos = _first(bad)
    if pos is not None:
        fmt = f"format {datetime_format!r}" if datetime_format else "any date format pandas recognises"
        raise DataValidationError(
            f"column {col!r} {_row(df, pos, customer_col)}: value {_v(s.iloc[pos])} cannot be parsed as a date "
            f"({fmt}); fix the value or pass datetime_format (e.g. '%Y-%m-%d')"
        )
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_localize(None)
    return parsed


def validate_transactions(
    df: pd.DataFrame,
    customer_col: str,
    date_col: str,
    amount_col: str | None = None,
    *,
    observation_end: Any = None,
    datetime_format: str | None = None,
) -> pd.DataFrame:
    """Check a transaction log (one row per purchase) and return a copy with ``date_col`` parsed.

    Checks, in order: ``df`` is a DataFrame with the named columns and at least one row; no missing customer
    id, date or amount; every date parses (datetime columns are kept, strings are parsed with ``datetime_format``
    or inferred, integers such as ``19970101`` need ``datetime_format="%Y%m%d"``; time zones are dropped, keeping
    wall-clock time); amounts are finite, numeric and ``>= 0``; no transaction is dated after
    ``observation_end`` when it is given.

    Returns a copy of ``df`` with ``date_col`` as naive ``datetime64`` and ``amount_col`` as ``float64``.
    Raises :class:`DataValidationError` naming the column, the first bad row and the fix.
    """
    cols = [customer_col, date_col] + ([amount_col] if amount_col is not None else [])
    _check_columns(df, cols, "transactions")
    _check_no_nan(df, customer_col, None, "drop rows without a customer id")
    _check_no_nan(df, date_col, customer_col, "drop rows without a date")
    out = df.copy(deep=False)  # copy-on-write (pandas >= 3): assigning columns leaves df alone
    out[date_col] = _parse_dates(df, date_col, customer_col, datetime_format)
    if amount_col is not None:
        _check_no_nan(df, amount_col, customer_col, "drop the row or fill the amount (0 for a free order)")
        amount = _to_numeric(df, amount_col, customer_col)
        pos = _first(amount.to_numpy() < 0)
        if pos is not None:
            raise DataValidationError(
                f"column {amount_col!r} {_row(df, pos, customer_col)}: negative amount {_v(amount.iloc[pos])}; "
                "amounts must be >= 0 (net refunds against their orders or drop them)"
            )
        out[amount_col] = amount
    if observation_end is not None:
        end = _parse_timestamp(observation_end, "observation_end", datetime_format)
        pos = _first((out[date_col] > end).to_numpy())
        if pos is not None:
            raise DataValidationError(
                f"column {date_col!r} {_row(df, pos, customer_col)}: transaction dated "
                f"{out[date_col].iloc[pos]} is after observation_end {end}; filter out transactions after "
                "the observation end or pass a later observation_end"
            )
    return out


def validate_summary(
    df: pd.DataFrame,
    *,
    frequency_col: str = "frequency",
    recency_col: str = "recency",
    T_col: str = "T",
    monetary_col: str | None = None,
) -> pd.DataFrame:
    """Check an RFM summary (one row per customer: frequency ``x``, recency ``t_x``, age ``T``).

    The BTYD models (Fader, Hardie & Lee 2005) need, per customer: ``x`` a non-negative integer (repeat
    purchases), ``0 <= t_x <= T`` (relative slack ``1e-9`` for rounded tables), ``T >= 0`` (``T = 0``, a customer
    acquired at the observation end, only with ``x = 0``: such a customer's likelihood is 1), and ``t_x = 0``
    when ``x = 0``. With ``monetary_col`` (mean repeat spend ``zbar``, Gamma-Gamma model): ``zbar >= 0`` and
    ``zbar > 0`` wherever ``x > 0``. All values must be finite numbers.

    Returns a copy with the checked columns as ``float64`` (other columns untouched).
    Raises :class:`DataValidationError` naming the column, the first bad row and the fix.
    """
    cols = [frequency_col, recency_col, T_col] + ([monetary_col] if monetary_col is not None else [])
    _check_columns(df, cols, "summary")
    cust = "customer_id" if "customer_id" in df.columns else None
    for c in cols:
        _check_no_nan(df, c, cust, "drop the customer or fill the value")
    out = df.copy()
    for c in cols:
        out[c] = _to_numeric(df, c, cust)
    x = out[frequency_col].to_numpy()
    t_x = out[recency_col].to_numpy()
    T = out[T_col].to_numpy()

    def fail(col: str, pos: int, what: str, fix: str) -> None:
        raise DataValidationError(f"column {col!r} {_row(df, pos, cust)}: {what}; {fix}")

    if (pos := _first(x < 0)) is not None:
        fail(frequency_col, pos, f"frequency {_v(x[pos])} < 0", "frequency counts repeat purchases and must be >= 0")
    if (pos := _first(x != np.round(x))) is not None:
        fail(frequency_col, pos, f"frequency {_v(x[pos])} is not an integer",
             "frequency must be a whole number of repeat purchase periods")
    if (pos := _first(t_x < 0)) is not None:
        fail(recency_col, pos, f"recency {_v(t_x[pos])} < 0", "recency (time of last repeat purchase) must be >= 0")
    if (pos := _first(T < 0)) is not None:
        fail(T_col, pos, f"T {_v(T[pos])} < 0", "T (time since first purchase) must be >= 0; check the dates")
    if (pos := _first((T == 0) & (x > 0))) is not None:
        fail(T_col, pos, f"T 0 with frequency {_v(x[pos])}",
             "a customer with repeat purchases must have T > 0; check the first-purchase date")
    if (pos := _first(t_x - T > RECENCY_T_RTOL * np.abs(T))) is not None:
        fail(recency_col, pos, f"recency {_v(t_x[pos])} > T {_v(T[pos])}", "recency must not exceed T")
    if (pos := _first((x == 0) & (t_x > 0))) is not None:
        fail(recency_col, pos, f"recency {_v(t_x[pos])} > 0 with frequency 0",
             "customers without repeat purchases must have recency 0")
    if monetary_col is not None:
        m = out[monetary_col].to_numpy()
        if (pos := _first(m < 0)) is not None:
            fail(monetary_col, pos, f"monetary value {_v(m[pos])} < 0", "mean spend must be >= 0")
        if (pos := _first((x > 0) & (m <= 0))) is not None:
            fail(monetary_col, pos, f"monetary value {_v(m[pos])} <= 0 with frequency {_v(x[pos])}",
                 "Gamma-Gamma needs a positive mean repeat spend; drop zero-spend repeat customers or fix the "
                 "amounts")
    return out
