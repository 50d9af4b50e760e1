"""Machine-learned cohort-curve baselines (MLP, TiDE, LightGBM) as backtest forecasters, and their shared plumbing.

Each model is a :data:`~btyd_ltv.backtest.Forecaster` ``f(history, cohorts, ages) -> CurveForecast`` fit afresh on
``history`` at every call, like the classical baselines of :mod:`btyd_ltv.backtest`. The task is the
sequence-to-sequence one of marketing LTV projects: a cohort's curve at ages ``0..k`` in, its cumulative LTV at
the later ages out.

Training set, per origin age ``k`` (the targets of one call may have different ``k``; one model per ``k``, as the
classical baselines loop over ``(k, H)``): every cohort of ``history`` observed beyond ``k`` with ``L_m(k) > 0``.
Its inputs are

- the normalised lookback ``L_m(a) / L_m(k)``, ``a = 0..k`` (and the retention ``active_m(a) / N_m`` when
  ``columns.active_users`` is given);
- static covariates: ``log L_m(k)``, ``log N_m``, the cohort's age at the cutoff ``A_m`` (the cutoff minus its
  acquisition period, i.e. the acquisition index up to a shift, for every cohort still being observed) and a
  one-hot code of each grouping column; standardised with the training split's mean and standard deviation;

and its targets the log development ratios ``y_m(a) = log(L_m(a) / L_m(k)) >= 0`` at the later ages, *masked*
beyond the cohort's last observed age ``A_m``: cohorts of every maturity train the model, each up to where it has
been seen. Working with ratios to ``L(k)`` makes cohorts of different sizes and price levels comparable (the
multiplier's scale); the forecast is ``L_c(H) = L_c(k) exp(yhat_c(H))`` (``0`` when ``L_c(k) = 0``, as for the
multiplier) and every model outputs non-decreasing ``yhat >= 0``, so ``L_c(k) <= L_c(H) <= L_c(H')`` for
``H < H'``.

Fallback: a checkpoint ``H`` with fewer than ``min_cohorts`` (default 5) training cohorts observed to ``H`` is
forecast by the median multiplier (:class:`~btyd_ltv.backtest.Multiplier`, with its resampled-ratio draws); a
final running maximum over the sorted checkpoints keeps each cohort's forecasts non-decreasing where model and
fallback cells meet (so a checkpoint no cohort has reached gets at least the forecast of the last one modelled,
where the multiplier alone would say ``L_c(k)``).

Validation split and intervals: the training cohorts, ordered by maturity, are cut into blocks of five and one
cohort per block (at random, seeded; also from a last block of three or four) is held out, a stratified 20%
split under which every modelled checkpoint has validation cohorts. The held-out cohorts drive early stopping;
their residuals ``e = y(H) - yhat(H)`` on the log-ratio scale give the predictive draws
``L_c(k) exp(max(yhat_c(H) + e*, 0))``, ``e*`` resampled with replacement, when a checkpoint has at least
``min_interval_residuals`` (default 10) of them (split-conformal in spirit, Lei et al. 2018, JASA 113:
"Distribution-free predictive inference for regression"; optimistic, since the same cohorts chose the stopping
epoch and they share the calendar of the training cohorts: expect under-coverage). With fewer, the cell has no
draws (point forecast). The point forecast ``L_c(k) exp(yhat)`` targets the median on the log scale.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from btyd_ltv import backtest as _bt
from btyd_ltv.backtest import CurveForecast, Forecaster, Multiplier
from btyd_ltv.data.cohorts import CohortColumns
from btyd_ltv.errors import DataValidationError

__all__ = ["CURVE_BASELINES", "curve_baselines"]

#: Names accepted by :func:`curve_baselines`.
CURVE_BASELINES = ("mlp", "tide", "lightgbm")


def curve_baselines(names: Sequence[str], *, columns: CohortColumns = CohortColumns(), seed: int = 0
                    ) -> dict[str, Forecaster]:
    """The machine-learned curve forecasters named in ``names`` (any of ``"mlp"``, ``"tide"``, ``"lightgbm"``),
    keyed by name, with default settings. Raises :class:`DataValidationError` for an unknown name and
    :class:`~btyd_ltv.adapters.MissingExtraError` when the ``[deep]`` extra is not installed."""
    if isinstance(names, str):
        names = [names]
    unknown = [n for n in names if n not in CURVE_BASELINES]
    if unknown:
        raise DataValidationError(
            f"unknown curve baseline {unknown[0]!r}; choose from {', '.join(CURVE_BASELINES)}"
        )
    from btyd_ltv.adapters.curve_gbdt import CurveLightGBM
    from btyd_ltv.adapters.curve_nets import CurveMLP, CurveTiDE

    factories: dict[str, Callable[..., Forecaster]] = {"mlp": CurveMLP, "tide": CurveTiDE,
                                                       "lightgbm": CurveLightGBM}
    return {n: factories[n](columns=columns, seed=seed) for n in dict.fromkeys(names)}


# ==================================================================================== shared training problem
@dataclass
class CurveProblem:
    """One origin age ``k``: standardised inputs and masked log-ratio targets of the training cohorts.

    ``past`` is ``(n, k + 1, d)`` (lookback ``L(a) / L(k)``, then retention when available), ``static`` ``(n, q)``;
    ``y`` is ``(n, S)`` with ``y[m, j] = log(L_m(k + 1 + j) / L_m(k))`` for the steps ``k + 1..H_max``, ``NaN`` where
    cohort ``m`` is not observed; ``checkpoints`` are the requested ages modelled (``>= min_cohorts`` training
    cohorts observed there) and ``columns`` their step indices. Rows ``train`` / ``valid`` split the training
    cohorts; ``past_target`` / ``static_target`` are the inputs of the cohorts to forecast.
    """

    k: int
    checkpoints: np.ndarray
    columns: np.ndarray
    past: np.ndarray
    static: np.ndarray
    y: np.ndarray
    train: np.ndarray
    valid: np.ndarray
    past_target: np.ndarray
    static_target: np.ndarray

    @property
    def steps(self) -> np.ndarray:
        """The ages ``k + 1..H_max`` of the target columns."""
        return np.arange(self.k + 1, self.k + 1 + self.y.shape[1])

    def arrays(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """Float32 arrays of some training rows for the neural training loop (``mask`` 1 where observed)."""
        y = self.y[rows]
        return {"past": self.past[rows].astype(np.float32), "static": self.static[rows].astype(np.float32),
                "y": np.nan_to_num(y).astype(np.float32), "mask": (~np.isnan(y)).astype(np.float32)}


#: ``fit(problem) -> (valid_pred, target_pred)``: log ratios at ``problem.checkpoints`` for the validation rows
#: and for the targets.
FitPredict = Callable[[CurveProblem], tuple[np.ndarray, np.ndarray]]


def _stratified_valid(last: np.ndarray, seed: int, k: int, block: int = 5) -> np.ndarray:
    """Boolean validation mask: order cohorts by maturity (ties at random), one random cohort per block of
    ``block``; the last partial block contributes one only when it holds at least ``block // 2 + 1`` cohorts."""
    rng = np.random.default_rng([seed, k])
    order = np.lexsort((rng.random(last.size), -last))
    valid = np.zeros(last.size, dtype=bool)
    for start in range(0, last.size, block):
        members = order[start:start + block]
        if members.size == block or (members.size > block // 2 and start > 0):
            valid[members[rng.integers(members.size)]] = True
    if not valid.any() and last.size >= 2:
        valid[order[rng.integers(last.size)]] = True
    return valid


def _group_codes(history: pd.DataFrame, columns: CohortColumns, ids: pd.Index) -> np.ndarray:
    """One-hot codes ``(cohorts, levels)`` of the grouping columns, levels sorted; ``(cohorts, 0)`` without."""
    if not columns.groups:
        return np.zeros((ids.size, 0))
    first = history.groupby(columns.cohort, sort=True)[list(columns.groups)].first().reindex(ids)
    parts = [pd.get_dummies(first[g].astype(str), dtype=np.float64).to_numpy() for g in columns.groups]
    return np.concatenate(parts, axis=1)


def _problem(s: _bt._Setup, history: pd.DataFrame, columns: CohortColumns, k: int, sel: np.ndarray,
             min_cohorts: int, seed: int) -> CurveProblem | None:
    """The training problem for the targets ``sel`` (all observed to age ``k``), or ``None`` when no requested
    checkpoint above ``k`` has ``min_cohorts`` training cohorts observed there."""
    cur = s.curves
    lk_all = cur.ltv[:, k]
    pool = np.flatnonzero((cur.last > k) & (np.nan_to_num(lk_all) > 0))
    hs = s.ages[s.ages > k]
    n_mature = (cur.last[pool][None, :] >= hs[:, None]).sum(axis=1)
    modelled = np.unique(hs[n_mature >= min_cohorts])
    if modelled.size == 0:
        return None
    steps = np.arange(k + 1, int(modelled.max()) + 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.log(cur.ltv[pool][:, steps] / lk_all[pool, None])
    y = np.maximum(y, 0.0)  # cumulative revenue never falls (revenue >= 0); guards rounding only

    rows = np.concatenate([pool, s.rows[sel]])
    lk = np.nan_to_num(lk_all[rows])
    pos = lk > 0
    ratio = np.where(pos[:, None], cur.ltv[rows, : k + 1] / np.where(pos, lk, 1.0)[:, None], 0.0)
    channels = [np.nan_to_num(ratio)]
    if cur.active is not None:
        channels.append(np.nan_to_num(cur.active[rows, : k + 1] / cur.installs[rows, None]))
    past = np.stack(channels, axis=-1)
    floor = float(lk[pos].min()) if pos.any() else 1.0
    static = np.column_stack([np.log(np.maximum(lk, floor)), np.log(cur.installs[rows]),
                              cur.last[rows].astype(np.float64),
                              _group_codes(history, columns, cur.ids)[rows]])
    valid = _stratified_valid(cur.last[pool], seed, k)
    train = ~valid
    n = pool.size
    center = static[:n][train].mean(axis=0)
    scale = static[:n][train].std(axis=0)
    static = (static - center) / np.where(scale > 1e-12, scale, 1.0)
    return CurveProblem(k=k, checkpoints=modelled, columns=modelled - (k + 1), past=past[:n], static=static[:n],
                        y=y, train=np.flatnonzero(train), valid=np.flatnonzero(valid), past_target=past[n:],
                        static_target=static[n:])


def curve_forecast(name: str, history: pd.DataFrame, cohorts: Sequence[str], ages: Sequence[int], *,
                   columns: CohortColumns, seed: int, min_cohorts: int, min_interval_residuals: int,
                   n_samples: int, fit: FitPredict) -> CurveForecast:
    """Run ``fit`` once per origin age of the targets and assemble the forecast (see the module docstring):
    ``L_c(H) = L_c(k) exp(yhat_c(H))`` on the modelled cells, the median multiplier elsewhere, a running maximum
    over sorted checkpoints, and validation-residual draws where there are ``min_interval_residuals``."""
    fallback = Multiplier(min_interval_cohorts=min_cohorts, n_samples=n_samples, seed=seed,
                          columns=columns)(history, cohorts, ages)
    s = _bt._setup(history, cohorts, ages, columns, name)
    mean = np.array(fallback.mean, dtype=np.float64)
    samples = (np.full(mean.shape + (n_samples,), np.nan) if fallback.samples is None
               else np.array(fallback.samples, dtype=np.float64))
    rng = np.random.default_rng(seed)
    for k in np.unique(s.k):
        sel = np.flatnonzero(s.k == k)
        problem = _problem(s, history, columns, int(k), sel, min_cohorts, seed)
        if problem is None:
            continue
        valid_pred, target_pred = fit(problem)
        target_pred = np.maximum.accumulate(np.maximum(np.asarray(target_pred, dtype=np.float64), 0.0), axis=1)
        lk = s.lk[sel]
        for j, h in enumerate(problem.checkpoints):
            a = np.flatnonzero(s.ages == h)
            mean[sel[:, None], a[None, :]] = (lk * np.exp(target_pred[:, j]))[:, None]
            y_valid = problem.y[problem.valid, problem.columns[j]]
            ok = ~np.isnan(y_valid)
            resid = y_valid[ok] - np.asarray(valid_pred, dtype=np.float64)[ok, j]
            cell = np.full((sel.size, n_samples), np.nan)
            if resid.size >= min_interval_residuals:
                e = rng.choice(resid, size=n_samples)
                cell = lk[:, None] * np.exp(np.maximum(target_pred[:, j, None] + e[None, :], 0.0))
            samples[sel[:, None], a[None, :], :] = cell[:, None, :]
    order = np.argsort(s.ages, kind="stable")
    mean[:, order] = np.maximum.accumulate(mean[:, order], axis=1)
    has_draws = ~np.isnan(samples).all(axis=2)
    return CurveForecast(list(map(str, cohorts)), s.ages, mean, samples if has_draws.any() else None)


def check_settings(name: str, *, min_cohorts: int, min_interval_residuals: int, n_samples: int) -> None:
    """Raise :class:`DataValidationError` for settings a curve baseline cannot work with."""
    if not isinstance(min_cohorts, (int, np.integer)) or min_cohorts < 2:
        raise DataValidationError(f"{name}: min_cohorts must be an integer >= 2 (a training and a validation "
                                  f"cohort), got {min_cohorts!r}")
    if not isinstance(min_interval_residuals, (int, np.integer)) or min_interval_residuals < 1:
        raise DataValidationError(f"{name}: min_interval_residuals must be a positive integer, got "
                                  f"{min_interval_residuals!r}")
    if not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise DataValidationError(f"{name}: n_samples must be a positive integer, got {n_samples!r}")
