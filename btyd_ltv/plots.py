"""Figures of LTV forecasts with posterior bands. Each ``*_data`` function returns the tidy table behind a chart
and each ``*_chart`` draws it and returns the matplotlib Figure (never ``plt.show()``).

``pred_draws`` is a (customers, draws) array of a model's expected value per posterior draw (e.g.
:func:`btyd_ltv.models.ziln.expected_value`); a 1-D array is a point forecast and gets no band.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from btyd_ltv.errors import DataValidationError
from btyd_ltv.metrics import _cumulative_gain, _matrix, _vector, bucket_table, gain_curve, gini

__all__ = [
    "decile_data", "decile_chart", "gain_data", "gain_chart", "fan_chart_data", "fan_chart",
    "compare_decile_data", "compare_decile_chart", "lorenz_data", "lorenz_curves", "calibration_data",
    "calibration_plot", "ppc_overlay_data", "ppc_overlay",
]


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


# ------------------------------------------------------------------------------------------- model comparison
def _comparison_inputs(y_true, predictions: Mapping[str, Any]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``y_true`` and each model's point prediction as 1-D finite float arrays of one length; a (customers,
    draws) array is reduced to its mean over draws. Raises :class:`DataValidationError` naming the model."""
    y = _vector(y_true, "y_true")
    if len(y) == 0:
        raise DataValidationError("y_true is empty: no customers to plot")
    if not isinstance(predictions, Mapping) or len(predictions) == 0:
        raise DataValidationError("predictions must be a non-empty mapping of model name -> predictions")
    out = {}
    for name, value in predictions.items():
        label = f"model {str(name)!r}"
        if np.ndim(value) == 2:
            value = _matrix(value, label, len(y)).mean(axis=1)
        arr = _vector(value, label)
        if len(arr) != len(y):
            raise DataValidationError(f"{label} has {len(arr)} rows but y_true has {len(y)}; they must match")
        out[str(name)] = arr
    return y, out


def _new_axes(ax, figsize):
    import matplotlib.pyplot as plt

    return (ax.figure, ax) if ax is not None else plt.subplots(figsize=figsize)


def compare_decile_data(y_true, predictions: Mapping[str, Any], n_buckets: int = 10) -> pd.DataFrame:
    """Per model, equal-count buckets of customers sorted by that model's prediction
    (:func:`btyd_ltv.metrics.bucket_table`: stable ascending sort, ``np.array_split``) with the bucket means
    :math:`\\bar y_b` (``actual``) and :math:`\\bar{\\hat y}_b` (``predicted``), as in decile MAPE (Wang, Liu &
    Miao 2019). Long table: ``model, bucket`` (1 = lowest predictions), ``n, actual, predicted``."""
    y, preds = _comparison_inputs(y_true, predictions)
    frames = []
    for name, p in preds.items():
        t = bucket_table(y, p, n_buckets)
        frames.append(pd.DataFrame({"model": name, "bucket": t.index.to_numpy() + 1, "n": t["n"].to_numpy(),
                                    "actual": t["true"].to_numpy(), "predicted": t["pred"].to_numpy()}))
    return pd.concat(frames, ignore_index=True)


def compare_decile_chart(y_true, predictions: Mapping[str, Any], n_buckets: int = 10, *, ax=None):
    """Grouped bars of the mean actual value per bucket of each model's prediction, with the bucket's mean
    prediction as a marker on its bar (:func:`compare_decile_data`). A good model's bars rise steeply (ranking)
    and its markers sit on its bars (calibration). One bar container per model (label ``<model>: actual``, its
    bars with gid ``<model>``) and one marker line (gid ``<model>:predicted``)."""
    data = compare_decile_data(y_true, predictions, n_buckets)
    fig, ax = _new_axes(ax, (8, 4.5))
    models = list(pd.unique(data["model"]))
    width = 0.8 / len(models)
    for i, name in enumerate(models):
        d = data[data["model"] == name]
        x = d["bucket"].to_numpy() + (i - (len(models) - 1) / 2) * width
        bars = ax.bar(x, d["actual"], width=width, color=f"C{i}", alpha=0.55, label=f"{name}: actual")
        for patch in bars:
            patch.set_gid(name)
        (marks,) = ax.plot(x, d["predicted"], "D", color=f"C{i}", mec="k", ms=5, label=f"{name}: predicted")
        marks.set_gid(f"{name}:predicted")
    buckets = np.sort(pd.unique(data["bucket"]))
    ax.set_xticks(buckets, [str(b) for b in buckets])
    ax.set_xlabel("bucket of the model's prediction (low to high)")
    ax.set_ylabel("mean value per customer")
    ax.legend(fontsize=8, ncols=2)
    return fig


def lorenz_data(y_true, predictions: Mapping[str, Any]) -> pd.DataFrame:
    """Cumulative share of total actual value held by the top ``i/n`` customers ranked by each model's prediction
    (:func:`btyd_ltv.metrics.gain_curve`, ties by block mean), and the ``perfect`` (ranked by ``y_true``) and
    ``random`` (diagonal) curves. Long table: ``curve, fraction_customers, share_value, gini``, ``n + 1`` rows
    per curve from ``(0, 0)`` to ``(1, 1)``; ``gini`` is :func:`btyd_ltv.metrics.gini` (normalised; 1 for
    ``perfect``, ``(1/n) / Gini_raw(perfect)`` ~ 0 for ``random``). With ``A`` the trapezoid area under a
    curve, the raw Gini is :math:`2A - 1 + 1/n` and the normalised one its ratio to the perfect curve's."""
    y, preds = _comparison_inputs(y_true, predictions)
    reserved = [name for name in preds if name in ("perfect", "random")]
    if reserved:
        raise DataValidationError(f"model name(s) {reserved} are reserved for the reference curves; rename them")
    frames = []
    for name, p in preds.items():
        curve = gain_curve(y, p)
        frames.append(pd.DataFrame({"curve": name, "fraction_customers": curve["fraction_customers"],
                                    "share_value": curve["model"], "gini": gini(y, p)}))
    for name, col, g in (("perfect", "oracle", gini(y, y)), ("random", "random", gini(y, np.zeros_like(y)))):
        frames.append(pd.DataFrame({"curve": name, "fraction_customers": curve["fraction_customers"],
                                    "share_value": curve[col], "gini": g}))
    return pd.concat(frames, ignore_index=True)


def lorenz_curves(y_true, predictions: Mapping[str, Any], *, ax=None):
    """Lorenz (cumulative gain) curves of every model on one axes with the perfect-ranking and random lines;
    each model's normalised Gini (:func:`btyd_ltv.metrics.gini`) is in the legend (:func:`lorenz_data`).
    Lines carry gid ``<model>``, ``perfect`` and ``random``."""
    data = lorenz_data(y_true, predictions)
    fig, ax = _new_axes(ax, (5, 5))
    for name, style in (("perfect", dict(color="0.3", ls="--")), ("random", dict(color="0.6", ls=":"))):
        d = data[data["curve"] == name]
        ax.plot(d["fraction_customers"], d["share_value"], label=name, **style)[0].set_gid(name)
    models = [c for c in pd.unique(data["curve"]) if c not in ("perfect", "random")]
    for i, name in enumerate(models):
        d = data[data["curve"] == name]
        (line,) = ax.plot(d["fraction_customers"], d["share_value"], color=f"C{i}",
                          label=f"{name} (Gini {d['gini'].iloc[0]:.3f})")
        line.set_gid(name)
    ax.set_xlabel("fraction of customers (by prediction, high to low)")
    ax.set_ylabel("cumulative share of actual value")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.legend(loc="lower right", fontsize=8)
    return fig


def calibration_data(y_true, predictions: Mapping[str, Any], n_bins: int = 10, *,
                     strategy: str = "quantile") -> pd.DataFrame:
    """Mean prediction and mean actual value in bins of each model's prediction (a reliability diagram for a
    continuous target). ``strategy="quantile"``: ``n_bins`` equal-count bins of the sorted prediction
    (:func:`btyd_ltv.metrics.bucket_table`); ``"log"``: ``n_bins`` equal-width bins of ``log1p(prediction)``
    between its minimum and maximum (empty bins left out; needs predictions ``> -1``). Long table:
    ``model, bin`` (1 = lowest), ``n, predicted, actual``. A calibrated model has ``actual ~ predicted``."""
    if strategy not in ("quantile", "log"):
        raise DataValidationError(f"strategy must be 'quantile' or 'log', got {strategy!r}")
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise DataValidationError(f"n_bins must be a positive integer, got {n_bins!r}")
    y, preds = _comparison_inputs(y_true, predictions)
    frames = []
    for name, p in preds.items():
        if strategy == "quantile":
            t = bucket_table(y, p, int(n_bins))
            n, pred, act = t["n"].to_numpy(), t["pred"].to_numpy(), t["true"].to_numpy()
        else:
            if (p <= -1).any():
                i = int(np.argmax(p <= -1))
                raise DataValidationError(f"model {name!r}: value {p[i]} at row {i} is <= -1; strategy='log' "
                                          "bins log1p(prediction)")
            z = np.log1p(p)
            edges = np.linspace(z.min(), z.max(), int(n_bins) + 1)
            idx = np.clip(np.searchsorted(edges, z, side="right") - 1, 0, int(n_bins) - 1)
            n = np.bincount(idx, minlength=int(n_bins))
            with np.errstate(invalid="ignore", divide="ignore"):
                pred = np.bincount(idx, weights=p, minlength=int(n_bins)) / n
                act = np.bincount(idx, weights=y, minlength=int(n_bins)) / n
            keep = n > 0
            n, pred, act = n[keep], pred[keep], act[keep]
        frames.append(pd.DataFrame({"model": name, "bin": np.arange(1, len(n) + 1), "n": n.astype(np.int64),
                                    "predicted": pred, "actual": act}))
    return pd.concat(frames, ignore_index=True)


def calibration_plot(y_true, predictions: Mapping[str, Any], n_bins: int = 10, *, strategy: str = "quantile",
                     log_axes: bool = False, ax=None):
    """Mean actual against mean predicted value per bin of prediction for every model, with the line
    ``y = x`` (:func:`calibration_data`). ``log_axes=True`` draws both axes on a log scale (bins whose means
    are not positive are then not shown). Lines carry gid ``<model>`` and ``identity``."""
    data = calibration_data(y_true, predictions, n_bins, strategy=strategy)
    fig, ax = _new_axes(ax, (5, 5))
    models = list(pd.unique(data["model"]))
    for i, name in enumerate(models):
        d = data[data["model"] == name]
        px, py = d["predicted"].to_numpy(), d["actual"].to_numpy()
        if log_axes:
            px, py = np.where(px > 0, px, np.nan), np.where(py > 0, py, np.nan)
        (line,) = ax.plot(px, py, "o-", color=f"C{i}", ms=4, label=name)
        line.set_gid(name)
    both = data[["predicted", "actual"]].to_numpy()
    if log_axes:
        both = both[both > 0]
        ax.set_xscale("log")
        ax.set_yscale("log")
    lo, hi = (float(both.min()), float(both.max())) if both.size else (1.0, 10.0)
    ax.plot([lo, hi], [lo, hi], color="0.5", ls="--", lw=1, label="y = x")[0].set_gid("identity")
    ax.set_xlabel("mean predicted value in bin")
    ax.set_ylabel("mean actual value in bin")
    ax.legend(fontsize=8)
    return fig


def _ppc_inputs(y_true, samples, point_predictions):
    y = _vector(y_true, "y_true")
    if len(y) == 0:
        raise DataValidationError("y_true is empty: no customers to plot")
    draws = _matrix(samples, "samples", len(y))
    preds = {} if point_predictions is None or len(point_predictions) == 0 else \
        _comparison_inputs(y, point_predictions)[1]
    for name, arr in [("y_true", y), ("samples", draws)] + [(f"model {k!r}", v) for k, v in preds.items()]:
        if (arr < 0).any():
            i = int(np.flatnonzero((arr < 0).reshape(len(arr), -1).any(axis=1))[0])
            raise DataValidationError(f"{name}: negative value at row {i}; the posterior predictive check compares "
                                      "non-negative values (spend) on the log1p scale")
    return y, draws, preds


def ppc_overlay_data(y_true, samples, point_predictions: Mapping[str, Any] | None = None, *,
                     label: str = "posterior predictive", prob: float = 0.9, n_grid: int = 200,
                     max_draws: int = 200) -> pd.DataFrame:
    """The tidy table behind :func:`ppc_overlay`, a posterior predictive check (Gelman et al., *Bayesian Data
    Analysis*, 3rd ed., ch. 6): column ``s`` of ``samples`` (customers x draws) is one replicated data set
    :math:`y^{rep}_s`. Rows (``statistic, source, kind, x, value, low, high``):

    - ``statistic="ecdf"``: :math:`F(x) = \\frac1n \\#\\{i: \\log(1 + v_i) \\le x\\}` on ``n_grid`` points ``x``
      from 0 to the largest of the observed and point-predicted values and the 99.9th percentile of the draws,
      for the observed values (``kind="observed"``), each replicated data set (``kind="replicated"``, source
      ``label``: ``value`` = median over draws, ``low``/``high`` = central ``prob`` interval; at most
      ``max_draws`` evenly spaced draws) and each model's point predictions (``kind="point"``);
    - ``statistic="share_zero"`` (share of customers with value 0) and ``"total"`` (sum over customers), ``x``
      NaN, for the same sources (the replicated ones over every draw).

    ``low``/``high`` are NaN except for the replicated rows.
    """
    if not 0.0 < prob < 1.0:
        raise DataValidationError(f"prob must lie in (0, 1), got {prob!r}")
    y, draws, preds = _ppc_inputs(y_true, samples, point_predictions)
    lq, hq = (1 - prob) / 2, (1 + prob) / 2
    upper = max([np.log1p(y.max()), np.log1p(np.quantile(draws, 0.999))]
                + [np.log1p(p.max()) for p in preds.values()])
    grid = np.linspace(0.0, upper if upper > 0 else 1.0, int(n_grid))
    sources = [("observed", "observed", y)] + [(name, "point", p) for name, p in preds.items()]
    rows = []

    def ecdf(values: np.ndarray) -> np.ndarray:
        return np.searchsorted(np.sort(np.log1p(values)), grid, side="right") / len(values)

    for source, kind, v in sources:
        rows.append(pd.DataFrame({"statistic": "ecdf", "source": source, "kind": kind, "x": grid,
                                  "value": ecdf(v), "low": np.nan, "high": np.nan}))
    rep = np.stack([ecdf(d) for d in _thin(draws, max_draws).T])
    lo, med, hi = np.quantile(rep, [lq, 0.5, hq], axis=0)
    rows.append(pd.DataFrame({"statistic": "ecdf", "source": label, "kind": "replicated", "x": grid,
                              "value": med, "low": lo, "high": hi}))
    stats = {"share_zero": lambda a: (a == 0).mean(axis=0), "total": lambda a: a.sum(axis=0)}
    for stat, fn in stats.items():
        for source, kind, v in sources:
            rows.append(pd.DataFrame({"statistic": [stat], "source": source, "kind": kind, "x": np.nan,
                                      "value": float(fn(v)), "low": np.nan, "high": np.nan}))
        lo, med, hi = np.quantile(fn(draws), [lq, 0.5, hq])
        rows.append(pd.DataFrame({"statistic": [stat], "source": label, "kind": "replicated", "x": np.nan,
                                  "value": med, "low": lo, "high": hi}))
    return pd.concat(rows, ignore_index=True)


def ppc_overlay(y_true, samples, point_predictions: Mapping[str, Any] | None = None, *,
                label: str = "posterior predictive", prob: float = 0.9, n_grid: int = 200, max_draws: int = 200):
    """Posterior predictive check of a Bayesian model with the baselines' point predictions overlaid
    (:func:`ppc_overlay_data`). Three panels: the ECDF of ``log1p(value)`` (observed in black, the ``prob``
    band and median of the replicated data sets, each model's point predictions as its own ECDF), the share of
    zeros and the total (observed as a vertical line, replicated as median and ``prob`` interval, models as
    markers). A point forecast is an expectation, so its ECDF is narrower than the data's; the band should
    cover the observed curve. Artists carry gid ``observed``, ``replicated``, ``replicated_band`` and
    ``<model>`` (one per model and panel)."""
    import matplotlib.pyplot as plt

    data = ppc_overlay_data(y_true, samples, point_predictions, label=label, prob=prob, n_grid=n_grid,
                            max_draws=max_draws)
    fig, axes = plt.subplots(1, 3, figsize=(13, 4), gridspec_kw={"width_ratios": [2.2, 1, 1]},
                             constrained_layout=True)
    models = list(pd.unique(data.loc[data["kind"] == "point", "source"]))
    colour = {name: f"C{i + 1}" for i, name in enumerate(models)}
    ax = axes[0]
    e = data[data["statistic"] == "ecdf"]
    rep = e[e["kind"] == "replicated"]
    ax.fill_between(rep["x"], rep["low"], rep["high"], color="C0", alpha=0.3, lw=0,
                    label=f"{label} ({prob:.0%} band)").set_gid("replicated_band")
    ax.plot(rep["x"], rep["value"], color="C0", lw=1, label=f"{label} (median)")[0].set_gid("replicated")
    obs = e[e["kind"] == "observed"]
    ax.plot(obs["x"], obs["value"], color="k", lw=1.5, drawstyle="steps-post", label="observed")[0] \
        .set_gid("observed")
    for name in models:
        d = e[e["source"] == name]
        ax.plot(d["x"], d["value"], color=colour[name], lw=1.2, drawstyle="steps-post", label=name)[0] \
            .set_gid(name)
    ax.set_xlabel("log(1 + value)")
    ax.set_ylabel("share of customers <= x")
    ax.set_ylim(0, 1.01)
    ax.legend(fontsize=8, loc="lower right")
    for ax, stat, title in ((axes[1], "share_zero", "share of zeros"), (axes[2], "total", "total")):
        d = data[data["statistic"] == stat]
        rep = d[d["kind"] == "replicated"].iloc[0]
        ax.errorbar([rep["value"]], [0], xerr=[[rep["value"] - rep["low"]], [rep["high"] - rep["value"]]],
                    fmt="o", color="C0", capsize=4)[0].set_gid("replicated")
        ax.axvline(d.loc[d["kind"] == "observed", "value"].iloc[0], color="k", lw=1.5).set_gid("observed")
        for j, name in enumerate(models, start=1):
            value = d.loc[d["source"] == name, "value"].iloc[0]
            ax.plot([value], [j], "D", color=colour[name], mec="k")[0].set_gid(name)
        ax.set_yticks(range(len(models) + 1), [label] + models, fontsize=8)
        ax.set_ylim(-0.7, len(models) + 0.7)
        ax.invert_yaxis()
        ax.set_title(title, fontsize=10)
    return fig
