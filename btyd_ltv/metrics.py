"""LTV metrics: ranking (gain curve, Gini, Spearman, AUC), calibration by bucket (decile / percentile MAPE),
point errors (RMSE, MAE, RMSLE, R^2) and probabilistic scores (interval coverage, CRPS, log predictive
density), plus :func:`report`, which scores several models on one holdout in one tidy table.

Pure numpy / pandas; scipy is imported inside the functions that need it, so ``import btyd_ltv.metrics`` is
fast and never starts JAX.

Conventions. Every array argument is 1-D with one entry per customer (``samples`` and ``log_lik``: customers
x draws), matched by position (pandas indexes are ignored). The single-metric functions raise
:class:`~btyd_ltv.errors.DataValidationError` where a metric is undefined on the data (e.g. AUC with one
class); :func:`report` turns those into NaN.

References
----------
Wang, Liu & Miao (2019), *A Deep Probabilistic Model for Customer Lifetime Value Prediction*,
arXiv:1912.07753, and its code ``google/lifetime_value`` (``lifetime_value/metrics.py``): gain chart, Gini,
decile MAPE, normalised RMSE / MAE.
Liu et al., *MEAN* (multi-view CLTV with distribution alignment): Percentile MAPE, Gini, Spearman, AUC.
Gneiting & Raftery (2007), *Strictly Proper Scoring Rules, Prediction, and Estimation*, JASA 102: CRPS.
Ferro (2014), *Fair scores for ensemble forecasts*, QJRMS 140: the fair (unbiased) ensemble CRPS.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from btyd_ltv.data.predictions import quantile_columns
from btyd_ltv.errors import DataValidationError

__all__ = [
    "gain_curve",
    "gini",
    "bucket_table",
    "bucket_mape",
    "decile_mape",
    "percentile_mape",
    "spearman",
    "auc",
    "auc_positive",
    "top_k_auc",
    "rmse",
    "mae",
    "normalized_rmse",
    "normalized_mae",
    "rmsle",
    "r2",
    "interval_coverage",
    "coverage_from_samples",
    "crps_samples",
    "crps_normal",
    "log_predictive_density",
    "report",
    "report_markdown",
]

ArrayLike = Sequence[float] | np.ndarray | pd.Series

# --------------------------------------------------------------------------------------------------------------
# input helpers
# --------------------------------------------------------------------------------------------------------------

def _row_label(values: Any, pos: int) -> str:
    """``row 3`` or, for a pandas object with a non-default index, ``row 3 (index 'c17')``."""
    index = getattr(values, "index", None)
    if isinstance(index, pd.Index) and not isinstance(index, pd.RangeIndex):
        return f"row {pos} (index {index[pos]!r})"
    return f"row {pos}"


def _first_bad(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask.reshape(len(mask), -1).any(axis=1))[0])


def _vector(values: Any, name: str, *, finite: bool = True) -> np.ndarray:
    """``values`` as a 1-D float64 array; NaN / inf raise naming ``name`` and the first bad row."""
    try:
        if isinstance(values, (pd.Series, pd.Index)):
            arr = values.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataValidationError(f"{name}: cannot be read as numbers ({exc})") from exc
    if arr.ndim != 1:
        raise DataValidationError(f"{name}: expected a 1-D array (one value per customer), got shape {arr.shape}")
    if finite:
        bad = ~np.isfinite(arr)
        if bad.any():
            i = _first_bad(bad)
            raise DataValidationError(
                f"{name}: non-finite value {arr[i]} at {_row_label(values, i)}; drop or impute that row first"
            )
    return arr


def _pair(y_true: Any, y_pred: Any, pred_name: str = "y_pred") -> tuple[np.ndarray, np.ndarray]:
    """Two 1-D finite arrays of the same, non-zero length."""
    t = _vector(y_true, "y_true")
    p = _vector(y_pred, pred_name)
    if len(t) != len(p):
        raise DataValidationError(f"{pred_name} has {len(p)} rows but y_true has {len(t)}; they must match")
    if len(t) == 0:
        raise DataValidationError("y_true is empty: no customers to score")
    return t, p


def _matrix(values: Any, name: str, n: int, *, allow_neg_inf: bool = False) -> np.ndarray:
    """A finite (customers, draws) float64 array with ``n`` rows and at least one draw."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] != n or arr.shape[1] < 1:
        raise DataValidationError(f"{name}: expected shape ({n}, draws), got {arr.shape}")
    bad = np.isnan(arr) | (arr == np.inf) | ((arr == -np.inf) if not allow_neg_inf else False)
    if np.any(bad):
        i = _first_bad(np.asarray(bad))
        raise DataValidationError(f"{name}: non-finite value at row {i}; drop or impute that row first")
    return arr


def _average_ranks(x: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(x, method="average")


# --------------------------------------------------------------------------------------------------------------
# ranking: gain curve, Gini
# --------------------------------------------------------------------------------------------------------------

def _cumulative_gain(y_true: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Cumulative share of ``sum(y_true)`` over customers sorted by ``score`` descending (n values); within a
    block of tied scores every member contributes the block mean of ``y_true``."""
    n = len(y_true)
    order = np.lexsort((y_true, -score))  # score descending, then y ascending: exact, order-independent sums
    ys, ss = y_true[order], score[order]
    starts = np.flatnonzero(np.r_[True, ss[1:] != ss[:-1]])
    if len(starts) < n:
        counts = np.diff(np.r_[starts, n])
        ys = np.repeat(np.add.reduceat(ys, starts) / counts, counts)
    return np.cumsum(ys) / y_true.sum()


def _check_total(t: np.ndarray) -> None:
    if not t.sum() > 0:
        raise DataValidationError(
            f"y_true sums to {t.sum()}: the gain curve and Gini need a positive total value"
        )


def gain_curve(y_true: ArrayLike, y_pred: ArrayLike) -> pd.DataFrame:
    """Cumulative gain (Lorenz-type) chart: share of total ``y_true`` held by the top ``i/n`` customers.

    .. math:: G_{model}(i/n) = \\sum_{j \\le i} y_{(j)} / \\sum_j y_j,

    with customers ordered by ``y_pred`` descending (Wang, Liu & Miao 2019, Fig. 4; ``cumulative_true`` in
    ``google/lifetime_value``). Ties in ``y_pred`` are resolved by expectation rather than by input order:
    within a block of tied predictions every member contributes the block mean of ``y_true``, which is the
    expected gain curve under random tie-breaking (a constant prediction gives the diagonal).

    Returns ``n + 1`` rows: ``fraction_customers`` (``i/n``, from 0), ``model``, ``oracle`` (``y_true``
    ordered by itself, the best possible curve) and ``random`` (``= fraction_customers``).
    """
    t, p = _pair(y_true, y_pred)
    _check_total(t)
    n = len(t)
    frac = np.arange(n + 1) / n
    return pd.DataFrame({
        "fraction_customers": frac,
        "model": np.r_[0.0, _cumulative_gain(t, p)],
        "oracle": np.r_[0.0, _cumulative_gain(t, t)],
        "random": frac,
    })


def _raw_gini(gain: np.ndarray) -> float:
    return float(2.0 * gain.sum() / len(gain) - 1.0)


def gini(y_true: ArrayLike, y_pred: ArrayLike, normalized: bool = True) -> float:
    """Gini coefficient of the gain chart, Google's discrete definition (Wang, Liu & Miao 2019;
    ``gini_from_gain`` in ``google/lifetime_value/metrics.py``):

    .. math:: \\mathrm{Gini}_{raw} = \\frac{2}{n} \\sum_{i=1}^{n} G(i/n) - 1, \\qquad
              \\mathrm{Gini} = \\mathrm{Gini}_{raw}(model) / \\mathrm{Gini}_{raw}(oracle),

    where ``G`` is the cumulative gain of :func:`gain_curve` (without its 0 row) and the oracle orders
    ``y_true`` by itself. The formula is kept exactly, so its discretisation shows: a constant (or, in
    expectation, a random) ranking has ``G(i/n) = i/n`` and raw Gini ``1/n``, not 0; normalised it is
    ``(1/n) / Gini_raw(oracle)``, negligible for realistic ``n``. A perfect ranking gives 1, a reversed one
    is negative. Ties in ``y_pred`` use the block-mean rule of :func:`gain_curve`, so the value does not
    depend on row order. Raises :class:`DataValidationError` when ``sum(y_true) <= 0`` (undefined).
    """
    t, p = _pair(y_true, y_pred)
    _check_total(t)
    raw = _raw_gini(_cumulative_gain(t, p))
    if not normalized:
        return raw
    return raw / _raw_gini(_cumulative_gain(t, t))


# --------------------------------------------------------------------------------------------------------------
# calibration by bucket: decile / percentile MAPE
# --------------------------------------------------------------------------------------------------------------

def bucket_table(y_true: ArrayLike, y_pred: ArrayLike, n_buckets: int = 10, *, sort_by: str = "pred",
                 agg: str = "mean") -> pd.DataFrame:
    """Equal-count buckets of customers and the absolute percentage error of each bucket's aggregate:

    .. math:: \\mathrm{APE}_b = |\\bar{\\hat y}_b - \\bar y_b| / |\\bar y_b|

    (``agg="median"`` uses medians instead of means). Customers are sorted ascending by the prediction
    (``sort_by="pred"``, as Google's ``decile_stats``) or by the truth (``"true"``) with a stable sort, so ties
    in the sort key are broken by input order, and split with ``np.array_split`` into ``n_buckets`` buckets whose
    sizes differ by at most one (the larger ones first). This is the membership of Google's ``pd.qcut`` on
    ``rank(method="first")`` when ``n`` is a multiple of ``n_buckets``; otherwise both have sizes differing by at
    most one but place the larger buckets differently. (Google's own ``pd.qcut(y_pred)`` fails on tied quantile
    edges, e.g. many zero predictions.)

    Returns one row per non-empty bucket, indexed by ``bucket`` (0 = lowest): ``n``, ``pred`` and ``true`` (the
    aggregate of each), ``ape`` and ``excluded`` (True where the bucket's aggregate truth is 0: APE undefined,
    NaN, and left out of :func:`bucket_mape`). With ``n < n_buckets`` the empty buckets are dropped.
    """
    t, p = _pair(y_true, y_pred)
    if isinstance(n_buckets, bool) or not isinstance(n_buckets, (int, np.integer)) or n_buckets < 1:
        raise ValueError(f"n_buckets must be a positive integer, got {n_buckets!r}")
    if sort_by not in ("pred", "true"):
        raise ValueError(f"sort_by must be 'pred' or 'true', got {sort_by!r}")
    if agg not in ("mean", "median"):
        raise ValueError(f"agg must be 'mean' or 'median', got {agg!r}")
    order = np.argsort(p if sort_by == "pred" else t, kind="stable")
    chunks = [c for c in np.array_split(order, int(n_buckets)) if len(c)]
    reduce = np.mean if agg == "mean" else np.median
    sizes = np.array([len(c) for c in chunks])
    agg_pred = np.array([reduce(p[c]) for c in chunks])
    agg_true = np.array([reduce(t[c]) for c in chunks])
    excluded = agg_true == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        ape = np.where(excluded, np.nan, np.abs(agg_pred - agg_true) / np.abs(agg_true))
    return pd.DataFrame(
        {"n": sizes, "pred": agg_pred, "true": agg_true, "ape": ape, "excluded": excluded},
        index=pd.RangeIndex(len(chunks), name="bucket"),
    )


def bucket_mape(y_true: ArrayLike, y_pred: ArrayLike, n_buckets: int = 10, *, sort_by: str = "pred",
                agg: str = "mean") -> float:
    """Mean absolute percentage error over equal-count buckets, :math:`\\frac{1}{|B|}\\sum_{b \\in B}
    \\mathrm{APE}_b` (Wang, Liu & Miao 2019, decile MAPE; bucketing as in :func:`bucket_table`).

    Buckets whose aggregate truth is 0 (APE undefined) are left out of the average; NaN if every bucket is.
    """
    table = bucket_table(y_true, y_pred, n_buckets, sort_by=sort_by, agg=agg)
    ape = table["ape"].to_numpy()[~table["excluded"].to_numpy()]
    return float(ape.mean()) if len(ape) else float("nan")


def decile_mape(y_true: ArrayLike, y_pred: ArrayLike, *, sort_by: str = "pred", agg: str = "mean") -> float:
    """Decile MAPE: :func:`bucket_mape` with 10 equal-count buckets of customers sorted by prediction
    (Wang, Liu & Miao 2019, Table 3; ``decile_stats`` in ``google/lifetime_value``)."""
    return bucket_mape(y_true, y_pred, 10, sort_by=sort_by, agg=agg)


def percentile_mape(y_true: ArrayLike, y_pred: ArrayLike, *, sort_by: str = "pred", agg: str = "mean") -> float:
    """Percentile MAPE: :func:`bucket_mape` with 100 equal-count buckets.

    The MEAN paper (Liu et al.) defines it only as "an evaluation metric based on Decile MAPE ... but with finer
    granularity", i.e. decile MAPE at finer granularity; we read that as percentiles: 100 equal-count buckets
    of customers sorted by prediction, each bucket's APE of the mean, averaged.
    """
    return bucket_mape(y_true, y_pred, 100, sort_by=sort_by, agg=agg)


# --------------------------------------------------------------------------------------------------------------
# rank correlation and AUC
# --------------------------------------------------------------------------------------------------------------

def spearman(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Spearman's rank correlation: the Pearson correlation of average ranks (``scipy.stats.rankdata``,
    ties share their mean rank), :math:`\\rho = \\mathrm{corr}(R(y), R(\\hat y))` (Spearman 1904; the SC of
    Wang, Liu & Miao 2019 and MEAN). NaN if either argument is constant (fewer than two distinct values)."""
    t, p = _pair(y_true, y_pred)
    rt, rp = _average_ranks(t), _average_ranks(p)
    rt -= rt.mean()
    rp -= rp.mean()
    denom = math.sqrt(float(rt @ rt) * float(rp @ rp))
    if denom == 0.0:
        return float("nan")
    return float(rt @ rp) / denom


def auc(labels: ArrayLike, scores: ArrayLike) -> float:
    """Area under the ROC curve by the Mann-Whitney rank sum with average ranks:

    .. math:: \\mathrm{AUC} = \\frac{\\sum_{i: y_i=1} R_i - n_1(n_1+1)/2}{n_1 n_0}
              = P(s^+ > s^-) + \\tfrac12 P(s^+ = s^-)

    (Hanley & McNeil 1982); tied scores count 1/2. ``labels`` are read as booleans (non-zero = positive).
    Raises :class:`DataValidationError` if only one class is present.
    """
    lab = np.asarray(labels)
    if lab.ndim != 1:
        raise DataValidationError(f"labels: expected a 1-D array, got shape {lab.shape}")
    lab = lab.astype(bool)
    s = _vector(scores, "scores")
    if len(s) != len(lab):
        raise DataValidationError(f"scores has {len(s)} rows but labels has {len(lab)}; they must match")
    n1 = int(lab.sum())
    n0 = len(lab) - n1
    if n1 == 0 or n0 == 0:
        raise DataValidationError(
            f"AUC needs both classes; got {n1} positive and {n0} negative labels"
        )
    ranks = _average_ranks(s)
    u = float(ranks[lab].sum()) - n1 * (n1 + 1) / 2.0
    return u / (n1 * n0)


def auc_positive(y_true: ArrayLike, score: ArrayLike) -> float:
    """AUC of ``score`` for the label "customer has positive value", ``auc(y_true > 0, score)`` (the
    classification AUC of the ZILN paper, Wang, Liu & Miao 2019, Table 4, computed from ranks)."""
    t, s = _pair(y_true, score, "score")
    return auc(t > 0, s)


def _top_k_labels(y_true: ArrayLike, k: float) -> np.ndarray:
    """Label of the top ``k`` fraction by value: ``y >= y_(m)`` and ``y > 0``, with ``y_(m)`` the
    ``m = ceil(k n)``-th largest value. All customers tied at the boundary value are included, so more than
    ``m`` can be labelled; zero-value customers never are."""
    t = _vector(y_true, "y_true")
    if not 0.0 < k <= 1.0:
        raise ValueError(f"k must be a fraction in (0, 1], got {k!r}")
    n = len(t)
    if n == 0:
        raise DataValidationError("y_true is empty: no customers to score")
    m = max(1, math.ceil(round(k * n, 9)))  # round: 0.07 * 100 = 7.000000000000001 means 7, not 8
    threshold = np.partition(t, n - m)[n - m]
    return (t >= threshold) & (t > 0)


def top_k_auc(y_true: ArrayLike, y_pred: ArrayLike, k: float) -> float:
    """AUC of ``y_pred`` for identifying the top ``k`` fraction of customers by ``y_true`` (the "AUC" of
    high-value user recognition in MEAN, Liu et al.): label ``= y >= y_(ceil(k n))`` and ``y > 0``
    (ties at the boundary are all included). Raises :class:`DataValidationError` if
    the label has one class (e.g. all ``y_true`` zero, or every customer tied at the boundary)."""
    t, p = _pair(y_true, y_pred)
    return auc(_top_k_labels(t, k), p)


# --------------------------------------------------------------------------------------------------------------
# point errors
# --------------------------------------------------------------------------------------------------------------

def rmse(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Root mean squared error, :math:`\\sqrt{\\frac1n \\sum_i (\\hat y_i - y_i)^2}`."""
    t, p = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((p - t) ** 2)))


def mae(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean absolute error, :math:`\\frac1n \\sum_i |\\hat y_i - y_i|`."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(np.abs(p - t)))


def _mean_true(t: np.ndarray) -> float:
    m = float(t.mean())
    if m == 0.0:
        raise DataValidationError("y_true has mean 0: the normalised error is undefined")
    return m


def normalized_rmse(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """RMSE divided by the mean truth, :math:`\\mathrm{RMSE} / \\bar y` (``_normalized_rmse`` in
    ``google/lifetime_value``). Raises :class:`DataValidationError` if ``mean(y_true) == 0``."""
    t, p = _pair(y_true, y_pred)
    return rmse(t, p) / _mean_true(t)


def normalized_mae(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """MAE divided by the mean truth, :math:`\\mathrm{MAE} / \\bar y` (``_normalized_mae`` in
    ``google/lifetime_value``). Raises :class:`DataValidationError` if ``mean(y_true) == 0``."""
    t, p = _pair(y_true, y_pred)
    return mae(t, p) / _mean_true(t)


def rmsle(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Root mean squared log error, :math:`\\sqrt{\\frac1n \\sum_i (\\log(1+\\hat y_i) - \\log(1+y_i))^2}`.

    Both arguments must be non-negative; a negative value raises :class:`DataValidationError` naming the
    argument and its first negative row.
    """
    t, p = _pair(y_true, y_pred)
    for name, arr, raw in (("y_true", t, y_true), ("y_pred", p, y_pred)):
        neg = arr < 0
        if neg.any():
            i = int(np.argmax(neg))
            raise DataValidationError(
                f"{name}: negative value {arr[i]} at {_row_label(raw, i)}; RMSLE needs non-negative values"
            )
    return float(np.sqrt(np.mean((np.log1p(p) - np.log1p(t)) ** 2)))


def r2(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Coefficient of determination, :math:`R^2 = 1 - \\sum_i (y_i - \\hat y_i)^2 / \\sum_i (y_i - \\bar y)^2`.

    Unstable under heavy-tailed LTV (a handful of whales dominate both sums); reported for completeness,
    prefer Gini / decile MAPE / CRPS. Raises :class:`DataValidationError` if ``y_true`` is constant.
    """
    t, p = _pair(y_true, y_pred)
    sst = float(np.sum((t - t.mean()) ** 2))
    if sst == 0.0:
        raise DataValidationError("y_true is constant: R^2 is undefined")
    return 1.0 - float(np.sum((t - p) ** 2)) / sst


# --------------------------------------------------------------------------------------------------------------
# probabilistic scores
# --------------------------------------------------------------------------------------------------------------

def interval_coverage(y_true: ArrayLike, lower: ArrayLike, upper: ArrayLike) -> float:
    """Empirical coverage of predictive intervals, :math:`\\frac1n \\sum_i 1\\{l_i \\le y_i \\le u_i\\}`
    (to compare with the nominal level; Gneiting & Raftery 2007, sec. 6.2)."""
    t, lo = _pair(y_true, lower, "lower")
    _, hi = _pair(y_true, upper, "upper")
    return float(np.mean((lo <= t) & (t <= hi)))


def coverage_from_samples(y_true: ArrayLike, samples: Any, level: float) -> float:
    """Coverage of the equal-tailed ``level`` interval of predictive draws: bounds are the
    ``(1-level)/2`` and ``(1+level)/2`` sample quantiles of each row of ``samples`` (shape ``(n, S)``;
    numpy's default linear interpolation, Hyndman & Fan type 7), then :func:`interval_coverage`."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    t = _vector(y_true, "y_true")
    x = _matrix(samples, "samples", len(t))
    lo, hi = np.quantile(x, [(1.0 - level) / 2.0, (1.0 + level) / 2.0], axis=1)
    return interval_coverage(t, lo, hi)


def crps_samples(y_true: ArrayLike, samples: Any, *, fair: bool = False) -> np.ndarray:
    """Continuous ranked probability score of each observation under its predictive draws (lower is better),
    by the energy form (Gneiting & Raftery 2007, eq. 21):

    .. math:: \\mathrm{CRPS}(F, y) = E|X - y| - \\tfrac12 E|X - X'|,\\qquad
              E|X - X'| \\approx \\frac{2}{S^2} \\sum_{i=1}^{S} (2i - S - 1)\\, x_{(i)}

    with ``x_(i)`` the sorted draws of the row, so each row costs O(S log S). ``fair=False`` is the CRPS of the
    empirical distribution of the draws (denominator ``S^2``); ``fair=True`` uses ``S (S-1)``, the unbiased
    estimator of the CRPS of the distribution the draws come from (Ferro 2014, "fair" ensemble CRPS), which
    is smaller by ``E|X-X'|_{S^2} / (2(S-1))``. ``samples`` has shape ``(n, S)``; fair needs ``S >= 2``.
    """
    t = _vector(y_true, "y_true")
    x = np.sort(_matrix(samples, "samples", len(t)), axis=1)
    S = x.shape[1]
    if fair and S < 2:
        raise DataValidationError("the fair CRPS needs at least 2 draws per observation")
    term1 = np.mean(np.abs(x - t[:, None]), axis=1)
    weights = 2.0 * np.arange(1, S + 1) - S - 1.0
    spread = 2.0 * (x @ weights) / (S * (S - 1) if fair else S * S)
    return term1 - 0.5 * spread


def crps_normal(y: ArrayLike | float, mu: ArrayLike | float, sigma: ArrayLike | float) -> np.ndarray | float:
    """CRPS of a normal predictive distribution in closed form (Gneiting & Raftery 2007, eq. 5 / Gneiting et
    al. 2005):

    .. math:: \\mathrm{CRPS}(N(\\mu, \\sigma^2), y) = \\sigma \\left[ z (2\\Phi(z) - 1) + 2\\varphi(z)
              - 1/\\sqrt{\\pi} \\right],\\qquad z = (y - \\mu)/\\sigma.

    Broadcasts; returns a float for scalar inputs. ``sigma`` must be positive.
    """
    from scipy.special import ndtr

    y_, mu_, sigma_ = (np.asarray(a, dtype=np.float64) for a in (y, mu, sigma))
    if np.any(sigma_ <= 0):
        raise DataValidationError("crps_normal: sigma must be positive")
    z = (y_ - mu_) / sigma_
    pdf = np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    out = sigma_ * (z * (2.0 * ndtr(z) - 1.0) + 2.0 * pdf - 1.0 / math.sqrt(math.pi))
    return float(out) if out.ndim == 0 else out


def log_predictive_density(log_lik: Any) -> np.ndarray:
    """Log pointwise predictive density of each observation from posterior draws of its log-likelihood
    (shape ``(n, S)``), computed stably with ``scipy.special.logsumexp``:

    .. math:: \\mathrm{lpd}_i = \\log \\frac1S \\sum_{s=1}^{S} p(y_i \\mid \\theta_s)
              = \\mathrm{logsumexp}_s(\\ell_{is}) - \\log S

    (Vehtari, Gelman & Gabry 2017, eq. 3, without the leave-one-out correction: in-sample on training data,
    out-of-sample on a holdout). Draws of ``-inf`` (zero likelihood) are allowed.
    """
    from scipy.special import logsumexp

    ll = np.asarray(log_lik, dtype=np.float64)
    if ll.ndim != 2 or ll.shape[1] < 1:
        raise DataValidationError(f"log_lik: expected shape (customers, draws), got {ll.shape}")
    ll = _matrix(ll, "log_lik", ll.shape[0], allow_neg_inf=True)
    return logsumexp(ll, axis=1) - math.log(ll.shape[1])


# --------------------------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------------------------

def _pct_label(x: float) -> str:
    """0.8 -> '80', 0.975 -> '97.5', 0.01 -> '1'."""
    return f"{round(x * 100.0, 6):g}"


def _quantile_columns(keys: Sequence[str]) -> dict[float, str]:
    """``{percent: column}`` for the quantile columns among ``keys`` (names as in
    :data:`btyd_ltv.data.predictions.QUANTILE_COLUMN`)."""
    return {100.0 * p: key for key, p in quantile_columns(list(keys)).items()}


def _find_quantile(quantiles: dict[float, np.ndarray], pct: float) -> np.ndarray | None:
    """The quantile column whose percent is within 1e-9 of ``pct``, if any."""
    for q, values in quantiles.items():
        if abs(q - pct) <= 1e-9:
            return values
    return None


def _parse_model(name: str, value: Any, y: np.ndarray) -> dict[str, Any]:
    """Validated arrays of one model's predictions: ``prediction``, optional ``p_positive``, quantiles
    (percent -> array), ``samples`` and ``log_lik``."""
    n = len(y)

    def vec(values: Any, column: str) -> np.ndarray:
        label = f"model {name!r}, column {column!r}"
        arr = _vector(values, label)
        if len(arr) != n:
            raise DataValidationError(f"{label} has {len(arr)} rows but y_true has {n}; they must match")
        return arr

    def mat(values: Any, column: str, **kw: Any) -> np.ndarray:
        return _matrix(values, f"model {name!r}, column {column!r}", n, **kw)

    if isinstance(value, pd.DataFrame):
        keys = [str(c) for c in value.columns]
        get = lambda k: value[k]  # noqa: E731
        is_mapping = False
    elif isinstance(value, Mapping):
        keys = [str(k) for k in value]
        get = value.__getitem__
        is_mapping = True
    else:
        keys, get, is_mapping = ["prediction"], (lambda k: value), False
    if "prediction" not in keys:
        raise DataValidationError(
            f"model {name!r}: a DataFrame or mapping of predictions needs a 'prediction' column "
            f"(the point forecast); found {keys}"
        )
    qcols = _quantile_columns(keys)
    out: dict[str, Any] = {"prediction": vec(get("prediction"), "prediction")}
    neg = out["prediction"] < 0
    if neg.any():
        i = int(np.argmax(neg))
        raise DataValidationError(
            f"model {name!r}, column 'prediction': negative value {out['prediction'][i]} at "
            f"{_row_label(get('prediction'), i)}; LTV forecasts must be non-negative"
        )
    out["p_positive"] = None
    if "p_positive" in keys:
        pp = vec(get("p_positive"), "p_positive")
        bad = (pp < 0) | (pp > 1)
        if bad.any():
            i = int(np.argmax(bad))
            raise DataValidationError(
                f"model {name!r}, column 'p_positive': {pp[i]} at row {i} is not a probability in [0, 1]"
            )
        out["p_positive"] = pp
    out["quantiles"] = {q: vec(get(key), key) for q, key in qcols.items()}
    out["samples"] = mat(get("samples"), "samples") if is_mapping and "samples" in keys else None
    out["log_lik"] = (mat(get("log_lik"), "log_lik", allow_neg_inf=True)
                      if is_mapping and "log_lik" in keys else None)
    return out


def _or_nan(fn, *args: Any, **kwargs: Any) -> float:
    """``fn(*args)``, or NaN where the metric is undefined on the data."""
    try:
        return float(fn(*args, **kwargs))
    except DataValidationError:
        return float("nan")


def report(y_true: ArrayLike, predictions: Mapping[str, Any], *, levels: Sequence[float] = (0.8, 0.95),
           top_k: Sequence[float] = (0.01, 0.1)) -> pd.DataFrame:
    """Score several models on one set of outcomes: one row per model (index ``model``, in input order), one
    column per metric.

    Columns: ``n``, ``mean_true``, ``mean_pred``, ``gini`` (normalised, :func:`gini`), ``decile_mape``,
    ``percentile_mape``, ``spearman``, ``auc_positive``, ``top_{k}pct_auc`` per ``top_k`` (e.g.
    ``top_1pct_auc``), ``rmse``, ``mae``, ``normalized_rmse``, ``normalized_mae``, ``rmsle``, ``r2``,
    ``coverage_{L}`` per level (e.g. ``coverage_80``), ``crps`` (mean of :func:`crps_samples`) and ``lpd``
    (mean of :func:`log_predictive_density`).

    Each value of ``predictions`` is either a 1-D array / list / Series (point forecast only), or a DataFrame or
    mapping with ``prediction`` (required, the point forecast), optional ``p_positive`` (score of
    ``auc_positive``; otherwise the point forecast is the score) and quantiles named ``q`` + percent
    (``q05``, ``q50``, ``q97.5``); a mapping may also hold ``samples`` and ``log_lik``, arrays ``(n, S)`` of
    posterior predictive draws and of pointwise log-likelihood draws. Other keys / columns (ids, extra
    summaries) are ignored. Rows are matched to ``y_true`` by position.

    Coverage at level ``L`` uses the quantile columns ``q{50(1-L)}`` and ``q{50(1+L)}`` when both exist, else
    the equal-tailed interval of ``samples``, else NaN; ``crps`` needs ``samples`` and ``lpd`` needs
    ``log_lik`` (NaN without). Metrics undefined on the data (AUC with one class, Gini with zero total, ...)
    are NaN. Raises :class:`DataValidationError` naming the model, column and first bad row for a length
    mismatch, a NaN / inf (``-inf`` is allowed in ``log_lik``) or a negative point forecast, and naming
    ``y_true`` for a NaN or negative outcome.
    """
    y = _vector(y_true, "y_true")
    if len(y) == 0:
        raise DataValidationError("y_true is empty: no customers to score")
    neg = y < 0
    if neg.any():
        i = int(np.argmax(neg))
        raise DataValidationError(
            f"y_true: negative value {y[i]} at {_row_label(y_true, i)}; customer values must be non-negative"
        )
    if not isinstance(predictions, Mapping) or len(predictions) == 0:
        raise DataValidationError("predictions must be a non-empty mapping of model name -> predictions")
    for level in levels:
        if not 0.0 < level < 1.0:
            raise ValueError(f"levels must lie in (0, 1), got {level!r}")
    parsed = {str(name): _parse_model(str(name), value, y) for name, value in predictions.items()}

    rows = []
    for name, m in parsed.items():
        p = m["prediction"]
        row: dict[str, float] = {
            "n": len(y),
            "mean_true": float(y.mean()),
            "mean_pred": float(p.mean()),
            "gini": _or_nan(gini, y, p),
            "decile_mape": _or_nan(decile_mape, y, p),
            "percentile_mape": _or_nan(percentile_mape, y, p),
            "spearman": _or_nan(spearman, y, p),
            "auc_positive": _or_nan(auc_positive, y, m["p_positive"] if m["p_positive"] is not None else p),
        }
        for k in top_k:
            row[f"top_{_pct_label(k)}pct_auc"] = _or_nan(top_k_auc, y, p, k)
        row.update({
            "rmse": rmse(y, p),
            "mae": mae(y, p),
            "normalized_rmse": _or_nan(normalized_rmse, y, p),
            "normalized_mae": _or_nan(normalized_mae, y, p),
            "rmsle": rmsle(y, p),
            "r2": _or_nan(r2, y, p),
        })
        for level in levels:
            lo = _find_quantile(m["quantiles"], 50.0 * (1.0 - level))
            hi = _find_quantile(m["quantiles"], 50.0 * (1.0 + level))
            if lo is not None and hi is not None:
                cov = interval_coverage(y, lo, hi)
            elif m["samples"] is not None:
                cov = coverage_from_samples(y, m["samples"], level)
            else:
                cov = float("nan")
            row[f"coverage_{_pct_label(level)}"] = cov
        row["crps"] = float(crps_samples(y, m["samples"]).mean()) if m["samples"] is not None else float("nan")
        row["lpd"] = (float(log_predictive_density(m["log_lik"]).mean())
                      if m["log_lik"] is not None else float("nan"))
        rows.append(row)
    table = pd.DataFrame(rows, index=pd.Index(list(parsed), name="model"))
    table["n"] = table["n"].astype(np.int64)
    return table


def report_markdown(table: pd.DataFrame, floatfmt: str = ".4g") -> str:
    """A pipe (GitHub-flavoured Markdown) table of ``table`` with its index as the first column; floats are
    formatted with ``format(value, floatfmt)`` and numbers are right-aligned."""

    def cell(v: Any) -> str:
        if isinstance(v, (bool, np.bool_)):
            return str(bool(v))
        if isinstance(v, (int, np.integer)):
            return str(int(v))
        if isinstance(v, (float, np.floating)):
            return format(float(v), floatfmt)
        return str(v).replace("|", "\\|").replace("\n", " ")

    index_name = str(table.index.name) if table.index.name is not None else ""
    header = [index_name.replace("|", "\\|")] + [str(c).replace("|", "\\|") for c in table.columns]
    numeric = [pd.api.types.is_numeric_dtype(table[c]) and not pd.api.types.is_bool_dtype(table[c])
               for c in table.columns]
    align = ["---"] + ["---:" if num else "---" for num in numeric]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    for label, values in zip(table.index, table.itertuples(index=False, name=None)):
        lines.append("| " + " | ".join([cell(label)] + [cell(v) for v in values]) + " |")
    return "\n".join(lines) + "\n"
