"""Shipped CDNOW data: shapes, equality with lifetimes' copies, and the published 39-week summary reproduced."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from btyd_ltv.data.datasets import (
    DATASETS,
    DatasetInfo,
    list_datasets,
    load_cdnow_master,
    load_cdnow_sample,
    load_cdnow_summary,
    load_cdnow_weekly,
    load_dataset,
)
from btyd_ltv.data.cohorts import cohort_table_from_transactions
from btyd_ltv.data.transactions import calibration_and_holdout
from btyd_ltv.data.validate import validate_summary
from btyd_ltv.errors import DataValidationError

lifetimes = pytest.importorskip("lifetimes")
LIFETIMES_DATA = Path(lifetimes.__file__).parent / "datasets"


def _read_lifetimes_log(name: str, *, sample: bool) -> pd.DataFrame:
    names = ["master_id", "customer_id", "date", "quantity", "amount"] if sample else None
    df = pd.read_csv(
        LIFETIMES_DATA / name, sep=r"\s+", header=None, skiprows=0 if sample else 1,
        names=names or ["customer_id", "date", "quantity", "amount"], dtype={"date": str},
    )
    df["date"] = pd.to_datetime(df["date"], format="%Y%m%d")
    return df[["customer_id", "date", "quantity", "amount"]]


def test_sample_shape_and_equality():
    df = load_cdnow_sample()
    assert df.shape == (6919, 4) and list(df.columns) == ["customer_id", "date", "quantity", "amount"]
    assert df["customer_id"].nunique() == 2357 and df["customer_id"].min() == 1 and df["customer_id"].max() == 2357
    assert pd.api.types.is_datetime64_dtype(df["date"].dtype)
    assert df["date"].min() == pd.Timestamp("1997-01-01") and df["date"].max() == pd.Timestamp("1998-06-30")
    pd.testing.assert_frame_equal(df, _read_lifetimes_log("CDNOW_sample.txt", sample=True))


def test_master_shape_and_equality():
    df = load_cdnow_master()
    assert df.shape == (69659, 4) and df["customer_id"].nunique() == 23570
    assert df["date"].min() == pd.Timestamp("1997-01-01") and df["date"].max() == pd.Timestamp("1998-06-30")
    pd.testing.assert_frame_equal(df, _read_lifetimes_log("CDNOW_master.txt", sample=False))


def test_summary_equality():
    df = load_cdnow_summary()
    assert df.shape == (2357, 5)
    ref = pd.read_csv(LIFETIMES_DATA / "cdnow_customers_summary_with_transactions.csv")
    ref.columns = ["customer_id", "frequency", "recency", "T", "monetary_value"]
    pd.testing.assert_frame_equal(df, ref, check_dtype=False)
    assert df["frequency"].dtype == np.float64
    validate_summary(df, monetary_col="monetary_value")


def test_summary_reproduced_from_sample():
    """FHL (2005) 39-week calibration summary = calibration_and_holdout of the sample at daily resolution, weeks.

    x exact; t_x and T to the 2 decimals published. zbar is the mean *per-day summed* spend of the repeat purchase
    days (lifetimes' monetary_value_cal, first purchase day excluded), rounded half-up to cents: all 2,357 match
    exactly. (The mean of the raw repeat transactions does not: customers with several records on one day differ.)
    """
    ours = calibration_and_holdout(
        load_cdnow_sample(), calibration_end="1997-09-30", observation_end="1998-06-30",
        freq="D", freq_multiplier=7, amount_col="amount",
    )
    pub = load_cdnow_summary().set_index("customer_id")
    pd.testing.assert_index_equal(ours.index, pub.index)
    np.testing.assert_array_equal(ours["frequency_cal"], pub["frequency"])
    np.testing.assert_array_equal(ours["recency_cal"].round(2), pub["recency"])
    np.testing.assert_array_equal(ours["T_cal"].round(2), pub["T"])
    half_up = np.floor(ours["monetary_value_cal"].to_numpy() * 100 + 0.5 + 1e-7) / 100
    np.testing.assert_allclose(half_up, pub["monetary_value"], rtol=0, atol=1e-9)
    assert (ours["duration_holdout"] == 39.0).all()
    # The raw-transaction mean is not zbar:
    cal = load_cdnow_sample().query("date <= '1997-09-30'").sort_values(["customer_id", "date"], kind="stable")
    raw = cal[cal.duplicated("customer_id")].groupby("customer_id")["amount"].mean().reindex(pub.index, fill_value=0)
    assert (np.abs(raw.round(2) - pub["monetary_value"]) > 0.006).sum() > 10


def test_registry():
    assert set(DATASETS) == {"cdnow", "cdnow-summary", "cdnow-master", "cdnow-weekly", "game-portfolio"}
    info = DATASETS["cdnow"]
    assert isinstance(info, DatasetInfo)
    assert (info.freq, info.freq_multiplier, info.calibration_end, info.observation_end) == (
        "D", 7, "1997-09-30", "1998-06-30"
    )
    assert DATASETS["cdnow-summary"].kind == "summary" and DATASETS["cdnow-summary"].date_col is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.freq = "W"  # type: ignore[misc]
    for name, info in DATASETS.items():
        df = load_dataset(name)
        if info.built_from == "simulate_portfolio":  # simulated on load, no file
            n_customers = df.groupby("cohort")["installs"].first().sum()
            assert info.filename == "" and len(df) == info.n_rows and n_customers == info.n_customers
            continue
        if info.kind == "cohorts":
            n_customers = df.groupby("cohort")["installs"].first().sum()
            assert info.built_from in DATASETS and info.filename == DATASETS[info.built_from].filename
        else:
            n_customers = df["customer_id"].nunique()
            assert info.built_from is None
        assert len(df) == info.n_rows and n_customers == info.n_customers
        assert info.filename.endswith(".csv.gz")


def test_cdnow_weekly_cohorts():
    """The built-in cohort table is the master log's weekly cohorts to 1998-06-30 (see tests/data/test_cohorts.py)."""
    info = DATASETS["cdnow-weekly"]
    assert (info.kind, info.freq, info.observation_end) == ("cohorts", "W", "1998-06-30")
    assert info.built_from == "cdnow-master"
    df = load_dataset("cdnow-weekly")
    pd.testing.assert_frame_equal(
        df, cohort_table_from_transactions(load_cdnow_master(), cohort_period="W", observation_end="1998-06-30")
    )
    pd.testing.assert_frame_equal(load_cdnow_weekly(), df)
    assert df["cohort"].nunique() == 13 and df.groupby("cohort")["age"].max().agg(["min", "max"]).tolist() == [65, 77]


def test_unknown_dataset():
    with pytest.raises(DataValidationError, match=r"unknown dataset 'cdnoww'; known datasets: \['cdnow'"):
        load_dataset("cdnoww")


def test_list_datasets():
    df = list_datasets()
    assert list(df.columns) == ["name", "kind", "rows", "customers", "period", "size_kb", "source"]
    assert df.set_index("name").loc["cdnow-master", "customers"] == 23570
    weekly = df.set_index("name").loc["cdnow-weekly"]
    assert (weekly["kind"], weekly["rows"], weekly["customers"]) == ("cohorts", 936, 23570)
    assert "13 weekly cohorts" in weekly["period"] and "built on load from cdnow-master" in weekly["source"]
    shipped = df[df["name"] != "game-portfolio"]  # simulated on load: no file
    assert (shipped["size_kb"] > 5).all() and (shipped["size_kb"] < 1024).all()
    assert df.set_index("name").loc["game-portfolio", "size_kb"] == 0.0
    assert shipped["source"].str.contains("brucehardie.com").all()


def test_no_lifetimes_at_run_time():
    code = (
        "import sys; from btyd_ltv.data import datasets, transactions; datasets.load_cdnow_sample(); "
        "assert 'lifetimes' not in sys.modules, 'lifetimes imported'"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)
