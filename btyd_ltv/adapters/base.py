"""The baseline protocol: what every customer-level model and every curve model plugs in through.

A customer-level model follows :class:`CustomerModel`: ``fit(train, valid=None) -> self`` and
``predict(data) -> Prediction``. The data is a :class:`CustomerData` (one row per customer: features, an
optional target, optional per-horizon targets and optional event sequences). A :class:`Prediction` holds the
point forecast and, when the model has one, a predictive distribution: ``P(y > 0)``, quantiles, draws and the
pointwise log predictive density of the observed target. Bayesian models of this package, deep baselines and a
user's own predictions (:mod:`btyd_ltv.adapters.external`) all satisfy the same protocol, so
:mod:`btyd_ltv.compare` treats them alike.

A curve model is a :data:`btyd_ltv.backtest.Forecaster`: ``f(history, cohorts, ages) -> CurveForecast`` maps the
cohort table known at a cutoff (ages ``0..k`` of the young cohorts, the full history of the mature ones) to the
cumulative LTV per install of ``cohorts`` at ``ages``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np
import pandas as pd

from btyd_ltv.data.predictions import quantile_column
from btyd_ltv.errors import DataValidationError

__all__ = ["CustomerData", "Prediction", "CustomerModel", "BTYD_COLUMNS"]

#: Calibration-period summary columns a BTYD model (BG/NBD x Gamma-Gamma) reads from a :class:`CustomerData`.
BTYD_COLUMNS = ("frequency", "recency", "T", "monetary_value")


@dataclass(frozen=True)
class CustomerData:
    """A customer-level learning table.

    ``frame`` has one row per customer (its index is the customer id). ``target`` names the outcome column
    (spend in the forecast window; may be absent at prediction time). ``numeric`` and ``categorical`` name the
    feature columns; ``log1p`` lists the spend-like numeric columns models should ``log1p``-transform.
    ``horizons`` maps a horizon label (e.g. ``"13w"``) to a column holding the cumulative spend over that
    shorter horizon (multi-task models train one head per horizon; the last horizon is ``target``).
    ``sequences`` is an optional ``(n, L, F)`` float array of per-customer event sequences (row-aligned with
    ``frame``, zero-padded; ``sequence_mask`` ``(n, L)`` is True on real steps), ``sequence_names`` names the
    ``F`` channels. ``horizon_periods`` is the length of the target window in the BTYD time unit of
    ``frequency/recency/T`` (BTYD models need it).
    """

    frame: pd.DataFrame
    target: str | None = "target"
    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    log1p: tuple[str, ...] = ()
    horizons: Mapping[str, str] = field(default_factory=dict)
    sequences: np.ndarray | None = None
    sequence_mask: np.ndarray | None = None
    sequence_names: tuple[str, ...] = ()
    horizon_periods: float | None = None

    def __post_init__(self) -> None:
        for name in ("numeric", "categorical", "log1p"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        object.__setattr__(self, "horizons", dict(self.horizons))
        missing = [c for c in (*self.numeric, *self.categorical, *self.horizons.values()) if c not in self.frame]
        if missing:
            raise DataValidationError(f"customer table has no column {missing[0]!r}; it has "
                                      f"{', '.join(map(str, self.frame.columns))}")
        bad = [c for c in self.log1p if c not in self.numeric]
        if bad:
            raise DataValidationError(f"log1p column {bad[0]!r} is not one of the numeric features {self.numeric}")
        n = len(self.frame)
        if self.sequences is not None:
            seq = np.asarray(self.sequences)
            if seq.ndim != 3 or seq.shape[0] != n:
                raise DataValidationError(f"sequences must have shape (customers, steps, channels) with {n} "
                                          f"customers, got {seq.shape}")
            mask = (np.ones(seq.shape[:2], bool) if self.sequence_mask is None
                    else np.asarray(self.sequence_mask, bool))
            if mask.shape != seq.shape[:2]:
                raise DataValidationError(f"sequence_mask has shape {mask.shape}, expected {seq.shape[:2]}")
            object.__setattr__(self, "sequences", seq)
            object.__setattr__(self, "sequence_mask", mask)

    @property
    def n(self) -> int:
        """Number of customers."""
        return len(self.frame)

    @property
    def ids(self) -> pd.Index:
        """Customer ids (the frame's index)."""
        return self.frame.index

    @property
    def has_target(self) -> bool:
        """Whether the target column is present."""
        return self.target is not None and self.target in self.frame

    @property
    def y(self) -> np.ndarray:
        """The target as float64; raises :class:`DataValidationError` when absent, NaN or negative."""
        if not self.has_target:
            raise DataValidationError(f"customer table has no target column {self.target!r}")
        y = self.frame[self.target].to_numpy(dtype=np.float64)
        bad = ~np.isfinite(y) | (y < 0)
        if bad.any():
            i = int(np.argmax(bad))
            raise DataValidationError(f"target column {self.target!r}: value {y[i]} for customer "
                                      f"{self.frame.index[i]!r} (row {i}) is not a finite non-negative spend")
        return y

    def horizon_targets(self) -> np.ndarray:
        """``(n, len(horizons) + 1)`` cumulative targets: each horizon column, then ``target``."""
        cols = [*self.horizons.values(), self.target]
        return np.column_stack([self.frame[c].to_numpy(dtype=np.float64) for c in cols])

    def take(self, rows: Sequence[int] | np.ndarray) -> CustomerData:
        """The customers at positions ``rows`` (an integer array or a boolean mask)."""
        rows = np.asarray(rows)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        seq = None if self.sequences is None else self.sequences[rows]
        mask = None if self.sequence_mask is None else self.sequence_mask[rows]
        return replace(self, frame=self.frame.iloc[rows], sequences=seq, sequence_mask=mask)


@dataclass(frozen=True)
class Prediction:
    """A model's forecast for the customers of a :class:`CustomerData`, in its row order.

    ``mean`` is the point forecast; optional: ``p_positive`` (P(y > 0)), ``quantiles`` (probability -> values),
    ``samples`` ``(n, S)`` draws from the predictive distribution, ``log_lik`` ``(n, S)`` pointwise log predictive
    density of the observed target (one column for a point-estimate model, one per posterior draw for a Bayesian
    one).
    """

    mean: np.ndarray
    p_positive: np.ndarray | None = None
    quantiles: Mapping[float, np.ndarray] = field(default_factory=dict)
    samples: np.ndarray | None = None
    log_lik: np.ndarray | None = None

    def __post_init__(self) -> None:
        mean = np.asarray(self.mean, dtype=np.float64).reshape(-1)
        object.__setattr__(self, "mean", mean)
        n = mean.size
        if self.p_positive is not None:
            object.__setattr__(self, "p_positive", np.asarray(self.p_positive, np.float64).reshape(n))
        object.__setattr__(self, "quantiles",
                           {float(q): np.asarray(v, np.float64).reshape(n) for q, v in self.quantiles.items()})
        for name in ("samples", "log_lik"):
            arr = getattr(self, name)
            if arr is not None:
                arr = np.asarray(arr, np.float64)
                if arr.ndim != 2 or arr.shape[0] != n:
                    raise DataValidationError(f"Prediction.{name} must have shape ({n}, S), got {arr.shape}")
                object.__setattr__(self, name, arr)

    @property
    def has_distribution(self) -> bool:
        """Whether the model gave more than a point forecast."""
        return self.p_positive is not None or bool(self.quantiles) or self.samples is not None

    def to_frame(self, ids: Sequence[Any] | pd.Index | None = None) -> pd.DataFrame:
        """``prediction`` [, ``p_positive``, ``qNN``...] (the layout of
        :func:`btyd_ltv.data.predictions.align_predictions`), one row per customer."""
        cols: dict[str, np.ndarray] = {"prediction": self.mean}
        if self.p_positive is not None:
            cols["p_positive"] = self.p_positive
        for q in sorted(self.quantiles):
            cols[quantile_column(q)] = self.quantiles[q]
        return pd.DataFrame(cols, index=pd.Index(ids, name="customer_id") if ids is not None else None)

    def report_input(self) -> dict[str, np.ndarray]:
        """The mapping :func:`btyd_ltv.metrics.report` scores (point forecast, P(y > 0), quantiles, draws,
        log-likelihood)."""
        out: dict[str, np.ndarray] = {str(k): v.to_numpy() for k, v in self.to_frame().items()}
        if self.samples is not None:
            out["samples"] = self.samples
        if self.log_lik is not None:
            out["log_lik"] = self.log_lik
        return out


@runtime_checkable
class CustomerModel(Protocol):
    """A customer-level LTV model: ``fit(train, valid=None) -> self``, ``predict(data) -> Prediction``.

    ``valid`` (optional) is the validation split a model may use for early stopping or calibration; a model
    that needs one and gets none carves it out of ``train`` with its own seed.
    """

    name: str

    def fit(self, train: CustomerData, valid: CustomerData | None = None) -> CustomerModel: ...

    def predict(self, data: CustomerData) -> Prediction: ...
