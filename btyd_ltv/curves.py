"""Cumulative LTV curves of cohorts and the acquisition decisions they support: ROAS, payback, profit.

A cohort LTV model gives, for every cohort ``c`` and age ``D = 0, ..., H`` (``H`` the horizon, in periods),
``S`` posterior predictive draws of the cumulative LTV per install ``L_c(D)``: an array ``draws`` of shape
``(C, H + 1, S)``, non-decreasing in ``D`` for every draw (where cohort ``c`` is observed, up to age ``k_c``, the
draws equal the observed curve). With the cohort's size ``N_c`` (``installs``) and acquisition cost ``K_c`` (the
spend on the whole cohort), every decision quantity is a function of the draws, so its posterior is the
function applied draw by draw (a Monte Carlo estimate of the posterior predictive distribution)::

    ROAS_c(D)       = N_c L_c(D) / K_c                              return on ad spend by age D
    P(ROAS_c(D) >= 1) = (1/S) sum_s 1[N_c L_c^(s)(D) >= K_c]          probability of breaking even by age D
    T_c^(s)         = min{D <= H : N_c L_c^(s)(D) >= K_c}  (H + 1 where there is none: "after H")
                                                                    payback age of draw s
    profit_c(H)     = N_c L_c(H) - K_c,   E[profit_c(H)] = N_c E[L_c(H)] - K_c

Because ``L_c`` is non-decreasing, ``T_c <= D`` exactly when ``ROAS_c(D) >= 1``, so ``P(T_c <= D) =
P(ROAS_c(D) >= 1)``: the payback-age distribution and the break-even probabilities are one and the same.

Tables (plain DataFrames, written as ``curves.csv`` / ``roas.csv`` / ``cohorts.csv`` by the CLI):

- :func:`curve_table`: long, one row per (cohort, age): ``cohort, age, observed, mean, q05, q25, q50, q75, q95``;
- :func:`roas_table`: the same layout for ``ROAS_c(D)`` plus ``p_roas_ge_1``;
- :func:`cohort_table`: one row per cohort: LTV at checkpoints, ROAS / payback / profit at the horizon.

:func:`group_curves` pools cohorts into install-weighted group curves (an app, a campaign) that every function
here takes like cohorts; :func:`group_totals` sums their installs and cost.

Conventions. Per-cohort arrays (``installs``, ``cost``, ``observed_age``, group labels) are matched to the
cohorts by position (pandas indexes are ignored). ``cost`` may be NaN (unknown): that cohort's decision columns
are NaN. Pure numpy / pandas: importing this module starts neither JAX nor matplotlib. Inputs are checked and
bad ones raise :class:`~btyd_ltv.errors.DataValidationError` naming the argument, the cohort and the fix.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from btyd_ltv.data.predictions import quantile_column
from btyd_ltv.data.validate import _v
from btyd_ltv.errors import DataValidationError

__all__ = [
    "DEFAULT_CHECKPOINTS",
    "DEFAULT_QUANTILES",
    "cohort_table",
    "component_table",
    "curve_table",
    "group_curves",
    "group_totals",
    "payback_ages",
    "roas_table",
]

#: Quantiles of :func:`curve_table` / :func:`roas_table` (the 50% and 90% bands of a fan chart and the median).
DEFAULT_QUANTILES: tuple[float, ...] = (0.05, 0.25, 0.5, 0.75, 0.95)
#: Ages of :func:`cohort_table`'s LTV and payback-probability columns (days: d7, d30, d90, d180, d365).
DEFAULT_CHECKPOINTS: tuple[int, ...] = (7, 30, 90, 180, 365)

# Relative slack of the monotonicity check: a draw may fall by 1e-9 of its value from one age to the next
# (floating-point noise of a model that does not build the curve as a cumulative sum).
MONOTONE_RTOL = 1e-9

# The 90% interval of cohort_table.
_LOW, _HIGH = 0.05, 0.95

# Draw arrays are processed in blocks of whole cohorts of at most this many values (32 MB of float64), so that
# temporaries stay small next to a (C, H + 1, S) array of several GB.
_BLOCK = 1 << 22


def _blocks(a: np.ndarray):
    """Slices of whole cohorts (axis 0) of ``a`` with at most ``_BLOCK`` values each (at least one cohort)."""
    step = max(1, _BLOCK // max(1, int(np.prod(a.shape[1:]))))
    for start in range(0, a.shape[0], step):
        yield slice(start, min(start + step, a.shape[0]))


# ---------------------------------------------------------------------------------------------------- checks
def _check_draws(draws: Any) -> np.ndarray:
    """``draws`` as a finite float64 (C, H + 1, S) array, non-decreasing in age (shape checks only)."""
    a = np.asarray(draws, dtype=np.float64)
    if a.ndim != 3:
        hint = "; a single draw per cohort is draws[..., None]" if a.ndim == 2 else ""
        raise DataValidationError(
            f"draws: expected a (cohorts, ages, draws) array of cumulative LTV per install, got shape {a.shape}"
            + hint
        )
    if 0 in a.shape:
        raise DataValidationError(f"draws: empty array of shape {a.shape}; it needs at least one cohort, age and draw")
    return a


def _check_draw_values(a: np.ndarray, cohorts: pd.Index) -> None:
    """NaN / infinite values, and curves that fall with age, naming the first cohort, age and draw."""
    bad = ~np.isfinite(a)
    if bad.any():
        c, age, s = np.argwhere(bad)[0]
        raise DataValidationError(
            f"draws: {_where(cohorts, c)}, age {age}, draw {s}: {a[c, age, s]} is not a finite "
            "number; the model's posterior predictive draws must be finite (check the fit for divergences)"
        )
    if a.shape[1] == 1:
        return
    for block in _blocks(a):
        b = a[block]
        falls = np.diff(b, axis=1) < -MONOTONE_RTOL * np.maximum(np.abs(b[:, :-1, :]), 1.0)
        if falls.any():
            c, age, s = np.argwhere(falls)[0]
            c += block.start
            raise DataValidationError(
                f"draws: {_where(cohorts, c)} is not non-decreasing in age: draw {s} falls from "
                f"{a[c, age, s]:g} at age {age} to {a[c, age + 1, s]:g} at age {age + 1}; draws must be "
                "cumulative LTV per install (a cumulative sum over ages, e.g. np.cumsum(..., axis=1))"
            )


def _where(cohorts: pd.Index, pos: int) -> str:
    """``cohort 'x' (position 3)``, or ``cohort at position 3`` where cohorts are unlabelled (a RangeIndex)."""
    if isinstance(cohorts, pd.RangeIndex):
        return f"cohort at position {pos}"
    return f"cohort {_v(cohorts[pos])} (position {pos})"


def _check_cohorts(cohorts: Any, n: int) -> pd.Index:
    idx = pd.Index(list(cohorts) if not isinstance(cohorts, pd.Index) else cohorts)
    if len(idx) != n:
        raise DataValidationError(
            f"cohorts: {len(idx)} labels for {n} cohorts in draws (axis 0); pass one label per cohort, in the "
            "order of draws"
        )
    dup = idx.duplicated()
    if dup.any():
        pos = int(np.flatnonzero(dup)[0])
        raise DataValidationError(f"cohorts: label {_v(idx[pos])} is repeated (position {pos}); labels must be unique")
    return idx


def _per_cohort(values: Any, name: str, cohorts: pd.Index) -> np.ndarray:
    """A 1-D per-cohort array, one entry per cohort (pandas indexes ignored)."""
    a = np.asarray(values.to_numpy() if isinstance(values, (pd.Series, pd.Index)) else values)
    if a.ndim == 0:
        a = np.full(len(cohorts), a.item())
    if a.shape != (len(cohorts),):
        raise DataValidationError(
            f"{name}: expected one value per cohort, shape ({len(cohorts)},), got shape {a.shape}"
        )
    return a


def _numeric(values: Any, name: str, cohorts: pd.Index) -> np.ndarray:
    a = _per_cohort(values, name, cohorts)
    try:
        return pd.to_numeric(pd.Series(a), errors="raise").to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        bad = pd.to_numeric(pd.Series(a), errors="coerce").isna().to_numpy() & pd.notna(a)
        pos = int(np.flatnonzero(bad)[0])
        raise DataValidationError(
            f"{name}: {_where(cohorts, pos)}: {_v(a[pos])} is not a number"
        ) from None


def _check_installs(installs: Any, cohorts: pd.Index) -> tuple[np.ndarray, np.ndarray]:
    """(installs as float64, installs as given for the output table)."""
    raw = _per_cohort(installs, "installs", cohorts)
    n = _numeric(raw, "installs", cohorts)
    bad = ~np.isfinite(n) | (n <= 0)
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise DataValidationError(
            f"installs: {_where(cohorts, pos)} has {_v(raw[pos])} installs; every cohort needs "
            "a positive, finite number of installs (drop empty cohorts)"
        )
    shown = n.astype(np.int64) if np.all(n == np.round(n)) else n
    return n, shown


def _check_cost(cost: Any, cohorts: pd.Index) -> np.ndarray:
    k = _numeric(cost, "cost", cohorts)
    bad = np.isinf(k) | (k < 0)
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise DataValidationError(
            f"cost: {_where(cohorts, pos)} has cost {k[pos]:g}; acquisition cost must be "
            "finite and >= 0 (NaN where it is unknown)"
        )
    return k


def _check_quantiles(quantiles: Sequence[float]) -> np.ndarray:
    q = np.atleast_1d(np.asarray(quantiles, dtype=np.float64))
    if q.ndim != 1 or q.size == 0 or np.any(~np.isfinite(q)) or np.any((q < 0) | (q > 1)):
        raise DataValidationError(f"quantiles: expected probabilities in [0, 1], got {list(np.ravel(q))}")
    if len({quantile_column(t) for t in q}) != q.size:
        raise DataValidationError(f"quantiles: repeated values in {list(q)}")
    return q


def _check_ages(ages: Any, n_ages: int) -> np.ndarray:
    if ages is None:
        return np.arange(n_ages)
    a = np.atleast_1d(np.asarray(ages))
    if a.ndim != 1 or a.size == 0 or not np.issubdtype(a.dtype, np.number) or np.any(a != np.round(a)):
        raise DataValidationError(f"ages: expected whole ages 0..{n_ages - 1}, got {list(np.ravel(a))}")
    a = a.astype(np.int64)
    out = (a < 0) | (a >= n_ages)
    if out.any():
        raise DataValidationError(
            f"ages: age {a[out][0]} is outside the draws' ages 0..{n_ages - 1} (draws.shape[1] = {n_ages})"
        )
    return a


def _check_observed(observed: Any, cohorts: pd.Index, n_ages: int) -> np.ndarray:
    """Observed curve as a (C, H + 1) float array; a DataFrame (e.g. :func:`btyd_ltv.cohort_triangle`) is
    aligned on its index (cohorts) and columns (ages)."""
    if observed is None:
        return np.full((len(cohorts), n_ages), np.nan)
    if isinstance(observed, pd.DataFrame):
        missing = pd.Index(cohorts).difference(observed.index, sort=False)
        if len(missing):
            raise DataValidationError(
                f"observed: cohort {_v(missing[0])} is not in the frame's index ({len(missing)} cohorts missing); "
                "index the observed triangle by cohort"
            )
        observed = observed.reindex(index=cohorts, columns=pd.RangeIndex(n_ages))
    a = np.asarray(observed, dtype=np.float64)
    if a.shape != (len(cohorts), n_ages):
        raise DataValidationError(
            f"observed: expected shape (cohorts, ages) = ({len(cohorts)}, {n_ages}) like draws[..., 0], got "
            f"{a.shape}; pad with NaN beyond each cohort's last observed age"
        )
    if np.isinf(a).any():
        c, age = np.argwhere(np.isinf(a))[0]
        raise DataValidationError(f"observed: cohort {_v(cohorts[c])}, age {age}: infinite value")
    return a


def _quantile_names(q: np.ndarray) -> list[str]:
    return [quantile_column(t) for t in q]


def _long(cohorts: pd.Index, ages: np.ndarray, columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """Long (cohort, age) frame from (C, A) arrays."""
    n_c, n_a = len(cohorts), len(ages)
    out = {"cohort": cohorts.repeat(n_a), "age": np.tile(ages, n_c)}
    out.update({k: np.asarray(v).reshape(n_c * n_a) for k, v in columns.items()})
    return pd.DataFrame(out)


def _summaries(x: np.ndarray, q: np.ndarray) -> dict[str, np.ndarray]:
    """``mean`` and quantile columns over the last (draw) axis, block by block over cohorts."""
    names = _quantile_names(q)
    out = {name: np.empty(x.shape[:-1]) for name in ["mean", *names]}
    for block in _blocks(x):
        out["mean"][block] = x[block].mean(axis=-1)
        for name, values in zip(names, np.quantile(x[block], q, axis=-1)):
            out[name][block] = values
    return out


# ---------------------------------------------------------------------------------------------------- curves
def curve_table(
    draws: Any,
    cohorts: Sequence,
    observed: Any = None,
    *,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
    ages: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Long table of the cumulative LTV-per-install curves (``curves.csv``): one row per (cohort, age).

    Columns: ``cohort, age, observed, mean, q05, q25, q50, q75, q95`` where ``observed`` is the observed
    cumulative LTV per install ``L_c(D)`` (NaN beyond the cohort's last observed age), ``mean`` the posterior
    predictive mean ``(1/S) sum_s L_c^(s)(D)`` and ``qNN`` its ``NN``% quantile over draws (``np.quantile``,
    linear interpolation; names from :func:`btyd_ltv.data.predictions.quantile_column`: 0.975 -> ``q97.5``).

    Parameters
    ----------
    draws
        (C, H + 1, S) posterior predictive draws of ``L_c(D)`` for ages ``D = 0..H``, non-decreasing in age.
    cohorts
        C cohort labels, in the order of ``draws``.
    observed
        (C, H + 1) observed curve, NaN beyond each cohort's last observed age; or a cohort x age DataFrame
        (:func:`btyd_ltv.cohort_triangle`), aligned on its index and columns; ``None``: all NaN.
    quantiles
        probabilities of the quantile columns.
    ages
        ages to keep (whole periods in ``0..H``, e.g. ``range(0, 366, 7)``); default every age.
    """
    a = _check_draws(draws)
    idx = _check_cohorts(cohorts, a.shape[0])
    _check_draw_values(a, idx)
    q = _check_quantiles(quantiles)
    keep = _check_ages(ages, a.shape[1])
    obs = _check_observed(observed, idx, a.shape[1])
    sub = a if ages is None else a[:, keep, :]
    return _long(idx, keep, {"observed": obs[:, keep], **_summaries(sub, q)})


def component_table(
    components: Mapping[str, Any],
    cohorts: Sequence,
    observed: Mapping[str, Any] | None = None,
    *,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
    ages: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Long table of the per-period curves whose product is the expected revenue per install
    (``components.csv``): one row per (cohort, age, component).

    For the cohort-curve model ``E[revenue_c(t)] / N_c = s_c(t) arpdau_c(t)``: ``components`` maps
    ``"retention"`` to draws of ``s_c(t)`` (the share of installs active at age ``t``, in ``[0, 1]``) and
    ``"arpdau"`` to draws of ``arpdau_c(t)`` (revenue per active user), each (C, H + 1, S)
    (:func:`btyd_ltv.models.cohort_curve.expected_components`); any other names are summarised the same way.
    Columns: ``cohort, age, component, observed, mean, q05, q25, q50, q75, q95`` -- the posterior mean and
    quantiles of the model's expected value (not a predictive draw: no cell noise) and ``observed`` from
    ``observed[name]`` ((C, H + 1), NaN where not observed; default NaN). Raises :class:`DataValidationError` for
    a non-finite or negative draw, or a retention above 1, naming the component, cohort and age.
    """
    if not isinstance(components, Mapping) or not components:
        raise DataValidationError("components: expected a non-empty mapping of name -> (cohorts, ages, draws) array")
    q = _check_quantiles(quantiles)
    frames, shape = [], None
    for name, draws in components.items():
        a = _check_draws(draws)
        if shape is not None and a.shape != shape:
            raise DataValidationError(f"components: {name!r} has shape {a.shape}, the others {shape}")
        shape = a.shape
        idx = _check_cohorts(cohorts, a.shape[0])
        bad = ~np.isfinite(a) | (a < 0) | ((a > 1) if name == "retention" else False)
        if bad.any():
            c, age, d = np.argwhere(bad)[0]
            want = "a share in [0, 1]" if name == "retention" else "a finite number >= 0"
            raise DataValidationError(f"components: {name!r}, {_where(idx, c)}, age {age}, draw {d}: "
                                      f"{a[c, age, d]} is not {want}")
        keep = _check_ages(ages, a.shape[1])
        obs = _check_observed(None if observed is None else observed.get(name), idx, a.shape[1])
        frame = _long(idx, keep, {"observed": obs[:, keep], **_summaries(a[:, keep, :], q)})
        frame.insert(2, "component", name)
        frame["_row"] = np.arange(len(frame))  # (cohort, age) in the order of the draws
        frames.append(frame)
    out = pd.concat(frames, ignore_index=True).sort_values("_row", kind="stable", ignore_index=True)
    return out.drop(columns="_row")


def roas_table(
    draws: Any,
    cohorts: Sequence,
    installs: Any,
    cost: Any,
    observed: Any = None,
    *,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
    ages: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Long table of the ROAS curves ``ROAS_c(D) = N_c L_c(D) / K_c`` (``roas.csv``), laid out like
    :func:`curve_table` so that :func:`btyd_ltv.plots.fan_chart` draws it (break-even at 1).

    Columns: ``cohort, age, observed, mean, q05, q25, q50, q75, q95, p_roas_ge_1`` where ``observed`` is
    ``N_c x`` observed ``L_c(D) / K_c``, ``mean`` / ``qNN`` summarise ``ROAS_c^(s)(D)`` over draws and
    ``p_roas_ge_1 = (1/S) sum_s 1[N_c L_c^(s)(D) >= K_c]``, the probability that the cohort has paid back its
    cost by age ``D`` (= P(payback age <= D), see :func:`payback_ages`).

    Only cohorts with a positive cost appear (ROAS is undefined for a missing or zero cost). Arguments as in
    :func:`curve_table`; ``installs`` and ``cost`` (the whole cohort's acquisition cost) have one entry per
    cohort.
    """
    a = _check_draws(draws)
    idx = _check_cohorts(cohorts, a.shape[0])
    _check_draw_values(a, idx)
    n, _ = _check_installs(installs, idx)
    k = _check_cost(cost, idx)
    q = _check_quantiles(quantiles)
    keep = _check_ages(ages, a.shape[1])
    obs = _check_observed(observed, idx, a.shape[1])
    has = k > 0
    n, k, sub, obs = n[has], k[has], a[has][:, keep, :], obs[has][:, keep]
    cols = {"observed": n[:, None] * obs / k[:, None]}
    cols.update({name: np.empty(sub.shape[:2]) for name in ["mean", *_quantile_names(q), "p_roas_ge_1"]})
    for block in _blocks(sub):
        revenue = n[block, None, None] * sub[block]
        summary = _summaries(revenue / k[block, None, None], q)
        summary["p_roas_ge_1"] = (revenue >= k[block, None, None]).mean(axis=-1)
        for name, values in summary.items():
            cols[name][block] = values
    return _long(idx[has], keep, cols)


def payback_ages(draws: Any, installs: Any, cost: Any) -> np.ndarray:
    """Payback age per cohort and draw: ``T_c^(s) = min{D : N_c L_c^(s)(D) >= K_c}``, an integer in ``0..H``,
    or ``H + 1`` where draw ``s`` does not pay back within the horizon ("after H").

    Returns a (C, S) int64 array; ``-1`` for cohorts whose cost is NaN (unknown). A zero cost pays back at age 0.
    ``draws`` (C, H + 1, S), ``installs`` and ``cost`` as in :func:`cohort_table` (cohorts are labelled by
    position in error messages).
    """
    a = _check_draws(draws)
    idx = pd.RangeIndex(a.shape[0])
    _check_draw_values(a, idx)
    n, _ = _check_installs(installs, idx)
    k = _check_cost(cost, idx)
    return _payback_ages(a, n, k)


def _payback_ages(a: np.ndarray, n: np.ndarray, k: np.ndarray) -> np.ndarray:
    t = np.empty((a.shape[0], a.shape[2]), dtype=np.int64)
    for block in _blocks(a):
        paid = n[block, None, None] * a[block] >= k[block, None, None]
        t[block] = np.where(paid.any(axis=1), paid.argmax(axis=1), a.shape[1])
    t[np.isnan(k)] = -1
    return t


def _discrete_quantiles(t: np.ndarray, probs: Sequence[float]) -> np.ndarray:
    """Quantiles of integer samples along the last axis as the inverse of their empirical CDF:
    the smallest ``a`` with ``#{s : t_s <= a} / S >= p`` (so the value is always an observed age). (P, ...)"""
    s = t.shape[-1]
    srt = np.sort(t, axis=-1)
    pos = [max(math.ceil(p * s - 1e-9), 1) - 1 for p in probs]
    return np.moveaxis(srt[..., pos], -1, 0)


# ---------------------------------------------------------------------------------------------------- cohorts
def _check_checkpoints(checkpoints: Sequence[int], horizon: int) -> list[int]:
    cp = np.atleast_1d(np.asarray(checkpoints if checkpoints is not None else (), dtype=np.float64))
    if cp.ndim != 1 or np.any(~np.isfinite(cp)) or np.any(cp != np.round(cp)) or np.any(cp < 0):
        raise DataValidationError(f"checkpoints: expected whole ages >= 0, got {list(np.ravel(cp))}")
    return sorted({int(c) for c in cp if c <= horizon} | {horizon})


def _group_frame(groups: Any, cohorts: pd.Index) -> pd.DataFrame:
    """Grouping columns as a frame with one row per cohort (positional)."""
    if groups is None:
        return pd.DataFrame(index=pd.RangeIndex(len(cohorts)))
    if isinstance(groups, pd.DataFrame):
        frame = groups.reset_index(drop=True)
    elif isinstance(groups, Mapping):
        frame = pd.DataFrame({str(k): list(_per_cohort(v, f"groups[{k!r}]", cohorts)) for k, v in groups.items()})
    elif isinstance(groups, pd.Series):
        frame = groups.reset_index(drop=True).to_frame(name=groups.name if groups.name is not None else "group")
    else:
        frame = pd.DataFrame({"group": _per_cohort(groups, "groups", cohorts)})
    if len(frame) != len(cohorts):
        raise DataValidationError(
            f"groups: {len(frame)} rows for {len(cohorts)} cohorts; pass one row of grouping labels per cohort, in "
            "the order of draws"
        )
    return frame


def cohort_table(
    draws: Any,
    cohorts: Sequence,
    installs: Any,
    cost: Any = None,
    observed_age: Any = None,
    groups: Any = None,
    checkpoints: Sequence[int] = DEFAULT_CHECKPOINTS,
    horizon: int | None = None,
    *,
    period_label: str = "d",
) -> pd.DataFrame:
    """One row per cohort (``cohorts.csv``): LTV at checkpoint ages and, given a cost, the Bayesian decision
    summaries at the horizon ``H``.

    Columns, in order (``{p}`` = ``period_label``, ``{k}`` = each checkpoint ``<= H`` and ``H`` itself):

    - ``cohort``, the grouping columns of ``groups``, ``installs``, ``cost`` (given a cost), ``observed_age``
      (given);
    - ``ltv_{p}{k}_mean``, ``ltv_{p}{k}_q05``, ``ltv_{p}{k}_q95``: posterior mean and 90% interval of ``L_c(k)``;

    and given ``cost`` (``K_c``; NaN for a cohort without one makes its columns below NaN):

    - ``roas_mean``, ``roas_q05``, ``roas_q95``: ``ROAS_c(H) = N_c L_c(H) / K_c`` (NaN where ``K_c = 0``);
    - ``p_roas_ge_1``: ``P(ROAS_c(H) >= 1) = (1/S) sum_s 1[N_c L_c^(s)(H) >= K_c]``;
    - ``p_payback_{p}{k}``: ``P(N_c L_c(k) >= K_c)``, the probability of having paid back by age ``k``;
    - ``p_payback``: the probability of paying back within the horizon, ``P(T_c <= H)`` (equal to
      ``p_roas_ge_1`` and ``p_payback_{p}{H}``, the curves being non-decreasing);
    - ``payback_age_median``, ``payback_age_q05``, ``payback_age_q95``: quantiles of the payback age
      ``T_c = min{D : N_c L_c(D) >= K_c}`` (:func:`payback_ages`), each the smallest age ``a`` with
      ``P(T_c <= a) >= p`` (a whole age). **NaN means "after H"**: that quantile of the payback age lies beyond
      the horizon (e.g. a NaN median with ``p_payback < 0.5``); an empty cell in CSV;
    - ``profit_mean``, ``profit_q05``, ``profit_q95``: ``profit_c(H) = N_c L_c(H) - K_c``, its mean
      ``N_c E[L_c(H)] - K_c`` and 90% interval.

    Parameters
    ----------
    draws
        (C, H + 1, S) posterior predictive draws of the cumulative LTV per install, non-decreasing in age.
    cohorts
        C cohort (or group) labels.
    installs
        cohort sizes ``N_c > 0``.
    cost
        acquisition cost of each whole cohort (``>= 0``, NaN if unknown); ``None``: no decision columns.
    observed_age
        last observed age ``k_c`` of each cohort, copied to the table.
    groups
        grouping labels per cohort (app, campaign, ...): a DataFrame (its columns), a mapping of column name to
        labels, or one array / Series of labels (column ``group`` or the Series' name).
    checkpoints
        ages of the LTV and ``p_payback_`` columns; those beyond ``H`` are left out and ``H`` is always added.
    horizon
        ``H``; default ``draws.shape[1] - 1``, smaller values cut the draws at that age.
    period_label
        prefix of the checkpoint columns: ``"d"`` for daily ages (``ltv_d30_mean``), ``"w"`` for weekly ones.
    """
    a = _check_draws(draws)
    idx = _check_cohorts(cohorts, a.shape[0])
    if horizon is not None:
        if not float(horizon).is_integer() or not 0 <= horizon < a.shape[1]:
            raise DataValidationError(
                f"horizon: {horizon} is not a whole age within the draws' ages 0..{a.shape[1] - 1}"
            )
        a = a[:, : int(horizon) + 1, :]
    H = a.shape[1] - 1
    _check_draw_values(a, idx)
    n, installs_shown = _check_installs(installs, idx)
    ks = _check_checkpoints(checkpoints, H)
    grp = _group_frame(groups, idx)

    out = pd.DataFrame({"cohort": idx})
    clash = [c for c in grp.columns if c in ("cohort", "installs", "cost", "observed_age")]
    if clash:
        raise DataValidationError(f"groups: column {clash[0]!r} clashes with a column of the cohort table; rename it")
    for col in grp.columns:
        out[col] = grp[col].to_numpy()
    out["installs"] = installs_shown
    k = None
    if cost is not None:
        k = _check_cost(cost, idx)
        out["cost"] = k
    if observed_age is not None:
        out["observed_age"] = _per_cohort(observed_age, "observed_age", idx)

    cols: dict[str, np.ndarray] = {}
    at = a[:, ks, :]  # (C, K, S)
    mean = at.mean(axis=-1)
    lo, hi = np.quantile(at, [_LOW, _HIGH], axis=-1)
    for j, kk in enumerate(ks):
        name = f"ltv_{period_label}{kk}"
        cols[f"{name}_mean"], cols[f"{name}_q05"], cols[f"{name}_q95"] = mean[:, j], lo[:, j], hi[:, j]

    if k is not None:
        known = ~np.isnan(k)
        revenue_h = n[:, None] * a[:, H, :]  # (C, S)
        with np.errstate(divide="ignore", invalid="ignore"):
            roas = revenue_h / k[:, None]
        roas[~(k > 0)] = np.nan
        cols["roas_mean"] = roas.mean(axis=-1)
        cols["roas_q05"], cols["roas_q95"] = np.quantile(roas, [_LOW, _HIGH], axis=-1)
        cols["p_roas_ge_1"] = np.where(known, (revenue_h >= k[:, None]).mean(axis=-1), np.nan)
        paid = n[:, None, None] * at >= k[:, None, None]  # (C, K, S)
        p_paid = np.where(known[:, None], paid.mean(axis=-1), np.nan)
        for j, kk in enumerate(ks):
            cols[f"p_payback_{period_label}{kk}"] = p_paid[:, j]
        t = _payback_ages(a, n, np.where(known, k, 0.0))
        cols["p_payback"] = np.where(known, (t <= H).mean(axis=-1), np.nan)
        tq = _discrete_quantiles(t, (0.5, _LOW, _HIGH)).astype(np.float64)
        tq[(tq > H) | ~known[None, :]] = np.nan
        cols["payback_age_median"], cols["payback_age_q05"], cols["payback_age_q95"] = tq
        profit = revenue_h - k[:, None]
        cols["profit_mean"] = n * a[:, H, :].mean(axis=-1) - k
        cols["profit_q05"], cols["profit_q95"] = np.quantile(profit, [_LOW, _HIGH], axis=-1)
    return pd.concat([out, pd.DataFrame(cols)], axis=1)


# ---------------------------------------------------------------------------------------------------- groups
def _group_codes(groups: Any, n: int) -> tuple[np.ndarray, pd.Index]:
    """Group code per cohort and the sorted group labels; a multi-column frame's labels are its values joined
    by ``" / "``."""
    if isinstance(groups, pd.DataFrame):
        if groups.shape[1] == 0:
            raise DataValidationError("groups: the frame has no columns; pass the grouping column(s)")
        frame = groups.reset_index(drop=True)
        name = " / ".join(map(str, frame.columns))
        na = frame.isna().any(axis=1).to_numpy()
        if frame.shape[1] == 1:
            values = frame.iloc[:, 0].to_numpy()
        else:
            values = frame.astype(str).agg(" / ".join, axis=1).to_numpy(dtype=object)
            values[na] = None
    else:
        name = groups.name if isinstance(groups, pd.Series) else None
        values = np.asarray(groups.to_numpy() if isinstance(groups, (pd.Series, pd.Index)) else groups)
        if values.ndim != 1:
            raise DataValidationError(f"groups: expected one label per cohort (1-D), got shape {values.shape}")
    if len(values) != n:
        raise DataValidationError(
            f"groups: {len(values)} labels for {n} cohorts; pass one group label per cohort, in the order of draws"
        )
    missing = pd.isna(values)
    if np.any(missing):
        pos = int(np.flatnonzero(missing)[0])
        raise DataValidationError(f"groups: missing label for the cohort at position {pos}; every cohort needs a group")
    codes, labels = pd.factorize(values, sort=True)
    return codes, pd.Index(labels, name=name)


def group_curves(draws: Any, installs: Any, groups: Any) -> tuple[pd.Index, np.ndarray]:
    """Install-weighted cumulative LTV per install of groups of cohorts (an app, a campaign, a country):

        L_g^(s)(D) = sum_{c in g} N_c L_c^(s)(D) / sum_{c in g} N_c

    per draw and age, i.e. the group's revenue per install, pooling the cohorts' posterior draws (assumed to
    be joint draws: the same index ``s`` across cohorts). The result is non-decreasing in age like its inputs and
    goes into :func:`curve_table`, :func:`roas_table` and :func:`cohort_table` as a "cohort" (with the sums of
    :func:`group_totals`).

    ``groups``: one label per cohort (array / Series), or a DataFrame of grouping columns (several columns are
    joined into labels ``"app / campaign"``). Returns ``(labels, group_draws)``: the sorted group labels
    (a pandas Index) and a (G, H + 1, S) array.
    """
    a = _check_draws(draws)
    codes, labels = _group_codes(groups, a.shape[0])
    idx = pd.RangeIndex(a.shape[0])
    _check_draw_values(a, idx)
    n, _ = _check_installs(installs, idx)
    w = np.zeros((len(labels), a.shape[0]))
    w[codes, np.arange(a.shape[0])] = n
    pooled = np.tensordot(w, a, axes=(1, 0)) / w.sum(axis=1)[:, None, None]
    return labels, pooled


def group_totals(groups: Any, installs: Any, cost: Any = None) -> pd.DataFrame:
    """Installs and cost summed by group, indexed by the labels of :func:`group_curves` (same order).

    Columns ``installs`` and, given ``cost``, ``cost``: NaN for a group where any cohort's cost is unknown (a
    partial sum would overstate ROAS).
    """
    n_cohorts = len(groups) if isinstance(groups, pd.DataFrame) else len(np.asarray(groups))
    codes, labels = _group_codes(groups, n_cohorts)
    idx = pd.RangeIndex(n_cohorts)
    n, shown = _check_installs(installs, idx)
    out = pd.DataFrame(index=labels)
    out["installs"] = np.bincount(codes, weights=n, minlength=len(labels)).astype(shown.dtype)
    if cost is not None:
        k = _check_cost(cost, idx)
        total = np.bincount(codes, weights=np.nan_to_num(k), minlength=len(labels))
        unknown = np.bincount(codes, weights=np.isnan(k).astype(float), minlength=len(labels)) > 0
        out["cost"] = np.where(unknown, np.nan, total)
    return out
