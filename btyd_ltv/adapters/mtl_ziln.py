"""MTL-ZILN: a shared-bottom multi-task network with one zero-inflated log-normal head per horizon.

The baseline of Liu et al. (2025), "MEAN: Multi-Expert Adaptive Network for Customer Lifetime Value
Prediction", Sec. 4.1: "MTL-ZILN: Using a multi-task learning paradigm to evaluate different CLTV periods to
assist in long-term prediction" (its Table 1 shows it ahead of DNN-ZILN "because it can aggregate information
from multiple periods through shared experts"). Each period's head is the DNN-ZILN output of Wang, Liu & Miao
(2019): logits ``(l_h, mu_h, s_h)`` trained with :func:`btyd_ltv.losses.ziln_loss`.

The paper gives no architecture for it; ours (documented choices): the DNN-ZILN input layer (one embedding of
width ``floor(cardinality ** 0.25) + 1`` per categorical feature, concatenated with the numeric features), a
shared ReLU bottom ``(64, 32)`` (DNN-ZILN's hidden layers), then per horizon a ReLU tower ``(16,)`` and a
3-unit linear ZILN head. The horizons are :attr:`CustomerData.horizons` (cumulative spend over shorter windows)
followed by the target; the loss is the sum of the heads' mean ZILN losses (the MEAN paper sums the per-period
losses of its multi-task variant),

.. math:: \\mathcal L = \\sum_{h=1}^{H} \\frac{1}{B} \\sum_{u} \\mathrm{ZILN}(y_{u,h};\\ l_{u,h}, \\mu_{u,h},
          \\sigma_{u,h}).

Predictions come from the last (target) head; :meth:`MTLZILN.predict_horizons` gives every head's mean.
Training defaults are those of DNN-ZILN (:data:`btyd_ltv.adapters.dnn_ziln.DNN_ZILN_CONFIG`).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Sequence

import numpy as np
import pandas as pd

from btyd_ltv.adapters import _nn
from btyd_ltv.adapters._extras import require
from btyd_ltv.adapters._features import TabularEncoder
from btyd_ltv.adapters._nn import TrainConfig, TrainResult, split_valid
from btyd_ltv.adapters._ziln_head import (QUANTILES, check_fitted, feature_arrays, forward_numpy, nnx_modules,
                                          require_deep, ziln_prediction)
from btyd_ltv.adapters.base import CustomerData, Prediction
from btyd_ltv.adapters.dnn_ziln import DNN_ZILN_CONFIG
from btyd_ltv.errors import DataValidationError

__all__ = ["MTLZILN", "horizon_labels"]


def horizon_labels(data: CustomerData) -> list[str]:
    """Head labels in output order: the horizons of ``data``, then its target column's name."""
    return [*map(str, data.horizons), str(data.target)]


def _horizon_targets(data: CustomerData) -> np.ndarray:
    """``(n, H)`` per-horizon targets, validated finite and non-negative (the target last)."""
    y = data.y  # validates the target itself
    cols = list(data.horizons.values())
    out = np.column_stack([*(data.frame[c].to_numpy(dtype=np.float64) for c in cols), y])
    bad = ~np.isfinite(out) | (out < 0)
    if bad.any():
        i, j = map(int, np.argwhere(bad)[0])
        raise DataValidationError(f"horizon column {cols[j]!r}: value {out[i, j]} for customer "
                                  f"{data.frame.index[i]!r} (row {i}) is not a finite non-negative spend")
    return out


@lru_cache(maxsize=None)
def _network_class() -> type:
    nnx = require("flax.nnx")
    jnp = require("jax").numpy
    blocks = nnx_modules()

    class MultiHeadZILN(nnx.Module):
        """``TabularInput -> shared MLP -> [tower_h -> Linear(3)]_h``: logits of shape ``(batch, H, 3)``."""

        def __init__(self, n_numeric: int, cardinalities: Sequence[int], n_heads: int, shared: Sequence[int],
                     tower: Sequence[int], *, rngs: Any) -> None:
            self.inputs = blocks.TabularInput(n_numeric, cardinalities, rngs=rngs)
            self.bottom = blocks.MLP(self.inputs.out_features, shared, rngs=rngs)
            self.towers = nnx.List([blocks.MLP(self.bottom.out_features, tower, rngs=rngs)
                                    for _ in range(n_heads)])
            self.heads = nnx.List([nnx.Linear(t.out_features, 3, rngs=rngs) for t in self.towers])

        def __call__(self, numeric: Any, categorical: Any) -> Any:
            h = self.bottom(self.inputs(numeric, categorical))
            return jnp.stack([head(tower(h)) for tower, head in zip(self.towers, self.heads)], axis=1)

    return MultiHeadZILN


class MTLZILN:
    """MTL-ZILN baseline (MEAN paper, Sec. 4.1): shared bottom, one ZILN head per horizon, summed ZILN losses.

    :param shared: widths of the shared ReLU bottom.
    :param tower: widths of each head's ReLU tower (empty: a linear head on the shared bottom).
    :param n_samples: predictive draws per customer in :attr:`Prediction.samples` (target head).
    :param quantiles: quantile levels reported in :attr:`Prediction.quantiles`.
    :param valid_fraction: share of ``train`` split off for early stopping when ``fit`` gets no ``valid``.
    :param config: optimiser / early-stopping settings and the seed; default
        :data:`btyd_ltv.adapters.dnn_ziln.DNN_ZILN_CONFIG`.
    """

    name = "mtl_ziln"

    def __init__(
        self,
        *,
        shared: Sequence[int] = (64, 32),
        tower: Sequence[int] = (16,),
        n_samples: int = 200,
        quantiles: Sequence[float] = QUANTILES,
        valid_fraction: float = 0.2,
        config: TrainConfig = DNN_ZILN_CONFIG,
    ) -> None:
        require_deep()
        if any(int(h) < 1 for h in (*shared, *tower)):
            raise DataValidationError(f"layer widths must be positive, got shared={tuple(shared)}, "
                                      f"tower={tuple(tower)}")
        if n_samples < 1:
            raise DataValidationError(f"n_samples must be a positive number of draws, got {n_samples}")
        self.shared = tuple(int(h) for h in shared)
        self.tower = tuple(int(h) for h in tower)
        self.n_samples = int(n_samples)
        self.quantiles = tuple(float(q) for q in quantiles)
        self.valid_fraction = float(valid_fraction)
        self.config = _nn.check_config(config)
        self.encoder_: TabularEncoder | None = None
        self.network_: Any = None
        self.history_: TrainResult | None = None
        self.horizons_: list[str] = []

    def fit(self, train: CustomerData, valid: CustomerData | None = None) -> MTLZILN:
        """Minimise the summed per-horizon ZILN losses with early stopping on ``valid`` (or on a
        ``valid_fraction`` split of ``train``). With no horizons this is DNN-ZILN with a tower."""
        nnx = require("flax.nnx")
        from btyd_ltv.losses import ziln_loss

        if valid is None:
            train, valid = split_valid(train, self.valid_fraction, self.config.seed)
        if list(valid.horizons) != list(train.horizons):
            raise DataValidationError(f"validation horizons {list(valid.horizons)} differ from the training "
                                      f"horizons {list(train.horizons)}")
        self.horizons_ = horizon_labels(train)
        self.encoder_ = TabularEncoder.fit(train)
        net = _network_class()(len(self.encoder_.numeric), self.encoder_.cardinalities, len(self.horizons_),
                               self.shared, self.tower, rngs=nnx.Rngs(self.config.seed))

        def loss_fn(model: Any, batch: dict[str, Any]) -> Any:
            logits = model(batch["numeric"], batch["categorical"])  # (B, H, 3)
            per_head = ziln_loss(logits, batch["y"], reduction="none")  # (B, H)
            return per_head.mean(axis=0).sum()

        arrays = {"y": _horizon_targets(train), **feature_arrays(self.encoder_, train)}
        valid_arrays = {"y": _horizon_targets(valid), **feature_arrays(self.encoder_, valid)}
        self.history_ = _nn.train(net, loss_fn, arrays, valid_arrays, self.config)
        self.network_ = net
        return self

    def predict_logits(self, data: CustomerData) -> np.ndarray:
        """``(n, H, 3)`` ZILN logits per customer and horizon (the target last)."""
        check_fitted(self, self.name)
        return forward_numpy(self.network_, feature_arrays(self.encoder_, data))

    def predict_horizons(self, data: CustomerData) -> pd.DataFrame:
        """Per-horizon ZILN means ``sigmoid(l_h) exp(mu_h + sigma_h^2 / 2)``, one column per horizon label
        (the target last), indexed by customer id."""
        from btyd_ltv.losses import ziln_predict

        means = np.asarray(ziln_predict(self.predict_logits(data)), np.float64)
        return pd.DataFrame(means, index=data.ids, columns=self.horizons_)

    def predict(self, data: CustomerData) -> Prediction:
        """The target head's ZILN predictive distribution (mean, P(y > 0), quantiles, draws, log density)."""
        return ziln_prediction(self.predict_logits(data)[:, -1, :], data, n_samples=self.n_samples,
                               seed=self.config.seed, quantiles=self.quantiles)
