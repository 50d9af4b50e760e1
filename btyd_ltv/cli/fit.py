"""``btyd-ltv fit``, ``predict`` and ``summary``."""

from __future__ import annotations

import os
import warnings
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from btyd_ltv.cli._common import echo_table, fail, handle_errors


class ModelKind(str, Enum):
    bgnbd = "bgnbd"
    gamma_gamma = "gamma-gamma"
    clv = "clv"


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
    model: ModelKind = typer.Argument(..., help="bgnbd, gamma-gamma or clv (BG/NBD x Gamma-Gamma)."),
    input_path: Optional[Path] = typer.Argument(None, metavar="[TRANSACTIONS]",
                                                help="Transaction log or customer summary (CSV or Parquet)."),
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
) -> None:
    """Fit BG/NBD, Gamma-Gamma or both (CLV); write params.csv, customers.csv and posterior.nc to --out."""
    method = _setup_devices(chains, chain_method)
    table, info = _load_input(input_path, dataset)

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
    from btyd_ltv.workflow import FitOptions, fit_btyd, prepare_summary, write_fit

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
    echo_table(result.params)
    for name, diag in result.diagnostics.items():
        for msg in diag.messages:
            typer.echo(f"warning: {name}: {msg}", err=True)
    for path in write_fit(result, out):
        typer.echo(f"wrote {path}")


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
    """Score a customer summary with a saved posterior (no refit); write per-customer predictions."""
    from btyd_ltv.io import read_posterior, read_table, write_csv
    from btyd_ltv.predict import PredictionSettings, periods_per_month
    from btyd_ltv.workflow import predict_from_posterior, prepare_summary

    idata = read_posterior(posterior)
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
    names = [n for n in bgnbd.PARAM_NAMES + gg.PARAM_NAMES if n in idata.posterior]
    table = params_table(idata, names)
    echo_table(table)
    if csv is not None:
        typer.echo(f"wrote {write_csv(table, csv)}")

