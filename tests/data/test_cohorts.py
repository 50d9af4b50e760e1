"""Cohort tables: built from a hand-made log and from CDNOW against independent pandas computations, cumulative
LTV against a direct cumsum, the triangle's NaN pattern, and every validation error (column + row named)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from btyd_ltv.data.cohorts import (
    TRANSACTION_COHORT_COLUMNS,
    CohortColumns,
    cohort_table_from_transactions,
    cohort_triangle,
    cumulative_ltv,
    validate_cohort_table,
)
from btyd_ltv.data.datasets import load_dataset
from btyd_ltv.errors import DataValidationError

TX_COLS = ["cohort", "age", "installs", "active_users", "payers", "revenue"]


# ------------------------------------------------------------------------------------------ hand-made log
def _log() -> pd.DataFrame:
    """Five customers over January 2024 (2024-01-01 is a Monday, so weeks start on the 1st, 8th, 15th, ...)."""
    rows = [
        ("A", "2024-01-01", 10.0),  # week 0, acquisition
        ("A", "2024-01-03", 5.0),  # week 0 again: one active user, revenue summed
        ("A", "2024-01-17", 0.0),  # week 2: active but not a payer
        ("A", "2024-01-24", 7.0),  # week 3
        ("A", "2024-02-05", 100.0),  # week 5: incomplete at the default observation end (Tue 2024-02-06)
        ("B", "2024-01-07", 20.0),  # Sunday: still week 0
        ("B", "2024-01-29", 4.0),  # week 4, the last complete week
        ("C", "2024-01-09", 3.0),  # cohort of week 1
        ("C", "2024-01-10", 2.0),
        ("C", "2024-01-23", 6.0),  # week 3 = age 2
        ("D", "2024-01-25", 8.0),  # acquired late (week 3): ages 0..1 only
        ("E", "2024-02-06", 9.0),  # acquired in the incomplete week 5: no cohort
    ]
    df = pd.DataFrame(rows, columns=["customer_id", "date", "amount"])
    return df.sample(frac=1.0, random_state=3).reset_index(drop=True)  # order must not matter


def _table(rows: list[tuple]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=TX_COLS)
    return df.astype({"cohort": "str", "revenue": "float64"})


EXPECTED_WEEKLY = _table([
    # cohort, age, installs, active, payers, revenue
    ("2024-01-01", 0, 2, 2, 2, 35.0),  # A 10 + 5, B 20
    ("2024-01-01", 1, 2, 0, 0, 0.0),
    ("2024-01-01", 2, 2, 1, 0, 0.0),  # A's free order
    ("2024-01-01", 3, 2, 1, 1, 7.0),
    ("2024-01-01", 4, 2, 1, 1, 4.0),  # B
    ("2024-01-08", 0, 1, 1, 1, 5.0),  # C 3 + 2
    ("2024-01-08", 1, 1, 0, 0, 0.0),
    ("2024-01-08", 2, 1, 1, 1, 6.0),
    ("2024-01-08", 3, 1, 0, 0, 0.0),
    ("2024-01-22", 0, 1, 1, 1, 8.0),  # D; no cohort for the week of 2024-01-15 (nobody acquired)
    ("2024-01-22", 1, 1, 0, 0, 0.0),
])


def test_weekly_table_by_hand():
    log = _log()
    before = log.copy()
    out = cohort_table_from_transactions(log)
    pd.testing.assert_frame_equal(out, EXPECTED_WEEKLY)
    pd.testing.assert_frame_equal(log, before)
    # Ending on the Sunday of the last complete week gives the same table; a day later too (week 5 incomplete).
    for end in ("2024-02-04", "2024-02-10"):
        pd.testing.assert_frame_equal(cohort_table_from_transactions(log, observation_end=end), EXPECTED_WEEKLY)
    # A table from transactions is a valid cohort table, already in order.
    pd.testing.assert_frame_equal(validate_cohort_table(out, TRANSACTION_COHORT_COLUMNS), out)


def test_weekly_table_observation_end_includes_week_5():
    out = cohort_table_from_transactions(_log(), observation_end="2024-02-11")  # Sunday: week 5 complete
    by = out.set_index(["cohort", "age"])
    assert by.loc[("2024-01-01", 5)].tolist() == [2, 1, 1, 100.0]  # A's 100
    assert by.loc[("2024-02-05", 0)].tolist() == [1, 1, 1, 9.0]  # E's cohort now exists
    assert out.groupby("cohort")["age"].max().tolist() == [5, 4, 2, 0]
    # An earlier end drops the later transactions and cohorts.
    early = cohort_table_from_transactions(_log(), observation_end="2024-01-14")
    pd.testing.assert_frame_equal(early, _table([
        ("2024-01-01", 0, 2, 2, 2, 35.0), ("2024-01-01", 1, 2, 0, 0, 0.0), ("2024-01-08", 0, 1, 1, 1, 5.0),
    ]))


def test_monthly_and_daily_tables_by_hand():
    log = _log()
    # Months: only January is complete at 2024-02-06.
    pd.testing.assert_frame_equal(
        cohort_table_from_transactions(log, cohort_period="M"),
        _table([("2024-01-01", 0, 4, 4, 4, 65.0)]),
    )
    pd.testing.assert_frame_equal(
        cohort_table_from_transactions(log, cohort_period="M", observation_end="2024-02-29"),
        _table([("2024-01-01", 0, 4, 4, 4, 65.0), ("2024-01-01", 1, 4, 1, 1, 100.0), ("2024-02-01", 0, 1, 1, 1, 9.0)]),
    )
    # Days: the observation-end day itself is complete, so E (2024-02-06) gets a cohort with age 0.
    day = cohort_table_from_transactions(log, cohort_period="D").set_index(["cohort", "age"])
    assert day.groupby(level="cohort").size().to_dict() == {
        "2024-01-01": 37, "2024-01-07": 31, "2024-01-09": 29, "2024-01-25": 13, "2024-02-06": 1,
    }
    assert day.loc[("2024-01-01", 2)].tolist() == [1, 1, 1, 5.0]
    assert day.loc[("2024-01-01", 16)].tolist() == [1, 1, 0, 0.0]  # the free order
    assert day.loc[("2024-01-01", 35)].tolist() == [1, 1, 1, 100.0]
    assert day.loc[("2024-01-09", 1)].tolist() == [1, 1, 1, 2.0]
    assert day.loc[("2024-02-06", 0)].tolist() == [1, 1, 1, 9.0]
    assert day["revenue"].sum() == log["amount"].sum()


def test_from_transactions_inputs():
    log = _log()
    # String ids are not needed; integer ids, YYYYMMDD integers and other column names give the same table.
    other = pd.DataFrame({
        "user": log["customer_id"].map({"A": 5, "B": 1, "C": 9, "D": 2, "E": 7}),
        "day": log["date"].str.replace("-", "").astype(int),
        "value": log["amount"],
        "extra": "ignored",
    })
    out = cohort_table_from_transactions(other, "user", "day", "value", datetime_format="%Y%m%d")
    pd.testing.assert_frame_equal(out, EXPECTED_WEEKLY)
    with pytest.raises(DataValidationError, match=r"cohort_period 'Q' is not one of \['D', 'W', 'M'\]"):
        cohort_table_from_transactions(log, cohort_period="Q")
    with pytest.raises(DataValidationError, match=r"no complete 'W' period ends on or before observation_end "
                                                  r"2024-01-06"):
        cohort_table_from_transactions(log, observation_end="2024-01-06")  # Saturday: week 0 not complete
    bad = log.copy()
    bad.loc[4, "amount"] = -1.0
    with pytest.raises(DataValidationError, match=r"column 'amount' row 4 .*negative amount -1.0"):
        cohort_table_from_transactions(bad)
    with pytest.raises(DataValidationError, match=r"missing column\(s\) \['amount'\]"):
        cohort_table_from_transactions(log.drop(columns="amount"))


# ---------------------------------------------------------------------------------------------------- CDNOW
@pytest.fixture(scope="module")
def cdnow_master() -> pd.DataFrame:
    return load_dataset("cdnow-master")


@pytest.fixture(scope="module")
def cdnow_weekly(cdnow_master) -> pd.DataFrame:
    return cohort_table_from_transactions(cdnow_master, cohort_period="W", observation_end="1998-06-30")


def _direct_weekly(log: pd.DataFrame, last_day: str) -> pd.DataFrame:
    """The same cells with plain pandas group-bys on Period objects (only cells with a transaction)."""
    log = log[log["date"] <= last_day].copy()
    week = log["date"].dt.to_period("W")
    first = log.groupby("customer_id")["date"].transform("min").dt.to_period("W")
    log["cohort"] = first.dt.start_time.dt.strftime("%Y-%m-%d")
    log["age"] = (week.dt.start_time - first.dt.start_time).dt.days // 7
    log["payer"] = log["customer_id"].where(log["amount"] > 0)
    return log.groupby(["cohort", "age"]).agg(
        active_users=("customer_id", "nunique"), payers=("payer", "nunique"), revenue=("amount", "sum")
    )


def test_cdnow_weekly_shape(cdnow_weekly, cdnow_master):
    t = cdnow_weekly
    assert list(t.columns) == TX_COLS and len(t) == 936
    installs = t.groupby("cohort")["installs"].first()
    assert installs.sum() == 23570 == cdnow_master["customer_id"].nunique()
    assert installs.index.tolist() == [
        str(d.date()) for d in pd.date_range("1996-12-30", "1997-03-24", freq="7D")
    ]  # 13 Monday-start weeks
    assert installs.iloc[[0, -1]].tolist() == [1102, 504]  # 1997-01-01..05 and 1997-03-24..25 are partial weeks
    max_age = t.groupby("cohort")["age"].max()
    assert max_age.tolist() == list(range(77, 64, -1))  # every cohort ends at the week of 1998-06-22
    # Revenue: everything up to the end of the last complete week (Sunday 1998-06-28) ...
    upto = cdnow_master.loc[cdnow_master["date"] <= "1998-06-28", "amount"].sum()
    assert t["revenue"].sum() == pytest.approx(upto, rel=1e-12)
    # ... i.e. the log's total but the partial week 1998-06-29..30.
    tail = cdnow_master.loc[cdnow_master["date"] > "1998-06-28", "amount"].sum()
    assert tail == pytest.approx(4184.01) and upto + tail == pytest.approx(cdnow_master["amount"].sum(), rel=1e-12)
    age0 = t[t["age"] == 0]
    np.testing.assert_array_equal(age0["active_users"], age0["installs"])
    assert (t["payers"] <= t["active_users"]).all() and (t["active_users"] <= t["installs"]).all()


def test_cdnow_weekly_cells_match_direct_pandas(cdnow_weekly, cdnow_master):
    ref = _direct_weekly(cdnow_master, "1998-06-28")
    ours = cdnow_weekly.set_index(["cohort", "age"])
    # Every CDNOW cohort has a buyer in every week, so the direct computation has all 936 cells (zero cells are
    # covered by the hand-made log).
    pd.testing.assert_index_equal(ref.index, ours.index)
    np.testing.assert_array_equal(ours["active_users"], ref["active_users"])
    np.testing.assert_array_equal(ours["payers"], ref["payers"])
    np.testing.assert_allclose(ours["revenue"], ref["revenue"], rtol=1e-12)
    # A few cells spelled out (week of 1997-01-06, 1662 customers).
    assert ours.loc[("1997-01-06", 0), "installs"] == 1662
    cell = ours.loc[("1997-01-06", 10)]
    acquired = cdnow_master.groupby("customer_id")["date"].min().between("1997-01-06", "1997-01-12")
    ids = acquired.index[acquired]
    in_week = cdnow_master[cdnow_master["customer_id"].isin(ids)
                           & cdnow_master["date"].between("1997-03-17", "1997-03-23")]
    assert cell["active_users"] == in_week["customer_id"].nunique()
    assert cell["revenue"] == pytest.approx(in_week["amount"].sum(), rel=1e-12)


def test_cdnow_weekly_dataset(cdnow_weekly):
    pd.testing.assert_frame_equal(load_dataset("cdnow-weekly"), cdnow_weekly)


# ------------------------------------------------------------------------------------- LTV and triangles
def test_cumulative_ltv_is_a_direct_cumsum(cdnow_weekly):
    out = cumulative_ltv(cdnow_weekly, TRANSACTION_COHORT_COLUMNS)
    for cohort, g in out.groupby("cohort"):
        np.testing.assert_allclose(g["ltv"], np.cumsum(g["revenue"].to_numpy()) / g["installs"].iloc[0], rtol=1e-12)
        assert (np.diff(g["ltv"].to_numpy()) >= 0).all(), cohort
    np.testing.assert_allclose(out["retention"], out["active_users"] / out["installs"])
    assert (out.loc[out["age"] == 0, "retention"] == 1.0).all()
    # Total LTV at the last age times installs is the cohort's revenue.
    last = out.groupby("cohort").last()
    np.testing.assert_allclose(last["ltv"] * last["installs"], out.groupby("cohort")["revenue"].sum(), rtol=1e-12)
    # Default columns (no active users named): ltv only.
    assert "retention" not in cumulative_ltv(cdnow_weekly).columns


def test_cumulative_ltv_by_hand():
    table = pd.DataFrame({"cohort": ["b", "a", "b", "a", "a"], "age": [1, 2, 0, 0, 1],
                          "installs": [4, 2, 4, 2, 2], "revenue": [2.0, 3.0, 6.0, 1.0, 0.0]})
    out = cumulative_ltv(table)
    assert out["cohort"].tolist() == ["a", "a", "a", "b", "b"] and out["age"].tolist() == [0, 1, 2, 0, 1]
    np.testing.assert_allclose(out["ltv"], [0.5, 0.5, 2.0, 1.5, 2.0])


def test_triangle(cdnow_weekly):
    tri = cohort_triangle(cdnow_weekly)
    assert tri.shape == (13, 78) and tri.index.name == "cohort" and tri.columns.name == "age"
    assert tri.columns.tolist() == list(range(78)) and tri.index.is_monotonic_increasing
    observed = tri.notna().to_numpy()
    ages = np.arange(78)
    n_obs = np.arange(78, 65, -1)  # 78 ages for the first cohort, one fewer for each later one
    np.testing.assert_array_equal(observed, ages[None, :] < n_obs[:, None])
    ltv = cumulative_ltv(cdnow_weekly)
    np.testing.assert_allclose(tri.to_numpy()[observed], ltv["ltv"].to_numpy())  # row-major = (cohort, age)
    # Other values, and a precomputed ltv is used as it is.
    rev = cohort_triangle(cdnow_weekly, "revenue")
    assert rev.loc["1997-01-06", 3] == cdnow_weekly.set_index(["cohort", "age"]).loc[("1997-01-06", 3), "revenue"]
    ret = cohort_triangle(cdnow_weekly, "retention", columns=TRANSACTION_COHORT_COLUMNS)
    assert (ret[0] == 1.0).all() and np.isnan(ret.loc["1997-03-24", 66])
    pd.testing.assert_frame_equal(cohort_triangle(ltv), tri)
    with pytest.raises(DataValidationError, match=r"no column 'retention' \(retention needs active users"):
        cohort_triangle(cdnow_weekly, "retention")
    with pytest.raises(DataValidationError, match=r"no column 'arpu'; the table has columns \['cohort', 'age'"):
        cohort_triangle(cdnow_weekly, "arpu")


# ---------------------------------------------------------------------------------------------- validation
COLS = CohortColumns(active_users="active_users", payers="payers", cost="cost", groups=("channel",))


def _good() -> pd.DataFrame:
    return pd.DataFrame({
        "cohort": ["A", "A", "A", "B", "B", "C"],
        "age": [0, 1, 2, 0, 1, 0],
        "installs": [100, 100, 100, 50, 50, 10],
        "active_users": [100, 40, 30, 50, 20, 10],
        "payers": [10, 8, 5, 6, 2, 1],
        "revenue": [500.0, 200.0, 150.0, 300.0, 80.0, 0.0],
        "cost": [1000.0, 1000.0, 1000.0, 400.0, 400.0, 90.0],
        "channel": ["ads", "ads", "ads", "organic", "organic", "ads"],
        "note": ["x", "y", "z", "u", "v", "w"],
    })


def test_valid_table_is_sorted_clean_copy():
    good = _good()
    shuffled = good.iloc[[4, 0, 5, 2, 3, 1]].set_index(pd.Index(list("pqrstu"), name="key"))
    shuffled["installs"] = shuffled["installs"].astype(str)  # numbers as text are converted
    before = shuffled.copy()
    out = validate_cohort_table(shuffled, COLS)
    pd.testing.assert_frame_equal(shuffled, before)
    assert isinstance(out.index, pd.RangeIndex)
    assert out[["cohort", "age"]].values.tolist() == good[["cohort", "age"]].values.tolist()
    assert out["note"].tolist() == good["note"].tolist()  # other columns carried along
    assert out["age"].dtype == np.int64 and out["active_users"].dtype == np.int64
    assert out["installs"].dtype == np.float64 and out["revenue"].dtype == np.float64
    np.testing.assert_array_equal(out["installs"], good["installs"])
    # Integer ages stored as floats are accepted and become int64; only revenue is needed.
    minimal = good[["cohort", "age", "installs", "revenue"]].astype({"age": "float64"})
    assert validate_cohort_table(minimal)["age"].dtype == np.int64


def _set(row: int, col: str, value) -> pd.DataFrame:
    df = _good()
    values = df[col].tolist()
    values[row] = value
    df[col] = pd.Series(values, index=df.index)  # dtype inferred again (int + float -> float, + str -> object)
    return df


@pytest.mark.parametrize(
    ("df", "columns", "pattern"),
    [
        (_set(4, "revenue", np.nan), COLS,
         r"column 'revenue' row 4 \(cohort='B', age=1\): missing value \(nan\); fill"),
        (_set(2, "cohort", None), COLS, r"column 'cohort' row 2 \(cohort=nan, age=2\): missing value"),
        (_set(5, "channel", None), COLS, r"column 'channel' row 5 \(cohort='C', age=0\): missing value"),
        (_set(3, "active_users", np.nan), COLS, r"column 'active_users' row 3 \(cohort='B', age=0\): missing value"),
        (_set(4, "revenue", "$80"), COLS,
         r"column 'revenue' row 4 \(cohort='B', age=1\): value '\$80' is not a number; convert column 'revenue'"),
        (_set(1, "age", "one"), COLS, r"column 'age' row 1 \(cohort='A', age='one'\): value 'one' is not a number"),
        (_set(1, "cost", np.inf), COLS, r"column 'cost' row 1 \(cohort='A', age=1\): value inf is not finite"),
        (_good().assign(revenue=True), COLS, r"column 'revenue' row 0 \(cohort='A', age=0\): .* is a boolean"),
        (_set(3, "installs", -50), COLS, r"column 'installs' row 3 \(cohort='B', age=0\): negative installs -50; "),
        (_set(1, "active_users", -1), COLS, r"column 'active_users' row 1 \(cohort='A', age=1\): negative active"),
        (_set(2, "revenue", -0.5), COLS, r"column 'revenue' row 2 \(cohort='A', age=2\): negative revenue -0.5; "
                                         r"revenue must be >= 0"),
        (_set(4, "payers", -2), COLS, r"column 'payers' row 4 \(cohort='B', age=1\): negative payers -2"),
        (_set(5, "cost", -90.0), COLS, r"column 'cost' row 5 \(cohort='C', age=0\): negative cost -90.0"),
        (_set(1, "age", 1.5), COLS, r"column 'age' row 1 \(cohort='A', age=1.5\): age 1.5 is not a whole number"),
        (_set(5, "age", -1), COLS, r"column 'age' row 5 \(cohort='C', age=-1\): negative age -1; .*starts at 0"),
        (_set(4, "age", 0), COLS, r"column 'age' row 4 \(cohort='B', age=0\): cohort 'B' has age 0 twice; keep one"),
        (_set(1, "age", 3), COLS, r"column 'age' row 2 \(cohort='A', age=2\): cohort 'A' has no row for age 1 "
                                  r"\(ages must run 0, 1, ..., max without gaps\); add the missing ages"),
        (_set(5, "age", 1), COLS, r"column 'age' row 5 \(cohort='C', age=1\): cohort 'C' has no row for age 0"),
        (_good().assign(installs=[100, 100, 100, 50, 50, 0], active_users=[100, 40, 30, 50, 20, 0],
                        payers=[10, 8, 5, 6, 2, 0]), COLS,
         r"column 'installs' row 5 \(cohort='C', age=0\): cohort 'C' has 0 installs: a cohort with no data; drop"),
        (_set(2, "installs", 120), COLS, r"column 'installs' row 2 \(cohort='A', age=2\): installs 120 differs from "
                                         r"100 at age 0 of cohort 'A'; installs \(the cohort size\)"),
        (_set(4, "cost", 500.0), COLS, r"column 'cost' row 4 \(cohort='B', age=1\): cost 500.0 differs from 400.0 at "
                                       r"age 0 of cohort 'B'"),
        (_set(1, "channel", "tv"), COLS, r"column 'channel' row 1 \(cohort='A', age=1\): channel 'tv' differs from "
                                         r"'ads' at age 0 of cohort 'A'; the grouping column 'channel'"),
        (_set(3, "active_users", 60), COLS, r"column 'active_users' row 3 \(cohort='B', age=0\): active_users 60 > "
                                            r"installs 50"),
        (_set(1, "payers", 41), COLS, r"column 'payers' row 1 \(cohort='A', age=1\): payers 41 > active_users 40"),
        (_set(1, "payers", 101), CohortColumns(payers="payers"),
         r"column 'payers' row 1 \(cohort='A', age=1\): payers 101 > installs 100"),
    ],
)
def test_validation_errors(df, columns, pattern):
    with pytest.raises(DataValidationError, match=pattern):
        validate_cohort_table(df, columns)


def test_validation_errors_frame_level():
    with pytest.raises(DataValidationError, match=r"cohort table must be a pandas DataFrame, got list"):
        validate_cohort_table([1, 2])  # type: ignore[arg-type]
    with pytest.raises(DataValidationError, match=r"cohort table: missing column\(s\) \['revenue'\]; the frame has "
                                                  r"columns \['cohort', 'age', 'installs', 'active_users'"):
        validate_cohort_table(_good().drop(columns="revenue"), COLS)
    with pytest.raises(DataValidationError, match=r"missing column\(s\) \['users'\]"):
        validate_cohort_table(_good(), CohortColumns(installs="users"))
    with pytest.raises(DataValidationError, match=r"cohort table has no rows"):
        validate_cohort_table(_good().iloc[:0], COLS)
    with pytest.raises(DataValidationError, match=r"active users are required.*CohortColumns\(active_users="):
        validate_cohort_table(_good(), allow_missing_active=False)
    validate_cohort_table(_good(), COLS, allow_missing_active=False)


def test_validation_names_position_with_a_custom_index():
    df = _set(1, "payers", 41).iloc[::-1]  # row with label 1 is at position 4
    with pytest.raises(DataValidationError, match=r"column 'payers' row 1 \(position 4, cohort='A', age=1\)"):
        validate_cohort_table(df, COLS)
    df = _set(1, "age", 3).set_index(pd.Index(list("abcdef"), name="key"))
    with pytest.raises(DataValidationError, match=r"column 'age' row key='c' \(position 2, cohort='A', age=2\): "
                                                  r"cohort 'A' has no row for age 1"):
        validate_cohort_table(df, COLS)


def test_cohort_columns():
    cols = CohortColumns(groups="app")
    assert cols.groups == ("app",) and cols.used == ("cohort", "age", "installs", "revenue", "app")
    assert COLS.numeric == ("installs", "revenue", "active_users", "payers", "cost")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cols.age = "week"  # type: ignore[misc]
    with pytest.raises(DataValidationError, match=r"CohortColumns names column 'revenue' twice"):
        CohortColumns(cost="revenue")
    with pytest.raises(DataValidationError, match=r"CohortColumns.installs must name a column"):
        CohortColumns(installs=3)  # type: ignore[arg-type]
