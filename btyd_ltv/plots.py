"""Figures of LTV forecasts with posterior bands. Each ``*_data`` function returns the tidy table behind a chart
and each ``*_chart`` draws it and returns the matplotlib Figure (never ``plt.show()``).

``pred_draws`` is a (customers, draws) array of a model's expected value per posterior draw (e.g.
:func:`btyd_ltv.models.ziln.expected_value`); a 1-D array is a point forecast and gets no band.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from btyd_ltv.metrics import _cumulative_gain, gain_curve

__all__ = ["decile_data", "decile_chart", "gain_data", "gain_chart", "fan_chart_data", "fan_chart"]


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


# ------------------------------------------------------------------------------------------------ fan charts
def _fan_bands(columns) -> list[tuple[str, str, float]]:
    """Central bands ``(low column, high column, probability)`` from symmetric quantile columns (``q05``/``q95``
    -> 90%, ``q25``/``q75`` -> 50%), widest first."""
    from btyd_ltv.data.predictions import quantile_column, quantile_columns

    probs = quantile_columns(columns)
    bands = []
    for low, p in probs.items():
        high = quantile_column(1 - p)
        if p < 0.5 and high in probs:
            bands.append((low, high, round(1 - 2 * p, 6)))
    return sorted(bands, key=lambda b: -b[2])


def fan_chart_data(curves: pd.DataFrame, cohorts=None, *, max_panels: int = 12) -> pd.DataFrame:
    """The rows of a :func:`btyd_ltv.curves.curve_table`-shaped frame that :func:`fan_chart` draws: the chosen
    cohorts (default: the first ``max_panels`` in the frame's order; at most ``max_panels`` of a given list), in
    panel order and by age within a cohort.

    ``curves`` needs ``cohort``, ``age`` and ``q50`` or ``mean``; ``observed`` and symmetric quantile pairs
    (``q05``/``q95``, ``q25``/``q75``, ...) are drawn where present. An unknown cohort raises
    :class:`~btyd_ltv.errors.DataValidationError` naming it; cohorts match by label or by its string (as read
    back from CSV).
    """
    from btyd_ltv.errors import DataValidationError

    if not isinstance(curves, pd.DataFrame):
        raise DataValidationError(f"curves must be a DataFrame like btyd_ltv.curves.curve_table's, got "
                                  f"{type(curves).__name__}")
    missing = [c for c in ("cohort", "age") if c not in curves.columns]
    if "q50" not in curves.columns and "mean" not in curves.columns:
        missing.append("q50 (or mean)")
    if missing:
        raise DataValidationError(f"curves: missing column(s) {missing}; it has {list(map(str, curves.columns))}. "
                                  "Build it with btyd_ltv.curves.curve_table")
    if max_panels < 1:
        raise DataValidationError(f"max_panels must be >= 1, got {max_panels}")
    labels = list(pd.unique(curves["cohort"]))
    if not labels:
        raise DataValidationError("curves has no rows; there is no cohort to draw")
    if cohorts is None:
        chosen = labels[:max_panels]
    else:
        if isinstance(cohorts, (str, bytes)) or not hasattr(cohorts, "__iter__"):
            cohorts = [cohorts]
        lookup = {str(c): c for c in labels}
        lookup.update({c: c for c in labels})
        chosen = []
        for c in cohorts:
            key = c if c in lookup else str(c)
            if key not in lookup:
                shown = ", ".join(repr(x) for x in labels[:5]) + (", ..." if len(labels) > 5 else "")
                raise DataValidationError(f"fan_chart: cohort {c!r} is not in curves; it has {len(labels)} "
                                          f"cohort(s): {shown}")
            chosen.append(lookup[key])
        chosen = list(dict.fromkeys(chosen))[:max_panels]
    order = {c: i for i, c in enumerate(chosen)}
    rows = curves[curves["cohort"].isin(chosen)]
    rank = rows["cohort"].map(order)
    return rows.assign(_panel=rank.to_numpy()).sort_values(["_panel", "age"], kind="stable").drop(columns="_panel")


def fan_chart(
    curves: pd.DataFrame,
    cohorts=None,
    *,
    ncols: int = 3,
    max_panels: int = 12,
    title: str | None = None,
    ylabel: str = "cumulative LTV per install",
    xlabel: str = "age (days)",
    roas_line=None,
):
    """Fan chart of cumulative LTV curves, one panel per cohort, from a :func:`btyd_ltv.curves.curve_table`
    frame (or :func:`btyd_ltv.curves.roas_table`'s, with ``roas_line={c: 1.0}``).

    Each panel shows the observed curve as dots (ages with an ``observed`` value only), the posterior median
    (``q50``, else ``mean``) as a line, and the central bands of the symmetric quantile pairs: 90% (``q05``-
    ``q95``) and 50% (``q25``-``q75``). ``roas_line`` maps a cohort to a break-even level drawn as a dashed
    horizontal line: ``cost / installs`` on the LTV-per-install scale (1 on the ROAS scale). Panels: see
    :func:`fan_chart_data`; ``ncols`` per row. Artists carry gids ``observed``, ``median``, ``band_90``,
    ``band_50`` and ``break_even``.
    """
    import matplotlib.pyplot as plt

    from btyd_ltv.errors import DataValidationError

    if ncols < 1:
        raise DataValidationError(f"ncols must be >= 1, got {ncols}")
    data = fan_chart_data(curves, cohorts, max_panels=max_panels)
    panels = list(pd.unique(data["cohort"]))
    bands = _fan_bands(data.columns)
    centre = "q50" if "q50" in data.columns else "mean"
    lines = dict(roas_line or {})
    ncols = min(ncols, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4 * ncols, 3 * nrows), squeeze=False, constrained_layout=True)
    flat = axes.ravel()
    for ax in flat[len(panels):]:
        fig.delaxes(ax)
    for ax, cohort in zip(flat, panels):
        d = data[data["cohort"] == cohort]
        age = d["age"].to_numpy(dtype=np.float64)
        for low, high, prob in bands:
            alpha = 0.12 + 0.5 * (1 - prob) if prob < 1 else 0.1
            band = ax.fill_between(age, d[low].to_numpy(dtype=np.float64), d[high].to_numpy(dtype=np.float64),
                                   color="C0", alpha=min(alpha, 0.5), lw=0, label=f"{prob:.0%} interval")
            band.set_gid(f"band_{prob * 100:g}")
        (median,) = ax.plot(age, d[centre].to_numpy(dtype=np.float64), color="C0", lw=1.5,
                            label="median" if centre == "q50" else "mean")
        median.set_gid("median")
        if "observed" in d.columns:
            obs = d["observed"].to_numpy(dtype=np.float64)
            seen = np.isfinite(obs)
            if seen.any():
                (dots,) = ax.plot(age[seen], obs[seen], "o", color="k", ms=2.5, label="observed")
                dots.set_gid("observed")
        level = lines.get(cohort, lines.get(str(cohort)))
        if level is not None and np.isfinite(level):
            ax.axhline(level, color="C3", ls="--", lw=1, label="break-even").set_gid("break_even")
        ax.set_title(str(cohort), fontsize=10)
        ax.margins(x=0)
    legend = {}
    for ax in flat[: len(panels)]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    flat[0].legend(list(legend.values()), list(legend), fontsize=7, loc="upper left")
    fig.supxlabel(xlabel)
    fig.supylabel(ylabel)
    if title is not None:
        fig.suptitle(title)
    return fig
