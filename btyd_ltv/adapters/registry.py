"""Names of the customer-level models :mod:`btyd_ltv.compare` and ``btyd-ltv compare --models`` know, built
lazily so that a baseline's heavy dependencies are imported only when it is asked for. Importing this module is
cheap (no pandas), so the CLI reads the names at start-up."""

from __future__ import annotations

import importlib
import inspect
from typing import TYPE_CHECKING, Any

from btyd_ltv.errors import DataValidationError

if TYPE_CHECKING:
    from btyd_ltv.adapters.base import CustomerModel

__all__ = ["CUSTOMER_MODELS", "BAYESIAN_MODELS", "DEFAULT_MODELS", "customer_model"]

#: name -> (module, class) of every customer-level model.
CUSTOMER_MODELS: dict[str, tuple[str, str]] = {
    "bgnbd_gg": ("btyd_ltv.adapters.bayes", "BGNBDGammaGamma"),
    "ziln": ("btyd_ltv.adapters.bayes", "BayesZILN"),
    "dnn_ziln": ("btyd_ltv.adapters.dnn_ziln", "DNNZILN"),
    "mtl_ziln": ("btyd_ltv.adapters.mtl_ziln", "MTLZILN"),
    "mean": ("btyd_ltv.adapters.mean", "MEAN"),
    "gbdt_two_stage": ("btyd_ltv.adapters.gbdt", "GBDTTwoStage"),
    "gbdt": ("btyd_ltv.adapters.gbdt", "GBDTRegressor"),
    "linear": ("btyd_ltv.adapters.linear", "LinearBaseline"),
    "fusion": ("btyd_ltv.adapters.fusion", "TransformerFusion"),
}

#: The models ``btyd-ltv compare`` runs by default (ours, then the MEAN paper's baselines and the two-stage GBDT).
DEFAULT_MODELS = ("bgnbd_gg", "ziln", "dnn_ziln", "mtl_ziln", "mean", "gbdt_two_stage")

#: The models fitted by MCMC (they get posterior predictive check figures in a comparison).
BAYESIAN_MODELS = ("bgnbd_gg", "ziln")


def customer_model(name: str, **kwargs: Any) -> CustomerModel:
    """Build the model registered as ``name`` with ``kwargs``; keyword arguments its constructor does not take
    (e.g. ``num_chains`` for a neural baseline) are dropped, so one settings mapping can serve every model.
    Raises :class:`DataValidationError` for an unknown name and
    :class:`~btyd_ltv.adapters._extras.MissingExtraError` when the model's extra is not installed."""
    if name not in CUSTOMER_MODELS:
        raise DataValidationError(f"unknown model {name!r}; choose from {', '.join(CUSTOMER_MODELS)}")
    module, cls_name = CUSTOMER_MODELS[name]
    cls = getattr(importlib.import_module(module), cls_name)
    params = inspect.signature(cls).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        kwargs = {k: v for k, v in kwargs.items() if k in params}
    return cls(**kwargs)
