"""ZILN loss: against a numpy/scipy transcription of the published formula (google/lifetime_value), against the
distribution's log_prob, reductions, gradients, predictive mean vs Monte Carlo, jit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from btyd_ltv.distributions import ZeroInflatedLogNormal, ziln_quantile
from btyd_ltv.losses import SCALE_FLOOR, ziln_loss, ziln_predict, ziln_predict_quantiles, ziln_split_logits

N_MC = 1_000_000


def _softplus(x):
    return np.logaddexp(0.0, x)


def _published_loss_per_example(logits, labels):
    """Wang, Liu & Miao (2019) ZILN loss per example, written out in numpy/scipy: softplus(l) at y == 0,
    softplus(-l) - lognorm.logpdf(y) at y > 0, with sigma = max(softplus(s), sqrt(1e-7))."""
    logits = np.asarray(logits, dtype=float)
    y = np.asarray(labels, dtype=float).reshape(logits.shape[:-1])
    l, loc = logits[..., 0], logits[..., 1]
    scale = np.maximum(_softplus(logits[..., 2]), np.sqrt(1e-7))
    loss_zero = _softplus(l)
    safe_y = np.where(y > 0, y, 1.0)
    loss_positive = _softplus(-l) - scipy.stats.lognorm.logpdf(safe_y, s=scale, loc=0.0, scale=np.exp(loc))
    return np.where(y > 0, loss_positive, loss_zero)


def test_published_example():
    """The published unit test's inputs: logits [[.1, .2, .3], [.4, .5, .6]], labels [[0.], [1.5]]."""
    logits = np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])
    labels = np.array([[0.0], [1.5]])
    ref = _published_loss_per_example(logits, labels)
    # by hand: row 0 is softplus(0.1);
    # row 1 is softplus(-0.4) + log(1.5 sigma sqrt(2 pi)) + (log 1.5 - 0.5)^2 / (2 sigma^2), sigma = softplus(0.6)
    s1 = np.log1p(np.exp(0.6))
    row1 = np.log1p(np.exp(-0.4)) + np.log(1.5 * s1 * np.sqrt(2 * np.pi)) + (np.log(1.5) - 0.5) ** 2 / (2 * s1**2)
    np.testing.assert_allclose(ref, [np.log1p(np.exp(0.1)), row1], rtol=1e-14)
    assert float(ziln_loss(logits, labels)) == pytest.approx(ref.mean(), rel=1e-13)
    np.testing.assert_allclose(np.asarray(ziln_loss(logits, labels, reduction="none")), ref, rtol=1e-13)


@pytest.mark.parametrize("label_shape", ["flat", "keras"])
def test_loss_matches_published_formula_at_random_logits(label_shape):
    rng = np.random.default_rng(0)
    n = 500
    logits = rng.normal(0.0, 3.0, (n, 3))
    logits[:20, 2] = rng.uniform(-40, -20, 20)  # scale floor active
    y = np.exp(rng.normal(1.0, 2.0, n))
    y[rng.uniform(size=n) < 0.4] = 0.0
    ref = _published_loss_per_example(logits, y)
    labels = y if label_shape == "flat" else y[:, None]
    ours = np.asarray(ziln_loss(logits, labels, reduction="none"))
    assert ours.shape == (n,)
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)
    assert float(ziln_loss(logits, labels)) == pytest.approx(ref.mean(), rel=1e-12)
    assert float(ziln_loss(logits, labels, reduction="sum")) == pytest.approx(ref.sum(), rel=1e-12)


def test_loss_on_batched_leading_dims():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(4, 5, 3))
    y = np.where(rng.uniform(size=(4, 5)) < 0.5, 0.0, rng.lognormal(size=(4, 5)))
    ref = _published_loss_per_example(logits, y)
    np.testing.assert_allclose(np.asarray(ziln_loss(logits, y, reduction="none")), ref, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(ziln_loss(logits, y[..., None], reduction="none")), ref, rtol=1e-12)
    assert float(ziln_loss(logits, y)) == pytest.approx(ref.mean(), rel=1e-12)


def test_loss_is_the_ziln_negative_log_likelihood():
    rng = np.random.default_rng(2)
    n = 300
    logits = rng.normal(0.0, 2.0, (n, 3))
    logits[:, 2] = rng.uniform(-3.0, 3.0, n)  # softplus(s) >= 0.048 > sqrt(1e-7): floor inactive
    y = np.where(rng.uniform(size=n) < 0.3, 0.0, rng.lognormal(0.5, 1.5, n))
    logit_p, loc, scale = ziln_split_logits(logits)
    np.testing.assert_allclose(np.asarray(scale), _softplus(logits[:, 2]), rtol=1e-14)
    nll = -np.asarray(ZeroInflatedLogNormal(logits=logit_p, loc=loc, scale=scale).log_prob(y))
    np.testing.assert_allclose(np.asarray(ziln_loss(logits, y, reduction="none")), nll, rtol=1e-13, atol=1e-14)


def test_negative_labels_count_as_zero_like_the_published_loss():
    logits = np.array([[0.7, 1.0, 0.2]])
    assert float(ziln_loss(logits, np.array([-3.0]))) == pytest.approx(float(_softplus(0.7)), rel=1e-14)


def test_scale_floor():
    _, _, scale = ziln_split_logits(jnp.array([[0.0, 0.0, -100.0], [0.0, 0.0, 100.0]]))
    np.testing.assert_allclose(np.asarray(scale), [np.sqrt(1e-7), 100.0], rtol=1e-14)
    assert SCALE_FLOOR == pytest.approx(np.sqrt(1e-7), rel=1e-15)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        ziln_loss(np.zeros((2, 2)), np.zeros(2))
    with pytest.raises(ValueError, match="labels"):
        ziln_loss(np.zeros((2, 3)), np.zeros(3))
    with pytest.raises(ValueError, match="reduction"):
        ziln_loss(np.zeros((2, 3)), np.zeros(2), reduction="avg")


@pytest.mark.parametrize(
    "logits",
    [[0.3, -0.2, 0.5], [60.0, 40.0, 30.0], [-60.0, -40.0, -30.0], [500.0, -300.0, 200.0], [-500.0, 300.0, -200.0]],
)
@pytest.mark.parametrize("y", [0.0, 1.5, 1e-300, 1e300])
def test_gradient_is_finite(logits, y):
    logits = jnp.array([logits])
    labels = jnp.array([y])
    g = np.asarray(jax.grad(ziln_loss)(logits, labels))
    assert np.all(np.isfinite(g))
    if y == 0:
        # only the classification logit gets a gradient: d softplus(l) / dl = sigmoid(l)
        assert g[0, 0] == pytest.approx(float(jax.nn.sigmoid(logits[0, 0])), rel=1e-12, abs=1e-300)
        assert g[0, 1] == 0.0 and g[0, 2] == 0.0


def test_gradient_matches_finite_differences():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(6, 3))
    y = np.array([0.0, 0.5, 2.0, 0.0, 10.0, 0.1])
    g = np.asarray(jax.grad(lambda l: ziln_loss(l, y, reduction="sum"))(jnp.asarray(logits)))
    h = 1e-6
    fd = np.zeros_like(logits)
    for i in range(6):
        for k in range(3):
            e = np.zeros_like(logits)
            e[i, k] = h
            fd[i, k] = (_published_loss_per_example(logits + e, y).sum()
                        - _published_loss_per_example(logits - e, y).sum()) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)


def test_predict_matches_closed_form_and_monte_carlo():
    logits = np.array([[0.4, 1.0, -0.3], [-1.2, 2.0, -1.0], [2.0, -0.5, 0.0]])
    p = 1 / (1 + np.exp(-logits[:, 0]))
    scale = _softplus(logits[:, 2])
    closed = p * np.exp(logits[:, 1] + scale**2 / 2)
    pred = np.asarray(ziln_predict(logits))
    assert pred.shape == (3,)
    np.testing.assert_allclose(pred, closed, rtol=1e-13)
    # Monte Carlo: B ~ Bernoulli(p), Y = B exp(mu + sigma eps)
    rng = np.random.default_rng(4)
    b = rng.uniform(size=(N_MC, 3)) < p
    x = np.where(b, np.exp(logits[:, 1] + scale * rng.standard_normal((N_MC, 3))), 0.0)
    sd = x.std(axis=0)
    assert np.all(np.abs(x.mean(axis=0) - pred) < 5 * sd / np.sqrt(N_MC))


def test_predict_quantiles():
    logits = np.array([[0.4, 1.0, -0.3], [-1.2, 2.0, -1.0]])
    taus = np.array([0.1, 0.5, 0.7, 0.9])
    q = np.asarray(ziln_predict_quantiles(logits, taus))
    assert q.shape == (2, 4)
    p = 1 / (1 + np.exp(-logits[:, 0]))
    scale = _softplus(logits[:, 2])
    for i in range(2):
        ref = np.asarray(ziln_quantile(taus, p[i], logits[i, 1], scale[i]))
        np.testing.assert_allclose(q[i], ref, rtol=1e-14)
        # scipy: Q = 0 on the point mass, else the log-normal quantile of (tau - (1 - p)) / p
        u = (taus - (1 - p[i])) / p[i]
        expected = np.where(u > 0, scipy.stats.lognorm.ppf(np.clip(u, 1e-12, 1), s=scale[i],
                                                           scale=np.exp(logits[i, 1])), 0.0)
        np.testing.assert_allclose(q[i], expected, rtol=1e-12)


def test_jit():
    rng = np.random.default_rng(5)
    logits = jnp.asarray(rng.normal(size=(8, 3)))
    y = jnp.asarray(np.where(rng.uniform(size=8) < 0.5, 0.0, rng.lognormal(size=8)))
    loss = jax.jit(ziln_loss, static_argnames="reduction")
    assert float(loss(logits, y)) == pytest.approx(float(ziln_loss(logits, y)), rel=1e-14)
    np.testing.assert_allclose(np.asarray(loss(logits, y, reduction="none")),
                               _published_loss_per_example(np.asarray(logits), np.asarray(y)), rtol=1e-12)
    value, grad = jax.jit(jax.value_and_grad(ziln_loss))(logits, y)
    assert np.isfinite(float(value)) and np.all(np.isfinite(np.asarray(grad)))
    np.testing.assert_allclose(np.asarray(jax.jit(ziln_predict)(logits)), np.asarray(ziln_predict(logits)),
                               rtol=1e-14)
    q = jax.jit(ziln_predict_quantiles)(logits, jnp.array([0.5, 0.9]))
    np.testing.assert_allclose(np.asarray(q), np.asarray(ziln_predict_quantiles(logits, [0.5, 0.9])), rtol=1e-14)
