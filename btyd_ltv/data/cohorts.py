"""Cohort x age tables: the long format, its checks, building it from a transaction log, cumulative LTV.

A marketing team acquires users in cohorts (an install week, a campaign, a country, ...). The long *cohort table*
has one row per (cohort, age)::

    cohort      age  installs  active_users  payers  revenue  [cost]  [app, campaign, ...]
    1997-01-06    0      1662          1662    1659  62141.3
    1997-01-06    1      1662           190     190   6981.5
    ...

- ``cohort``: the cohort id; grouping columns (app, campaign, channel, country, ...) and ``cost`` (acquisition
  spend) describe the whole cohort, so they are constant within it;
- ``age``: whole periods since acquisition, ``0, 1, ..., A_c`` without gaps (age 0 is the acquisition period);
- ``installs``: the cohort size ``N_c``, the same on every row of the cohort;
- ``active_users`` (optional): users of the cohort active at that age, ``<= installs``;
- ``payers`` (optional): users with revenue at that age, ``<= active_users``;
- ``revenue``: revenue of the cohort at that age.

The cumulative LTV curve of cohort ``c`` is ``LTV_c(a) = sum_{k <= a} revenue_c(k) / N_c`` and its retention
curve ``r_c(a) = active_c(a) / N_c``. Laid out wide (cohorts x ages, ``NaN`` where an age is not observed yet)
the table is the run-off triangle of chain-ladder reserving (Mack 1993, ASTIN Bulletin 23(2)), the usual
baseline for cohort LTV extrapolation.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, NoReturn

import numpy as np
import pandas as pd

from btyd_ltv.data.transactions import _collapse, _period_ordinals
from btyd_ltv.data.validate import _check_columns, _first, _parse_timestamp, _row, _v, validate_transactions
from btyd_ltv.errors import DataValidationError

__all__ = [
    "TRANSACTION_COHORT_COLUMNS",
    "CohortColumns",
    "cohort_table_from_transactions",
    "cohort_triangle",
    "cumulative_ltv",
    "validate_cohort_table",
]

#: Cohort periods :func:`cohort_table_from_transactions` accepts (pandas ``Period`` frequencies; ``"W"`` = weeks
#: Monday..Sunday).
COHORT_PERIODS = ("D", "W", "M")


@dataclass(frozen=True)
class CohortColumns:
    """Column names of a long cohort table; ``None`` for an optional column the table does not have.

    ``groups`` names grouping columns (app, campaign, channel, country, ...) that must be constant within a cohort;
    a single name may be given as a string.
    """

    cohort: str = "cohort"
    age: str = "age"
    installs: str = "installs"
    revenue: str = "revenue"
    active_users: str | None = None
    payers: str | None = None
    cost: str | None = None
    groups: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        groups = (self.groups,) if isinstance(self.groups, str) else tuple(self.groups)
        object.__setattr__(self, "groups", groups)
        for f in fields(self):
            value = getattr(self, f.name)
            names = value if f.name == "groups" else (value,)
            if any(not isinstance(n, str) for n in names if n is not None):
                raise DataValidationError(
                    f"CohortColumns.{f.name} must name a column (a string){'' if f.name == 'groups' else ' or be None'}"
                    f", got {value!r}"
                )
        used = self.used
        dup = next((c for i, c in enumerate(used) if c in used[:i]), None)
        if dup is not None:
            raise DataValidationError(f"CohortColumns names column {dup!r} twice; give each role its own column")

    @property
    def numeric(self) -> tuple[str, ...]:
        """The numeric columns in use: installs, revenue and the optional active_users, payers, cost."""
        opt = (self.active_users, self.payers, self.cost)
        return (self.installs, self.revenue) + tuple(c for c in opt if c is not None)

    @property
    def used(self) -> tuple[str, ...]:
        """Every column in use: cohort, age, the numeric columns, then the grouping columns."""
        return (self.cohort, self.age) + self.numeric + self.groups


#: The columns :func:`cohort_table_from_transactions` writes.
TRANSACTION_COHORT_COLUMNS = CohortColumns(active_users="active_users", payers="payers")


# ------------------------------------------------------------------------------------------------- validation
def _where(df: pd.DataFrame, pos: int, columns: CohortColumns) -> str:
    """Describe row ``pos`` of ``df``: ``row <label> (position <pos>, cohort=<id>, age=<age>)``."""
    return _row(df, pos, columns.cohort, columns.age)


def _fail(df: pd.DataFrame, pos: int, columns: CohortColumns, col: str, what: str, fix: str) -> NoReturn:
    raise DataValidationError(f"column {col!r} {_where(df, pos, columns)}: {what}; {fix}")


def _numeric(df: pd.DataFrame, col: str, columns: CohortColumns) -> np.ndarray:
    """``df[col]`` as int64 (integer columns) or float64, naming the first non-numeric or non-finite entry."""
    s = df[col]
    if pd.api.types.is_bool_dtype(s.dtype):
        _fail(df, 0, columns, col, f"value {_v(s.iloc[0])} is a boolean, not a number",
              f"convert column {col!r} to numbers")
    if pd.api.types.is_integer_dtype(s.dtype):
        return s.to_numpy(dtype=np.int64)
    if not pd.api.types.is_numeric_dtype(s.dtype):
        coerced = pd.to_numeric(s, errors="coerce")
        pos = _first((coerced.isna() & s.notna()).to_numpy())
        if pos is not None:
            _fail(df, pos, columns, col, f"value {_v(s.iloc[pos])} is not a number",
                  f"convert column {col!r} to numbers (e.g. strip currency symbols and thousands separators)")
        s = coerced
    values = s.to_numpy(dtype=np.float64, na_value=np.nan)
    pos = _first(~np.isfinite(values))
    if pos is not None:
        _fail(df, pos, columns, col, f"value {_v(values[pos])} is not finite", "drop or fix the row")
    return values


def _group_starts(codes: np.ndarray) -> np.ndarray:
    """For rows sorted by ``codes``: the index of the first row of each row's group."""
    new = np.empty(codes.size, dtype=bool)
    new[0] = True
    np.not_equal(codes[1:], codes[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    return np.repeat(starts, np.diff(starts, append=codes.size))


def validate_cohort_table(
    df: pd.DataFrame,
    columns: CohortColumns = CohortColumns(),
    *,
    allow_missing_active: bool = True,
) -> pd.DataFrame:
    """Check a long cohort table (one row per cohort and age) and return a clean copy.

    Checks, in order: ``df`` is a DataFrame with the named columns and at least one row; no missing value in a
    used column; installs, revenue, active users, payers and cost are finite numbers ``>= 0``; ages are whole
    numbers ``>= 0``; no (cohort, age) appears twice; each cohort has every age ``0, 1, ..., max`` (no gaps);
    installs ``> 0`` (a cohort with 0 installs has no data); installs, cost and the grouping columns are constant
    within a cohort; ``active_users <= installs``; ``payers <= active_users`` (``<= installs`` without active
    users). With ``allow_missing_active=False`` the table must have an active-users column.

    Returns a copy sorted by (cohort, age) with a fresh ``RangeIndex``: ``age`` as ``int64``, the other numeric
    columns as ``int64`` where they were integers and ``float64`` otherwise; other columns are kept as they are.
    Raises :class:`DataValidationError` naming the column, the first offending row (its position and cohort /
    age) and the fix.
    """
    if not isinstance(columns, CohortColumns):
        raise DataValidationError(
            f"columns must be a CohortColumns, got {type(columns).__name__}; e.g. "
            "CohortColumns(cohort='week', installs='users')"
        )
    c = columns
    if c.active_users is None and not allow_missing_active:
        raise DataValidationError(
            "cohort table: active users are required here but no active-users column was named; pass "
            "columns=CohortColumns(active_users='active_users', ...)"
        )
    _check_columns(df, list(c.used), "cohort table")
    for col in c.used:
        pos = _first(df[col].isna().to_numpy())
        if pos is not None:
            _fail(df, pos, c, col, f"missing value ({_v(df[col].iloc[pos])})",
                  "fill it (0 for an age without activity) or drop the row")

    values = {col: _numeric(df, col, c) for col in c.numeric}
    for col, what in ((c.installs, "installs"), (c.active_users, "active users"), (c.revenue, "revenue"),
                      (c.payers, "payers"), (c.cost, "cost")):
        if col is not None and (pos := _first(values[col] < 0)) is not None:
            _fail(df, pos, c, col, f"negative {what} {_v(values[col][pos])}", f"{what} must be >= 0")
    age = _numeric(df, c.age, c)
    if (pos := _first(age != np.round(age))) is not None:
        _fail(df, pos, c, c.age, f"age {_v(age[pos])} is not a whole number",
              "age counts whole periods since acquisition (0 = the acquisition period)")
    if (pos := _first(age < 0)) is not None:
        _fail(df, pos, c, c.age, f"negative age {_v(age[pos])}",
              "age counts periods since acquisition and starts at 0")
    age = age.astype(np.int64)

    try:
        codes, _ = pd.factorize(df[c.cohort], sort=True)
    except TypeError as exc:
        raise DataValidationError(
            f"column {c.cohort!r}: cohort ids of mixed types cannot be ordered ({exc}); convert the column to one "
            f"type, e.g. df[{c.cohort!r}] = df[{c.cohort!r}].astype(str)"
        ) from exc
    codes = codes.astype(np.int64)
    dup = pd.DataFrame({"c": codes, "a": age}).duplicated().to_numpy()
    if (pos := _first(dup)) is not None:
        _fail(df, pos, c, c.age, f"cohort {_v(df[c.cohort].iloc[pos])} has age {_v(age[pos])} twice",
              "keep one row per (cohort, age): sum duplicated rows or drop the repeated one")

    order = np.lexsort((age, codes))  # rows by cohort, then age
    s_age = age[order]
    starts = _group_starts(codes[order])
    expected = np.arange(order.size) - starts  # 0, 1, ... within each cohort
    gap = s_age != expected  # once an age is skipped, every later row of the cohort is off too
    first_gap = gap & ((starts == np.arange(order.size)) | ~np.roll(gap, 1))
    if first_gap.any():
        k = np.flatnonzero(first_gap)
        k = k[np.argmin(order[k])]  # the one earliest in the input
        pos = int(order[k])
        _fail(df, pos, c, c.age,
              f"cohort {_v(df[c.cohort].iloc[pos])} has no row for age {int(expected[k])} (ages must run 0, 1, ..., "
              "max without gaps)",
              "add the missing ages with 0 revenue / active users / payers, or drop the cohort")

    installs = values[c.installs]
    if (pos := _first(installs == 0)) is not None:
        _fail(df, pos, c, c.installs,
              f"cohort {_v(df[c.cohort].iloc[pos])} has 0 installs: a cohort with no data",
              "drop the cohort (nobody was acquired) or fix its installs")

    def constant(col: str, what: str) -> None:
        s = (values[col] if col in values else df[col].to_numpy())[order]
        bad = s != s[starts]
        if bad.any():
            k = np.flatnonzero(bad)
            k = k[np.argmin(order[k])]
            pos = int(order[k])
            _fail(df, pos, c, col,
                  f"{col} {_v(s[k])} differs from {_v(s[starts[k]])} at age 0 of cohort "
                  f"{_v(df[c.cohort].iloc[pos])}",
                  f"{what} describes the whole cohort and must be the same on each of its rows")

    constant(c.installs, "installs (the cohort size)")
    for col in ((c.cost,) if c.cost is not None else ()) + c.groups:
        constant(col, "cost (the cohort's acquisition spend)" if col == c.cost else f"the grouping column {col!r}")

    if c.active_users is not None:
        active = values[c.active_users]
        if (pos := _first(active > installs)) is not None:
            _fail(df, pos, c, c.active_users,
                  f"{c.active_users} {_v(active[pos])} > {c.installs} {_v(installs[pos])}",
                  "active users are users of the cohort, so at most its installs; check the columns")
    if c.payers is not None:
        payers = values[c.payers]
        by_active = c.active_users is not None
        ref, ref_name = (values[c.active_users], c.active_users) if by_active else (installs, c.installs)
        if (pos := _first(payers > ref)) is not None:
            _fail(df, pos, c, c.payers, f"{c.payers} {_v(payers[pos])} > {ref_name} {_v(ref[pos])}",
                  f"payers are {'active users' if by_active else 'users of the cohort'} with revenue, so at most "
                  f"its {'active users' if by_active else 'installs'}; check the columns")

    out = df.copy(deep=False)  # copy-on-write: assigning columns leaves df alone
    out[c.age] = age
    for col, v in values.items():
        out[col] = v
    return out.take(order).reset_index(drop=True)


# ---------------------------------------------------------------------------------------- from transactions
def cohort_table_from_transactions(
    log: pd.DataFrame,
    customer_col: str = "customer_id",
    date_col: str = "date",
    amount_col: str = "amount",
    *,
    cohort_period: str = "W",
    observation_end: Any = None,
    datetime_format: str | None = None,
) -> pd.DataFrame:
    """Long cohort table of a transaction log: acquisition cohorts of ``cohort_period`` followed age by age.

    A customer is acquired at her first transaction; her cohort is the pandas ``Period`` of ``cohort_period``
    (``"D"``, ``"W"`` = weeks Monday..Sunday, ``"M"``) holding that date, labelled by its first day as an ISO
    string (``"1996-12-30"`` for the week of 1997-01-01). A transaction in period ``p`` of a customer of cohort
    ``c`` is at age ``p - c`` (whole periods). Per (cohort, age):

    - ``installs``: customers acquired in the cohort (the same on each of its rows),
    - ``active_users``: distinct customers of the cohort with a transaction at that age,
    - ``payers``: distinct customers with an amount ``> 0`` at that age,
    - ``revenue``: sum of the amounts at that age.

    Only *complete* periods are kept: the last one is the last period ending on or before the day of
    ``observation_end`` (default: the last date in the log), and transactions after it are dropped, as are
    customers acquired after it. Each cohort then has every age ``0..A_c`` (``A_c`` = last complete period -
    cohort period), with zeros where nobody bought; periods without acquisitions have no cohort.

    Columns ``cohort`` (str), ``age``, ``installs``, ``active_users``, ``payers`` (int64), ``revenue`` (float64),
    sorted by cohort and age; :data:`TRANSACTION_COHORT_COLUMNS` names them. Input is checked with
    :func:`~btyd_ltv.data.validate.validate_transactions`. Vectorised: one sort of the (customer, period) pairs,
    then ``bincount`` over cells.
    """
    if cohort_period not in COHORT_PERIODS:
        raise DataValidationError(
            f"cohort_period {cohort_period!r} is not one of {list(COHORT_PERIODS)}; use 'D' (days), 'W' (weeks, "
            "Monday..Sunday) or 'M' (calendar months)"
        )
    cols = [customer_col, date_col, amount_col]
    if isinstance(log, pd.DataFrame) and all(col in log.columns for col in cols):
        log = log[cols]
    tx = validate_transactions(log, customer_col, date_col, amount_col, datetime_format=datetime_format)
    dates = tx[date_col].to_numpy()
    end = dates.max() if observation_end is None else _parse_timestamp(
        observation_end, "observation_end", datetime_format
    ).to_datetime64()
    next_day = np.array([end], dtype="datetime64[D]") + np.timedelta64(1, "D")
    last = int(_period_ordinals(next_day, cohort_period)[0]) - 1  # last period ending on or before `end`'s day
    period = _period_ordinals(dates, cohort_period)
    keep = period <= last
    if not keep.any():
        raise DataValidationError(
            f"column {date_col!r}: no complete {cohort_period!r} period ends on or before observation_end "
            f"{pd.Timestamp(end)} (first date {pd.Timestamp(dates.min())}); pass a later observation_end or a "
            "shorter cohort_period"
        )
    codes, _ = pd.factorize(tx[customer_col].to_numpy()[keep] if not keep.all() else tx[customer_col])
    pairs = _collapse(codes.astype(np.int64), period[keep], tx[amount_col].to_numpy(dtype=np.float64)[keep])
    # pairs: one per (customer, period) with a transaction, sorted by customer code 0..n-1, then period
    first = pairs.period[pairs.start]  # acquisition period of each customer
    cohorts, installs = np.unique(first, return_counts=True)
    n_ages = last - cohorts + 1
    offset = np.concatenate(([0], np.cumsum(n_ages)[:-1]))
    n_cells = int(n_ages.sum())
    pair_cohort = np.repeat(np.searchsorted(cohorts, first), pairs.count)
    cell = offset[pair_cohort] + (pairs.period - cohorts[pair_cohort])
    labels = pd.PeriodIndex.from_ordinals(cohorts, freq=cohort_period).start_time.strftime("%Y-%m-%d")
    return pd.DataFrame({
        "cohort": np.repeat(np.asarray(labels, dtype=object), n_ages),
        "age": np.arange(n_cells, dtype=np.int64) - np.repeat(offset, n_ages),
        "installs": np.repeat(installs.astype(np.int64), n_ages),
        "active_users": np.bincount(cell, minlength=n_cells).astype(np.int64),
        "payers": np.bincount(cell[pairs.spend > 0], minlength=n_cells).astype(np.int64),
        "revenue": np.bincount(cell, weights=pairs.spend, minlength=n_cells),
    }).astype({"cohort": "str"})


# ------------------------------------------------------------------------------------------------ LTV curves
def cumulative_ltv(table: pd.DataFrame, columns: CohortColumns = CohortColumns()) -> pd.DataFrame:
    """The validated cohort table with the cumulative LTV (and retention) curve of each cohort added.

    ``ltv`` = ``sum_{k <= age} revenue(k) / installs``: revenue per install up to and including each age,
    non-decreasing in age within a cohort. ``retention`` = ``active_users / installs`` when ``columns`` names an
    active-users column. Rows sorted by (cohort, age), see :func:`validate_cohort_table`.
    """
    out = validate_cohort_table(table, columns)
    revenue = out[columns.revenue].to_numpy(dtype=np.float64)
    codes, _ = pd.factorize(out[columns.cohort])
    cum = pd.Series(revenue).groupby(codes, sort=False).cumsum().to_numpy()
    installs = out[columns.installs].to_numpy(dtype=np.float64)
    out["ltv"] = cum / installs
    if columns.active_users is not None:
        out["retention"] = out[columns.active_users].to_numpy(dtype=np.float64) / installs
    return out


def cohort_triangle(
    table: pd.DataFrame, value: str = "ltv", *, columns: CohortColumns = CohortColumns()
) -> pd.DataFrame:
    """Wide cohort x age matrix of ``value`` (the run-off triangle of chain-ladder baselines).

    Index: the cohort ids (sorted), named after the cohort column; columns: ages ``0..max age``; ``NaN`` where a
    cohort has not reached an age yet. ``value="ltv"`` or ``"retention"`` is computed with
    :func:`cumulative_ltv` when the table lacks it; any other numeric column of the table is taken as it is.
    """
    if value in ("ltv", "retention") and value not in getattr(table, "columns", ()):
        table = cumulative_ltv(table, columns)
    else:
        table = validate_cohort_table(table, columns)
    if value not in table.columns:
        hint = (" (retention needs active users: pass columns=CohortColumns(active_users=...))"
                if value == "retention" else "")
        raise DataValidationError(
            f"cohort table has no column {value!r}{hint}; the table has columns {list(map(str, table.columns))}"
        )
    values = _numeric(table, value, columns).astype(np.float64)
    codes, cohorts = pd.factorize(table[columns.cohort], sort=True)
    age = table[columns.age].to_numpy()
    wide = np.full((cohorts.size, int(age.max()) + 1), np.nan)
    wide[codes, age] = values
    return pd.DataFrame(
        wide,
        index=pd.Index(cohorts, name=columns.cohort),
        columns=pd.RangeIndex(wide.shape[1], name=columns.age),
    )
