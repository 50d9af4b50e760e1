"""End-to-end BTYD workflow: summary -> fit(s) -> per-customer predictions -> output files.

These are the functions behind ``btyd-ltv fit`` / ``predict`` / ``summary``; notebooks call them too.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from btyd_ltv.data.compress import CompressedRFM, compress_rfm
from btyd_ltv.errors import DataValidationError, SamplingWarning
from btyd_ltv.inference import Diagnostics, diagnose, fit
from btyd_ltv.io import write_csv, write_netcdf
from btyd_ltv.models import bgnbd
from btyd_ltv.models import gamma_gamma as gg
from btyd_ltv.predict import PredictionSettings, predict_customers

__all__ = [
    "prepare_summary", "FitOptions", "BTYDFit", "fit_btyd", "predict_from_posterior", "params_table", "write_fit",
    "merge_posteriors", "MODEL_KINDS", "ZILNFit", "fit_ziln", "predict_ziln",
]

MODEL_KINDS = ("bgnbd", "gamma-gamma", "clv")
PARAMS_COLUMNS = ["mean", "sd", "hdi_3%", "hdi_97%", "r_hat", "ess_bulk", "ess_tail"]


SUMMARY_COLUMNS = ("frequency", "recency", "T")


def prepare_summary(
    table: pd.DataFrame,
    *,
    customer_col: str = "customer_id",
    date_col: str = "date",
    amount_col: str | None = None,
    freq: str = "D",
    freq_multiplier: float = 1.0,
    calibration_end: str | None = None,
    observation_end: str | None = None,
    datetime_format: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Turn an input table into a customer summary (and, with ``calibration_end``, the holdout).

    A table with columns ``frequency, recency, T`` is taken as a summary already (``customer_col`` becomes the
    index when present). Otherwise it is a transaction log, summarised with
    :func:`~btyd_ltv.data.transactions.summary_from_transactions` or, when ``calibration_end`` is given,
    :func:`~btyd_ltv.data.transactions.calibration_and_holdout` (columns renamed to the summary names).
    """
    from btyd_ltv.data.transactions import calibration_and_holdout, summary_from_transactions
    from btyd_ltv.data.validate import validate_transactions

    if all(c in table.columns for c in SUMMARY_COLUMNS):
        if calibration_end is not None:
            raise DataValidationError(
                "the input is a customer summary (it has frequency, recency, T): a calibration/holdout split needs "
                "a transaction log; drop --calibration-end"
            )
        summary = table.set_index(customer_col) if customer_col in table.columns else table
        return summary, None
    if observation_end is not None:
        # an explicit end of observation must not silently drop later transactions
        validate_transactions(table, customer_col, date_col, amount_col, observation_end=observation_end,
                              datetime_format=datetime_format)
    if calibration_end is None:
        summary = summary_from_transactions(
            table, customer_col, date_col, amount_col, observation_end=observation_end, freq=freq,
            freq_multiplier=freq_multiplier, datetime_format=datetime_format,
        )
        return summary, None
    both = calibration_and_holdout(
        table, customer_col, date_col, calibration_end=calibration_end, observation_end=observation_end,
        amount_col=amount_col, freq=freq, freq_multiplier=freq_multiplier, datetime_format=datetime_format,
    )
    summary = both.rename(
        columns={"frequency_cal": "frequency", "recency_cal": "recency", "T_cal": "T",
                 "monetary_value_cal": "monetary_value"}
    )
    summary = summary[[c for c in ("frequency", "recency", "T", "monetary_value") if c in summary.columns]]
    holdout = both[[c for c in both.columns if c.endswith("_holdout")]]
    return summary, holdout


#: Above this many unique repeat-customer rows, ``precision="auto"`` evaluates the BG/NBD row terms in float32
#: (about 3x faster at 1M customers; the separable terms and the sum stay float64). See benchmarks/.
FLOAT32_ROWS_ABOVE = 50_000


def row_dtype(precision: str, n_rows: int):
    """numpy dtype of the per-row likelihood terms for ``precision`` in ``auto | float64 | float32``."""
    if precision not in ("auto", "float64", "float32"):
        raise DataValidationError(f"precision must be auto, float64 or float32, got {precision!r}")
    if precision == "auto":
        return np.float32 if n_rows > FLOAT32_ROWS_ABOVE else np.float64
    return np.dtype(precision).type


@dataclass(frozen=True)
class FitOptions:
    """Sampler settings shared by every fit of a workflow (``precision``: see :func:`row_dtype`)."""

    method: str = "nuts"
    num_chains: int = 4
    num_warmup: int = 1000
    num_samples: int = 1000
    seed: int = 0
    chain_method: str | None = None
    progress_bar: bool | None = None
    precision: str = "auto"
    target_accept_prob: float = 0.8
    max_tree_depth: int = 10
    bgnbd_priors: bgnbd.BGNBDPriors | None = None
    gamma_gamma_priors: gg.GammaGammaPriors | None = None


@dataclass
class BTYDFit:
    """Everything a workflow produced; ``posterior`` holds all fitted parameters in one InferenceData."""

    kind: str
    summary: pd.DataFrame
    rfm: CompressedRFM
    posterior: object
    params: pd.DataFrame
    customers: pd.DataFrame | None
    diagnostics: dict[str, Diagnostics] = field(default_factory=dict)


def params_table(idata, names) -> pd.DataFrame:
    """ArviZ summary of the named parameters: mean, sd, 94% HDI, R-hat, bulk/tail ESS; index ``parameter``.

    For a MAP/Laplace fit (one pseudo-chain) R-hat and ESS are not defined and are left empty.
    """
    import arviz as az

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # arviz warns about R-hat with one chain
        table = az.summary(idata, var_names=list(names), round_to="none")
    table = table[PARAMS_COLUMNS].copy()
    if idata.attrs.get("method") == "map":
        table[["r_hat", "ess_bulk", "ess_tail"]] = np.nan
    table.index.name = "parameter"
    return table


def merge_posteriors(bg, g) -> object:
    """One InferenceData holding a BG/NBD and a Gamma-Gamma posterior (same chains and draws), the
    Gamma-Gamma sample statistics and data prefixed with ``gamma_gamma_``."""
    import arviz as az
    import xarray as xr

    posterior = xr.merge([bg.posterior, g.posterior])
    groups = {"posterior": posterior}
    if "sample_stats" in bg.groups():
        stats = bg.sample_stats
        if "sample_stats" in g.groups():
            stats = xr.merge([stats, g.sample_stats.rename({k: f"gamma_gamma_{k}" for k in g.sample_stats.data_vars})])
        groups["sample_stats"] = stats
    const = bg.constant_data
    gconst = g.constant_data.rename({k: f"gamma_gamma_{k}" for k in g.constant_data.data_vars})
    gconst = gconst.rename({d: f"gamma_gamma_{d}" for d in gconst.dims})
    groups["constant_data"] = xr.merge([const, gconst])
    merged = az.InferenceData(**groups)
    merged.attrs.update(bg.attrs)
    merged.attrs.update({k: v for k, v in g.attrs.items() if k.startswith("map_") and k[4:] in g.posterior})
    for k in ("map_converged", "map_iterations"):
        if k in g.attrs:
            merged.attrs[f"gamma_gamma_{k}"] = g.attrs[k]
    merged.attrs["model"] = "clv"
    return merged


def _check_draws(bg, g) -> None:
    if bg.posterior.sizes["chain"] != g.posterior.sizes["chain"] or bg.posterior.sizes["draw"] != g.posterior.sizes["draw"]:
        raise ValueError("BG/NBD and Gamma-Gamma posteriors must have the same chains and draws to be merged")


def fit_btyd(
    summary: pd.DataFrame,
    kind: str = "bgnbd",
    *,
    options: FitOptions = FitOptions(),
    settings: PredictionSettings = PredictionSettings(),
    holdout: pd.DataFrame | None = None,
    freq: str = "D",
    freq_multiplier: float = 1.0,
    predict: bool = True,
) -> BTYDFit:
    """Fit BG/NBD (``kind="bgnbd"``), Gamma-Gamma (``"gamma-gamma"``) or both (``"clv"``) to a customer summary.

    ``summary`` has columns ``frequency``, ``recency``, ``T`` and (Gamma-Gamma/CLV) ``monetary_value``, indexed
    by customer id. ``holdout`` optionally has ``frequency_holdout`` and ``duration_holdout``. ``freq`` and
    ``freq_multiplier`` record the time unit (stored in the posterior so ``predict`` can reuse it).
    """
    kind = kind.replace("_", "-")
    if kind not in MODEL_KINDS:
        raise DataValidationError(f"unknown model {kind!r}; choose one of {', '.join(MODEL_KINDS)}")
    needs_money = kind in ("gamma-gamma", "clv")
    if needs_money and "monetary_value" not in summary.columns:
        raise DataValidationError(
            f"model {kind!r} needs spend: column 'monetary_value' is missing from the summary; pass --amount-col "
            "with a transaction log (or a summary with monetary_value)"
        )
    rfm = compress_rfm(summary, monetary_col="monetary_value" if needs_money else None)
    common = dict(
        method=options.method,
        num_chains=options.num_chains,
        num_warmup=options.num_warmup,
        num_samples=options.num_samples,
        seed=options.seed,
        chain_method=options.chain_method,
        progress_bar=options.progress_bar,
        target_accept_prob=options.target_accept_prob,
        max_tree_depth=options.max_tree_depth,
        warn=False,
    )
    diagnostics: dict[str, Diagnostics] = {}
    bg_idata = g_idata = None
    if kind in ("bgnbd", "clv"):
        dtype = row_dtype(options.precision, int(np.count_nonzero(rfm.frequency > 0)))
        bg_idata = fit(bgnbd, bgnbd.make_data_from_compressed(rfm, dtype=dtype), priors=options.bgnbd_priors,
                       **common)
        bg_idata.attrs["row_precision"] = np.dtype(dtype).name
        diagnostics["bgnbd"] = diagnose(bg_idata, bgnbd.PARAM_NAMES)
    if needs_money:
        g_idata = fit(gg, gg.make_data(summary["frequency"], summary["monetary_value"]),
                      priors=options.gamma_gamma_priors, **common)
        diagnostics["gamma_gamma"] = diagnose(g_idata, gg.PARAM_NAMES)
    for name, diag in diagnostics.items():
        for msg in diag.messages:
            warnings.warn(f"{name}: {msg}", SamplingWarning, stacklevel=2)

    if kind == "clv":
        _check_draws(bg_idata, g_idata)
        posterior = merge_posteriors(bg_idata, g_idata)
        names = bgnbd.PARAM_NAMES + gg.PARAM_NAMES
    elif kind == "bgnbd":
        posterior, names = bg_idata, bgnbd.PARAM_NAMES
    else:
        posterior, names = g_idata, gg.PARAM_NAMES
        posterior.attrs["model"] = "gamma_gamma"
    posterior.attrs.update({"freq": freq, "freq_multiplier": float(freq_multiplier)})
    params = params_table(posterior, names)

    customers = None
    if predict:
        customers = predict_from_posterior(posterior, summary, settings=settings, holdout=holdout)
    return BTYDFit(kind, summary, rfm, posterior, params, customers, diagnostics)


def predict_from_posterior(posterior, summary: pd.DataFrame, *, settings: PredictionSettings,
                           holdout: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per-customer predictions for any btyd_ltv posterior (BG/NBD, Gamma-Gamma or CLV)."""
    model = posterior.attrs.get("model")
    has_money = "monetary_value" in summary.columns
    if model == "gamma_gamma":
        if not has_money:
            raise DataValidationError("a Gamma-Gamma posterior needs column 'monetary_value' in the summary")
        from btyd_ltv.predict import posterior_draws, summarize_draws

        d = posterior_draws(posterior, gg.PARAM_NAMES, settings.max_draws)
        out = summary[["frequency", "monetary_value"]].copy()
        x = out["frequency"].to_numpy(float)
        m = out["monetary_value"].to_numpy(float)
        n = len(out)
        chunk = max(1, settings.chunk_elements // d["p"].size)
        cols: dict[str, list] = {}
        for s in range(0, n, chunk):
            v = gg.conditional_expected_average_spend(x[s:s + chunk, None], m[s:s + chunk, None],
                                                      *(d[k][None, :] for k in gg.PARAM_NAMES))
            for k, col in summarize_draws(v, "expected_spend", overwrite=True).items():
                cols.setdefault(k, []).append(col)
        for k, parts in cols.items():
            out[k] = np.concatenate(parts)
        out.index.name = "customer_id"
        return out
    rfm = compress_rfm(summary, monetary_col="monetary_value" if (model == "clv" and has_money) else None)
    if model == "clv" and not has_money:
        raise DataValidationError("a CLV posterior needs column 'monetary_value' in the summary")
    return predict_customers(
        posterior, rfm, settings=settings, gamma_gamma_idata=posterior if model == "clv" else None,
        holdout=holdout,
    )


@dataclass
class ZILNFit:
    """A Bayesian ZILN regression fit: the encoding, posterior, parameter table, per-customer predictions and
    population totals (see :func:`fit_ziln`)."""

    design: object
    posterior: object
    params: pd.DataFrame
    customers: pd.DataFrame | None
    totals: pd.DataFrame | None
    diagnostics: dict[str, Diagnostics] = field(default_factory=dict)
    kind: str = "ziln"


def fit_ziln(
    table: pd.DataFrame,
    target: str,
    features: list[str] | tuple[str, ...],
    *,
    group: str | None = None,
    log1p: list[str] | tuple[str, ...] = (),
    categorical: list[str] | tuple[str, ...] = (),
    options: FitOptions = FitOptions(),
    priors=None,
    taus=None,
    max_draws: int | None = 1000,
    predict: bool = True,
) -> ZILNFit:
    """Fit the Bayesian ZILN revenue regression (:mod:`btyd_ltv.models.ziln`) of ``target`` on ``features``.

    ``table`` has one row per customer (its index is kept as the customer id). ``group`` adds partially pooled
    cohort/campaign intercepts; ``log1p`` lists spend-like features to log-transform; string columns and those
    in ``categorical`` are one-hot encoded (:func:`btyd_ltv.data.design.build_design`). With ``predict``, the
    result holds per-customer posterior predictive summaries of the same table (:func:`predict_ziln`) and the
    population totals with intervals.
    """
    from btyd_ltv.data.design import build_design
    from btyd_ltv.models import ziln

    design = build_design(table, target, features, group=group, log1p=log1p, categorical=categorical)
    X, g = design.matrix(table)
    y = design.target_values(table)
    data = ziln.make_data(X, y, g, n_groups=len(design.group_levels))
    coords = {"feature": list(design.columns)}
    if group is not None:
        coords["group"] = list(design.group_levels)
    idata = fit(ziln, data, priors=priors, method=options.method, num_chains=options.num_chains,
                num_warmup=options.num_warmup, num_samples=options.num_samples, seed=options.seed,
                chain_method=options.chain_method, progress_bar=options.progress_bar, warn=False, coords=coords,
                target_accept_prob=options.target_accept_prob, max_tree_depth=options.max_tree_depth)
    idata.attrs["design"] = design.to_json()
    names = ziln.param_names(data)
    diagnostics = {"ziln": diagnose(idata, names)}
    for msg in diagnostics["ziln"].messages:
        warnings.warn(f"ziln: {msg}", SamplingWarning, stacklevel=2)
    table_names = [n for n in names if n not in ("group_p", "group_loc")]
    params = params_table(idata, table_names)
    customers = totals = None
    if predict:
        customers, totals = predict_ziln(idata, table, taus=taus, max_draws=max_draws, seed=options.seed)
    return ZILNFit(design, idata, params, customers, totals, diagnostics)


def predict_ziln(posterior, table: pd.DataFrame, *, taus=None, max_draws: int | None = 1000,
                 seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-customer posterior predictive summaries and population totals of a ZILN posterior for ``table``
    (encoded with the design stored in the posterior). Columns: the target (when present), ``prediction``
    (predictive mean), ``p_positive``, quantiles ``qNN``, ``expected_q05`` / ``expected_q95``. Totals: rows
    ``expected`` and ``predictive`` (:func:`btyd_ltv.models.ziln.population_totals`), with ``actual``."""
    from btyd_ltv.data.design import Design
    from btyd_ltv.models import ziln

    if "design" not in posterior.attrs:
        raise DataValidationError("this posterior has no ZILN design; it was not written by fit_ziln")
    design = Design.from_json(posterior.attrs["design"])
    X, g = design.matrix(table)
    cols = ziln.predictive_summary(posterior, X, g, taus=taus or ziln.DEFAULT_TAUS, max_draws=max_draws,
                                   seed=seed)
    customers = pd.DataFrame(cols, index=table.index)
    has_target = design.target is not None and design.target in table.columns
    if has_target:
        customers.insert(0, design.target, design.target_values(table))
    totals = pd.DataFrame(ziln.population_totals(posterior, X, g, max_draws=max_draws, seed=seed)).T
    totals.index.name = "total"
    if has_target:
        totals["actual"] = float(customers[design.target].sum())
    return customers, totals


def write_fit(result: BTYDFit | ZILNFit, out_dir: str | Path) -> list[Path]:
    """Write ``params.csv``, ``customers.csv`` (, ``totals.csv``) and ``posterior.nc`` to ``out_dir``
    (each atomically)."""
    out = Path(out_dir)
    paths = [write_csv(result.params, out / "params.csv")]
    if result.customers is not None:
        paths.append(write_csv(result.customers, out / "customers.csv"))
    if getattr(result, "totals", None) is not None:
        paths.append(write_csv(result.totals, out / "totals.csv"))
    paths.append(write_netcdf(result.posterior, out / "posterior.nc"))
    return paths
