"""Transformer + tabular fusion: needs sequences, and on multimodal customers whose revenue signal lives partly
in the temporal pattern of their event sequences it ranks better than the tabular-only baselines."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from btyd_ltv import metrics
from btyd_ltv.adapters import CustomerModel
from btyd_ltv.adapters.fusion import TransformerFusion, multimodal_customer_data
from btyd_ltv.adapters.gbdt import GBDTRegressor, GBDTTwoStage
from btyd_ltv.adapters.linear import LinearBaseline
from btyd_ltv.errors import DataValidationError

pytest.importorskip("flax")
pytest.importorskip("optax")
pytest.importorskip("lightgbm")

#: A small network keeps the test fast on two CPU cores; the defaults are twice as wide.
SMALL = dict(d_model=16, ff_dim=32, tabular_hidden=16, head_hidden=16, learning_rate=3e-3)


@pytest.fixture(scope="module")
def multimodal():
    return multimodal_customer_data(4000, seed=1), multimodal_customer_data(4000, seed=2)


@pytest.fixture(scope="module")
def fusion_prediction(multimodal):
    train, test = multimodal
    model = TransformerFusion(**SMALL, seed=0).fit(train)
    assert isinstance(model, CustomerModel)
    return model, model.predict(test)


def test_builder(multimodal):
    train, _ = multimodal
    assert train.target == "revenue" and train.sequences.shape == (4000, 30, 5)
    assert train.sequence_names[0] == "session_length" and train.sequence_mask.dtype == bool
    assert "expected_revenue" in train.frame and "expected_revenue" not in train.numeric


def test_fusion_beats_constant_and_tabular_only_models(multimodal, fusion_prediction):
    train, test = multimodal
    _, pred = fusion_prediction
    y = test.y
    assert np.isfinite(pred.mean).all() and (pred.mean >= 0).all()
    assert pred.mean.mean() == pytest.approx(y.mean(), rel=0.3)
    tabular = {m.name: m.fit(train).predict(test).mean
               for m in (LinearBaseline(), GBDTRegressor(seed=0), GBDTTwoStage(seed=0))}
    truth = test.frame["expected_revenue"].to_numpy()

    def score(p):
        return metrics.gini(y, p), metrics.spearman(y, p), metrics.spearman(truth, p)

    gini, rho, rho_true = score(pred.mean)
    # constant forecast: Gini ~1/n, Spearman undefined; observed for the fusion: Gini 0.56, Spearman 0.35 with
    # the realised revenue and 0.59 with the true expected revenue (the oracle reaches 0.80 / 0.57 / 1)
    assert metrics.gini(y, np.full(test.n, y.mean())) < 0.01
    assert gini > 0.5 and rho > 0.3 and rho_true > 0.5
    # The tabular models see the level of engagement but not its trend over the window nor the completion
    # trajectory, which drive revenue; observed Gini 0.45-0.49, Spearman 0.24-0.27 and 0.44-0.47 against the
    # expected revenue. (RMSE is not asserted: dominated by a few whales, it does not separate the models
    # reliably from one seed to the next.)
    for name, p in tabular.items():
        g, r, r_true = score(p)
        assert gini > g + 0.04, (name, gini, g)
        assert rho > r + 0.06, (name, rho, r)
        assert rho_true > r_true + 0.08, (name, rho_true, r_true)


def test_requires_sequences(strong_signal):
    train, _ = strong_signal
    with pytest.raises(DataValidationError, match="sequences"):
        TransformerFusion(**SMALL).fit(train)


def test_same_seed_same_predictions_ziln_head_and_shape_checks(multimodal):
    train, test = multimodal
    small, head = train.take(np.arange(600)), test.take(np.arange(200))
    settings = dict(SMALL, loss="ziln", max_epochs=3, batch_size=128, seed=5)
    a = TransformerFusion(**settings).fit(small).predict(head)
    model = TransformerFusion(**settings).fit(small)
    b = model.predict(head)
    np.testing.assert_array_equal(a.mean, b.mean)
    np.testing.assert_array_equal(a.p_positive, b.p_positive)
    assert np.isfinite(b.mean).all() and (b.mean >= 0).all()
    assert ((b.p_positive > 0) & (b.p_positive < 1)).all()
    # the output bias starts at the marginal buyer rate, and three epochs do not move it far
    assert b.p_positive.mean() == pytest.approx((small.y > 0).mean(), abs=0.1)
    short = replace(head, sequences=head.sequences[:, -10:], sequence_mask=head.sequence_mask[:, -10:])
    with pytest.raises(DataValidationError, match="trained on"):
        model.predict(short)
    with pytest.raises(DataValidationError, match="sequences"):
        model.predict(replace(head, sequences=None, sequence_mask=None))


def test_bad_arguments():
    with pytest.raises(DataValidationError, match="divisible"):
        TransformerFusion(d_model=10, num_heads=4)
    with pytest.raises(DataValidationError, match="loss"):
        TransformerFusion(loss="mse")


def test_missing_extra_fails_at_construction(monkeypatch):
    import btyd_ltv.adapters._extras as extras
    from btyd_ltv.adapters._extras import MissingExtraError

    real = extras.importlib.import_module

    def fake(name, *args, **kwargs):
        if name.split(".")[0] == "flax":
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(extras.importlib, "import_module", fake)
    with pytest.raises(MissingExtraError, match=r"\[deep\]"):
        TransformerFusion()
