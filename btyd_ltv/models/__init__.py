"""Model families: one module each, holding a pure-JAX log-likelihood, a NumPyro model and predictive functions."""

from __future__ import annotations

import importlib
from types import ModuleType

MODEL_FAMILIES: dict[str, str] = {
    "bgnbd": "btyd_ltv.models.bgnbd",
    "gamma_gamma": "btyd_ltv.models.gamma_gamma",
    "ziln": "btyd_ltv.models.ziln",
}


def get_model(name: str) -> ModuleType:
    """Import and return the module of a model family by name (``"bgnbd"``, ``"gamma_gamma"``, ``"ziln"``; ``-`` or ``_``)."""
    key = name.replace("-", "_").lower()
    if key not in MODEL_FAMILIES:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(sorted(MODEL_FAMILIES))}")
    return importlib.import_module(MODEL_FAMILIES[key])
