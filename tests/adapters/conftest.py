"""Shared fixtures for the adapter tests: a small synthetic customer table with a strong signal."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from btyd_ltv.adapters import CustomerData
from btyd_ltv.data.simulate import simulate_ziln


def strong_signal_table(n: int = 3000, seed: int = 7) -> pd.DataFrame:
    """ZILN spend whose P(y > 0) and log-scale mean depend strongly on ``x0``, ``x1`` and a 4-level
    categorical ``segment``; ``y_13w`` is a noisy shorter-horizon part of ``y``."""
    table, _ = simulate_ziln(n, intercept_p=-0.3, coef_p=(1.5, -1.0, 0.0), intercept_loc=3.0,
                             coef_loc=(0.8, 0.0, 0.5), intercept_scale=0.0, n_groups=4, group_sd_p=1.0,
                             group_sd_loc=0.5, seed=seed)
    rng = np.random.default_rng(seed + 1)
    table = table.rename(columns={"group": "segment"})
    table["spend_so_far"] = np.exp(table["x2"] + rng.normal(0, 0.3, n))
    table["y_13w"] = table["y"] * rng.uniform(0.2, 0.5, n)
    table.index = pd.Index([f"c{i:05d}" for i in range(n)], name="customer_id")
    return table


@pytest.fixture(scope="session")
def strong_signal() -> tuple[CustomerData, CustomerData]:
    """``(train, test)`` halves of :func:`strong_signal_table` as :class:`CustomerData` (target ``y``,
    numeric ``x0, x1, spend_so_far`` (log1p), categorical ``segment``, horizon ``13w``)."""
    table = strong_signal_table()
    data = CustomerData(table, target="y", numeric=("x0", "x1", "spend_so_far"), categorical=("segment",),
                        log1p=("spend_so_far",), horizons={"13w": "y_13w"})
    half = np.arange(data.n) % 2 == 0
    return data.take(half), data.take(~half)
