"""Neural cohort-curve forecasters: an MLP and a TiDE-style dense encoder-decoder (flax ``nnx``).

Both map a cohort's inputs at ages ``0..k`` (normalised lookback ``L(a) / L(k)``, retention, static covariates;
see :mod:`btyd_ltv.adapters.curve_baselines`) to the log development ratios ``z(a) = log(L(a) / L(k))`` at every
age ``a = k + 1..H_max``. Monotonicity is built in: the network's raw output ``u_j`` becomes a non-negative
increment ``d_j = b_j softplus(u_j + log(e - 1))`` and ``z = cumsum(d)``, where ``b_j > 0`` is the average observed
increment of the training cohorts at step ``j`` (so ``u = 0`` reproduces the pooled average curve, and the final
layers start at zero: the networks learn each cohort's deviation from it). The loss is the squared error on
``z``, averaged over the cells each cohort has been observed at (masked beyond its last age).

Training follows the rule of :func:`btyd_ltv.adapters._nn.train` (Adam on minibatches, early stopping on the
held-out cohorts, best epoch kept) but with its own loop: the jitted step is a module-level function of the
model's graph and arrays, so the refit at the next cutoff of a rolling-origin backtest (same ``k``, same
horizon) reuses the compiled code instead of recompiling (seconds per fit on CPU). Batches are padded to
``batch_size`` rows (padding weighs 0) for the same reason. Dropout is applied in training steps only.

References: Das, Kong, Leach, Mathur, Sen & Yu (2023), "Long-term forecasting with TiDE: Time-series Dense
Encoder", TMLR (arXiv:2304.08424).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from btyd_ltv.adapters._extras import require
from btyd_ltv.adapters.curve_baselines import CurveProblem, check_settings, curve_forecast
from btyd_ltv.backtest import CurveForecast
from btyd_ltv.data.cohorts import CohortColumns
from btyd_ltv.errors import DataValidationError

__all__ = ["CurveMLP", "CurveTiDE"]

_SOFTPLUS_ONE = float(np.log(np.e - 1.0))  # softplus(_SOFTPLUS_ONE) = 1

#: The networks are tiny: a less optimised executable compiles about three times faster on CPU and the steps
#: stay at about a millisecond.
_XLA_OPTIONS = {"xla_backend_optimization_level": 0}


@functools.cache
def _modules() -> dict[str, Any]:
    """The flax module classes and the jitted training / prediction steps, defined on first use so that importing
    this file never imports flax. The steps are module-level ``jax.jit`` functions with the model's graph as a
    static argument, so a refit with the same shapes (the next cutoff of a backtest) reuses the compiled code."""
    jax = require("jax")
    nnx = require("flax.nnx")
    optax = require("optax")
    jnp = jax.numpy

    def dropout(h, key, site: int, rate: float):
        """Inverted dropout with the key ``fold_in(key, site)``; ``key=None`` (evaluation) passes ``h`` unchanged."""
        if key is None or rate <= 0.0:
            return h
        keep = jax.random.bernoulli(jax.random.fold_in(key, site), 1.0 - rate, h.shape)
        return jnp.where(keep, h / (1.0 - rate), 0.0)

    def monotone(raw, base):
        """``z = cumsum(b softplus(u + log(e - 1)))``: non-negative, non-decreasing log ratios."""
        return jnp.cumsum(base * jax.nn.softplus(raw + _SOFTPLUS_ONE), axis=-1)

    class Init:
        """Parameters drawn with NumPy (LeCun-normal kernels, zero biases, unit LayerNorm scales): no eager XLA
        kernel to compile per new weight shape, which would otherwise dominate a refit's time."""

        def __init__(self, seed: Sequence[int]) -> None:
            self.rng = np.random.default_rng(seed)
            self.rngs = nnx.Rngs(0)  # required by the flax constructors, not used by the initialisers below

        def _array(self, values: np.ndarray, dtype: Any) -> Any:
            return jnp.asarray(values, dtype=dtype)

        def linear(self, d_in: int, d_out: int, zero: bool = False) -> Any:
            def kernel(key, shape, dtype=jnp.float32):
                w = np.zeros(shape) if zero else self.rng.standard_normal(shape) / np.sqrt(shape[0])
                return self._array(w, dtype)

            return nnx.Linear(d_in, d_out, kernel_init=kernel, bias_init=self.constant(0.0), rngs=self.rngs)

        def layer_norm(self, d: int) -> Any:
            return nnx.LayerNorm(d, scale_init=self.constant(1.0), bias_init=self.constant(0.0), rngs=self.rngs)

        def constant(self, value: float):
            return lambda key, shape, dtype=jnp.float32: self._array(np.full(shape, value), dtype)

    class ResidualBlock(nnx.Module):
        """TiDE residual block (Das et al. 2023, Fig. 1): ``LayerNorm(dropout(W2 relu(W1 x)) + W_s x)``."""

        def __init__(self, d_in: int, d_hidden: int, d_out: int, *, site: int, dropout: float,
                     layer_norm: bool = True, zero_out: bool = False, init: Init) -> None:
            self.dense1 = init.linear(d_in, d_hidden)
            self.dense2 = init.linear(d_hidden, d_out, zero=zero_out)
            self.skip = init.linear(d_in, d_out, zero=zero_out)
            self.norm = init.layer_norm(d_out) if layer_norm else None
            self.site, self.rate = site, dropout

        def __call__(self, x, key):
            h = dropout(self.dense2(jax.nn.relu(self.dense1(x))), key, self.site, self.rate) + self.skip(x)
            return self.norm(h) if self.norm is not None else h

    class MLP(nnx.Module):
        """``[past, static] -> (Dense-ReLU-dropout) x L -> Dense(S)`` raw increments, last layer zero."""

        def __init__(self, d_in: int, hidden: Sequence[int], n_steps: int, base: np.ndarray, *, dropout: float,
                     init: Init) -> None:
            dims = [d_in, *hidden]
            self.layers = nnx.List([init.linear(a, b) for a, b in zip(dims[:-1], dims[1:])])
            self.out = init.linear(dims[-1], n_steps, zero=True)
            self.base = nnx.Variable(jnp.asarray(base, dtype=jnp.float32))
            self.rate = dropout

        def __call__(self, past, static, key=None):
            h = jnp.concatenate([past.reshape(past.shape[0], -1), static], axis=-1)
            for i, layer in enumerate(self.layers):
                h = dropout(jax.nn.relu(layer(h)), key, i, self.rate)
            return monotone(self.out(h), self.base[...])

    class TiDE(nnx.Module):
        """TiDE (Das et al. 2023): dense encoder over the flattened lookback and static attributes, dense decoder
        to ``p`` values per horizon step, temporal decoder per step on ``[decoded_t, projected covariates_t]``,
        plus a global linear map from the lookback ``L(a) / L(k)`` to the horizon. The only future covariates are
        known age features ``((a - k) / S, log(1 + a) / log(1 + H_max))``, identical across cohorts, so they
        enter the temporal decoder only (in the encoder they would be a constant)."""

        def __init__(self, n_past: int, d_past: int, d_static: int, steps: np.ndarray, base: np.ndarray, *,
                     hidden: int, n_encoder: int, n_decoder: int, decoder_dim: int, temporal_hidden: int,
                     covariate_dim: int, dropout: float, init: Init) -> None:
            n_steps = steps.size
            k = steps[0] - 1
            future = np.stack([(steps - k) / n_steps, np.log1p(steps) / np.log1p(steps[-1])], axis=-1)
            self.future = nnx.Variable(jnp.asarray(future, dtype=jnp.float32))
            self.base = nnx.Variable(jnp.asarray(base, dtype=jnp.float32))
            sites = iter(range(1_000))
            block = functools.partial(ResidualBlock, dropout=dropout, init=init)
            self.projection = block(2, temporal_hidden, covariate_dim, site=next(sites))
            d_in = n_past * d_past + d_static
            self.encoder = nnx.List([block(d_in if i == 0 else hidden, hidden, hidden, site=next(sites))
                                     for i in range(n_encoder)])
            dec = [block(hidden, hidden, hidden, site=next(sites)) for _ in range(n_decoder - 1)]
            dec.append(block(hidden, hidden, decoder_dim * n_steps, site=next(sites)))
            self.decoder = nnx.List(dec)
            self.temporal = block(decoder_dim + covariate_dim, temporal_hidden, 1, site=next(sites),
                                  layer_norm=False, zero_out=True)
            self.lookback = init.linear(n_past, n_steps, zero=True)
            self.n_steps, self.decoder_dim = n_steps, decoder_dim

        def __call__(self, past, static, key=None):
            batch = past.shape[0]
            h = jnp.concatenate([past.reshape(batch, -1), static], axis=-1)
            for layer in self.encoder:
                h = layer(h, key)
            for layer in self.decoder:
                h = layer(h, key)
            g = h.reshape(batch, self.n_steps, self.decoder_dim)
            f = self.projection(self.future[...], None)  # the shared age features: no dropout
            f = jnp.broadcast_to(f[None], (batch,) + f.shape)
            raw = self.temporal(jnp.concatenate([g, f], axis=-1), key)[..., 0]
            raw = raw + self.lookback(past[..., 0])
            return monotone(raw, self.base[...])

    def loss(graphdef, params, rest, batch, key):
        """Squared error on the log ratios over the observed cells (``mask``) of the real rows (``weight``)."""
        z = nnx.merge(graphdef, params, rest)(batch["past"], batch["static"], key)
        w = batch["mask"] * batch["weight"][:, None]
        return jnp.sum(w * (z - batch["y"]) ** 2) / jnp.maximum(jnp.sum(w), 1.0)

    def optimizer(learning_rate, weight_decay):
        return optax.adamw(learning_rate, weight_decay=weight_decay)

    @functools.partial(jax.jit, static_argnums=0, compiler_options=_XLA_OPTIONS)
    def step(graphdef, params, rest, opt_state, batch, key, t, learning_rate, weight_decay):
        key = jax.random.fold_in(key, t)
        value, grads = jax.value_and_grad(loss, argnums=1)(graphdef, params, rest, batch, key)
        updates, opt_state = optimizer(learning_rate, weight_decay).update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    @functools.partial(jax.jit, static_argnums=0, compiler_options=_XLA_OPTIONS)
    def evaluate(graphdef, params, rest, batch):
        w = batch["mask"] * batch["weight"][:, None]
        z = nnx.merge(graphdef, params, rest)(batch["past"], batch["static"])
        return jnp.sum(w * (z - batch["y"]) ** 2), jnp.sum(w)

    @functools.partial(jax.jit, static_argnums=0, compiler_options=_XLA_OPTIONS)
    def predict(graphdef, params, rest, past, static):
        return nnx.merge(graphdef, params, rest)(past, static)

    return {"jax": jax, "nnx": nnx, "optimizer": optimizer, "step": step, "evaluate": evaluate,
            "predict": predict, "Init": Init, "MLP": MLP, "TiDE": TiDE}


def _pad_rows(arrays: dict[str, np.ndarray], size: int) -> dict[str, np.ndarray]:
    """Zero-pad every array to ``size`` rows (padded rows carry ``weight`` 0)."""
    out = {}
    for name, a in arrays.items():
        pad = np.zeros((size - a.shape[0],) + a.shape[1:], dtype=a.dtype)
        out[name] = np.concatenate([a, pad], axis=0)
    return out


def _chunks(arrays: dict[str, np.ndarray], size: int) -> list[dict[str, np.ndarray]]:
    """The rows in chunks of exactly ``size`` (the last zero-padded), so one compiled shape serves any count."""
    n = next(iter(arrays.values())).shape[0]
    padded = _pad_rows(arrays, -(-n // size) * size)
    return [{k: v[i:i + size] for k, v in padded.items()} for i in range(0, max(n, 1), size)]


def _base_increments(problem: CurveProblem) -> np.ndarray:
    """Average observed increment of ``z`` at each step over the training rows, floored at 1e-3 of the largest
    (a step no cohort has revenue at stays trainable)."""
    y = problem.y[problem.train]
    prev = np.concatenate([np.zeros((y.shape[0], 1)), y[:, :-1]], axis=1)
    inc = y - prev
    ok = ~np.isnan(inc)
    mean = np.where(ok.any(axis=0), np.where(ok, inc, 0.0).sum(axis=0) / np.maximum(ok.sum(axis=0), 1), np.nan)
    mean = pd.Series(mean).ffill().fillna(0.0).to_numpy()
    top = float(mean.max()) if mean.size else 0.0
    return np.maximum(mean, 1e-3 * top if top > 0 else 1e-6)


@dataclass(frozen=True, kw_only=True)
class _CurveNet:
    """Settings shared by the neural curve forecasters."""

    learning_rate: float = 3e-3
    batch_size: int = 32
    max_epochs: int = 300
    patience: int = 30
    min_delta: float = 1e-5
    weight_decay: float = 0.0
    dropout: float = 0.1
    min_cohorts: int = 5
    min_interval_residuals: int = 10
    n_samples: int = 1000
    seed: int = 0
    columns: CohortColumns = CohortColumns()

    name = "curve_net"

    def __post_init__(self) -> None:
        for module in ("jax", "flax.nnx", "optax"):
            require(module)
        check_settings(self.name, min_cohorts=self.min_cohorts, min_interval_residuals=self.min_interval_residuals,
                       n_samples=self.n_samples)
        if self.learning_rate <= 0 or self.batch_size < 1 or self.max_epochs < 1 or self.patience < 1:
            raise DataValidationError(f"{self.name}: learning_rate, batch_size, max_epochs and patience must be "
                                      f"positive; got {self.learning_rate}, {self.batch_size}, {self.max_epochs}, "
                                      f"{self.patience}")
        if not 0.0 <= self.dropout < 1.0:
            raise DataValidationError(f"{self.name}: dropout must lie in [0, 1), got {self.dropout!r}")

    def _build(self, problem: CurveProblem, base: np.ndarray, init: Any) -> Any:
        raise NotImplementedError

    def _fit(self, problem: CurveProblem) -> tuple[np.ndarray, np.ndarray]:
        """Adam (AdamW when ``weight_decay > 0``) on minibatches of ``batch_size`` cohorts, validation loss after
        each epoch, stop after ``patience`` epochs without an improvement of ``min_delta``, best epoch kept (the
        rule of :func:`btyd_ltv.adapters._nn.train`, with jitted steps that survive across refits)."""
        mods = _modules()
        jax, nnx = mods["jax"], mods["nnx"]
        model = self._build(problem, _base_increments(problem), mods["Init"]([self.seed, problem.k]))
        graphdef, params, rest = nnx.split(model, nnx.Param, ...)
        step, evaluate, predict = mods["step"], mods["evaluate"], mods["predict"]

        train = problem.arrays(problem.train)
        train["weight"] = np.ones(problem.train.size, dtype=np.float32)
        valid = problem.arrays(problem.valid)
        valid["weight"] = np.ones(problem.valid.size, dtype=np.float32)
        valid = _chunks(valid, self.batch_size)

        def valid_loss(params: Any) -> float:
            num = den = 0.0
            for chunk in valid:
                a, b = evaluate(graphdef, params, rest, chunk)
                num, den = num + float(a), den + float(b)
            return num / max(den, 1e-12)

        opt_state = mods["optimizer"](self.learning_rate, self.weight_decay).init(params)
        rng = np.random.default_rng([self.seed, problem.k])
        key = jax.random.key(self.seed)
        n, bs = problem.train.size, self.batch_size
        n_batches = -(-n // bs)
        best, best_params, since, t = valid_loss(params), params, 0, 0
        for _epoch in range(self.max_epochs):
            order = np.concatenate([rng.permutation(n), np.full(n_batches * bs - n, -1)])
            for b in range(n_batches):
                idx = order[b * bs:(b + 1) * bs]
                batch = {name: a[np.maximum(idx, 0)] for name, a in train.items()}
                batch["weight"] = batch["weight"] * (idx >= 0)
                params, opt_state, _ = step(graphdef, params, rest, opt_state, batch, key, t, self.learning_rate,
                                            self.weight_decay)
                t += 1
            v = valid_loss(params)
            if not np.isfinite(v):
                break
            if v < best - self.min_delta:
                best, best_params, since = v, params, 0
            else:
                since += 1
                if since >= self.patience:
                    break

        def forecast(rows_past: np.ndarray, rows_static: np.ndarray) -> np.ndarray:
            m = rows_past.shape[0]
            chunks = _chunks({"past": rows_past.astype(np.float32), "static": rows_static.astype(np.float32)},
                             self.batch_size)
            z = np.concatenate([np.asarray(predict(graphdef, best_params, rest, c["past"], c["static"]))
                                for c in chunks], axis=0)
            return z[:m, problem.columns].astype(np.float64)

        return (forecast(problem.past[problem.valid], problem.static[problem.valid]),
                forecast(problem.past_target, problem.static_target))

    def __call__(self, history: pd.DataFrame, cohorts: Sequence[str], ages: Sequence[int]) -> CurveForecast:
        return curve_forecast(self.name, history, cohorts, ages, columns=self.columns, seed=self.seed,
                              min_cohorts=self.min_cohorts, min_interval_residuals=self.min_interval_residuals,
                              n_samples=self.n_samples, fit=self._fit)


@dataclass(frozen=True, kw_only=True)
class CurveMLP(_CurveNet):
    """Multilayer perceptron curve forecaster (name ``"mlp"``): ``z = cumsum(b softplus(W_out h + log(e - 1)))``
    with ``h`` the last of the ``hidden`` ReLU layers over the concatenated lookback and static covariates.

    Settings: ``hidden`` widths, ``dropout``, Adam ``learning_rate`` / ``batch_size`` / ``max_epochs`` /
    ``patience`` / ``weight_decay``; ``min_cohorts`` training cohorts observed at a checkpoint to model it
    (else the median multiplier); ``min_interval_residuals`` held-out residuals for predictive draws;
    ``n_samples`` draws; ``seed`` (weights, dropout, split, draws). Fit at every call; see
    :mod:`btyd_ltv.adapters.curve_baselines` for the data, scale, fallback and intervals.
    """

    hidden: tuple[int, ...] = (64, 64)
    name = "mlp"

    def _build(self, problem: CurveProblem, base: np.ndarray, init: Any) -> Any:
        d_in = problem.past.shape[1] * problem.past.shape[2] + problem.static.shape[1]
        return _modules()["MLP"](d_in, tuple(self.hidden), problem.y.shape[1], base, dropout=self.dropout,
                                 init=init)


@dataclass(frozen=True, kw_only=True)
class CurveTiDE(_CurveNet):
    """TiDE curve forecaster (name ``"tide"``; Das et al. 2023): residual MLP blocks
    ``LayerNorm(W2 relu(W1 x) + W_s x)``; ``n_encoder`` blocks over ``[lookback, retention, static]``,
    ``n_decoder`` blocks to ``decoder_dim`` values per step, a temporal-decoder block per step on those and the
    projected age features, plus a linear global skip from the lookback ``L(a) / L(k)`` to the horizon; the
    outputs become monotone log ratios as in :class:`CurveMLP`. Other settings as :class:`CurveMLP`.
    """

    hidden: int = 64
    n_encoder: int = 1
    n_decoder: int = 1
    decoder_dim: int = 8
    temporal_hidden: int = 16
    covariate_dim: int = 4
    name = "tide"

    def _build(self, problem: CurveProblem, base: np.ndarray, init: Any) -> Any:
        if self.n_encoder < 1 or self.n_decoder < 1:
            raise DataValidationError(f"tide: n_encoder and n_decoder must be >= 1, got {self.n_encoder}, "
                                      f"{self.n_decoder}")
        return _modules()["TiDE"](problem.past.shape[1], problem.past.shape[2], problem.static.shape[1],
                                  problem.steps, base, hidden=self.hidden, n_encoder=self.n_encoder,
                                  n_decoder=self.n_decoder, decoder_dim=self.decoder_dim,
                                  temporal_hidden=self.temporal_hidden, covariate_dim=self.covariate_dim,
                                  dropout=self.dropout, init=init)
