"""Feature encoding shared by the neural and GBDT baselines: numeric features ``log1p``-transformed where asked
and standardised with training statistics; categorical features as integer codes (0 = unseen level)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from btyd_ltv.adapters.base import CustomerData
from btyd_ltv.errors import DataValidationError

__all__ = ["TabularEncoder"]


@dataclass
class TabularEncoder:
    """Fitted encoding of a :class:`CustomerData`'s features (see :meth:`fit`)."""

    numeric: tuple[str, ...]
    log1p: tuple[str, ...]
    categorical: tuple[str, ...]
    center: np.ndarray
    scale: np.ndarray
    levels: tuple[tuple[str, ...], ...]

    @classmethod
    def fit(cls, data: CustomerData) -> TabularEncoder:
        """Learn centres and scales (after ``log1p``) and categorical levels from the training customers."""
        enc = cls(data.numeric, data.log1p, data.categorical, np.zeros(0), np.ones(0), ())
        raw = enc._raw_numeric(data)
        enc.center = raw.mean(axis=0) if raw.size else np.zeros(raw.shape[1])
        sd = raw.std(axis=0) if raw.size else np.ones(raw.shape[1])
        enc.scale = np.where(sd > 0, sd, 1.0)
        enc.levels = tuple(tuple(sorted(map(str, data.frame[c].astype(str).unique()))) for c in data.categorical)
        return enc

    @property
    def cardinalities(self) -> tuple[int, ...]:
        """Number of codes per categorical feature (levels + 1 for unseen)."""
        return tuple(len(lv) + 1 for lv in self.levels)

    def _raw_numeric(self, data: CustomerData) -> np.ndarray:
        cols = []
        for c in self.numeric:
            if c not in data.frame:
                raise DataValidationError(f"customer table has no feature column {c!r}")
            v = data.frame[c].to_numpy(dtype=np.float64)
            bad = ~np.isfinite(v) | ((v < 0) if c in self.log1p else np.zeros(v.shape, bool))
            if bad.any():
                i = int(np.argmax(bad))
                raise DataValidationError(f"feature column {c!r}: value {v[i]} for customer "
                                          f"{data.frame.index[i]!r} (row {i}) is "
                                          f"{'not finite' if not np.isfinite(v[i]) else 'negative'}")
            cols.append(np.log1p(v) if c in self.log1p else v)
        return np.column_stack(cols) if cols else np.zeros((data.n, 0))

    def numeric_matrix(self, data: CustomerData) -> np.ndarray:
        """``(n, n_numeric)`` float32 standardised numeric features."""
        return ((self._raw_numeric(data) - self.center) / self.scale).astype(np.float32)

    def categorical_codes(self, data: CustomerData) -> np.ndarray:
        """``(n, n_categorical)`` int32 codes: ``1 + index`` of the level in training, 0 for an unseen level."""
        out = np.zeros((data.n, len(self.categorical)), np.int32)
        for j, (c, lv) in enumerate(zip(self.categorical, self.levels)):
            lookup = {v: i + 1 for i, v in enumerate(lv)}
            out[:, j] = [lookup.get(v, 0) for v in data.frame[c].astype(str)]
        return out
