"""Training loop shared by the neural baselines: Adam (optax) on minibatches, early stopping on a validation
split, the best weights restored. Seeded: the same seed gives the same weights on the same machine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from btyd_ltv.adapters._extras import require
from btyd_ltv.adapters.base import CustomerData
from btyd_ltv.errors import DataValidationError

__all__ = ["TrainConfig", "TrainResult", "check_config", "train", "split_valid"]


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser and stopping settings: Adam at ``learning_rate``, ``batch_size`` rows per step, at most
    ``max_epochs`` passes, stop after ``patience`` epochs without a validation improvement of ``min_delta``."""

    learning_rate: float = 1e-3
    batch_size: int = 1024
    max_epochs: int = 200
    patience: int = 10
    min_delta: float = 1e-5
    weight_decay: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.learning_rate <= 0 or self.batch_size < 1 or self.max_epochs < 1 or self.patience < 1:
            raise DataValidationError(f"TrainConfig needs positive learning_rate, batch_size, max_epochs and "
                                      f"patience; got {self}")


def check_config(config: Any) -> TrainConfig:
    """``config`` itself, or a :class:`DataValidationError` when it is not a :class:`TrainConfig`."""
    if not isinstance(config, TrainConfig):
        raise DataValidationError(f"config must be a TrainConfig, got {type(config).__name__}")
    return config


@dataclass
class TrainResult:
    """Per-epoch ``train_loss`` and ``valid_loss``, and the epoch whose weights were kept."""

    train_loss: list[float]
    valid_loss: list[float]
    best_epoch: int


def split_valid(data: CustomerData, fraction: float = 0.2, seed: int = 0) -> tuple[CustomerData, CustomerData]:
    """Random ``(train, valid)`` split of ``data`` (``fraction`` to validation), seeded."""
    if not 0.0 < fraction < 1.0:
        raise DataValidationError(f"validation fraction must lie in (0, 1), got {fraction}")
    if data.n < 2:
        raise DataValidationError(f"need at least 2 customers to split off a validation set, got {data.n}")
    rng = np.random.default_rng(seed)
    is_valid = rng.random(data.n) < fraction
    if is_valid.all() or not is_valid.any():
        is_valid[:] = False
        is_valid[rng.integers(data.n)] = True
    return data.take(~is_valid), data.take(is_valid)


def train(
    model: Any,
    loss_fn: Callable[[Any, Mapping[str, Any]], Any],
    train_arrays: Mapping[str, np.ndarray],
    valid_arrays: Mapping[str, np.ndarray],
    config: TrainConfig = TrainConfig(),
) -> TrainResult:
    """Train a flax ``nnx.Module`` in place by minimising ``loss_fn(model, batch)`` (a scalar mean over the
    batch's rows); every array in ``train_arrays`` / ``valid_arrays`` has the customers on axis 0. After each
    epoch the validation loss (row-weighted mean over batches) is computed; training stops after
    ``config.patience`` epochs without improvement and the weights of the best epoch are restored.
    """
    jax = require("jax")
    nnx = require("flax.nnx")
    optax = require("optax")
    jnp = jax.numpy

    n = _rows(train_arrays, "training")
    n_valid = _rows(valid_arrays, "validation")
    tx = (optax.adamw(config.learning_rate, weight_decay=config.weight_decay) if config.weight_decay
          else optax.adam(config.learning_rate))
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer, batch):
        loss, grads = nnx.value_and_grad(loss_fn)(model, batch)
        optimizer.update(model, grads)
        return loss

    @nnx.jit
    def evaluate(model, batch):
        return loss_fn(model, batch)

    def batches(arrays: Mapping[str, np.ndarray], order: np.ndarray):
        bs = min(config.batch_size, order.size)
        # Only full batches in training (one compiled shape); the remainder rows join the next epoch's shuffle.
        for start in range(0, order.size - bs + 1, bs):
            idx = order[start:start + bs]
            yield idx.size, {k: jnp.asarray(v[idx]) for k, v in arrays.items()}

    def valid_loss() -> float:
        total = 0.0
        order = np.arange(n_valid)
        bs = min(config.batch_size, n_valid)
        for start in range(0, n_valid, bs):
            idx = order[start:start + bs]
            total += float(evaluate(model, {k: jnp.asarray(v[idx]) for k, v in valid_arrays.items()})) * idx.size
        return total / n_valid

    rng = np.random.default_rng(config.seed)
    best, best_epoch, best_state = valid_loss(), 0, jax.tree.map(lambda a: a, nnx.state(model))
    train_hist, valid_hist = [float("nan")], [best]
    since = 0
    for epoch in range(1, config.max_epochs + 1):
        total, rows = 0.0, 0
        for m, batch in batches(train_arrays, rng.permutation(n)):
            total += float(step(model, optimizer, batch)) * m
            rows += m
        train_hist.append(total / max(rows, 1))
        v = valid_loss()
        valid_hist.append(v)
        if not np.isfinite(v):
            break
        if v < best - config.min_delta:
            best, best_epoch, since = v, epoch, 0
            best_state = jax.tree.map(lambda a: a, nnx.state(model))
        else:
            since += 1
            if since >= config.patience:
                break
    nnx.update(model, best_state)
    return TrainResult(train_hist, valid_hist, best_epoch)


def _rows(arrays: Mapping[str, np.ndarray], label: str) -> int:
    sizes = {k: np.asarray(v).shape[0] for k, v in arrays.items()}
    if not sizes:
        raise DataValidationError(f"no {label} arrays")
    if len(set(sizes.values())) != 1:
        raise DataValidationError(f"{label} arrays disagree on the number of rows: {sizes}")
    n = next(iter(sizes.values()))
    if n < 1:
        raise DataValidationError(f"the {label} set is empty")
    return n
