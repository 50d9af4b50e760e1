"""Design matrices for customer-level regressions (the Bayesian ZILN model): table -> standardised numeric
matrix, group index and target, with the encoding stored so new customers are encoded the same way.

- numeric features are optionally ``log1p``-transformed (spend-like columns), then centred and scaled to unit
  standard deviation on the training table;
- categorical features (string, categorical or boolean columns) become indicator columns, the first level
  (sorted) being the reference, then standardised like the rest;
- the optional ``group`` column (cohort, campaign, app) becomes an integer index for partially pooled
  intercepts; groups unseen at fit time get index -1 (predictions then integrate over the group distribution).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from btyd_ltv.data.validate import _v
from btyd_ltv.errors import DataValidationError

__all__ = ["Design", "build_design"]


def _is_categorical(s: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)


def _first_bad(mask: np.ndarray, index: pd.Index) -> str:
    pos = int(np.flatnonzero(mask)[0])
    return f"row {pos} (index {_v(index[pos])})"


@dataclass(frozen=True)
class Design:
    """The encoding of a regression table; ``matrix(table)`` applies it. JSON round-trips via
    :meth:`to_json` / :meth:`from_json` (stored in the posterior's attributes)."""

    target: str | None
    numeric: tuple[str, ...]
    log1p: tuple[str, ...]
    categorical: dict[str, list[str]]
    columns: tuple[str, ...]
    center: tuple[float, ...]
    scale: tuple[float, ...]
    group: str | None = None
    group_levels: tuple[str, ...] = ()

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Design":
        d = json.loads(text)
        for k in ("numeric", "log1p", "columns", "center", "scale", "group_levels"):
            d[k] = tuple(d[k])
        return cls(**d)

    @property
    def features(self) -> list[str]:
        return list(self.numeric) + list(self.categorical)

    def raw_matrix(self, table: pd.DataFrame) -> np.ndarray:
        """Encoded but unstandardised features (n, k)."""
        _check_columns(table, self.features + ([self.group] if self.group else []))
        parts = []
        for col in self.numeric:
            v = _numeric(table, col)
            if col in self.log1p:
                if np.any(v < 0):
                    raise DataValidationError(
                        f"column {col!r}: negative value at {_first_bad(v < 0, table.index)} cannot be log1p-"
                        "transformed; drop it from --log1p or fix the data"
                    )
                v = np.log1p(v)
            parts.append(v[:, None])
        for col, levels in self.categorical.items():
            s = table[col]
            if s.isna().any():
                raise DataValidationError(f"column {col!r}: missing value at {_first_bad(s.isna().to_numpy(), table.index)}")
            s = s.astype(str).to_numpy()
            parts.extend((s == lvl).astype(np.float64)[:, None] for lvl in levels[1:])
        return np.hstack(parts) if parts else np.zeros((len(table), 0))

    def matrix(self, table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Standardised features ``X`` (n, k) and group index (n,) (-1 for unseen groups, 0 without groups)."""
        X = (self.raw_matrix(table) - np.asarray(self.center)) / np.asarray(self.scale)
        if self.group is None:
            return X, np.zeros(len(table), dtype=np.int32)
        g = table[self.group]
        if g.isna().any():
            raise DataValidationError(
                f"group column {self.group!r}: missing value at {_first_bad(g.isna().to_numpy(), table.index)}"
            )
        lookup = {lvl: i for i, lvl in enumerate(self.group_levels)}
        idx = np.array([lookup.get(v, -1) for v in g.astype(str)], dtype=np.int32)
        return X, idx

    def target_values(self, table: pd.DataFrame) -> np.ndarray:
        """The target column as float64, checked finite and non-negative."""
        if self.target is None:
            raise DataValidationError("this design has no target column")
        _check_columns(table, [self.target])
        y = _numeric(table, self.target)
        if np.any(y < 0):
            raise DataValidationError(
                f"target {self.target!r}: negative value {y[y < 0][0]:g} at {_first_bad(y < 0, table.index)}; "
                "revenue must be >= 0 (refunds netted out)"
            )
        return y


def _check_columns(table: pd.DataFrame, cols: Sequence[str]) -> None:
    if not isinstance(table, pd.DataFrame):
        raise DataValidationError(f"expected a pandas DataFrame, got {type(table).__name__}")
    missing = [c for c in cols if c not in table.columns]
    if missing:
        raise DataValidationError(
            f"column(s) {', '.join(map(repr, missing))} not found; the table has {', '.join(map(str, table.columns))}"
        )


def _numeric(table: pd.DataFrame, col: str) -> np.ndarray:
    s = table[col]
    if _is_categorical(s):
        v = pd.to_numeric(s, errors="coerce")
        bad = v.isna() & s.notna()
        if bad.any():
            raise DataValidationError(
                f"column {col!r}: non-numeric value {_v(s[bad].iloc[0])} at {_first_bad(bad.to_numpy(), table.index)}"
            )
        s = v
    v = s.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(v)
    if bad.any():
        raise DataValidationError(
            f"column {col!r}: {'missing' if np.isnan(v[bad][0]) else 'infinite'} value at "
            f"{_first_bad(bad, table.index)}"
        )
    return v


def build_design(
    table: pd.DataFrame,
    target: str | None,
    features: Sequence[str],
    *,
    group: str | None = None,
    log1p: Sequence[str] = (),
    categorical: Sequence[str] = (),
) -> Design:
    """Learn the encoding of ``features`` (and ``group``) from a training table.

    Columns in ``categorical`` and non-numeric columns are one-hot encoded (reference level = first sorted
    level); columns in ``log1p`` are ``log(1 + x)``-transformed. Raises
    :class:`~btyd_ltv.errors.DataValidationError` for missing columns, NaN/inf, a target that is negative or
    never positive, a feature that is constant, or an empty table.
    """
    features = list(features)
    _check_columns(table, features + ([target] if target else []) + ([group] if group else []))
    if len(table) == 0:
        raise DataValidationError("the table is empty: no customers to fit")
    if len(set(features)) != len(features):
        raise DataValidationError(f"features listed twice: {features}")
    if target is not None and target in features:
        raise DataValidationError(f"target {target!r} is also listed as a feature")
    unknown = [c for c in list(log1p) + list(categorical) if c not in features]
    if unknown:
        raise DataValidationError(f"{', '.join(map(repr, unknown))} not in the feature list {features}")
    cats = {c: None for c in features if c in categorical or _is_categorical(table[c])}
    for c in cats:
        s = table[c]
        if s.isna().any():
            raise DataValidationError(f"column {c!r}: missing value at {_first_bad(s.isna().to_numpy(), table.index)}")
        cats[c] = sorted(s.astype(str).unique().tolist())
    numeric = tuple(c for c in features if c not in cats)
    columns = list(numeric) + [f"{c}[{lvl}]" for c, levels in cats.items() for lvl in levels[1:]]
    proto = Design(target, numeric, tuple(c for c in log1p if c in numeric), cats, tuple(columns),
                   (0.0,) * len(columns), (1.0,) * len(columns), group, ())
    raw = proto.raw_matrix(table)
    center = raw.mean(axis=0)
    scale = raw.std(axis=0)
    constant = [columns[j] for j in np.flatnonzero(scale <= 1e-12 * np.maximum(1.0, np.abs(center)))]
    if constant:
        raise DataValidationError(f"feature(s) {', '.join(constant)} are constant in the training data; drop them")
    if target is not None:
        y = proto.target_values(table)
        if not np.any(y > 0):
            raise DataValidationError(
                f"target {target!r} is never positive: the log-normal part of ZILN cannot be fitted"
            )
    levels: tuple[str, ...] = ()
    if group is not None:
        g = table[group]
        if g.isna().any():
            raise DataValidationError(f"group column {group!r}: missing value at "
                                      f"{_first_bad(g.isna().to_numpy(), table.index)}")
        levels = tuple(sorted(g.astype(str).unique().tolist()))
    return Design(target, numeric, proto.log1p, cats, tuple(columns), tuple(map(float, center)),
                  tuple(map(float, scale)), group, levels)
