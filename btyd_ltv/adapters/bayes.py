"""This package's Bayesian models behind the adapter protocol, so :mod:`btyd_ltv.compare` scores them exactly
like the baselines: BG/NBD x Gamma-Gamma (``bgnbd_gg``) and the ZILN regression (``ziln``).

Both return the posterior predictive mean, ``P(y > 0)``, quantiles and the ``(n, S)`` predictive draws; the ZILN
model also gives the pointwise log-likelihood draws of the observed target (for the log predictive density).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from btyd_ltv.adapters.base import BTYD_COLUMNS, CustomerData, Prediction
from btyd_ltv.data.predictions import quantile_columns
from btyd_ltv.errors import DataValidationError

__all__ = ["BGNBDGammaGamma", "BayesZILN"]


def _sampler(num_chains: int, num_warmup: int, num_samples: int, seed: int, progress_bar: bool):
    from btyd_ltv.workflow import FitOptions

    return FitOptions(num_chains=num_chains, num_warmup=num_warmup, num_samples=num_samples, seed=seed,
                      progress_bar=progress_bar)


def _from_columns(table, samples: np.ndarray | None, log_lik: np.ndarray | None = None) -> Prediction:
    quantiles = {tau: table[c].to_numpy() for c, tau in quantile_columns(table.columns).items()}
    return Prediction(table["prediction"].to_numpy(), p_positive=table["p_positive"].to_numpy(),
                      quantiles=quantiles, samples=samples, log_lik=log_lik)


@dataclass
class BGNBDGammaGamma:
    """BG/NBD (Fader, Hardie & Lee 2005a) x Gamma-Gamma (Fader, Hardie & Lee 2005b) fitted by NUTS to the
    training customers' calibration summaries (``frequency, recency, T, monetary_value``); the forecast is the
    posterior predictive of spend over the next ``CustomerData.horizon_periods`` periods
    (:func:`btyd_ltv.predict.predict_spend`). It does not use the training targets."""

    num_chains: int = 4
    num_warmup: int = 1000
    num_samples: int = 1000
    max_draws: int = 1000
    seed: int = 0
    progress_bar: bool = False
    name: str = "bgnbd_gg"
    posterior: Any = field(default=None, init=False, repr=False)
    diagnostics: dict = field(default_factory=dict, init=False, repr=False)

    def fit(self, train: CustomerData, valid: CustomerData | None = None) -> BGNBDGammaGamma:
        """Fit both models to ``train``'s BTYD summary columns."""
        from btyd_ltv.workflow import fit_btyd

        _check_btyd(train)
        fitted = fit_btyd(train.frame[list(BTYD_COLUMNS)], "clv", predict=False,
                          options=_sampler(self.num_chains, self.num_warmup, self.num_samples, self.seed,
                                           self.progress_bar))
        self.posterior, self.diagnostics = fitted.posterior, fitted.diagnostics
        return self

    def predict(self, data: CustomerData) -> Prediction:
        """Posterior predictive spend over ``data.horizon_periods`` periods per customer."""
        from btyd_ltv.predict import predict_spend

        if self.posterior is None:
            raise DataValidationError("bgnbd_gg: call fit() before predict()")
        _check_btyd(data)
        if data.horizon_periods is None or not data.horizon_periods > 0:
            raise DataValidationError("bgnbd_gg needs CustomerData.horizon_periods, the length of the target "
                                      "window in the time unit of frequency/recency/T")
        table, samples = predict_spend(self.posterior, data.frame[list(BTYD_COLUMNS)], data.horizon_periods,
                                       max_draws=self.max_draws, seed=self.seed, return_samples=True)
        return _from_columns(table, samples)


@dataclass
class BayesZILN:
    """The Bayesian zero-inflated log-normal regression (:mod:`btyd_ltv.models.ziln`; likelihood of Wang, Liu &
    Miao 2019) of the target on the numeric (``log1p`` where listed) and one-hot categorical features,
    optionally with partially pooled intercepts by ``group``.

    The features are standardised and the coefficients sampled on the QR scale (:mod:`btyd_ltv.models.ziln`), so
    correlated features and their units do not matter to the sampler; customers with a high leverage (hat value)
    do, and neither standardising nor a tighter coefficient prior changes that: at a random starting point their
    linear predictors spread like ``0.29 sqrt(n h)``, which can put the softplus scale at its floor and freeze a
    chain. Give heavy-tailed counts as ``log1p`` and leave out features that are functions of the others (as
    :data:`btyd_ltv.compare.CDNOW_NUMERIC` does)."""

    group: str | None = None
    num_chains: int = 4
    num_warmup: int = 1000
    num_samples: int = 1000
    max_draws: int = 1000
    seed: int = 0
    progress_bar: bool = False
    name: str = "ziln"
    posterior: Any = field(default=None, init=False, repr=False)
    design: Any = field(default=None, init=False, repr=False)
    diagnostics: dict = field(default_factory=dict, init=False, repr=False)

    def fit(self, train: CustomerData, valid: CustomerData | None = None) -> BayesZILN:
        """NUTS fit of the ZILN regression on ``train``."""
        from btyd_ltv.workflow import fit_ziln

        features = [*train.numeric, *train.categorical]
        fitted = fit_ziln(train.frame, train.target, features, group=self.group, log1p=train.log1p,
                          categorical=train.categorical, predict=False,
                          options=_sampler(self.num_chains, self.num_warmup, self.num_samples, self.seed,
                                           self.progress_bar))
        self.posterior, self.design, self.diagnostics = fitted.posterior, fitted.design, fitted.diagnostics
        return self

    def predict(self, data: CustomerData) -> Prediction:
        """Posterior predictive summaries and draws (and log-likelihood draws when the target is known)."""
        from btyd_ltv.models import ziln
        from btyd_ltv.workflow import predict_ziln

        if self.posterior is None:
            raise DataValidationError("ziln: call fit() before predict()")
        table, _ = predict_ziln(self.posterior, data.frame, max_draws=self.max_draws, seed=self.seed)
        X, g = self.design.matrix(data.frame)
        samples = ziln.sample_predictive(self.posterior, X, g, max_draws=self.max_draws, seed=self.seed)
        log_lik = (ziln.pointwise_log_likelihood(self.posterior, X, data.y, g, max_draws=self.max_draws)
                   if data.has_target else None)
        return _from_columns(table, samples, log_lik)


def _check_btyd(data: CustomerData) -> None:
    missing = [c for c in BTYD_COLUMNS if c not in data.frame]
    if missing:
        raise DataValidationError(f"bgnbd_gg needs the calibration summary column {missing[0]!r} "
                                  f"({', '.join(BTYD_COLUMNS)}) in the customer table")
