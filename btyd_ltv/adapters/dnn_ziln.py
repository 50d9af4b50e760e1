"""DNN-ZILN: a feed-forward network with the zero-inflated log-normal loss (Wang, Liu & Miao 2019, "A Deep
Probabilistic Model for Customer Lifetime Value Prediction", arXiv:1912.07753).

Architecture, as in the paper's DNN and the notebooks published with it (``google/lifetime_value``): one
embedding per categorical feature, of width ``floor(cardinality ** 0.25) + 1`` (cardinality counts the
"unseen" code 0 of :class:`~btyd_ltv.adapters._features.TabularEncoder`), concatenated with the standardised
numeric features, then ``Dense(64) -> ReLU -> Dense(32) -> ReLU -> Dense(3)``. The three outputs are the ZILN
logits ``(l, mu, s)`` and the loss is :func:`btyd_ltv.losses.ziln_loss`,

.. math::
    \\mathrm{loss}(y) = \\mathrm{softplus}(l) - b\\,l - b \\log \\mathrm{LogNormal}(y;\\ \\mu, \\sigma),
    \\qquad b = \\mathbb 1\\{y > 0\\},\\ \\sigma = \\mathrm{softplus}(s),

the negative ZILN log-likelihood. Training defaults are the published notebook's: Adam at ``2e-4``, batches of
1024, at most 400 epochs, early stopping after 10 epochs without a validation improvement (its
``ReduceLROnPlateau`` is not reproduced). They suit large tables: with a few thousand customers a batch of 1024
gives one or two steps per epoch and 400 epochs do not converge, so pass e.g. ``TrainConfig(learning_rate=1e-3,
batch_size=128)``. The prediction is the ZILN mean ``sigmoid(l) exp(mu + sigma^2 / 2)``
with the full predictive distribution (P(y > 0), quantiles, draws, log density of the observed target).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Sequence

import numpy as np

from btyd_ltv.adapters import _nn
from btyd_ltv.adapters._extras import require
from btyd_ltv.adapters._features import TabularEncoder
from btyd_ltv.adapters._nn import TrainConfig, TrainResult, split_valid
from btyd_ltv.adapters._ziln_head import (QUANTILES, check_fitted, feature_arrays, forward_numpy, nnx_modules,
                                          require_deep, ziln_prediction)
from btyd_ltv.adapters.base import CustomerData, Prediction
from btyd_ltv.errors import DataValidationError

__all__ = ["DNNZILN", "DNN_ZILN_CONFIG"]

#: Training settings of the published DNN-ZILN notebooks (Adam 2e-4, batch 1024, <= 400 epochs, patience 10).
DNN_ZILN_CONFIG = TrainConfig(learning_rate=2e-4, batch_size=1024, max_epochs=400, patience=10)


@lru_cache(maxsize=None)
def _network_class() -> type:
    nnx = require("flax.nnx")
    blocks = nnx_modules()

    class ZILNNetwork(nnx.Module):
        """``TabularInput -> MLP(hidden) -> Linear(3)``: per-customer ZILN logits ``(l, mu, s)``."""

        def __init__(self, n_numeric: int, cardinalities: Sequence[int], hidden: Sequence[int], *,
                     rngs: Any) -> None:
            self.inputs = blocks.TabularInput(n_numeric, cardinalities, rngs=rngs)
            self.body = blocks.MLP(self.inputs.out_features, hidden, rngs=rngs)
            self.head = nnx.Linear(self.body.out_features, 3, rngs=rngs)

        def __call__(self, numeric: Any, categorical: Any) -> Any:
            return self.head(self.body(self.inputs(numeric, categorical)))

    return ZILNNetwork


class DNNZILN:
    """DNN-ZILN baseline (Wang, Liu & Miao 2019): embeddings + MLP(64, 32) + 3-unit ZILN head.

    :param hidden: widths of the ReLU hidden layers (published: ``(64, 32)``).
    :param n_samples: predictive draws per customer in :attr:`Prediction.samples`.
    :param quantiles: quantile levels reported in :attr:`Prediction.quantiles`.
    :param valid_fraction: share of ``train`` split off for early stopping when ``fit`` gets no ``valid``.
    :param config: optimiser / early-stopping settings and the seed (initialisation, minibatch order,
        validation split and predictive draws); default :data:`DNN_ZILN_CONFIG`.
    """

    name = "dnn_ziln"

    def __init__(
        self,
        *,
        hidden: Sequence[int] = (64, 32),
        n_samples: int = 200,
        quantiles: Sequence[float] = QUANTILES,
        valid_fraction: float = 0.2,
        config: TrainConfig = DNN_ZILN_CONFIG,
    ) -> None:
        require_deep()
        if any(int(h) < 1 for h in hidden):
            raise DataValidationError(f"hidden layer widths must be positive, got {tuple(hidden)}")
        if n_samples < 1:
            raise DataValidationError(f"n_samples must be a positive number of draws, got {n_samples}")
        self.hidden = tuple(int(h) for h in hidden)
        self.n_samples = int(n_samples)
        self.quantiles = tuple(float(q) for q in quantiles)
        self.valid_fraction = float(valid_fraction)
        self.config = _nn.check_config(config)
        self.encoder_: TabularEncoder | None = None
        self.network_: Any = None
        self.history_: TrainResult | None = None

    def fit(self, train: CustomerData, valid: CustomerData | None = None) -> DNNZILN:
        """Minimise the mean ZILN loss of ``train`` with early stopping on ``valid`` (or on a
        ``valid_fraction`` split of ``train``); features are encoded with statistics of the training rows."""
        nnx = require("flax.nnx")
        if valid is None:
            train, valid = split_valid(train, self.valid_fraction, self.config.seed)
        from btyd_ltv.losses import ziln_loss

        self.encoder_ = TabularEncoder.fit(train)
        net = _network_class()(len(self.encoder_.numeric), self.encoder_.cardinalities, self.hidden,
                               rngs=nnx.Rngs(self.config.seed))

        def loss_fn(model: Any, batch: dict[str, Any]) -> Any:
            return ziln_loss(model(batch["numeric"], batch["categorical"]), batch["y"])

        arrays = {"y": train.y, **feature_arrays(self.encoder_, train)}
        valid_arrays = {"y": valid.y, **feature_arrays(self.encoder_, valid)}
        self.history_ = _nn.train(net, loss_fn, arrays, valid_arrays, self.config)
        self.network_ = net
        return self

    def predict_logits(self, data: CustomerData) -> np.ndarray:
        """``(n, 3)`` ZILN logits ``(l, mu, s)`` per customer."""
        check_fitted(self, self.name)
        return forward_numpy(self.network_, feature_arrays(self.encoder_, data))

    def predict(self, data: CustomerData) -> Prediction:
        """ZILN predictive mean, P(y > 0), quantiles, draws and (with a target) the log density of ``y``."""
        return ziln_prediction(self.predict_logits(data), data, n_samples=self.n_samples,
                               seed=self.config.seed, quantiles=self.quantiles)

