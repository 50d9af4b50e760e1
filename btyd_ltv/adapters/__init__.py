"""Adapters: the protocol every model (ours, a baseline, a user's own) plugs in through, external predictions,
and one module per deep / GBDT baseline. The baselines' heavy dependencies (flax, optax, lightgbm) are imported
only when a baseline is built; see :func:`btyd_ltv.adapters._extras.require`. The protocol classes are loaded on
first use (PEP 562), so importing this package (the CLI does, for the model names) does not import pandas."""

from __future__ import annotations

from typing import Any

from btyd_ltv.adapters._extras import MissingExtraError

__all__ = ["BTYD_COLUMNS", "CustomerData", "CustomerModel", "MissingExtraError", "Prediction"]
_BASE = ("BTYD_COLUMNS", "CustomerData", "CustomerModel", "Prediction")


def __getattr__(name: str) -> Any:
    if name in _BASE:
        from btyd_ltv.adapters import base

        return getattr(base, name)
    raise AttributeError(f"module 'btyd_ltv.adapters' has no attribute {name!r}")
