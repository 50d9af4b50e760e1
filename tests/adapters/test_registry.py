"""The model registry: lazy imports, the install hint for a missing extra, and settings validation."""

from __future__ import annotations

import subprocess
import sys

import pytest

from btyd_ltv.adapters import MissingExtraError
from btyd_ltv.adapters.registry import CUSTOMER_MODELS, customer_model
from btyd_ltv.compare import build_models
from btyd_ltv.errors import DataValidationError

# The linear baseline is plain numpy and the Bayesian models are core: the rest need the [deep] extra.
DEEP = [name for name in CUSTOMER_MODELS if name not in ("bgnbd_gg", "ziln", "linear")]


def test_import_does_not_load_the_deep_extra():
    code = ("import sys, btyd_ltv, btyd_ltv.adapters, btyd_ltv.compare, btyd_ltv.adapters.registry; "
            "print(sorted(m for m in ('flax', 'optax', 'lightgbm', 'sklearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name", DEEP)
def test_missing_extra_names_the_extra(monkeypatch, name):
    for mod in ("flax", "flax.nnx", "optax", "lightgbm", "sklearn"):
        monkeypatch.setitem(sys.modules, mod, None)  # makes `import mod` raise ImportError
    with pytest.raises(MissingExtraError, match=r"pip install 'btyd_ltv\[deep\]'"):
        customer_model(name)


def test_unknown_model_and_unknown_setting():
    with pytest.raises(DataValidationError, match="unknown model 'xgb'; choose from bgnbd_gg, ziln"):
        customer_model("xgb")
    with pytest.raises(DataValidationError, match="model 'linear' has no setting 'depth'"):
        build_models(["linear"], overrides={"linear": {"depth": 3}})
    with pytest.raises(DataValidationError, match="settings given for model 'mean'"):
        build_models(["linear"], overrides={"mean": {}})
