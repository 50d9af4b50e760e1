"""Gradient-boosted cohort-curve forecaster: one LightGBM regressor per (origin age ``k``, checkpoint ``H``).

Inputs are those of :mod:`btyd_ltv.adapters.curve_baselines` (lookback ``L(a) / L(k)`` and retention at ages
``0..k``, ``log L(k)``, ``log N``, the cohort's age at the cutoff, one-hot groups), flattened into one row per
cohort; the target is the log development ratio ``y = log(L(H) / L(k))`` of the training cohorts observed to
``H``. The forecast is ``L_c(H) = L_c(k) exp(yhat)`` with ``yhat`` clipped at 0 (so ``L_c(H) >= L_c(k)``) and
made non-decreasing across the checkpoints by a running maximum. Boosting stops early on the held-out cohorts.

References: Ke, Meng, Finley, Wang, Chen, Ma, Ye & Liu (2017), "LightGBM: a highly efficient gradient boosting
decision tree", NeurIPS 30; Friedman (2001), "Greedy function approximation: a gradient boosting machine", Ann.
Statist. 29(5).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from btyd_ltv.adapters._extras import require
from btyd_ltv.adapters.curve_baselines import CurveProblem, check_settings, curve_forecast
from btyd_ltv.backtest import CurveForecast
from btyd_ltv.data.cohorts import CohortColumns
from btyd_ltv.errors import DataValidationError

__all__ = ["CurveLightGBM"]


@dataclass(frozen=True, kw_only=True)
class CurveLightGBM:
    """LightGBM curve forecaster (name ``"lightgbm"``): per ``(k, H)``, ``log(L(H) / L(k))`` regressed on the
    cohort's inputs at ages ``0..k`` by gradient-boosted trees (squared error), at most ``n_estimators`` rounds of
    ``learning_rate`` with ``early_stopping_rounds`` on the held-out cohorts; small trees (``num_leaves``,
    ``min_child_samples``) and row / feature subsampling suit the few hundred cohorts of a typical history.

    ``min_cohorts`` training cohorts observed at ``H`` are needed to model it (else the median multiplier);
    ``min_interval_residuals`` held-out residuals give predictive draws (else a point forecast); ``n_samples``
    draws; ``seed`` (boosting, split, draws); ``num_threads`` LightGBM threads (1 keeps fits reproducible and
    light). See :mod:`btyd_ltv.adapters.curve_baselines` for the data, scale, fallback and intervals.
    """

    n_estimators: int = 300
    learning_rate: float = 0.05
    num_leaves: int = 15
    min_child_samples: int = 5
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    reg_lambda: float = 1.0
    early_stopping_rounds: int = 30
    num_threads: int = 1
    min_cohorts: int = 5
    min_interval_residuals: int = 10
    n_samples: int = 1000
    seed: int = 0
    columns: CohortColumns = CohortColumns()

    name = "lightgbm"

    def __post_init__(self) -> None:
        require("lightgbm")
        check_settings(self.name, min_cohorts=self.min_cohorts, min_interval_residuals=self.min_interval_residuals,
                       n_samples=self.n_samples)
        if self.n_estimators < 1 or self.learning_rate <= 0 or self.num_leaves < 2 or self.min_child_samples < 1:
            raise DataValidationError(
                f"lightgbm: n_estimators >= 1, learning_rate > 0, num_leaves >= 2 and min_child_samples >= 1 are "
                f"needed; got {self.n_estimators}, {self.learning_rate}, {self.num_leaves}, {self.min_child_samples}"
            )
        if not (0.0 < self.subsample <= 1.0 and 0.0 < self.colsample_bytree <= 1.0):
            raise DataValidationError(f"lightgbm: subsample and colsample_bytree must lie in (0, 1], got "
                                      f"{self.subsample}, {self.colsample_bytree}")

    def _params(self) -> dict:
        return {
            "objective": "regression", "learning_rate": self.learning_rate, "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples, "min_data_in_bin": 1, "subsample": self.subsample,
            "subsample_freq": 1, "colsample_bytree": self.colsample_bytree, "reg_lambda": self.reg_lambda,
            "seed": self.seed, "deterministic": True, "force_row_wise": True, "num_threads": self.num_threads,
            "verbosity": -1,
        }

    def _fit(self, problem: CurveProblem) -> tuple[np.ndarray, np.ndarray]:
        lgb = require("lightgbm")
        flat = problem.past.reshape(problem.past.shape[0], -1)
        x = np.concatenate([flat, problem.static], axis=1)
        x_target = np.concatenate([problem.past_target.reshape(problem.past_target.shape[0], -1),
                                   problem.static_target], axis=1)
        x_valid = x[problem.valid]
        valid_pred = np.zeros((problem.valid.size, problem.checkpoints.size))
        target_pred = np.zeros((x_target.shape[0], problem.checkpoints.size))
        for j, col in enumerate(problem.columns):
            y = problem.y[:, col]
            tr = problem.train[~np.isnan(y[problem.train])]
            va = problem.valid[~np.isnan(y[problem.valid])]
            train_set = lgb.Dataset(x[tr], y[tr], params={"verbosity": -1, "min_data_in_bin": 1},
                                    free_raw_data=False)
            kwargs: dict = {}
            if va.size:
                valid_set = lgb.Dataset(x[va], y[va], reference=train_set)
                kwargs = {"valid_sets": [valid_set],
                          "callbacks": [lgb.early_stopping(self.early_stopping_rounds, verbose=False)]}
            booster = lgb.train(self._params(), train_set, num_boost_round=self.n_estimators, **kwargs)
            best = booster.best_iteration or None
            valid_pred[:, j] = booster.predict(x_valid, num_iteration=best)
            target_pred[:, j] = booster.predict(x_target, num_iteration=best)
        return valid_pred, target_pred

    def __call__(self, history: pd.DataFrame, cohorts: Sequence[str], ages: Sequence[int]) -> CurveForecast:
        return curve_forecast(self.name, history, cohorts, ages, columns=self.columns, seed=self.seed,
                              min_cohorts=self.min_cohorts, min_interval_residuals=self.min_interval_residuals,
                              n_samples=self.n_samples, fit=self._fit)
