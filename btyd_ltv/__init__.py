"""btyd_ltv: Bayesian customer-lifetime-value (BTYD) models on JAX/NumPyro.

The public API is re-exported here. Imports are lazy (PEP 562), so ``import btyd_ltv`` does not start JAX;
the first use of a modelling function does.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # data
    "summary_from_transactions": "btyd_ltv.data.transactions",
    "calibration_and_holdout": "btyd_ltv.data.transactions",
    "validate_transactions": "btyd_ltv.data.validate",
    "validate_summary": "btyd_ltv.data.validate",
    "compress_rfm": "btyd_ltv.data.compress",
    "CompressedRFM": "btyd_ltv.data.compress",
    "load_dataset": "btyd_ltv.data.datasets",
    "list_datasets": "btyd_ltv.data.datasets",
    "simulate_bgnbd": "btyd_ltv.data.simulate",
    "simulate_gamma_gamma": "btyd_ltv.data.simulate",
    "simulate_transactions": "btyd_ltv.data.simulate",
    "simulate_ziln": "btyd_ltv.data.simulate",
    "spend_features": "btyd_ltv.data.features",
    "build_design": "btyd_ltv.data.design",
    "align_predictions": "btyd_ltv.data.predictions",
    "validate_cohort_table": "btyd_ltv.data.cohorts",
    "cohort_table_from_transactions": "btyd_ltv.data.cohorts",
    "cumulative_ltv": "btyd_ltv.data.cohorts",
    "cohort_triangle": "btyd_ltv.data.cohorts",
    "CohortColumns": "btyd_ltv.data.cohorts",
    "simulate_portfolio": "btyd_ltv.data.portfolio",
    "load_cdnow_weekly": "btyd_ltv.data.datasets",
    # models
    "bgnbd": "btyd_ltv.models.bgnbd",
    "gamma_gamma": "btyd_ltv.models.gamma_gamma",
    "ziln": "btyd_ltv.models.ziln",
    "cohort_curve": "btyd_ltv.models.cohort_curve",
    "ZeroInflatedLogNormal": "btyd_ltv.distributions",
    "mixture_quantiles": "btyd_ltv.distributions",
    "ziln_loss": "btyd_ltv.losses",
    "ziln_predict": "btyd_ltv.losses",
    "get_model": "btyd_ltv.models",
    # inference, predictions, workflow, io
    "fit": "btyd_ltv.inference",
    "diagnose": "btyd_ltv.inference",
    "Diagnostics": "btyd_ltv.inference",
    "enable_compilation_cache": "btyd_ltv.inference",
    "predict_customers": "btyd_ltv.predict",
    "predict_spend": "btyd_ltv.predict",
    "fit_ziln": "btyd_ltv.workflow",
    "predict_ziln": "btyd_ltv.workflow",
    "ZILNFit": "btyd_ltv.workflow",
    "metrics": "btyd_ltv.metrics",
    "curves": "btyd_ltv.curves",
    "backtest": "btyd_ltv.backtest",
    "curve_table": "btyd_ltv.curves",
    "cohort_table": "btyd_ltv.curves",
    "component_table": "btyd_ltv.curves",
    "roas_table": "btyd_ltv.curves",
    "group_curves": "btyd_ltv.curves",
    "payback_ages": "btyd_ltv.curves",
    "CurveOptions": "btyd_ltv.cohort_workflow",
    "CurveFit": "btyd_ltv.cohort_workflow",
    "fit_curves": "btyd_ltv.cohort_workflow",
    "predict_curves": "btyd_ltv.cohort_workflow",
    "expected_ltv_draws": "btyd_ltv.cohort_workflow",
    "expected_component_draws": "btyd_ltv.cohort_workflow",
    "curve_components": "btyd_ltv.cohort_workflow",
    "curve_forecaster": "btyd_ltv.cohort_workflow",
    "write_curve_fit": "btyd_ltv.cohort_workflow",
    "population_prior": "btyd_ltv.cohort_workflow",
    "rolling_origin": "btyd_ltv.backtest",
    "plots": "btyd_ltv.plots",
    "PredictionSettings": "btyd_ltv.predict",
    "periods_per_month": "btyd_ltv.predict",
    "fit_btyd": "btyd_ltv.workflow",
    "FitOptions": "btyd_ltv.workflow",
    "prepare_summary": "btyd_ltv.workflow",
    "params_table": "btyd_ltv.workflow",
    "predict_from_posterior": "btyd_ltv.workflow",
    "write_fit": "btyd_ltv.workflow",
    "read_posterior": "btyd_ltv.io",
    # comparison with the baselines ("module:attribute" where a function shares its module's name; `compare`
    # stays the module, as importing it binds the submodule on the package anyway: bl.compare.compare(...))
    "compare": "btyd_ltv.compare",
    "build_models": "btyd_ltv.compare",
    "comparison_data": "btyd_ltv.compare",
    "split_customers": "btyd_ltv.compare",
    "write_comparison": "btyd_ltv.compare",
    "adapters": "btyd_ltv.adapters",
    "CustomerData": "btyd_ltv.adapters.base",
    "Prediction": "btyd_ltv.adapters.base",
    "ExternalPredictions": "btyd_ltv.adapters.external",
    "ExternalCurves": "btyd_ltv.adapters.external",
    "customer_model": "btyd_ltv.adapters.registry",
    "curve_baselines": "btyd_ltv.adapters.curve_baselines:curve_baselines",
    "customer_features_at": "btyd_ltv.data.features",
    "simulate_multimodal": "btyd_ltv.data.simulate",
    # errors
    "BtydError": "btyd_ltv.errors",
    "DataValidationError": "btyd_ltv.errors",
    "SamplingWarning": "btyd_ltv.errors",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'btyd_ltv' has no attribute {name!r}")
    module, _, attr = module.partition(":")
    mod = importlib.import_module(module)
    value = getattr(mod, attr) if attr else mod if module.endswith("." + name) else getattr(mod, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
