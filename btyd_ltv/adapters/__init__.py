"""Adapters: the protocol every model (ours, a baseline, a user's own) plugs in through, external predictions,
and one module per deep / GBDT baseline. The baselines' heavy dependencies (flax, optax, lightgbm) are imported
only when a baseline is built; see :func:`btyd_ltv.adapters._extras.require`."""

from btyd_ltv.adapters._extras import MissingExtraError
from btyd_ltv.adapters.base import BTYD_COLUMNS, CustomerData, CustomerModel, Prediction

__all__ = ["BTYD_COLUMNS", "CustomerData", "CustomerModel", "MissingExtraError", "Prediction"]
