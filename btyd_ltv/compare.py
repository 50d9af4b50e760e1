"""Every customer-level model — ours, the deep and GBDT baselines, a user's own predictions — scored on one split
by one ruler.

:func:`split_customers` draws the train / validation / test split once (seeded; written to ``split.csv``);
:func:`compare` fits each :class:`~btyd_ltv.adapters.CustomerModel` on the training customers (the validation
customers are passed for early stopping and calibration), predicts the test customers and scores every model with
:func:`btyd_ltv.metrics.report`; :func:`write_comparison` writes ``metrics.csv``, ``metrics.md``, ``split.csv``,
``predictions.csv`` and the figures (deciles, Lorenz curves, calibration, and the posterior predictive checks of the
Bayesian models with the baselines' point predictions overlaid). :func:`comparison_data` builds the built-in data
sets: CDNOW (features known ``weeks`` after each customer's first purchase, target = spend over the next 52 weeks)
and the multimodal synthetic set.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from btyd_ltv.adapters.base import CustomerData, CustomerModel, Prediction
from btyd_ltv.adapters.registry import DEFAULT_MODELS
from btyd_ltv.errors import DataValidationError

__all__ = ["COMPARISON_DATASETS", "Comparison", "ModelResult", "build_models", "comparison_data", "compare",
           "split_customers", "write_comparison", "DEFAULT_LEVELS", "DEFAULT_MODELS", "DEFAULT_TOP_K"]

#: Interval levels and top fractions scored by default (50/90% coverage, top-10% AUC; MEAN paper's metric set).
DEFAULT_LEVELS = (0.5, 0.9)
DEFAULT_TOP_K = (0.1,)
#: Built-in comparison data sets.
COMPARISON_DATASETS = ("cdnow", "multimodal")

#: Features of the CDNOW comparison (known at week k after each customer's first purchase): the RFM summary of
#: the first k weeks (``purchases_k``, ``recency``, ``monetary_value``), the first purchase's value, weekday and
#: cohort week. (``frequency`` equals ``purchases_k`` and ``T`` is the same for everyone, so neither is a
#: feature; the BTYD model reads ``frequency, recency, T, monetary_value`` from the table.)
#:
#: Left out because they are (nearly) functions of the features above, from
#: :func:`~btyd_ltv.data.features.customer_features_at`: ``has_second = 1{purchases_k > 0}`` and ``spend_k =
#: first_purchase_value + purchases_k * monetary_value`` exactly; ``days_to_second`` is ``7k`` without a repeat
#: purchase and ``7 * recency`` with exactly one, so it differs from a linear combination of the others only
#: for the ~3% of customers with two or more repeat days. Such near-dependences put the design's remaining
#: variation on a few customers; so did the raw ``purchases_k`` count (one training customer with 20 repeat days
#: sat 33 standard deviations out), hence ``log1p``. Together they gave single customers a leverage (hat value)
#: of 0.39 in the standardised design of the default split (seed 0), so that the linear predictors of the Bayesian
#: ZILN regression at a random NUTS starting point spread over +-20 for them: their softplus scale sat at its
#: floor, the log density at -5e13, and one chain never moved (R-hat 1.6, mean forecast 199,500 vs 53.4). With
#: these features the largest hat value is 0.027 (``tests/test_compare.py`` bounds it).
CDNOW_NUMERIC = ("first_purchase_value", "purchases_k", "recency", "monetary_value")
CDNOW_LOG1P = ("first_purchase_value", "purchases_k", "monetary_value")
CDNOW_CATEGORICAL = ("first_purchase_weekday", "cohort_week")


def comparison_data(name: str, *, weeks: int = 4, horizon_weeks: int = 52, n_customers: int | None = None,
                    seed: int = 0) -> CustomerData:
    """A built-in comparison data set as :class:`CustomerData`.

    ``"cdnow"``: the CDNOW master log (23,570 customers; Fader & Hardie's CDNOW data), features known ``weeks``
    weeks after each customer's own first purchase (:func:`btyd_ltv.data.features.customer_features_at`), target =
    spend over the next ``horizon_weeks`` weeks, with the 13- and 26-week sub-horizons for multi-task models.
    ``"multimodal"``: the seeded multimodal cross-app set (event sequences + tabular features;
    :func:`btyd_ltv.adapters.fusion.multimodal_customer_data`) with ``n_customers`` users (default 4,000).
    ``n_customers`` subsamples CDNOW customers at random (seeded).
    """
    if name == "cdnow":
        from btyd_ltv.data.datasets import DATASETS, load_dataset
        from btyd_ltv.data.features import customer_features_at

        info = DATASETS["cdnow-master"]
        table = customer_features_at(load_dataset("cdnow-master"), info.customer_col, info.date_col,
                                     info.amount_col, weeks=weeks, horizon_weeks=horizon_weeks,
                                     sub_horizons_weeks=(13, 26))
        if n_customers is not None and n_customers < len(table):
            rng = np.random.default_rng(seed)
            table = table.iloc[np.sort(rng.choice(len(table), size=int(n_customers), replace=False))]
        horizons = {f"{h}w": f"target_{h}w" for h in (13, 26) if h < horizon_weeks}
        return CustomerData(table, target="target", numeric=CDNOW_NUMERIC, categorical=CDNOW_CATEGORICAL,
                            log1p=CDNOW_LOG1P, horizons=horizons, horizon_periods=float(horizon_weeks))
    if name == "multimodal":
        from btyd_ltv.adapters.fusion import multimodal_customer_data

        return multimodal_customer_data(4000 if n_customers is None else int(n_customers), seed=seed)
    raise DataValidationError(f"unknown comparison data set {name!r}; choose from {', '.join(COMPARISON_DATASETS)}")


def build_models(
    names: Sequence[str],
    *,
    seed: int = 0,
    num_chains: int = 4,
    num_warmup: int = 1000,
    num_samples: int = 1000,
    max_epochs: int | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, CustomerModel]:
    """Registered models by name (:func:`btyd_ltv.adapters.registry.customer_model`), all with ``seed``; the
    MCMC models get the sampler settings, the neural ones their default :class:`~btyd_ltv.adapters._nn.TrainConfig`
    with ``seed`` and ``max_epochs`` (when given). ``overrides[name]`` holds further keyword arguments of that
    model (a ``config`` mapping updates its training settings)."""
    import importlib
    import inspect
    from dataclasses import replace

    from btyd_ltv.adapters._nn import TrainConfig
    from btyd_ltv.adapters.registry import CUSTOMER_MODELS, customer_model

    overrides = dict(overrides or {})
    unknown = [k for k in overrides if k not in names]
    if unknown:
        raise DataValidationError(f"settings given for model {unknown[0]!r}, which is not among {list(names)}")
    out: dict[str, CustomerModel] = {}
    for name in names:
        if name in out:
            raise DataValidationError(f"model {name!r} is listed twice")
        if name not in CUSTOMER_MODELS:
            raise DataValidationError(f"unknown model {name!r}; choose from {', '.join(CUSTOMER_MODELS)}")
        kw: dict[str, Any] = {"seed": seed, "num_chains": num_chains, "num_warmup": num_warmup,
                              "num_samples": num_samples}
        extra = dict(overrides.get(name, {}))
        module, cls_name = CUSTOMER_MODELS[name]
        params = inspect.signature(getattr(importlib.import_module(module), cls_name)).parameters
        bad = [k for k in extra if k not in params]
        if bad:
            raise DataValidationError(f"model {name!r} has no setting {bad[0]!r}; it takes "
                                      f"{', '.join(k for k in params if k != 'name')}")
        default = params["config"].default if "config" in params else None
        if isinstance(default, TrainConfig):
            changes = {"seed": seed, **({"max_epochs": int(max_epochs)} if max_epochs else {}),
                       **dict(extra.pop("config", {}))}
            kw["config"] = replace(default, **changes)
        kw.update(extra)
        out[name] = customer_model(name, **kw)
    return out


def split_customers(ids: Sequence[Any] | pd.Index, *, valid_fraction: float = 0.2, test_fraction: float = 0.3,
                    seed: int = 0) -> pd.Series:
    """Random split of the customers into ``"train"``, ``"valid"`` and ``"test"`` (a Series indexed by id),
    seeded; every split gets at least one customer."""
    n = len(ids)
    if not (0 < valid_fraction < 1 and 0 < test_fraction < 1 and valid_fraction + test_fraction < 1):
        raise DataValidationError(f"valid_fraction ({valid_fraction}) and test_fraction ({test_fraction}) must be "
                                  "in (0, 1) with a sum below 1")
    if n < 3:
        raise DataValidationError(f"need at least 3 customers to split into train/valid/test, got {n}")
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(1, int(round(test_fraction * n)))
    n_valid = max(1, int(round(valid_fraction * n)))
    if n_test + n_valid >= n:
        raise DataValidationError(f"{n} customers leave no training customer at these fractions")
    labels = np.full(n, "train", dtype=object)
    labels[order[:n_test]] = "test"
    labels[order[n_test:n_test + n_valid]] = "valid"
    return pd.Series(labels, index=pd.Index(ids, name="customer_id"), name="split")


@dataclass
class ModelResult:
    """One model's test-set prediction, timings and sampling diagnostics (empty when none)."""

    name: str
    prediction: Prediction
    fit_seconds: float
    predict_seconds: float
    diagnostics: list[str] = field(default_factory=list)
    bayesian: bool = False


@dataclass
class Comparison:
    """Scores (``metrics``: one row per model), the per-model results, the split and the test outcomes."""

    metrics: pd.DataFrame
    results: dict[str, ModelResult]
    split: pd.Series
    y_test: np.ndarray
    test_ids: pd.Index
    info: dict[str, Any] = field(default_factory=dict)

    def to_markdown(self) -> str:
        """The metrics table in Markdown (models as rows), with the split sizes and seed above it."""
        from btyd_ltv.metrics import report_markdown

        counts = self.split.value_counts()
        head = (f"{int(counts.get('test', 0)):,} test customers (train {int(counts.get('train', 0)):,}, "
                f"validation {int(counts.get('valid', 0)):,}; seed {self.info.get('seed', '?')})")
        return head + "\n\n" + report_markdown(self.metrics)


def _diagnostic_messages(model: Any) -> list[str]:
    out = []
    for key, diag in (getattr(model, "diagnostics", None) or {}).items():
        out.extend(f"{key}: {m}" for m in getattr(diag, "messages", []))
    return out


def compare(
    data: CustomerData,
    models: Mapping[str, CustomerModel],
    *,
    split: pd.Series | None = None,
    seed: int = 0,
    levels: Sequence[float] = DEFAULT_LEVELS,
    top_k: Sequence[float] = DEFAULT_TOP_K,
    bayesian: Sequence[str] = (),
    progress: Any = None,
) -> Comparison:
    """Fit every model on the training customers of ``split`` (default :func:`split_customers` with ``seed``),
    passing the validation customers, predict the test customers and score them all with
    :func:`btyd_ltv.metrics.report` (levels ``levels``, top fractions ``top_k``); columns ``fit_seconds`` and
    ``predict_seconds`` are added. Names in ``bayesian`` get posterior predictive check figures in
    :func:`write_comparison`. Sampling problems of a Bayesian model (warned about by its fit as
    :class:`~btyd_ltv.errors.SamplingWarning`) are kept in ``results[name].diagnostics`` and the ``diagnostics``
    column. ``progress``, when
    given, is called with a line of text per model.
    """
    from btyd_ltv.metrics import report

    if not models:
        raise DataValidationError("no models to compare")
    if split is None:
        split = split_customers(data.ids, seed=seed)
    split = split.reindex(data.ids)
    if split.isna().any():
        raise DataValidationError(f"split has no label for customer {split.index[int(np.argmax(split.isna()))]!r}")
    parts = {k: data.take(split.to_numpy() == k) for k in ("train", "valid", "test")}
    for k, part in parts.items():
        if part.n == 0:
            raise DataValidationError(f"the {k} split is empty")
    y = parts["test"].y
    results: dict[str, ModelResult] = {}
    for name, model in models.items():
        t0 = time.perf_counter()
        model.fit(parts["train"], parts["valid"])
        t1 = time.perf_counter()
        pred = model.predict(parts["test"])
        t2 = time.perf_counter()
        if pred.mean.shape != y.shape:
            raise DataValidationError(f"model {name!r} returned {pred.mean.size} predictions for {y.size} test "
                                      "customers")
        msgs = _diagnostic_messages(model)  # the fit itself already warned (SamplingWarning)
        results[name] = ModelResult(name, pred, t1 - t0, t2 - t1, msgs, name in bayesian)
        if progress is not None:
            progress(f"{name}: fit {t1 - t0:.1f} s, predict {t2 - t1:.1f} s")
    metrics = report(y, {n: r.prediction.report_input() for n, r in results.items()}, levels=levels, top_k=top_k)
    metrics["fit_seconds"] = [results[n].fit_seconds for n in metrics.index]
    metrics["predict_seconds"] = [results[n].predict_seconds for n in metrics.index]
    metrics["diagnostics"] = ["; ".join(results[n].diagnostics) or "ok" for n in metrics.index]
    return Comparison(metrics, results, split, y, parts["test"].ids, {"seed": seed, "target": data.target})


def write_comparison(result: Comparison, out_dir: str | Path) -> list[Path]:
    """Write ``metrics.csv``, ``metrics.md``, ``split.csv``, ``predictions.csv`` (actual and every model's
    prediction [, ``p_positive``, quantiles] per test customer), ``deciles.png``, ``lorenz.png``,
    ``calibration.png`` and ``ppc_<model>.png`` per Bayesian model; each file atomically."""
    import matplotlib.pyplot as plt

    from btyd_ltv import plots
    from btyd_ltv.io import write_csv, write_figure, write_text

    out = Path(out_dir)
    paths = [write_csv(result.metrics, out / "metrics.csv"), write_text(result.to_markdown() + "\n",
                                                                         out / "metrics.md"),
             write_csv(result.split.to_frame(), out / "split.csv")]
    cols = {"actual": pd.Series(result.y_test, index=result.test_ids)}
    for name, r in result.results.items():
        frame = r.prediction.to_frame(result.test_ids)
        for c in frame.columns:
            cols[f"{name}:{c}"] = frame[c]
    paths.append(write_csv(pd.DataFrame(cols), out / "predictions.csv"))
    points = {name: r.prediction.mean for name, r in result.results.items()}
    figures = {
        "deciles.png": plots.compare_decile_chart(result.y_test, points),
        "lorenz.png": plots.lorenz_curves(result.y_test, points),
        "calibration.png": plots.calibration_plot(result.y_test, points),
    }
    for name, r in result.results.items():
        if r.bayesian and r.prediction.samples is not None:
            others = {k: v for k, v in points.items() if k != name}
            figures[f"ppc_{name}.png"] = plots.ppc_overlay(result.y_test, r.prediction.samples, others,
                                                           label=f"{name} posterior predictive")
    for fname, fig in figures.items():
        paths.append(write_figure(fig, out / fname, dpi=110))
        plt.close(fig)
    return paths
