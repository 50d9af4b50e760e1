"""MEAN: the Multi-Expert Adaptive Network of Liu, Zhou, Liu, Su & Chen (2025), "MEAN: Multi-Expert Adaptive
Network For Customer Lifetime Value Prediction" (equation numbers below are the paper's).

Two modules on a shared ReLU layer ``s = Shared(x_u)`` (widths ``[512, 256]``):

* **Multi-View Feature Express (MVFE).** ``M`` experts ``E_j`` and ``n`` gates (one per CLTV distribution /
  bucket) mix the experts into ``n`` distribution embeddings (eqs. 2-3),
  ``f_i = sum_j G_i(x)_j E_j(x)``, ``G_i(x) = softmax(W_g^i x)``. Stacked as ``H = [f_1 .. f_n]``, each row
  ``h_t`` gets an attention row (eqs. 4-5) ``g'_t = tanh(W_q h_t + W_k h_t + b_g')``,
  ``alpha_t = softmax(W_a g'_t + b_a)`` (so ``A = [alpha_1 .. alpha_n]`` is ``n x n``, rows on the simplex);
  the final embedding is ``e = (1/n) sum_i (A H)_i`` (eq. 6) and the CLTV prediction ``y_hat = FC(e)`` (eq. 7),
  fitted with the Huber loss of threshold ``delta`` (eq. 8).
* **Distribution Approximation Module (DAM).** ``k = MLP(s)`` (eq. 9, MLP ``[256, 128, 64] -> n``),
  ``b_hat = softmax(k)`` (eq. 10), a classifier of the CLTV bucket ``z`` (eq. 11).

The alignment (eqs. 12-16): ``theta = (1/n) sum_i A_i`` (the mean attention row); ``L_kl = KL(b_hat || theta)``
pulls the attention towards the DAM; ``L_dis = beta H(z, sigma(k; 1)) + gamma H(sigma(theta; tau),
sigma(k; tau))`` trains the DAM on the bucket labels and distils the attention into it at temperature ``tau``,
with ``H(p, q) = -sum_i p_i log(q_i + xi)`` and ``sigma(o; T) = softmax(o / T)``. The objective is
``L = L_cltv + L_kl + L_dis`` (eq. 17), each term averaged over the batch.

Published settings (Sec. 4.1): 5 experts, 5 buckets with zero its own bucket, ``delta = 1``, ``gamma = 1``,
``tau = 2``, Adam at ``1e-3``, batches of 1024, early stopping; labels "scaled and truncated to [0, 20]".

Where the paper is silent we chose:

* **Label scale**: ``y_s = min(log1p(y), target_clip)`` with ``target_clip = 20``; the paper says only that
  labels were scaled and truncated to ``[0, 20]``. ``predict`` returns ``expm1(clip(y_hat, 0, target_clip))`` in
  spend units (a back-transformed log-scale point forecast, closer to a conditional median than to a mean, so
  it is not calibrated in aggregate; its ranking is that of ``y_hat``).
* **Buckets**: bucket 0 is ``y = 0``; the positive targets of the training split are cut into ``n - 1``
  equal-frequency buckets at their quantiles ``1/(n-1), ..., (n-2)/(n-1)`` (or at given spend edges, argument
  ``bucket_edges``). ``P(y > 0) = 1 - b_hat_0`` is reported as ``p_positive``.
* ``beta = 1`` (not given), ``xi = 1e-8`` (not given); the KL weight is 1 as in eq. 17 (argument
  ``kl_weight``, e.g. 0 for the paper's "without L_kl" ablation).
* **Gradient flow**: the paper's text has the DAM "guide the learning of attention" through ``L_kl`` and the
  attention "transfer" its knowledge to the DAM through the distillation term, so each teacher is held fixed
  (``stop_gradient`` on ``b_hat`` in ``L_kl`` and on ``theta`` in ``L_dis``); ``detach_teachers=False`` lets
  both terms train both modules.
* **Experts**: one ``Linear(256 -> 64)`` layer each; the paper follows it with batch normalisation, we use
  layer normalisation then ReLU, because the shared training loop has no train / eval switch (its validation
  pass would update batch-norm running statistics). Gates, experts and DAM read the shared layer's output.
  Expert and attention widths (64; ``expert_dim``, ``attention_dim``) are not given.
* Eq. 4 applies ``W_q`` and ``W_k`` to the same ``h_t``, so they act as one matrix ``W_q + W_k``; we keep both as
  written. Eq. 6 writes ``A_i h_i``; we read it as row ``i`` of ``A H``, the attention-weighted embedding of
  distribution ``i``. ``sigma(theta; tau)`` applies the softmax to the attention probabilities ``theta`` as
  written (a flat target, since ``theta`` lies in ``[0, 1]``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Sequence

import numpy as np

from btyd_ltv.adapters import _nn
from btyd_ltv.adapters._extras import require
from btyd_ltv.adapters._features import TabularEncoder
from btyd_ltv.adapters._nn import TrainConfig, TrainResult, split_valid
from btyd_ltv.adapters._ziln_head import check_fitted, feature_arrays, forward_numpy, nnx_modules, require_deep
from btyd_ltv.adapters.base import CustomerData, Prediction
from btyd_ltv.errors import DataValidationError

__all__ = [
    "MEAN",
    "MEAN_CONFIG",
    "expert_mixture",
    "attention_pool",
    "huber_loss",
    "tempered_softmax",
    "bucket_loss",
    "attention_mean",
    "kl_alignment",
    "soft_cross_entropy",
    "distillation_loss",
    "mean_loss",
    "bucket_edges_from_quantiles",
    "assign_buckets",
]

#: Training settings of the MEAN paper (Sec. 4.1): Adam 1e-3, batch 1024, early stopping (patience not given).
MEAN_CONFIG = TrainConfig(learning_rate=1e-3, batch_size=1024, max_epochs=200, patience=10)


def _jax() -> Any:
    """jax, with the package's float64 setting (:mod:`btyd_ltv._jax`), imported on first use."""
    jax = require("jax")
    import btyd_ltv._jax  # noqa: F401  (float64, as in btyd_ltv.losses)

    return jax


def _jnp() -> Any:
    return _jax().numpy


# --------------------------------------------------------------------------------------------------------------
# the paper's equations as pure functions (batch first; numpy or jax arrays in, jax arrays out)
# --------------------------------------------------------------------------------------------------------------


def expert_mixture(gates: Any, experts: Any) -> Any:
    """Distribution embeddings, eq. 2: ``f_i = sum_j G(x)_{ij} E_j(x)``.

    :param gates: ``(B, n, M)`` gate weights (each row a softmax over the ``M`` experts, eq. 3).
    :param experts: ``(B, M, d)`` expert outputs.
    :return: ``(B, n, d)``.
    """
    return _jnp().einsum("bnm,bmd->bnd", gates, experts)


def attention_pool(attention: Any, embeddings: Any) -> Any:
    """Final embedding, eq. 6: ``e = (1/n) sum_i (A H)_i`` with ``(A H)_i = sum_j A_{ij} h_j``.

    :param attention: ``(B, n, n)`` attention matrices ``A`` (rows ``alpha_i``, eq. 5).
    :param embeddings: ``(B, n, d)`` stacked distribution embeddings ``H``.
    :return: ``(B, d)``.
    """
    jnp = _jnp()
    return jnp.mean(jnp.einsum("bij,bjd->bid", attention, embeddings), axis=1)


def huber_loss(y: Any, y_hat: Any, delta: float = 1.0) -> Any:
    """CLTV loss, eq. 8 (elementwise): ``(y - y_hat)^2 / 2`` if ``|y - y_hat| <= delta``, else
    ``delta (|y - y_hat| - delta / 2)``."""
    jnp = _jnp()
    r = jnp.abs(jnp.asarray(y) - jnp.asarray(y_hat))
    return jnp.where(r <= delta, 0.5 * r * r, delta * (r - 0.5 * delta))


def tempered_softmax(logits: Any, temperature: float = 1.0) -> Any:
    """Softmax with temperature over the last axis, eq. 16: ``sigma(o; T)_i = exp(o_i / T) / sum_j exp(o_j / T)``
    (shifted by the maximum as in eq. 10; ``T = 1`` gives ``b_hat``)."""
    jnp = _jnp()
    o = jnp.asarray(logits) / temperature
    o = o - jnp.max(o, axis=-1, keepdims=True)
    e = jnp.exp(o)
    return e / jnp.sum(e, axis=-1, keepdims=True)


def bucket_loss(z: Any, k: Any) -> Any:
    """Bucket classification loss, eq. 11: ``-(1/B) sum_u sum_i z_{ui} log b_hat_{ui}``, ``b_hat = softmax(k)``
    (eq. 10). ``z`` is ``(B, n)`` one-hot (or any distribution), ``k`` the ``(B, n)`` DAM logits; a scalar."""
    jnp = _jnp()
    k = jnp.asarray(k)
    log_b = k - jnp.max(k, axis=-1, keepdims=True)
    log_b = log_b - jnp.log(jnp.sum(jnp.exp(log_b), axis=-1, keepdims=True))
    return -jnp.mean(jnp.sum(jnp.asarray(z) * log_b, axis=-1))


def attention_mean(attention: Any) -> Any:
    """Mean attention row, eq. 12: ``theta = (1/n) sum_i A_i``, ``(B, n, n) -> (B, n)`` (on the simplex)."""
    jnp = _jnp()
    return jnp.mean(jnp.asarray(attention), axis=-2)


def kl_alignment(b_hat: Any, theta: Any) -> Any:
    """Alignment loss, eq. 13: ``KL(b_hat || theta) = sum_i b_hat_i log(b_hat_i / theta_i)`` per example
    (``0 log 0 = 0``); ``(B, n), (B, n) -> (B,)``."""
    jax = _jax()
    xlogy = jax.scipy.special.xlogy
    b_hat, theta = jax.numpy.asarray(b_hat), jax.numpy.asarray(theta)
    return jax.numpy.sum(xlogy(b_hat, b_hat) - xlogy(b_hat, theta), axis=-1)


def soft_cross_entropy(p: Any, q: Any, xi: float = 1e-8) -> Any:
    """Cross-entropy, eq. 15: ``H(p, q) = -sum_i p_i log(q_i + xi)`` per example; ``(B, n) -> (B,)``."""
    jnp = _jnp()
    return -jnp.sum(jnp.asarray(p) * jnp.log(jnp.asarray(q) + xi), axis=-1)


def distillation_loss(z: Any, k: Any, theta: Any, *, beta: float = 1.0, gamma: float = 1.0, tau: float = 2.0,
                      xi: float = 1e-8) -> Any:
    """Soft / hard label distillation, eq. 14, per example:

    ``L_dis = beta H(z, sigma(k; 1)) + gamma H(sigma(theta; tau), sigma(k; tau))``

    with ``z`` the ``(B, n)`` one-hot bucket labels, ``k`` the DAM logits and ``theta`` the mean attention
    (eq. 12); ``H`` is eq. 15 and ``sigma`` eq. 16. Returns ``(B,)``.
    """
    hard = soft_cross_entropy(z, tempered_softmax(k, 1.0), xi)
    soft = soft_cross_entropy(tempered_softmax(theta, tau), tempered_softmax(k, tau), xi)
    return beta * hard + gamma * soft


def mean_loss(
    y_scaled: Any,
    bucket: Any,
    y_hat: Any,
    k: Any,
    attention: Any,
    *,
    delta: float = 1.0,
    beta: float = 1.0,
    gamma: float = 1.0,
    tau: float = 2.0,
    kl_weight: float = 1.0,
    xi: float = 1e-8,
    detach_teachers: bool = True,
) -> Any:
    """The MEAN objective, eq. 17, averaged over the batch: ``L = L_cltv + kl_weight L_kl + L_dis``.

    :param y_scaled: ``(B,)`` labels on the model's scale; ``bucket``: ``(B,)`` integer bucket labels.
    :param y_hat: ``(B,)`` MVFE predictions; ``k``: ``(B, n)`` DAM logits; ``attention``: ``(B, n, n)``.
    :param detach_teachers: hold ``b_hat`` fixed in ``L_kl`` and ``theta`` fixed in the soft term of ``L_dis``.
    """
    jax = _jax()
    jnp = jax.numpy
    k = jnp.asarray(k)
    theta = attention_mean(attention)
    b_hat = tempered_softmax(k, 1.0)
    z = jax.nn.one_hot(jnp.asarray(bucket), k.shape[-1], dtype=k.dtype)
    sg = jax.lax.stop_gradient if detach_teachers else (lambda a: a)
    cltv = huber_loss(y_scaled, y_hat, delta)
    kl = kl_alignment(sg(b_hat), theta)
    dis = distillation_loss(z, k, sg(theta), beta=beta, gamma=gamma, tau=tau, xi=xi)
    return jnp.mean(cltv + kl_weight * kl + dis)


# --------------------------------------------------------------------------------------------------------------
# buckets
# --------------------------------------------------------------------------------------------------------------


def bucket_edges_from_quantiles(y: np.ndarray, n_buckets: int) -> np.ndarray:
    """Upper edges (spend units) of the positive buckets ``1 .. n-2``: the quantiles ``1/(n-1), ..., (n-2)/(n-1)``
    of the positive values of ``y`` (equal-frequency buckets; bucket 0 is ``y = 0``)."""
    if n_buckets < 2:
        raise DataValidationError(f"MEAN needs at least 2 buckets (zero and positive), got {n_buckets}")
    positive = np.asarray(y, np.float64)
    positive = positive[positive > 0]
    if positive.size == 0:
        raise DataValidationError("MEAN: the training target has no positive value; cannot form spend buckets")
    return np.quantile(positive, np.arange(1, n_buckets - 1) / (n_buckets - 1))


def assign_buckets(y: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bucket labels: 0 where ``y <= 0``, else ``1 + #{edges <= y}`` (so ``1 .. len(edges) + 1``), int32."""
    y = np.asarray(y, np.float64)
    return np.where(y > 0, 1 + np.searchsorted(np.asarray(edges, np.float64), y, side="right"), 0).astype(np.int32)


# --------------------------------------------------------------------------------------------------------------
# the network
# --------------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def _network_class() -> type:
    jax = _jax()
    nnx = require("flax.nnx")
    jnp = jax.numpy
    blocks = nnx_modules()

    class MEANNetwork(nnx.Module):
        """Shared layer, MVFE (experts, gates, attention, FC) and DAM; returns ``(y_hat, k, A)``."""

        def __init__(self, n_numeric: int, cardinalities: Sequence[int], *, shared: Sequence[int],
                     dam_hidden: Sequence[int], n_experts: int, n_buckets: int, expert_dim: int,
                     attention_dim: int, rngs: Any) -> None:
            self.n_experts, self.n_buckets = int(n_experts), int(n_buckets)
            self.inputs = blocks.TabularInput(n_numeric, cardinalities, rngs=rngs)
            self.shared = blocks.MLP(self.inputs.out_features, shared, rngs=rngs)
            d_s = self.shared.out_features
            self.experts = nnx.List([nnx.Linear(d_s, expert_dim, rngs=rngs) for _ in range(n_experts)])
            self.expert_norms = nnx.List([nnx.LayerNorm(expert_dim, rngs=rngs) for _ in range(n_experts)])
            self.gates = nnx.Linear(d_s, n_buckets * n_experts, rngs=rngs)  # W_g of the n gates (eq. 3)
            self.w_q = nnx.Linear(expert_dim, attention_dim, use_bias=False, rngs=rngs)  # eq. 4
            self.w_k = nnx.Linear(expert_dim, attention_dim, rngs=rngs)  # eq. 4, its bias is b_g'
            self.w_a = nnx.Linear(attention_dim, n_buckets, rngs=rngs)  # eq. 5, W_a and b_a
            self.fc = nnx.Linear(expert_dim, 1, rngs=rngs)  # eq. 7
            self.dam = blocks.MLP(d_s, dam_hidden, rngs=rngs)  # eq. 9
            self.dam_out = nnx.Linear(self.dam.out_features, n_buckets, rngs=rngs)

        def __call__(self, numeric: Any, categorical: Any) -> tuple[Any, Any, Any]:
            s = self.shared(self.inputs(numeric, categorical))
            experts = jnp.stack([nnx.relu(norm(layer(s))) for layer, norm in
                                 zip(self.experts, self.expert_norms)], axis=1)  # (B, M, d)
            gates = nnx.softmax(self.gates(s).reshape(-1, self.n_buckets, self.n_experts), axis=-1)  # eq. 3
            h = expert_mixture(gates, experts)  # (B, n, d), eq. 2
            g = jnp.tanh(self.w_q(h) + self.w_k(h))  # eq. 4
            attention = nnx.softmax(self.w_a(g), axis=-1)  # (B, n, n), eq. 5
            y_hat = self.fc(attention_pool(attention, h))[:, 0]  # eqs. 6-7
            k = self.dam_out(self.dam(s))  # eq. 9
            return y_hat, k, attention

    return MEANNetwork


class MEAN:
    """MEAN (Liu et al. 2025): multi-view expert network with a distribution-approximation module.

    :param n_experts: ``M``, the view experts (paper: 5).
    :param n_buckets: ``n``, CLTV distributions / buckets including the zero bucket (paper: 5).
    :param delta: Huber threshold (eq. 8; paper: 1).
    :param tau: distillation temperature (eq. 14; paper: 2).
    :param beta: weight of the hard-label term of eq. 14 (not given; 1).
    :param gamma: weight of the soft-label term of eq. 14 (paper: 1).
    :param kl_weight: weight of ``L_kl`` (eq. 17: 1).
    :param xi: the small constant of eq. 15.
    :param shared: widths of the shared ReLU layer (paper: ``(512, 256)``).
    :param dam_hidden: widths of the DAM MLP before its ``n``-unit output (paper: ``(256, 128, 64)``).
    :param expert_dim: width of each expert (not given; 64). ``attention_dim``: width of ``g'`` (not given; 64).
    :param target_clip: labels are ``min(log1p(y), target_clip)`` (paper: truncated to ``[0, 20]``).
    :param bucket_edges: upper spend edges of the positive buckets ``1 .. n-2`` (``n - 2`` increasing values);
        default: equal-frequency quantiles of the positive training targets.
    :param detach_teachers: stop gradients through the teacher of each alignment term (see the module notes).
    :param valid_fraction: share of ``train`` split off for early stopping when ``fit`` gets no ``valid``.
    :param config: optimiser / early-stopping settings and the seed; default :data:`MEAN_CONFIG`.
    """

    name = "mean"

    def __init__(
        self,
        *,
        n_experts: int = 5,
        n_buckets: int = 5,
        delta: float = 1.0,
        tau: float = 2.0,
        beta: float = 1.0,
        gamma: float = 1.0,
        kl_weight: float = 1.0,
        xi: float = 1e-8,
        shared: Sequence[int] = (512, 256),
        dam_hidden: Sequence[int] = (256, 128, 64),
        expert_dim: int = 64,
        attention_dim: int = 64,
        target_clip: float = 20.0,
        bucket_edges: Sequence[float] | None = None,
        detach_teachers: bool = True,
        valid_fraction: float = 0.2,
        config: TrainConfig = MEAN_CONFIG,
    ) -> None:
        require_deep()
        if n_experts < 1 or n_buckets < 2:
            raise DataValidationError(f"MEAN needs n_experts >= 1 and n_buckets >= 2, got {n_experts} and "
                                      f"{n_buckets}")
        if delta <= 0 or tau <= 0 or target_clip <= 0 or xi < 0:
            raise DataValidationError(f"MEAN needs positive delta, tau and target_clip and xi >= 0; got "
                                      f"delta={delta}, tau={tau}, target_clip={target_clip}, xi={xi}")
        if min(expert_dim, attention_dim, *shared, *dam_hidden) < 1 or not shared:
            raise DataValidationError("MEAN layer widths must be positive and the shared layer non-empty")
        if bucket_edges is not None:
            edges = np.asarray(bucket_edges, np.float64)
            if edges.shape != (n_buckets - 2,) or np.any(edges <= 0) or np.any(np.diff(edges) <= 0):
                raise DataValidationError(f"bucket_edges must be {n_buckets - 2} increasing positive spend values "
                                          f"(n_buckets - 2), got {list(np.atleast_1d(edges))}")
        self.n_experts, self.n_buckets = int(n_experts), int(n_buckets)
        self.delta, self.tau, self.beta, self.gamma = float(delta), float(tau), float(beta), float(gamma)
        self.kl_weight, self.xi = float(kl_weight), float(xi)
        self.shared, self.dam_hidden = tuple(map(int, shared)), tuple(map(int, dam_hidden))
        self.expert_dim, self.attention_dim = int(expert_dim), int(attention_dim)
        self.target_clip = float(target_clip)
        self.bucket_edges = None if bucket_edges is None else tuple(map(float, bucket_edges))
        self.detach_teachers = bool(detach_teachers)
        self.valid_fraction = float(valid_fraction)
        self.config = _nn.check_config(config)
        self.encoder_: TabularEncoder | None = None
        self.network_: Any = None
        self.history_: TrainResult | None = None
        self.bucket_edges_: np.ndarray | None = None

    def scale_target(self, y: np.ndarray) -> np.ndarray:
        """The label scale: ``min(log1p(y), target_clip)``."""
        return np.minimum(np.log1p(np.asarray(y, np.float64)), self.target_clip)

    def _arrays(self, data: CustomerData) -> dict[str, np.ndarray]:
        y = data.y
        return {"y": self.scale_target(y), "bucket": assign_buckets(y, self.bucket_edges_),
                **feature_arrays(self.encoder_, data)}

    def fit(self, train: CustomerData, valid: CustomerData | None = None) -> MEAN:
        """Minimise eq. 17 with early stopping on ``valid`` (or on a ``valid_fraction`` split of ``train``);
        features are encoded and bucket edges set from the training rows."""
        nnx = require("flax.nnx")
        if valid is None:
            train, valid = split_valid(train, self.valid_fraction, self.config.seed)
        self.bucket_edges_ = (bucket_edges_from_quantiles(train.y, self.n_buckets) if self.bucket_edges is None
                              else np.asarray(self.bucket_edges, np.float64))
        self.encoder_ = TabularEncoder.fit(train)
        net = _network_class()(len(self.encoder_.numeric), self.encoder_.cardinalities, shared=self.shared,
                               dam_hidden=self.dam_hidden, n_experts=self.n_experts, n_buckets=self.n_buckets,
                               expert_dim=self.expert_dim, attention_dim=self.attention_dim,
                               rngs=nnx.Rngs(self.config.seed))
        weights = dict(delta=self.delta, beta=self.beta, gamma=self.gamma, tau=self.tau,
                       kl_weight=self.kl_weight, xi=self.xi, detach_teachers=self.detach_teachers)

        def loss_fn(model: Any, batch: dict[str, Any]) -> Any:
            y_hat, k, attention = model(batch["numeric"], batch["categorical"])
            return mean_loss(batch["y"], batch["bucket"], y_hat, k, attention, **weights)

        self.history_ = _nn.train(net, loss_fn, self._arrays(train), self._arrays(valid), self.config)
        self.network_ = net
        return self

    def predict_components(self, data: CustomerData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(y_hat, b_hat, theta)``: the scaled prediction ``(n,)`` (eq. 7), the DAM bucket probabilities
        ``(n, n_buckets)`` (eq. 10) and the mean attention ``(n, n_buckets)`` (eq. 12)."""
        check_fitted(self, self.name)
        y_hat, k, attention = forward_numpy(self.network_, feature_arrays(self.encoder_, data))
        k = k - k.max(axis=1, keepdims=True)
        b_hat = np.exp(k) / np.exp(k).sum(axis=1, keepdims=True)
        return y_hat, b_hat, attention.mean(axis=1)

    def predict(self, data: CustomerData) -> Prediction:
        """Point forecast ``expm1(clip(y_hat, 0, target_clip))`` in spend units and ``p_positive = 1 - b_hat_0``
        (the DAM's probability of a non-zero bucket); no predictive distribution otherwise."""
        y_hat, b_hat, _ = self.predict_components(data)
        mean = np.expm1(np.clip(y_hat, 0.0, self.target_clip))
        return Prediction(mean=mean, p_positive=np.clip(1.0 - b_hat[:, 0], 0.0, 1.0))
