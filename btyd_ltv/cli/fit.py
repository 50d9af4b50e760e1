"""``btyd-ltv fit``, ``predict`` and ``summary``."""

from __future__ import annotations

import os
import warnings
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from btyd_ltv.cli._common import echo_depth_note, echo_table, fail, split_list as _split


class ModelKind(str, Enum):
    bgnbd = "bgnbd"
    gamma_gamma = "gamma-gamma"
    clv = "clv"
    ziln = "ziln"


class ChainMethod(str, Enum):
    auto = "auto"
    sequential = "sequential"
    vectorized = "vectorized"
    parallel = "parallel"


def _load_input(input_path: Optional[Path], dataset: Optional[str]):
    from btyd_ltv.data.datasets import DATASETS, load_dataset
    from btyd_ltv.io import read_table

    if (input_path is None) == (dataset is None):
        fail("give exactly one of an input file (TRANSACTIONS.csv|parquet or a summary) and --dataset NAME")
    if dataset is not None:
        return load_dataset(dataset), DATASETS[dataset]
    return read_table(input_path), None


def _setup_devices(chains: int, chain_method: ChainMethod) -> Optional[str]:
    """Give XLA one CPU device per chain before JAX starts (for ``auto`` and ``parallel``).

    On CPU, chains as parallel host devices beat ``sequential`` and ``vectorized`` even with fewer cores than
    chains (benchmarks/bench_fit.py: 100k customers, 2 cores: parallel 29.6 s, sequential 52.5 s, vectorized
    58.5 s). On a GPU the flag is ignored and :func:`~btyd_ltv.inference.default_chain_method` picks
    ``vectorized``.
    """
    if chain_method in (ChainMethod.auto, ChainMethod.parallel):
        import numpyro

        numpyro.set_host_device_count(chains)
    return None if chain_method == ChainMethod.auto else chain_method.value


def fit_command(
    model: ModelKind = typer.Argument(..., help="bgnbd, gamma-gamma, clv (BG/NBD x Gamma-Gamma) or ziln "
                                      "(zero-inflated log-normal revenue regression)."),
    input_path: Optional[Path] = typer.Argument(None, metavar="[DATA]",
                                                help="Transaction log or customer summary (CSV or Parquet); for "
                                                     "ziln, one row per customer with target and features."),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Built-in data set (see `btyd-ltv datasets`)."),
    out: Path = typer.Option(..., "--out", help="Output directory."),
    customer_col: Optional[str] = typer.Option(None, "--customer-col"),
    date_col: Optional[str] = typer.Option(None, "--date-col"),
    amount_col: Optional[str] = typer.Option(None, "--amount-col", help="Spend column (needed for gamma-gamma/clv)."),
    freq: Optional[str] = typer.Option(None, "--freq", help="Time unit: D, W or M (pandas period)."),
    freq_multiplier: Optional[float] = typer.Option(None, "--freq-multiplier",
                                                    help="Divide times by this (D with 7: weeks at daily resolution)."),
    calibration_end: Optional[str] = typer.Option(None, "--calibration-end", help="Split date; later = holdout."),
    observation_end: Optional[str] = typer.Option(None, "--observation-end"),
    datetime_format: Optional[str] = typer.Option(None, "--datetime-format", help="e.g. %Y%m%d"),
    chains: int = typer.Option(4, "--chains", min=1),
    draws: int = typer.Option(1000, "--draws", min=1),
    tune: int = typer.Option(1000, "--tune", min=0),
    seed: int = typer.Option(0, "--seed"),
    use_map: bool = typer.Option(False, "--map", help="MAP + Laplace approximation instead of NUTS (quick look)."),
    chain_method: ChainMethod = typer.Option(ChainMethod.auto, "--chain-method"),
    horizon: Optional[float] = typer.Option(None, "--horizon",
                                            help="Periods for expected purchases (default: holdout length or 52)."),
    clv_months: int = typer.Option(12, "--clv-months", min=1),
    discount_rate: float = typer.Option(0.01, "--discount-rate", min=0.0, help="Monthly discount rate."),
    max_draws: Optional[int] = typer.Option(None, "--max-draws", min=1, help="Thin draws used for predictions."),
    precision: str = typer.Option("auto", "--precision",
                                  help="BG/NBD row terms: auto (float32 above 50k unique rows), float64, float32."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    target_accept: float = typer.Option(0.8, "--target-accept", min=0.5, max=0.999,
                                        help="NUTS target acceptance probability (raise it if divergences are "
                                             "reported)."),
    max_tree_depth: int = typer.Option(10, "--max-tree-depth", min=1, max=15,
                                       help="NUTS tree-depth cap: at most 2^depth - 1 leapfrog steps per draw (10 is "
                                            "NumPyro's default); draws that reach it are counted in a note."),
    target: Optional[str] = typer.Option(None, "--target", help="ziln: revenue column to model."),
    features: Optional[str] = typer.Option(None, "--features", help="ziln: comma-separated feature columns."),
    group: Optional[str] = typer.Option(None, "--group", help="ziln: cohort/campaign column for partially "
                                        "pooled intercepts."),
    log1p: Optional[str] = typer.Option(None, "--log1p", help="ziln: features to log(1 + x)-transform."),
    categorical: Optional[str] = typer.Option(None, "--categorical",
                                              help="ziln: numeric-coded features to one-hot encode."),
) -> None:
    """Fit BG/NBD, Gamma-Gamma, both (CLV) or ZILN; write params.csv, customers.csv (totals.csv for ziln) and
    posterior.nc to --out."""
    method = _setup_devices(chains, chain_method)
    table, info = _load_input(input_path, dataset)
    if model == ModelKind.ziln:
        return _fit_ziln(table, info, out=out, customer_col=customer_col, target=target, features=features,
                         group=group, log1p=log1p, categorical=categorical, chains=chains, draws=draws,
                         tune=tune, seed=seed, use_map=use_map, method=method, quiet=quiet, max_draws=max_draws,
                         target_accept=target_accept, max_tree_depth=max_tree_depth)
    if info is not None and info.kind == "cohorts":
        fail(f"data set {info.name!r} is a cohort table (cohort x age); the BTYD models need a transaction log "
             "(cdnow, cdnow-master) or a customer summary (cdnow-summary)")
    ignored = [name for name, v in (("--target", target), ("--features", features), ("--group", group),
                                    ("--log1p", log1p), ("--categorical", categorical)) if v is not None]
    if ignored:
        fail(f"{', '.join(ignored)} only apply to `fit ziln`")

    def pick(value, attr, fallback):
        if value is not None:
            return value
        if info is not None and info.kind != "transactions" and attr in ("calibration_end", "observation_end"):
            return fallback  # a summary data set is already split
        if info is not None and getattr(info, attr, None) is not None:
            return getattr(info, attr)
        return fallback

    from btyd_ltv.errors import SamplingWarning
    from btyd_ltv.inference import enable_compilation_cache
    from btyd_ltv.predict import PredictionSettings, periods_per_month
    from btyd_ltv.workflow import FitOptions, fit_btyd, prepare_summary

    freq_v = pick(freq, "freq", "D")
    mult_v = float(pick(freq_multiplier, "freq_multiplier", 1.0))
    summary, holdout = prepare_summary(
        table,
        customer_col=pick(customer_col, "customer_col", "customer_id"),
        date_col=pick(date_col, "date_col", "date"),
        amount_col=pick(amount_col, "amount_col", None) if model != ModelKind.bgnbd or amount_col else None,
        freq=freq_v,
        freq_multiplier=mult_v,
        calibration_end=pick(calibration_end, "calibration_end", None),
        observation_end=pick(observation_end, "observation_end", None),
        datetime_format=datetime_format,
    )
    if horizon is None:
        horizon = float(holdout["duration_holdout"].iloc[0]) if holdout is not None else 52.0
    if os.environ.get("BTYD_LTV_NO_CACHE") is None:
        enable_compilation_cache()
    options = FitOptions(
        method="map" if use_map else "nuts", num_chains=chains, num_warmup=tune, num_samples=draws, seed=seed,
        chain_method=method, progress_bar=False if quiet else None, precision=precision,
        target_accept_prob=target_accept, max_tree_depth=max_tree_depth,
    )
    settings = PredictionSettings(
        horizon=horizon, clv_months=clv_months, discount_rate=discount_rate,
        periods_per_month=periods_per_month(freq_v, mult_v), max_draws=max_draws, seed=seed,
    )
    typer.echo(f"fitting {model.value} on {len(summary):,} customers "
               f"({'MAP' if use_map else f'NUTS {chains} chains x {draws} draws'}, seed {seed})", err=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)  # printed below from the diagnostics
        result = fit_btyd(summary, model.value, options=options, settings=settings, holdout=holdout,
                          freq=freq_v, freq_multiplier=mult_v)
    _report_and_write(result, out)


def _report_and_write(result, out: Path) -> None:
    """Print the parameter table (and ZILN totals), the sampling warnings, then write the fit's files."""
    from btyd_ltv.workflow import write_fit

    echo_table(result.params)
    if getattr(result, "totals", None) is not None:
        echo_table(result.totals)
    for name, diag in result.diagnostics.items():
        for msg in diag.messages:
            typer.echo(f"warning: {name}: {msg}", err=True)
        echo_depth_note(diag.at_max_depth, f"{name}: ")
    for path in write_fit(result, out):
        typer.echo(f"wrote {path}")


def _fit_ziln(table, info, *, out, customer_col, target, features, group, log1p, categorical, chains, draws, tune,
              seed, use_map, method, quiet, max_draws, target_accept, max_tree_depth) -> None:
    """``fit ziln``: a customer table (or a built-in transaction log turned into calibration features and
    holdout spend by :func:`btyd_ltv.data.features.spend_features`) -> ZILN regression outputs."""
    from btyd_ltv.errors import SamplingWarning
    from btyd_ltv.inference import enable_compilation_cache
    from btyd_ltv.workflow import FitOptions, fit_ziln

    if info is not None:
        if info.kind == "cohorts":
            fail(f"data set {info.name!r} is a cohort table (cohort x age); fit ziln needs a transaction log "
                 "(cdnow, cdnow-master) or a customer table")
        if info.kind != "transactions":
            fail(f"data set {info.name!r} is a summary; fit ziln needs a transaction log (cdnow, cdnow-master) "
                 "or a customer table")
        from btyd_ltv.data.features import FEATURE_COLUMNS, spend_features

        table = spend_features(table, info.customer_col, info.date_col, info.amount_col,
                               calibration_end=info.calibration_end, observation_end=info.observation_end,
                               freq=info.freq, freq_multiplier=info.freq_multiplier)
        target = target or "holdout_spend"
        features = features or ",".join(FEATURE_COLUMNS)
        log1p = log1p if log1p is not None else "monetary_value,first_purchase_value,calibration_spend"
        typer.echo(f"{info.name}: features at {info.calibration_end}, target = spend to {info.observation_end}",
                   err=True)
    else:
        customer_col = customer_col or "customer_id"
        if customer_col in table.columns:
            if table[customer_col].duplicated().any():
                from btyd_ltv.data.validate import _v

                dup = table[customer_col][table[customer_col].duplicated()].iloc[0]
                fail(f"column {customer_col!r}: customer {_v(dup)} appears twice; ziln needs one row per customer")
            table = table.set_index(customer_col)
    if not target or not features:
        fail("fit ziln needs --target COL and --features COL,COL,...")
    if os.environ.get("BTYD_LTV_NO_CACHE") is None:
        enable_compilation_cache()
    options = FitOptions(method="map" if use_map else "nuts", num_chains=chains, num_warmup=tune,
                         num_samples=draws, seed=seed, chain_method=method, progress_bar=False if quiet else None,
                         target_accept_prob=target_accept, max_tree_depth=max_tree_depth)
    typer.echo(f"fitting ziln on {len(table):,} customers "
               f"({'MAP' if use_map else f'NUTS {chains} chains x {draws} draws'}, seed {seed})", err=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)  # printed below from the diagnostics
        result = fit_ziln(table, target, _split(features), group=group, log1p=_split(log1p),
                          categorical=_split(categorical), options=options,
                          max_draws=max_draws if max_draws is not None else 1000)
    _report_and_write(result, out)


def predict_command(
    posterior: Path = typer.Argument(..., help="posterior.nc written by `btyd-ltv fit`."),
    summary_path: Path = typer.Argument(..., metavar="SUMMARY", help="Customer summary CSV/Parquet "
                                        "(customer_id, frequency, recency, T[, monetary_value])."),
    out: Path = typer.Option(..., "--out", help="Output CSV file."),
    customer_col: str = typer.Option("customer_id", "--customer-col"),
    horizon: float = typer.Option(52.0, "--horizon", help="Periods for expected purchases."),
    clv_months: int = typer.Option(12, "--clv-months", min=1),
    discount_rate: float = typer.Option(0.01, "--discount-rate", min=0.0),
    max_draws: Optional[int] = typer.Option(None, "--max-draws", min=1),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Score customers with a saved posterior (no refit); write per-customer predictions. For a ziln posterior,
    SUMMARY is a customer table with the fitted feature columns."""
    from btyd_ltv.io import read_posterior, read_table, write_csv
    from btyd_ltv.predict import PredictionSettings, periods_per_month
    from btyd_ltv.workflow import predict_from_posterior, predict_ziln, prepare_summary

    idata = read_posterior(posterior)
    if idata.attrs.get("model") == "ziln":
        table = read_table(summary_path)
        if customer_col in table.columns:
            table = table.set_index(customer_col)
        customers, totals = predict_ziln(idata, table, max_draws=max_draws or 1000, seed=seed)
        echo_table(totals)
        typer.echo(f"wrote {write_csv(customers, out)} ({len(customers):,} customers)")
        return
    summary, _ = prepare_summary(read_table(summary_path), customer_col=customer_col)
    settings = PredictionSettings(
        horizon=horizon, clv_months=clv_months, discount_rate=discount_rate,
        periods_per_month=periods_per_month(idata.attrs.get("freq", "D"), idata.attrs.get("freq_multiplier", 1.0)),
        max_draws=max_draws, seed=seed,
    )
    customers = predict_from_posterior(idata, summary, settings=settings)
    typer.echo(f"wrote {write_csv(customers, out)} ({len(customers):,} customers)")


def summary_command(
    posterior: Path = typer.Argument(..., help="posterior.nc written by `btyd-ltv fit`."),
    csv: Optional[Path] = typer.Option(None, "--csv", help="Also write the table to this CSV."),
) -> None:
    """Print (and optionally write) the parameter table of a saved posterior."""
    from btyd_ltv.io import read_posterior, write_csv
    from btyd_ltv.models import bgnbd
    from btyd_ltv.models import gamma_gamma as gg
    from btyd_ltv.workflow import params_table

    idata = read_posterior(posterior)
    from btyd_ltv.models import ziln

    names = [n for n in [*bgnbd.PARAM_NAMES, *gg.PARAM_NAMES, *ziln.PARAM_NAMES, "group_sd_p", "group_sd_loc"]
             if n in idata.posterior]
    table = params_table(idata, names)
    echo_table(table)
    if csv is not None:
        typer.echo(f"wrote {write_csv(table, csv)}")

