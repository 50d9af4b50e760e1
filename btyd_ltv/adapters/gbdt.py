"""Gradient-boosted-tree baselines on the tabular features (LightGBM; Ke et al. 2017, "LightGBM: A Highly
Efficient Gradient Boosting Decision Tree", NeurIPS).

- :class:`GBDTTwoStage` (``"gbdt_two_stage"``): the two-stage pipeline of the Smadex D7-revenue reference
  (seeds/001): a buyer classifier whose probability is calibrated on the validation split, times a revenue
  regressor trained on buyers only,

  .. math:: \\hat y(x) = \\hat P(y > 0 \\mid x)\\; \\hat E[y \\mid y > 0, x].

- :class:`GBDTRegressor` (``"gbdt"``): one booster on the target, the tabular-only XGBoost-style baseline of
  the cross-app multimodal reference (seeds/000).

Features come from :class:`~btyd_ltv.adapters._features.TabularEncoder` fitted on the training customers:
standardised numeric columns plus the integer codes of the categorical columns, which LightGBM splits on as
categorical features (0 = a level unseen in training). Boosting stops early on the validation split (carved out
of ``train`` with :func:`~btyd_ltv.adapters._nn.split_valid` when none is given). Fits are deterministic:
``deterministic=True``, column-wise histograms, a fixed number of threads and seeded sampling.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import numpy as np

from btyd_ltv.adapters._extras import require
from btyd_ltv.adapters._features import TabularEncoder
from btyd_ltv.adapters._nn import split_valid
from btyd_ltv.adapters.base import CustomerData, Prediction
from btyd_ltv.errors import DataValidationError

__all__ = ["GBDTTwoStage", "GBDTRegressor"]


def _design(encoder: TabularEncoder, data: CustomerData) -> np.ndarray:
    """``(n, n_numeric + n_categorical)`` float64: standardised numerics, then categorical codes."""
    return np.concatenate([encoder.numeric_matrix(data).astype(np.float64),
                           encoder.categorical_codes(data).astype(np.float64)], axis=1)


def _feature_names(encoder: TabularEncoder) -> list[str]:
    names = [re.sub(r"[^0-9A-Za-z_]", "_", str(c)) for c in (*encoder.numeric, *encoder.categorical)]
    return [f"{c}_{j}" if names.count(c) > 1 else c for j, c in enumerate(names)]


class _Booster:
    """Shared LightGBM settings and the ``lightgbm.train`` call with early stopping."""

    def __init__(self, *, n_estimators: int, learning_rate: float, num_leaves: int, min_child_samples: int,
                 feature_fraction: float, reg_lambda: float, early_stopping_rounds: int, valid_fraction: float,
                 num_threads: int, seed: int) -> None:
        if n_estimators < 1 or num_leaves < 2 or min_child_samples < 1 or early_stopping_rounds < 1:
            raise DataValidationError("n_estimators, min_child_samples and early_stopping_rounds must be >= 1 and "
                                      f"num_leaves >= 2; got {n_estimators}, {min_child_samples}, "
                                      f"{early_stopping_rounds}, {num_leaves}")
        if not (learning_rate > 0 and 0 < feature_fraction <= 1 and reg_lambda >= 0 and 0 < valid_fraction < 1):
            raise DataValidationError("need learning_rate > 0, feature_fraction in (0, 1], reg_lambda >= 0 and "
                                      f"valid_fraction in (0, 1); got {learning_rate}, {feature_fraction}, "
                                      f"{reg_lambda}, {valid_fraction}")
        self._lgb = require("lightgbm")
        self.n_estimators = int(n_estimators)
        self.learning_rate = float(learning_rate)
        self.num_leaves = int(num_leaves)
        self.min_child_samples = int(min_child_samples)
        self.feature_fraction = float(feature_fraction)
        self.reg_lambda = float(reg_lambda)
        self.early_stopping_rounds = int(early_stopping_rounds)
        self.valid_fraction = float(valid_fraction)
        self.num_threads = int(num_threads)
        self.seed = int(seed)
        self.encoder_: TabularEncoder | None = None

    def _params(self, objective: str, metric: str, **extra: Any) -> dict[str, Any]:
        return {
            "objective": objective, "metric": metric, "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves, "min_data_in_leaf": self.min_child_samples,
            "feature_fraction": self.feature_fraction, "lambda_l2": self.reg_lambda,
            "min_data_per_group": min(self.min_child_samples, 100), "cat_smooth": 10.0,
            "deterministic": True, "force_col_wise": True, "num_threads": self.num_threads,
            "seed": self.seed, "verbosity": -1, **extra,
        }

    def _split(self, train: CustomerData, valid: CustomerData | None) -> tuple[CustomerData, CustomerData]:
        if valid is None:
            train, valid = split_valid(train, self.valid_fraction, self.seed)
        self.encoder_ = TabularEncoder.fit(train)
        return train, valid

    def _boost(self, params: dict[str, Any], X: np.ndarray, y: np.ndarray, X_valid: np.ndarray | None,
               y_valid: np.ndarray | None, rounds: int | None = None) -> Any:
        """``lightgbm.train`` with early stopping on ``(X_valid, y_valid)``; without validation rows it runs
        ``rounds`` (default ``n_estimators``) rounds."""
        lgb = self._lgb
        assert self.encoder_ is not None
        n_num = len(self.encoder_.numeric)
        cats = list(range(n_num, X.shape[1]))
        dtrain = lgb.Dataset(X, y, feature_name=_feature_names(self.encoder_), categorical_feature=cats,
                             free_raw_data=False, params={"verbosity": -1})
        if X_valid is None or y_valid is None or len(y_valid) == 0:
            return lgb.train(params, dtrain, num_boost_round=rounds or self.n_estimators)
        dvalid = lgb.Dataset(X_valid, y_valid, reference=dtrain, free_raw_data=False)
        return lgb.train(params, dtrain, num_boost_round=self.n_estimators, valid_sets=[dvalid],
                         valid_names=["valid"],
                         callbacks=[lgb.early_stopping(self.early_stopping_rounds, verbose=False)])

    def _check_fitted(self) -> TabularEncoder:
        if self.encoder_ is None:
            raise DataValidationError(f"{type(self).__name__}.predict called before fit")
        return self.encoder_


class GBDTTwoStage(_Booster):
    """Two-stage LightGBM: calibrated buyer probability x buyers-only revenue regression (seeds/001).

    Stage 1, a binary LightGBM on ``1{y > 0}`` (log loss, early stopped on the validation split at round
    ``B``); its score is recalibrated, ``calibration="sigmoid"`` by Platt scaling ``P = sigmoid(a + b margin)``
    (Platt 1999; a logistic regression on the raw margin, rank-preserving and stable on small samples) or
    ``"isotonic"`` by isotonic regression of ``1{y > 0}`` on the raw probability (Zadrozny & Elkan 2002;
    ``sklearn.isotonic.IsotonicRegression``), or ``"none"``. The reference calibrates on the validation split;
    but that split also chose ``B``, and a few hundred rows make the fitted slope noisy (on the adapter test
    table, Platt on the 300 validation rows moved the mean probability of the lowest quartile from 0.05 to
    0.03 against an observed buyer rate of 0.06). So by default (``calibration_folds=5``) the calibrator is
    cross-fitted: the pooled training and validation customers are split into ``K`` folds, a booster of ``B``
    rounds is trained on each ``K - 1`` folds, and the calibrator is fitted on the out-of-fold margins of all
    customers (the ``ensemble=False`` scheme of ``sklearn.calibration.CalibratedClassifierCV``); with
    ``K = 1 / valid_fraction`` each fold model sees as many customers as the final one.
    ``calibration_folds=0`` calibrates on the validation split alone (also the fallback when a fold would lack
    buyers or non-buyers).

    Stage 2, a LightGBM on the buyers only. ``revenue_objective="gamma"`` (default) fits the Gamma deviance
    with a log link, ``E[y | y > 0, x] = exp(f(x))``: the deviance is a strictly consistent scoring function
    for the mean (a Bregman divergence), so the spend-scale mean needs no retransformation, and its
    relative-error weighting keeps whales from dominating the fit as squared error would. ``"log1p"`` fits
    squared error on ``log1p(y)`` and returns to the spend scale with Duan's (1983) smearing estimate
    ``E[y | y > 0, x] = S exp(f(x)) - 1``, ``S = mean(exp(log1p(y_i) - f(x_i)))`` over the validation buyers
    (homoscedastic residuals assumed).

    The prediction is ``P(buyer) E[revenue | buyer]``; ``p_positive`` is the calibrated ``P(buyer)``.

    :param n_estimators: maximum boosting rounds per stage (early stopping picks fewer).
    :param learning_rate: shrinkage per round.
    :param num_leaves: leaves per tree.
    :param min_child_samples: minimum customers per leaf.
    :param feature_fraction: share of features sampled per tree (seeded).
    :param reg_lambda: L2 penalty on leaf values.
    :param early_stopping_rounds: stop after this many rounds without a validation improvement.
    :param calibration: ``"sigmoid"``, ``"isotonic"`` or ``"none"``.
    :param calibration_folds: ``K >= 2`` for cross-fitted calibration, ``0`` for the validation split alone.
    :param revenue_objective: ``"gamma"`` or ``"log1p"`` (see above).
    :param valid_fraction: share of ``train`` held out when ``fit`` gets no ``valid``.
    :param num_threads: LightGBM threads (fixed for reproducible histograms).
    :param seed: seeds LightGBM and the validation split.
    """

    name = "gbdt_two_stage"

    def __init__(self, *, n_estimators: int = 500, learning_rate: float = 0.05, num_leaves: int = 15,
                 min_child_samples: int = 20, feature_fraction: float = 0.9, reg_lambda: float = 1.0,
                 early_stopping_rounds: int = 30, calibration: Literal["sigmoid", "isotonic", "none"] = "sigmoid",
                 calibration_folds: int = 5, revenue_objective: Literal["gamma", "log1p"] = "gamma",
                 valid_fraction: float = 0.2, num_threads: int = 1, seed: int = 0) -> None:
        if calibration not in ("sigmoid", "isotonic", "none"):
            raise DataValidationError(f"calibration must be 'sigmoid', 'isotonic' or 'none', got {calibration!r}")
        if calibration_folds == 1 or calibration_folds < 0:
            raise DataValidationError(f"calibration_folds must be 0 (validation split) or >= 2, got "
                                      f"{calibration_folds}")
        if revenue_objective not in ("gamma", "log1p"):
            raise DataValidationError(f"revenue_objective must be 'gamma' or 'log1p', got {revenue_objective!r}")
        super().__init__(n_estimators=n_estimators, learning_rate=learning_rate, num_leaves=num_leaves,
                         min_child_samples=min_child_samples, feature_fraction=feature_fraction,
                         reg_lambda=reg_lambda, early_stopping_rounds=early_stopping_rounds,
                         valid_fraction=valid_fraction, num_threads=num_threads, seed=seed)
        if calibration != "none":
            require("sklearn")
        self.calibration = calibration
        self.calibration_folds = int(calibration_folds)
        self.revenue_objective = revenue_objective

    def fit(self, train: CustomerData, valid: CustomerData | None = None) -> GBDTTwoStage:
        """Fit the buyer classifier, its calibration and the buyers-only revenue regressor."""
        train, valid = self._split(train, valid)
        y, y_valid = train.y, valid.y
        buyer, buyer_valid = y > 0, y_valid > 0
        if buyer.all() or not buyer.any():
            raise DataValidationError(f"the training customers need both buyers (target > 0) and non-buyers; "
                                      f"got {int(buyer.sum())} buyers of {train.n}")
        assert self.encoder_ is not None
        X, X_valid = _design(self.encoder_, train), _design(self.encoder_, valid)

        params = self._params("binary", "binary_logloss")
        self.classifier_ = self._boost(params, X, buyer.astype(np.float64), X_valid,
                                       buyer_valid.astype(np.float64))
        X_pool, buyer_pool = np.concatenate([X, X_valid]), np.concatenate([buyer, buyer_valid])
        oof = self._out_of_fold_margin(params, X_pool, buyer_pool) if self.calibration_folds else None
        if oof is not None:
            self._fit_calibration(oof, buyer_pool)
        else:
            self._fit_calibration(self._margin(X_valid), buyer_valid)

        if self.revenue_objective == "gamma":
            params, z, z_valid = self._params("gamma", "gamma_deviance"), y[buyer], y_valid[buyer_valid]
        else:
            params, z, z_valid = self._params("regression", "l2"), np.log1p(y[buyer]), np.log1p(y_valid[buyer_valid])
        self.regressor_ = self._boost(params, X[buyer], z, X_valid[buyer_valid], z_valid)
        self.smearing_ = 1.0
        if self.revenue_objective == "log1p":
            ref_X, ref_z = (X_valid[buyer_valid], z_valid) if buyer_valid.any() else (X[buyer], z)
            self.smearing_ = float(np.mean(np.exp(ref_z - self._raw_revenue(ref_X))))
        return self

    def _margin(self, X: np.ndarray) -> np.ndarray:
        return self.classifier_.predict(X, raw_score=True, num_threads=self.num_threads)

    def _raw_revenue(self, X: np.ndarray) -> np.ndarray:
        return self.regressor_.predict(X, raw_score=self.revenue_objective == "log1p", num_threads=self.num_threads)

    def _out_of_fold_margin(self, params: dict[str, Any], X: np.ndarray, buyer: np.ndarray) -> np.ndarray | None:
        """Margins of each customer from a booster (``B`` rounds) trained on the other folds; None when a fold
        is empty or its complement lacks buyers or non-buyers."""
        rounds = max(self.classifier_.best_iteration or self.classifier_.current_iteration(), 1)
        fold = np.random.default_rng(self.seed).permutation(len(buyer)) % self.calibration_folds
        for k in range(self.calibration_folds):
            rest = buyer[fold != k]
            if not (fold == k).any() or rest.all() or not rest.any():
                return None
        margin = np.zeros(len(buyer))
        for k in range(self.calibration_folds):
            held = fold == k
            booster = self._boost(params, X[~held], buyer[~held].astype(np.float64), None, None, rounds=rounds)
            margin[held] = booster.predict(X[held], raw_score=True, num_threads=self.num_threads)
        return margin

    def _fit_calibration(self, margin: np.ndarray, buyer: np.ndarray) -> None:
        self.calibrator_: Any = None
        if self.calibration == "none" or buyer.all() or not buyer.any():
            return  # nothing to calibrate against: keep the classifier's own probability
        if self.calibration == "sigmoid":
            linear_model = require("sklearn.linear_model")
            self.calibrator_ = linear_model.LogisticRegression(C=1e4).fit(margin[:, None], buyer)
        else:
            isotonic = require("sklearn.isotonic")
            self.calibrator_ = isotonic.IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(
                _sigmoid(margin), buyer.astype(np.float64))

    def buyer_probability(self, data: CustomerData) -> np.ndarray:
        """Calibrated ``P(y > 0)`` per customer."""
        margin = self._margin(_design(self._check_fitted(), data))
        if self.calibrator_ is None:
            return _sigmoid(margin)
        if self.calibration == "sigmoid":
            return self.calibrator_.predict_proba(margin[:, None])[:, 1]
        return np.clip(self.calibrator_.predict(_sigmoid(margin)), 0.0, 1.0)

    def expected_revenue_if_buyer(self, data: CustomerData) -> np.ndarray:
        """``E[y | y > 0, x]`` from the buyers-only regressor, on the spend scale."""
        raw = self._raw_revenue(_design(self._check_fitted(), data))
        if self.revenue_objective == "log1p":
            return np.maximum(self.smearing_ * np.exp(np.minimum(raw, 700.0)) - 1.0, 0.0)
        return raw

    def predict(self, data: CustomerData) -> Prediction:
        """``P(buyer) E[revenue | buyer]`` with ``p_positive = P(buyer)``."""
        p = self.buyer_probability(data)
        return Prediction(mean=p * self.expected_revenue_if_buyer(data), p_positive=p)


class GBDTRegressor(_Booster):
    """One LightGBM regressor of the target on the tabular features (the tabular-only baseline of seeds/000).

    ``objective="tweedie"`` (default) fits the Tweedie deviance with a log link and variance power
    ``tweedie_variance_power`` in (1, 2): a compound Poisson-Gamma with a point mass at zero and a right-skewed
    positive part, the standard GBDT objective for zero-inflated spend, and a strictly consistent scoring
    function for the mean, so ``exp(f(x))`` estimates ``E[y | x]`` directly. ``objective="regression"`` is
    plain squared error on ``y`` (the ``reg:squarederror`` of an XGBoost baseline), predictions clipped at 0.

    Hyper-parameters as in :class:`GBDTTwoStage`.
    """

    name = "gbdt"

    def __init__(self, *, n_estimators: int = 500, learning_rate: float = 0.05, num_leaves: int = 15,
                 min_child_samples: int = 20, feature_fraction: float = 0.9, reg_lambda: float = 1.0,
                 early_stopping_rounds: int = 30, objective: Literal["tweedie", "regression"] = "tweedie",
                 tweedie_variance_power: float = 1.5, valid_fraction: float = 0.2, num_threads: int = 1,
                 seed: int = 0) -> None:
        if objective not in ("tweedie", "regression"):
            raise DataValidationError(f"objective must be 'tweedie' or 'regression', got {objective!r}")
        if not 1.0 < tweedie_variance_power < 2.0:
            raise DataValidationError(f"tweedie_variance_power must lie in (1, 2), got {tweedie_variance_power}")
        super().__init__(n_estimators=n_estimators, learning_rate=learning_rate, num_leaves=num_leaves,
                         min_child_samples=min_child_samples, feature_fraction=feature_fraction,
                         reg_lambda=reg_lambda, early_stopping_rounds=early_stopping_rounds,
                         valid_fraction=valid_fraction, num_threads=num_threads, seed=seed)
        self.objective = objective
        self.tweedie_variance_power = float(tweedie_variance_power)

    def fit(self, train: CustomerData, valid: CustomerData | None = None) -> GBDTRegressor:
        """Fit one booster, early stopped on the validation split."""
        train, valid = self._split(train, valid)
        assert self.encoder_ is not None
        if self.objective == "tweedie":
            params = self._params("tweedie", "tweedie", tweedie_variance_power=self.tweedie_variance_power)
        else:
            params = self._params("regression", "l2")
        self.booster_ = self._boost(params, _design(self.encoder_, train), train.y,
                                    _design(self.encoder_, valid), valid.y)
        return self

    def predict(self, data: CustomerData) -> Prediction:
        """Point forecast ``E[y | x]`` (no predictive distribution)."""
        X = _design(self._check_fitted(), data)
        mean = self.booster_.predict(X, num_threads=self.num_threads)
        return Prediction(mean=np.maximum(np.asarray(mean, np.float64), 0.0))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))
