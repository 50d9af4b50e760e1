"""Predictions made elsewhere (another model, a user's own file), checked and aligned to an evaluation set.

A prediction table has one row per customer: an id column, a point forecast and optionally ``p_positive``
(P(y > 0)) and quantile columns ``qNN`` (``q05`` = 5% quantile, ``q97.5``, ...). :func:`align_predictions`
returns it in the order of the evaluation ids, or raises :class:`~btyd_ltv.errors.DataValidationError` naming
the source, the column and the first bad row.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np
import pandas as pd

from btyd_ltv.data.validate import _v
from btyd_ltv.errors import DataValidationError

__all__ = ["align_predictions", "QUANTILE_COLUMN", "quantile_column", "quantile_columns"]

#: Quantile column names: ``q`` + percent, e.g. ``q05``, ``q50``, ``q97.5``.
QUANTILE_COLUMN = re.compile(r"^q(\d+(?:\.\d+)?)$")


def quantile_column(tau: float) -> str:
    """The column name of the ``tau`` quantile: 0.05 -> ``q05``, 0.5 -> ``q50``, 0.975 -> ``q97.5``."""
    v = round(float(tau) * 100, 6)
    return f"q{int(v):02d}" if v == int(v) else f"q{v:g}"


def quantile_columns(columns: Sequence[str]) -> dict[str, float]:
    """``{column: probability}`` for the quantile columns among ``columns``."""
    out = {}
    for c in columns:
        m = QUANTILE_COLUMN.match(str(c))
        if m:
            out[c] = float(m.group(1)) / 100.0
    return out


def align_predictions(
    table: pd.DataFrame,
    ids: Sequence,
    *,
    source: str,
    id_col: str = "customer_id",
    prediction_col: str = "prediction",
) -> pd.DataFrame:
    """Check a prediction table and return ``prediction`` [, ``p_positive``, ``qNN``...] indexed like ``ids``.

    Errors (each naming ``source``, the column and the first bad row): missing id or prediction column,
    duplicated ids, ids of the evaluation set without a prediction, NaN or infinite values, negative
    predictions or quantiles, ``p_positive`` outside [0, 1]. Ids not in the evaluation set are ignored.
    """
    if id_col not in table.columns and table.index.name == id_col:
        table = table.reset_index()
    for col in (id_col, prediction_col):
        if col not in table.columns:
            raise DataValidationError(
                f"{source}: column {col!r} not found; it has {', '.join(map(str, table.columns))}"
            )
    keys = table[id_col].astype(str)
    dup = keys.duplicated()
    if dup.any():
        pos = int(np.flatnonzero(dup.to_numpy())[0])
        raise DataValidationError(f"{source}: column {id_col!r}: id {_v(table[id_col].iloc[pos])} is duplicated "
                                  f"(row {pos})")
    want = pd.Index([str(i) for i in ids])
    missing = want.difference(pd.Index(keys), sort=False)
    if len(missing):
        raise DataValidationError(
            f"{source}: column {id_col!r}: {len(missing):,} evaluation ids have no prediction, first {missing[0]!r}"
        )
    cols = {prediction_col: "prediction"}
    if "p_positive" in table.columns:
        cols["p_positive"] = "p_positive"
    cols.update({c: c for c in quantile_columns(table.columns)})
    out = table[list(cols)].rename(columns=cols)
    out.index = keys
    for src_col, col in cols.items():
        v = pd.to_numeric(out[col], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isfinite(v)
        if bad.any():
            pos = int(np.flatnonzero(bad)[0])
            raise DataValidationError(f"{source}: column {src_col!r}: missing, non-numeric or infinite value at row "
                                      f"{pos} (id {_v(table[id_col].iloc[pos])})")
        neg = v < 0
        if neg.any():
            pos = int(np.flatnonzero(neg)[0])
            raise DataValidationError(f"{source}: column {src_col!r}: negative value {v[pos]:g} at row {pos} "
                                      f"(id {_v(table[id_col].iloc[pos])}); LTV forecasts must be >= 0")
        if col == "p_positive" and np.any(v > 1):
            pos = int(np.flatnonzero(v > 1)[0])
            raise DataValidationError(f"{source}: column 'p_positive': {v[pos]:g} > 1 at row {pos} "
                                      f"(id {_v(table[id_col].iloc[pos])}); it is a probability")
        out[col] = v
    return out.loc[want]
