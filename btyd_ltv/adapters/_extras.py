"""Optional dependencies: the deep and GBDT baselines need the ``[deep]`` extra (flax, optax, lightgbm,
scikit-learn). Importing :mod:`btyd_ltv` never imports them; a baseline asks for them when it is built."""

from __future__ import annotations

import importlib
from types import ModuleType

from btyd_ltv.errors import BtydError

__all__ = ["MissingExtraError", "require"]


class MissingExtraError(BtydError, ImportError):
    """A baseline needs a package from an optional extra that is not installed (the CLI prints it and exits 2)."""


def require(module: str, extra: str = "deep") -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming the extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"this baseline needs {module.split('.')[0]!r}, which is not installed; install the extra with "
            f"`pip install 'btyd_ltv[{extra}]'`"
        ) from exc
