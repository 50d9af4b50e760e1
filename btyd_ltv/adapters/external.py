"""A user's own model as an adapter: predictions made elsewhere, read from a file and checked against the
evaluation set.

Customer level (:class:`ExternalPredictions`): a CSV/Parquet with ``customer_id, prediction[, p_positive, q05,
q50, q95, ...]``. Curves (:class:`ExternalCurves`): ``cohort, age, prediction[, k]``, the cumulative LTV per
install forecast for ``cohort`` at ``age`` (``k``, when given, is the cohort's last observed age when the forecast
was made, so one file can hold the forecasts of several backtest origins). Every problem (missing or duplicated
ids, NaN, negative predictions, quantiles or probabilities out of range) is a
:class:`~btyd_ltv.errors.DataValidationError` naming the file, the column and the first bad row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from btyd_ltv.adapters.base import CustomerData, Prediction
from btyd_ltv.backtest import CurveForecast
from btyd_ltv.data.cohorts import CohortColumns
from btyd_ltv.data.predictions import align_predictions, quantile_columns
from btyd_ltv.data.validate import _v
from btyd_ltv.errors import DataValidationError

__all__ = ["ExternalPredictions", "ExternalCurves"]


def _read(source: str | Path | pd.DataFrame, label: str | None) -> tuple[pd.DataFrame, str]:
    if isinstance(source, pd.DataFrame):
        return source, label or "external predictions"
    from btyd_ltv.io import read_table

    path = Path(source)
    if not path.exists():
        raise DataValidationError(f"external predictions file {str(path)!r} does not exist")
    return read_table(path), label or str(path)


@dataclass
class ExternalPredictions:
    """Customer-level predictions from a file or DataFrame; ``fit`` does nothing (the model was trained
    elsewhere), ``predict`` aligns the rows to the evaluation customers (:func:`align_predictions`)."""

    source: str | Path | pd.DataFrame
    name: str = "external"
    id_col: str = "customer_id"
    prediction_col: str = "prediction"
    table: pd.DataFrame = field(init=False, repr=False)
    label: str = field(init=False)

    def __post_init__(self) -> None:
        self.table, self.label = _read(self.source, None)

    def fit(self, train: CustomerData, valid: CustomerData | None = None) -> ExternalPredictions:
        """No-op: external predictions are already made."""
        return self

    def predict(self, data: CustomerData) -> Prediction:
        """The file's predictions for ``data``'s customers, in their order; raises
        :class:`DataValidationError` for missing/duplicated ids and bad values (naming file, column, row)."""
        out = align_predictions(self.table, [str(i) for i in data.ids], source=self.label, id_col=self.id_col,
                                prediction_col=self.prediction_col)
        columns = quantile_columns(out.columns)
        bad = [c for c, tau in columns.items() if not 0.0 < tau < 1.0]
        if bad:
            raise DataValidationError(f"{self.label}: quantile column {bad[0]!r} is not a probability in (0, 1)")
        return Prediction(out["prediction"].to_numpy(),
                          p_positive=out["p_positive"].to_numpy() if "p_positive" in out else None,
                          quantiles={tau: out[c].to_numpy() for c, tau in columns.items()})


@dataclass
class ExternalCurves:
    """Cohort-curve forecasts from a file or DataFrame, usable as a backtest
    :data:`~btyd_ltv.backtest.Forecaster`: ``f(history, cohorts, ages)`` returns the file's ``prediction`` for
    each requested ``(cohort, age)`` (restricted to rows whose ``k`` equals the cohort's last age in
    ``history`` when the file has a ``k`` column). Point forecasts only (``samples=None``)."""

    source: str | Path | pd.DataFrame
    columns: CohortColumns = CohortColumns()
    prediction_col: str = "prediction"
    name: str = "external"
    table: pd.DataFrame = field(init=False, repr=False)
    label: str = field(init=False)

    def __post_init__(self) -> None:
        table, self.label = _read(self.source, None)
        c = self.columns
        need = [c.cohort, c.age, self.prediction_col]
        for col in need:
            if col not in table.columns:
                raise DataValidationError(f"{self.label}: column {col!r} not found; it has "
                                          f"{', '.join(map(str, table.columns))}")
        keys = [c.cohort, c.age] + (["k"] if "k" in table.columns else [])
        for col in keys[1:] + [self.prediction_col]:
            v = pd.to_numeric(table[col], errors="coerce").to_numpy(np.float64, na_value=np.nan)
            bad = ~np.isfinite(v) | (v < 0)
            if col != self.prediction_col:
                bad |= v != np.round(v)
            if bad.any():
                pos = int(np.argmax(bad))
                what = ("missing, non-numeric, negative or infinite" if col == self.prediction_col
                        else "not a whole number >= 0")
                raise DataValidationError(
                    f"{self.label}: column {col!r}: value {_v(table[col].iloc[pos])} at row {pos} is {what}"
                )
        table = table.assign(**{c.cohort: table[c.cohort].astype(str)})
        dup = table.duplicated(keys)
        if dup.any():
            pos = int(np.argmax(dup.to_numpy()))
            values = ", ".join(_v(table[k].iloc[pos]) for k in keys)
            raise DataValidationError(f"{self.label}: ({', '.join(keys)}) = ({values}) is duplicated (row {pos})")
        self.table = table

    def __call__(self, history: pd.DataFrame, cohorts: Sequence[str], ages: Sequence[int]) -> CurveForecast:
        c = self.columns
        cohorts = [str(x) for x in cohorts]
        ages = np.asarray(ages, dtype=np.int64)
        table = self.table
        if "k" in table.columns:
            last = history.assign(_c=history[c.cohort].astype(str)).groupby("_c")[c.age].max()
            k = last.reindex(cohorts)
            table = table[table["k"].astype(np.int64).to_numpy() == table[c.cohort].map(k).to_numpy()]
        lookup = table.set_index([c.cohort, table[c.age].astype(np.int64)])[self.prediction_col].astype(float)
        want = pd.MultiIndex.from_product([cohorts, ages])
        got = lookup.reindex(want)
        if got.isna().any():
            cohort, age = got.index[int(np.argmax(got.isna().to_numpy()))]
            raise DataValidationError(f"{self.label}: no prediction for cohort {cohort!r} at age {age}"
                                      + (" with k = its last observed age" if "k" in table.columns else ""))
        return CurveForecast(cohorts, ages, got.to_numpy().reshape(len(cohorts), ages.size))
