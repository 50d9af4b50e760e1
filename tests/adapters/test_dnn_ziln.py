"""DNN-ZILN (Wang, Liu & Miao 2019): ranking power on a strong-signal table, determinism, the predictive
distribution against scipy, and the optional-extra guard."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats
from scipy.special import expit

from btyd_ltv import metrics
from btyd_ltv.adapters import CustomerModel, MissingExtraError
from btyd_ltv.adapters._nn import TrainConfig
from btyd_ltv.adapters._ziln_head import QUANTILES, embedding_dim
from btyd_ltv.adapters.dnn_ziln import DNNZILN
from btyd_ltv.errors import FitError

# Small batches so that ~1200 training rows give several steps per epoch (the published batch is 1024).
CONFIG = TrainConfig(learning_rate=1e-3, batch_size=128, max_epochs=100, patience=10, seed=0)


@pytest.fixture(scope="module")
def fitted(strong_signal):
    train, test = strong_signal
    model = DNNZILN(config=CONFIG, n_samples=100).fit(train)
    return model, model.predict(test)


def test_protocol_and_name():
    model = DNNZILN(config=CONFIG)
    assert isinstance(model, CustomerModel)
    assert model.name == "dnn_ziln"


def test_beats_a_constant_on_gini_and_spearman(strong_signal, fitted):
    _, test = strong_signal
    _, pred = fitted
    # The true ZILN mean reaches Gini 0.82 / Spearman 0.60 on this half; a constant gives ~0 / NaN.
    assert metrics.gini(test.y, pred.mean) > 0.7
    assert metrics.spearman(test.y, pred.mean) > 0.5
    assert metrics.auc_positive(test.y, pred.p_positive) > 0.8
    assert abs(pred.mean.mean() / test.y.mean() - 1.0) < 0.35  # calibrated in aggregate (heavy tail: loose)


def test_same_seed_same_predictions(strong_signal, fitted):
    train, test = strong_signal
    _, pred = fitted
    again = DNNZILN(config=CONFIG, n_samples=100).fit(train).predict(test)
    np.testing.assert_array_equal(again.mean, pred.mean)
    np.testing.assert_array_equal(again.samples, pred.samples)


def test_prediction_shapes_finite_non_negative(strong_signal, fitted):
    _, test = strong_signal
    _, pred = fitted
    n = test.n
    assert pred.mean.shape == (n,) and pred.p_positive.shape == (n,)
    assert pred.samples.shape == (n, 100) and pred.log_lik.shape == (n, 1)
    assert sorted(pred.quantiles) == list(QUANTILES)
    for arr in (pred.mean, pred.p_positive, pred.samples, pred.log_lik, *pred.quantiles.values()):
        assert np.all(np.isfinite(arr))
    assert np.all(pred.mean >= 0) and np.all(pred.samples >= 0)
    assert np.all((pred.p_positive >= 0) & (pred.p_positive <= 1))
    q = np.column_stack([pred.quantiles[t] for t in QUANTILES])
    assert np.all(q >= 0) and np.all(np.diff(q, axis=1) >= 0)


def test_distribution_matches_scipy(strong_signal, fitted):
    """log_lik, mean, quantiles and draws against scipy.stats.lognorm at the network's own logits."""
    _, test = strong_signal
    model, pred = fitted
    logits = model.predict_logits(test)
    p = expit(logits[:, 0])
    mu = logits[:, 1]
    sigma = np.maximum(np.logaddexp(0.0, logits[:, 2]), np.sqrt(1e-7))
    y = test.y
    pos = y > 0
    expected = np.where(pos, np.log(p) + stats.lognorm.logpdf(np.where(pos, y, 1.0), s=sigma, scale=np.exp(mu)),
                        np.log1p(-p))
    np.testing.assert_allclose(pred.log_lik[:, 0], expected, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(pred.p_positive, p, rtol=1e-10)
    np.testing.assert_allclose(pred.mean, p * stats.lognorm.mean(s=sigma, scale=np.exp(mu)), rtol=1e-6)
    for tau in QUANTILES:
        u = np.clip((tau - (1 - p)) / p, 1e-12, 1.0)
        ref = np.where(tau > 1 - p, stats.lognorm.ppf(u, s=sigma, scale=np.exp(mu)), 0.0)
        np.testing.assert_allclose(pred.quantiles[tau], ref, rtol=1e-5, atol=1e-8)
    # Draws: the share of zeros and the average draw agree with the ZILN per customer, pooled.
    assert abs((pred.samples == 0).mean() - (1 - p).mean()) < 0.01
    assert abs(pred.samples.mean() / pred.mean.mean() - 1.0) < 0.1


def test_no_target_gives_no_log_lik(strong_signal, fitted):
    _, test = strong_signal
    model, pred = fitted
    unlabeled = test.take(np.arange(10))
    unlabeled = replace(unlabeled, frame=unlabeled.frame.drop(columns=["y"]))
    out = model.predict(unlabeled)
    assert out.log_lik is None
    np.testing.assert_allclose(out.mean, pred.mean[:10], rtol=1e-5)  # float32 network, other batch shape


def test_embedding_width_rule():
    assert [embedding_dim(c) for c in (1, 5, 15, 16, 81, 10_000)] == [2, 2, 2, 3, 4, 11]


def test_predict_before_fit_raises(strong_signal):
    with pytest.raises(FitError, match="fit"):
        DNNZILN(config=CONFIG).predict(strong_signal[1])


def test_missing_extra_fails_at_construction(monkeypatch):
    monkeypatch.setitem(sys.modules, "optax", None)
    with pytest.raises(MissingExtraError, match=r"btyd_ltv\[deep\]"):
        DNNZILN()


def test_modules_import_without_flax():
    code = ("import sys; import btyd_ltv.adapters.dnn_ziln, btyd_ltv.adapters.mtl_ziln, btyd_ltv.adapters.mean;"
            "print(any(m.split('.')[0] in ('flax', 'optax') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
