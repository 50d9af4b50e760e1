"""``btyd-ltv compare``: our models, the deep / GBDT baselines and outside predictions on one split, one ruler."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from btyd_ltv.cli._common import fail, split_list
from btyd_ltv.adapters.registry import DEFAULT_MODELS


def compare_command(
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Built-in comparison data: cdnow or multimodal."),
    data: Optional[Path] = typer.Option(None, "--data", help="Your own customer table (CSV/Parquet), one row per "
                                        "customer; needs --target and --features."),
    target: Optional[str] = typer.Option(None, "--target", help="Target column of --data (spend to predict)."),
    features: Optional[str] = typer.Option(None, "--features", help="Numeric feature columns of --data."),
    categorical: Optional[str] = typer.Option(None, "--categorical", help="Categorical feature columns of --data."),
    log1p: Optional[str] = typer.Option(None, "--log1p", help="Spend-like features to log1p-transform."),
    id_col: str = typer.Option("customer_id", "--id-col", help="Customer id column of --data and --external."),
    horizon_periods: Optional[float] = typer.Option(
        None, "--horizon-periods", help="Target window length in the unit of frequency/recency/T (bgnbd_gg)."),
    models: str = typer.Option(",".join(DEFAULT_MODELS), "--models",
                               help="Comma-separated models (see the README's model list)."),
    external: List[str] = typer.Option([], "--external", metavar="NAME=FILE",
                                       help="Outside predictions: customer_id, prediction[, p_positive, qNN]."),
    out: Path = typer.Option(..., "--out", help="Output directory."),
    seed: int = typer.Option(0, "--seed", help="Seed of the split and of every model."),
    valid_fraction: float = typer.Option(0.2, "--valid-fraction"),
    test_fraction: float = typer.Option(0.3, "--test-fraction"),
    weeks: int = typer.Option(4, "--weeks", help="cdnow: features known this many weeks after first purchase."),
    customers: Optional[int] = typer.Option(None, "--customers", help="Subsample / simulate this many customers."),
    chains: int = typer.Option(4, "--chains", help="MCMC chains (Bayesian models)."),
    warmup: int = typer.Option(1000, "--warmup"),
    draws: int = typer.Option(1000, "--draws"),
    max_epochs: Optional[int] = typer.Option(None, "--max-epochs", help="Cap on training epochs (neural models)."),
    config: Optional[Path] = typer.Option(None, "--config", help='JSON of per-model settings, e.g. '
                                          '{"mean": {"n_experts": 5, "config": {"learning_rate": 0.001}}}.'),
) -> None:
    """Fit every model on one train/validation/test split and score the test customers (metrics.csv/.md,
    predictions, split, decile/Lorenz/calibration figures, posterior predictive checks)."""
    from btyd_ltv.cli.fit import ChainMethod, _setup_devices

    names = split_list(models)
    if not names and not external:
        fail("--models is empty and no --external predictions were given")
    if (dataset is None) == (data is None):
        fail("give exactly one of --dataset NAME or --data FILE")
    _setup_devices(chains, ChainMethod.auto)

    from btyd_ltv.adapters import CustomerData
    from btyd_ltv.adapters.external import ExternalPredictions
    from btyd_ltv.adapters.registry import BAYESIAN_MODELS
    from btyd_ltv.compare import build_models, compare, comparison_data, split_customers, write_comparison
    from btyd_ltv.io import read_table

    if dataset is not None:
        cdata = comparison_data(dataset, weeks=weeks, n_customers=customers, seed=seed)
    else:
        if not target or not (features or categorical):
            fail("--data needs --target and --features (and/or --categorical)")
        table = read_table(data)
        if id_col not in table.columns:
            fail(f"{data}: id column {id_col!r} not found; it has {', '.join(map(str, table.columns))}")
        dup = table[id_col].astype(str).duplicated()
        if dup.any():
            fail(f"{data}: column {id_col!r}: id {table[id_col][dup].iloc[0]!r} is duplicated")
        table = table.set_index(table[id_col].astype(str)).drop(columns=[id_col])
        table.index.name = "customer_id"
        cdata = CustomerData(table, target=target, numeric=split_list(features),
                             categorical=split_list(categorical), log1p=split_list(log1p),
                             horizon_periods=horizon_periods)
        cdata.y  # noqa: B018 - validates the target (NaN / negative -> clear error)
    overrides = {}
    if config is not None:
        try:
            overrides = json.loads(Path(config).read_text())
        except (OSError, ValueError) as exc:
            fail(f"--config {config}: not a readable JSON object ({exc})")
        if not isinstance(overrides, dict):
            fail(f"--config {config}: expected a JSON object of model name -> settings")
    built = build_models(names, seed=seed, num_chains=chains, num_warmup=warmup, num_samples=draws,
                         max_epochs=max_epochs, overrides=overrides)
    for spec in external:
        name, sep, path = spec.partition("=")
        if not (sep and name and path):
            name, path = Path(spec).stem, spec
        if name in built:
            fail(f"model name {name!r} given twice; name outside predictions NAME=FILE")
        built[name] = ExternalPredictions(path, name=name, id_col=id_col)
    split = split_customers(cdata.ids, valid_fraction=valid_fraction, test_fraction=test_fraction, seed=seed)
    result = compare(cdata, built, split=split, seed=seed,
                     bayesian=[n for n in names if n in BAYESIAN_MODELS], progress=typer.echo)
    typer.echo(result.to_markdown())
    for p in write_comparison(result, out):
        typer.echo(f"wrote {p}")
