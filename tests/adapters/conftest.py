"""Shared fixtures for the adapter tests: a small synthetic customer table with a strong signal."""

from __future__ import annotations

import numpy as np
import pytest

from btyd_ltv.adapters import CustomerData


@pytest.fixture(scope="session")
def strong_signal(strong_signal_table) -> tuple[CustomerData, CustomerData]:
    """``(train, test)`` halves of :func:`strong_signal_table` as :class:`CustomerData` (target ``y``,
    numeric ``x0, x1, spend_so_far`` (log1p), categorical ``segment``, horizon ``13w``)."""
    table = strong_signal_table()
    data = CustomerData(table, target="y", numeric=("x0", "x1", "spend_so_far"), categorical=("segment",),
                        log1p=("spend_so_far",), horizons={"13w": "y_13w"})
    half = np.arange(data.n) % 2 == 0
    return data.take(half), data.take(~half)
