"""Figures of LTV forecasts with posterior bands. Each ``*_data`` function returns the tidy table behind a chart
and each ``*_chart`` draws it and returns the matplotlib Figure (never ``plt.show()``).

``pred_draws`` is a (customers, draws) array of a model's expected value per posterior draw (e.g.
:func:`btyd_ltv.models.ziln.expected_value`); a 1-D array is a point forecast and gets no band.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from btyd_ltv.metrics import _cumulative_gain, gain_curve

__all__ = ["decile_data", "decile_chart", "gain_data", "gain_chart"]


def _as_draws(pred_draws) -> np.ndarray:
    a = np.asarray(pred_draws, dtype=np.float64)
    return a[:, None] if a.ndim == 1 else a


def _thin(draws: np.ndarray, max_draws: int) -> np.ndarray:
    if draws.shape[1] <= max_draws:
        return draws
    return draws[:, np.linspace(0, draws.shape[1] - 1, max_draws).round().astype(int)]


def decile_data(y_true, pred_draws, n_buckets: int = 10, *, prob: float = 0.9) -> pd.DataFrame:
    """Equal-count buckets of customers ordered by the posterior-mean prediction (as in decile MAPE,
    :func:`btyd_ltv.metrics.bucket_table`): per bucket the mean actual value, the mean prediction and the
    central ``prob`` interval of the bucket mean over posterior draws (parameter uncertainty)."""
    y = np.asarray(y_true, dtype=np.float64)
    draws = _as_draws(pred_draws)
    mean = draws.mean(axis=1)
    order = np.argsort(mean, kind="stable")
    rows = []
    for b, idx in enumerate(np.array_split(order, n_buckets)):
        if idx.size == 0:
            continue
        bucket_means = draws[idx].mean(axis=0)
        lo, hi = np.quantile(bucket_means, [(1 - prob) / 2, (1 + prob) / 2])
        rows.append({"bucket": b + 1, "n": idx.size, "actual": y[idx].mean(), "predicted": mean[idx].mean(),
                     "low": lo, "high": hi})
    return pd.DataFrame(rows).set_index("bucket")


def decile_chart(y_true, pred_draws, n_buckets: int = 10, *, prob: float = 0.9, ax=None, label: str = "model"):
    """Bar chart of mean actual vs mean predicted value per prediction bucket, with the posterior interval."""
    import matplotlib.pyplot as plt

    data = decile_data(y_true, pred_draws, n_buckets, prob=prob)
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(7, 4))
    x = np.arange(len(data))
    ax.bar(x - 0.2, data["actual"], width=0.4, label="actual", color="0.6")
    err = np.vstack([data["predicted"] - data["low"], data["high"] - data["predicted"]])
    ax.bar(x + 0.2, data["predicted"], width=0.4, label=f"{label} ({prob:.0%} interval)", color="C0",
           yerr=np.maximum(err, 0), capsize=3)
    ax.set_xticks(x, data.index.astype(str))
    ax.set_xlabel("bucket of predicted value (low to high)")
    ax.set_ylabel("mean value per customer")
    ax.legend()
    return fig


def gain_data(y_true, pred_draws, *, prob: float = 0.9, max_draws: int = 200, n_points: int = 201) -> pd.DataFrame:
    """Cumulative gain curve (share of total value held by the top fraction of customers by prediction) for
    the posterior-mean ranking, with the central ``prob`` band of the curves obtained by ranking with each
    posterior draw (at most ``max_draws``), and the oracle and random curves; ``n_points`` grid points."""
    y = np.asarray(y_true, dtype=np.float64)
    draws = _as_draws(pred_draws)
    base = gain_curve(y, draws.mean(axis=1))
    n = len(y)
    grid = np.linspace(0, 1, n_points)
    pos = np.round(grid * n).astype(int)
    out = pd.DataFrame({"fraction_customers": grid, "model": base["model"].to_numpy()[pos],
                        "oracle": base["oracle"].to_numpy()[pos], "random": grid})
    thin = _thin(draws, max_draws)
    if thin.shape[1] > 1:
        curves = np.stack([np.r_[0.0, _cumulative_gain(y, thin[:, s])][pos] for s in range(thin.shape[1])])
        out["low"], out["high"] = np.quantile(curves, [(1 - prob) / 2, (1 + prob) / 2], axis=0)
    return out


def gain_chart(y_true, pred_draws, *, prob: float = 0.9, ax=None, label: str = "model"):
    """Gain (Lorenz-type) chart with the posterior band of the model's curve, oracle and random lines."""
    import matplotlib.pyplot as plt

    data = gain_data(y_true, pred_draws, prob=prob)
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(5, 5))
    f = data["fraction_customers"]
    ax.plot(f, data["oracle"], color="0.3", ls="--", label="oracle")
    ax.plot(f, data["random"], color="0.6", ls=":", label="random")
    ax.plot(f, data["model"], color="C0", label=label)
    if "low" in data:
        ax.fill_between(f, data["low"], data["high"], color="C0", alpha=0.25, label=f"{prob:.0%} band")
    ax.set_xlabel("fraction of customers (by prediction, high to low)")
    ax.set_ylabel("share of total value")
    ax.legend(loc="lower right")
    return fig
