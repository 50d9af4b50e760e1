"""Linear (ridge) baseline on the tabular features: the tabular-only linear regression of the cross-app LTV
reference (seeds/000, "LinearRegression baseline"), the floor every learned model should clear.

Numeric features are encoded by :class:`~btyd_ltv.adapters._features.TabularEncoder` (``log1p`` where asked,
standardised with training statistics); each categorical feature is one-hot encoded (a level unseen in training
gets the all-zero row, i.e. the reference level). The coefficients solve the ridge normal equations

.. math:: \\hat\\beta = \\arg\\min_\\beta \\|y - \\beta_0 - X\\beta\\|^2 + \\lambda \\|\\beta\\|^2
          = (X_c^\\top X_c + \\lambda I)^{-1} X_c^\\top y_c

on centred ``X_c, y_c`` (the intercept is not penalised; Hoerl & Kennard 1970), ``lambda = 0`` being OLS.
Only numpy is needed: the model works without the ``[deep]`` extra.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from btyd_ltv.adapters._features import TabularEncoder
from btyd_ltv.adapters.base import CustomerData, Prediction
from btyd_ltv.errors import DataValidationError

__all__ = ["LinearBaseline", "one_hot_design"]


def one_hot_design(encoder: TabularEncoder, data: CustomerData) -> np.ndarray:
    """``(n, n_numeric + sum(levels))`` float64 design: standardised numeric features, then one column per
    training level of each categorical feature (unseen levels are all zeros)."""
    blocks = [encoder.numeric_matrix(data).astype(np.float64)]
    codes = encoder.categorical_codes(data)
    for j, card in enumerate(encoder.cardinalities):
        blocks.append((codes[:, j, None] == np.arange(1, card)[None, :]).astype(np.float64))
    return np.concatenate(blocks, axis=1)


class LinearBaseline:
    """Ridge regression of the target on the encoded tabular features; prediction ``max(b0 + x.beta, 0)``.

    :param alpha: ridge penalty ``lambda`` on the standardised / one-hot coefficients (``0``: OLS via
        least squares; a small positive default keeps collinear one-hot blocks well posed).
    :param target_transform: ``"identity"`` regresses the spend itself (least squares is consistent for the
        conditional mean, which is what an LTV forecast is scored on; the reference baseline); ``"log1p"``
        regresses ``log1p(y)`` and maps back with Duan's (1983) smearing estimate,
        ``E[y | x] = S exp(x.beta) - 1`` with ``S = mean(exp(residual))`` over the training rows.
    :param seed: unused (the fit is deterministic); accepted so that every baseline takes a ``seed``.
    """

    name = "linear"

    def __init__(self, *, alpha: float = 1.0, target_transform: Literal["identity", "log1p"] = "identity",
                 seed: int = 0) -> None:
        if not np.isfinite(alpha) or alpha < 0:
            raise DataValidationError(f"alpha must be a finite non-negative ridge penalty, got {alpha!r}")
        if target_transform not in ("identity", "log1p"):
            raise DataValidationError(f"target_transform must be 'identity' or 'log1p', got {target_transform!r}")
        self.alpha = float(alpha)
        self.target_transform = target_transform
        self.seed = seed
        self.encoder_: TabularEncoder | None = None

    def fit(self, train: CustomerData, valid: CustomerData | None = None) -> LinearBaseline:
        """Fit on ``train`` (``valid`` is not needed: there is nothing to stop early or calibrate)."""
        y = train.y
        self.encoder_ = TabularEncoder.fit(train)
        X = one_hot_design(self.encoder_, train)
        z = np.log1p(y) if self.target_transform == "log1p" else y
        x_mean, z_mean = X.mean(axis=0), z.mean()
        Xc = X - x_mean
        if self.alpha > 0:
            beta = np.linalg.solve(Xc.T @ Xc + self.alpha * np.eye(X.shape[1]), Xc.T @ (z - z_mean))
        else:
            beta = np.linalg.lstsq(Xc, z - z_mean, rcond=None)[0]
        self.coef_ = beta
        self.intercept_ = float(z_mean - x_mean @ beta)
        self.smearing_ = 1.0
        if self.target_transform == "log1p":
            self.smearing_ = float(np.mean(np.exp(z - self.intercept_ - X @ beta)))
        return self

    def predict(self, data: CustomerData) -> Prediction:
        """Point forecast clipped at 0 (no predictive distribution)."""
        if self.encoder_ is None:
            raise DataValidationError("LinearBaseline.predict called before fit")
        eta = self.intercept_ + one_hot_design(self.encoder_, data) @ self.coef_
        if self.target_transform == "log1p":
            mean = self.smearing_ * np.exp(np.minimum(eta, 700.0)) - 1.0
        else:
            mean = eta
        return Prediction(mean=np.maximum(mean, 0.0))
