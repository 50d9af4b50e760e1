"""Built-in real data: the CDNOW data set of Fader & Hardie, shipped gzip-compressed in ``btyd_ltv/data/files``.

Source: Bruce Hardie's CDNOW data (http://www.brucehardie.com/datasets/), used in Fader, Hardie & Lee (2005),
"Counting your customers the easy way: an alternative to the Pareto/NBD model", Marketing Science 24(2), as
redistributed by the lifetimes package (MIT licence). See ``files/README.md``. Read with ``importlib.resources``:
no network access.

Besides the shipped files there are tables built from them on load (``built_from``): ``cdnow-weekly``, the weekly
acquisition cohorts of the master log as a long cohort table (:mod:`btyd_ltv.data.cohorts`).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import pandas as pd

from btyd_ltv.data.cohorts import cohort_table_from_transactions
from btyd_ltv.errors import DataValidationError

__all__ = [
    "DATASETS",
    "DatasetInfo",
    "list_datasets",
    "load_cdnow_master",
    "load_cdnow_sample",
    "load_cdnow_summary",
    "load_cdnow_weekly",
    "load_dataset",
]

_SOURCE = (
    "Fader & Hardie's CDNOW data set (http://www.brucehardie.com/datasets/), as redistributed by the lifetimes "
    "package (MIT licence)"
)


@dataclass(frozen=True)
class DatasetInfo:
    """A shipped data set and the options it is usually fitted with (``None`` where not applicable)."""

    name: str
    description: str
    kind: str  # "transactions" (a row per purchase), "summary" (per customer) or "cohorts" (per cohort and age)
    filename: str  # file in btyd_ltv/data/files (for a built table: the file of the data set it is built from)
    n_rows: int
    n_customers: int
    period: str
    source: str
    customer_col: str = "customer_id"
    date_col: str | None = None
    amount_col: str | None = None
    freq: str | None = None
    freq_multiplier: float | None = None
    calibration_end: str | None = None
    observation_end: str | None = None
    built_from: str | None = None  # built on load from this data set (no file of its own)


#: What the two CDNOW transaction logs share: period, source, columns and the FHL (2005) fit defaults (weeks at
#: daily resolution, 39-week calibration, 39-week holdout).
_CDNOW_LOG = dict(
    period="1997-01-01 .. 1998-06-30 (78 weeks; calibration = first 39 weeks, to 1997-09-30)",
    source=_SOURCE,
    date_col="date",
    amount_col="amount",
    freq="D",
    freq_multiplier=7,
    calibration_end="1997-09-30",
    observation_end="1998-06-30",
)

DATASETS: dict[str, DatasetInfo] = {
    "cdnow": DatasetInfo(
        name="cdnow",
        description=(
            "CDNOW 1/10 sample: every purchase of 2,357 customers who made their first purchase at CDNOW in "
            "the first quarter of 1997 (customer_id = sample index 1..2357, date, quantity = number of CDs, "
            "amount = dollar value)"
        ),
        kind="transactions",
        filename="cdnow_sample.csv.gz",
        n_rows=6919,
        n_customers=2357,
        **_CDNOW_LOG,
    ),
    "cdnow-summary": DatasetInfo(
        name="cdnow-summary",
        description=(
            "RFM summary of the CDNOW sample over the 39-week calibration period, in weeks, as published by "
            "Fader, Hardie & Lee (2005): frequency = repeat purchase days x, recency = t_x, T, monetary_value = "
            "mean spend of the repeat purchase days zbar (0 when x = 0)"
        ),
        kind="summary",
        filename="cdnow_summary.csv.gz",
        n_rows=2357,
        n_customers=2357,
        period="calibration 1997-01-01 .. 1997-09-30 (39 weeks), weeks at daily resolution",
        source=_SOURCE,
        freq="D",
        freq_multiplier=7,
        calibration_end="1997-09-30",
    ),
    "cdnow-master": DatasetInfo(
        name="cdnow-master",
        description=(
            "CDNOW master file: every purchase of all 23,570 customers who made their first purchase at CDNOW "
            "in the first quarter of 1997 (customer_id, date, quantity = number of CDs, amount = dollar value)"
        ),
        kind="transactions",
        filename="cdnow_master.csv.gz",
        n_rows=69659,
        n_customers=23570,
        **_CDNOW_LOG,
    ),
    "cdnow-weekly": DatasetInfo(
        name="cdnow-weekly",
        description=(
            "CDNOW weekly acquisition cohorts: the master log as a long cohort table, one row per (cohort, age). "
            "cohort = week of the first purchase (weeks Monday..Sunday, labelled by their Monday: 13 cohorts "
            "1996-12-30 .. 1997-03-24, the first and last only partly in 1997-01-01 .. 1997-03-25), age = weeks "
            "since, installs = customers acquired, active_users / payers = customers buying / spending > 0 that "
            "week, revenue = dollars. Each cohort runs to the last complete week, 1998-06-22 .. 06-28: ages "
            "0..77 for the first cohort, 0..65 for the last"
        ),
        kind="cohorts",
        filename="cdnow_master.csv.gz",
        n_rows=936,
        n_customers=23570,
        period=(
            "acquisition 1997-01-01 .. 1997-03-25 (13 weekly cohorts), followed weekly to 1998-06-28 (66 to 78 "
            "weeks; the partial week 1998-06-29 .. 30 is left out)"
        ),
        source=_SOURCE + "; built on load from cdnow-master",
        freq="W",
        observation_end="1998-06-30",
        built_from="cdnow-master",
    ),
    "game-portfolio": DatasetInfo(
        name="game-portfolio",
        description=(
            "Synthetic mobile-game portfolio with known truth (btyd_ltv.data.portfolio.simulate_portfolio, seed "
            "2026): 2 apps x 2 campaigns x 45 daily cohorts of 1,000-20,000 installs, followed to the last "
            "acquisition day (ages 0..44), with active users, payers, revenue, acquisition cost and acquired_day; "
            "one app has game-like (BG/BB) retention, the other subscription-like (beta-discrete-Weibull)"
        ),
        kind="cohorts",
        filename="",
        n_rows=4140,
        n_customers=2004923,
        period="45 acquisition days, observed to day 44 (no calendar dates: acquired_day is the day index)",
        source="simulated by btyd_ltv (no external data)",
        freq="D",
        built_from="simulate_portfolio",
    ),
}

#: Settings of the ``game-portfolio`` data set.
GAME_PORTFOLIO = dict(n_apps=2, campaigns_per_app=2, days=45, seed=2026)


def _file(filename: str):  # -> importlib.resources.abc.Traversable
    return resources.files("btyd_ltv.data").joinpath("files", filename)


def load_dataset(name: str) -> pd.DataFrame:
    """Load a shipped data set by name (see :data:`DATASETS`); dates as ``datetime64``.

    Transaction logs: columns ``customer_id, date, quantity, amount``, one row per purchase. Summaries:
    ``customer_id, frequency, recency, T, monetary_value``, one row per customer. Cohort tables (built on load
    with :func:`~btyd_ltv.data.cohorts.cohort_table_from_transactions`): ``cohort, age, installs, active_users,
    payers, revenue``, one row per cohort and age.
    """
    info = DATASETS.get(name)
    if info is None:
        raise DataValidationError(f"unknown dataset {name!r}; known datasets: {sorted(DATASETS)}")
    if info.built_from == "simulate_portfolio":
        from btyd_ltv.data.portfolio import simulate_portfolio

        return simulate_portfolio(**GAME_PORTFOLIO)[0]
    if info.kind == "cohorts":
        return cohort_table_from_transactions(
            load_dataset(info.built_from), cohort_period=info.freq, observation_end=info.observation_end
        )
    with _file(info.filename).open("rb") as fh:
        if info.kind == "transactions":
            df = pd.read_csv(fh, compression="gzip", dtype={"customer_id": "int64", "quantity": "int64"})
            df[info.date_col] = pd.to_datetime(df[info.date_col], format="%Y-%m-%d")
        else:
            df = pd.read_csv(fh, compression="gzip", dtype={"customer_id": "int64"})
            df["frequency"] = df["frequency"].astype("float64")
    return df


def load_cdnow_sample() -> pd.DataFrame:
    """CDNOW 1/10 sample transaction log (6,919 purchases of 2,357 customers, 1997-01-01..1998-06-30)."""
    return load_dataset("cdnow")


def load_cdnow_summary() -> pd.DataFrame:
    """CDNOW 39-week calibration summary of FHL (2005), weeks: customer_id, frequency, recency, T, monetary_value."""
    return load_dataset("cdnow-summary")


def load_cdnow_master() -> pd.DataFrame:
    """CDNOW master transaction log (69,659 purchases of 23,570 customers, 1997-01-01..1998-06-30)."""
    return load_dataset("cdnow-master")


def load_cdnow_weekly() -> pd.DataFrame:
    """CDNOW weekly acquisition cohorts (13 cohorts x 66..78 weeks, 936 rows), built from the master log."""
    return load_dataset("cdnow-weekly")


def list_datasets() -> pd.DataFrame:
    """One row per shipped data set: name, kind, rows, customers, period, size_kb (compressed file), source.

    For a table built on load, size_kb is that of the file it is built from and customers counts its installs.
    """
    rows = [
        {
            "name": info.name,
            "kind": info.kind,
            "rows": info.n_rows,
            "customers": info.n_customers,
            "period": info.period,
            "size_kb": round(len(_file(info.filename).read_bytes()) / 1024, 1) if info.filename else 0.0,
            "source": info.source,
        }
        for info in DATASETS.values()
    ]
    return pd.DataFrame(rows)
