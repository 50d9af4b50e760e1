"""MTL-ZILN (the MEAN paper's multi-period baseline): ranking power, per-horizon heads, determinism, shapes."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from btyd_ltv import metrics
from btyd_ltv.adapters import CustomerModel
from btyd_ltv.adapters._nn import TrainConfig
from btyd_ltv.adapters._ziln_head import QUANTILES
from btyd_ltv.adapters.mtl_ziln import MTLZILN
from btyd_ltv.errors import DataValidationError

CONFIG = TrainConfig(learning_rate=1e-3, batch_size=128, max_epochs=100, patience=10, seed=0)


@pytest.fixture(scope="module")
def fitted(strong_signal):
    train, test = strong_signal
    model = MTLZILN(config=CONFIG, n_samples=50).fit(train)
    return model, model.predict(test)


def test_protocol_and_name():
    model = MTLZILN(config=CONFIG)
    assert isinstance(model, CustomerModel)
    assert model.name == "mtl_ziln"


def test_beats_a_constant_on_gini_and_spearman(strong_signal, fitted):
    _, test = strong_signal
    _, pred = fitted
    # The true ZILN mean reaches Gini 0.82 / Spearman 0.60 on this half; a constant gives ~0 / NaN.
    assert metrics.gini(test.y, pred.mean) > 0.7
    assert metrics.spearman(test.y, pred.mean) > 0.5
    assert abs(pred.mean.mean() / test.y.mean() - 1.0) < 0.35  # calibrated in aggregate (heavy tail: loose)


def test_horizon_heads(strong_signal, fitted):
    _, test = strong_signal
    model, pred = fitted
    frame = model.predict_horizons(test)
    assert list(frame.columns) == ["13w", "y"]
    assert frame.index.equals(test.ids)
    np.testing.assert_allclose(frame["y"].to_numpy(), pred.mean, rtol=1e-12)
    # y_13w = y * U(0.2, 0.5): the short head predicts about 35% of the target head, and ranks y_13w.
    ratio = frame["13w"].sum() / frame["y"].sum()
    assert 0.25 < ratio < 0.45
    assert metrics.gini(test.frame["y_13w"].to_numpy(), frame["13w"].to_numpy()) > 0.7


def test_same_seed_same_predictions(strong_signal, fitted):
    train, test = strong_signal
    _, pred = fitted
    again = MTLZILN(config=CONFIG, n_samples=50).fit(train).predict(test)
    np.testing.assert_array_equal(again.mean, pred.mean)
    np.testing.assert_array_equal(again.log_lik, pred.log_lik)


def test_prediction_shapes_finite_non_negative(strong_signal, fitted):
    _, test = strong_signal
    _, pred = fitted
    n = test.n
    assert pred.mean.shape == (n,) and pred.p_positive.shape == (n,)
    assert pred.samples.shape == (n, 50) and pred.log_lik.shape == (n, 1)
    assert sorted(pred.quantiles) == list(QUANTILES)
    for arr in (pred.mean, pred.p_positive, pred.samples, pred.log_lik, *pred.quantiles.values()):
        assert np.all(np.isfinite(arr))
    assert np.all(pred.mean >= 0) and np.all(pred.samples >= 0)
    assert np.all((pred.p_positive >= 0) & (pred.p_positive <= 1))


def test_bad_horizon_values_are_rejected(strong_signal):
    train, _ = strong_signal
    frame = train.frame.copy()
    frame.iloc[3, frame.columns.get_loc("y_13w")] = np.nan
    with pytest.raises(DataValidationError, match="y_13w"):
        MTLZILN(config=CONFIG).fit(replace(train, frame=frame))
