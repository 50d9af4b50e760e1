"""``btyd-ltv curves fit | predict | from-transactions | backtest``: cohort LTV curves."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Optional

import typer

from btyd_ltv.cli._common import echo_depth_note, echo_table, fail, handle_errors, split_list as _split

curves_app = typer.Typer(help="Cohort LTV curves: hierarchical retention x ARPDAU model, forecasts, ROAS, backtests.",
                         no_args_is_help=True)


def _cohort_input(input_path: Optional[Path], dataset: Optional[str]):
    from btyd_ltv.data.datasets import DATASETS, load_dataset
    from btyd_ltv.io import read_table

    if (input_path is None) == (dataset is None):
        fail("give exactly one of a cohort table (COHORTS.csv|parquet) and --dataset NAME")
    if dataset is not None:
        info = DATASETS.get(dataset)
        if info is not None and info.kind != "cohorts":
            fail(f"data set {dataset!r} is not a cohort table; use cdnow-weekly or game-portfolio, or build one "
                 "with `btyd-ltv curves from-transactions`")
        return load_dataset(dataset), info
    return read_table(input_path), None


def _acquired_col(acquired: Optional[str], info) -> Optional[str]:
    """``--acquired-col``, defaulting to ``acquired_day`` for the built-in game portfolio."""
    if acquired is None and info is not None and info.name == "game-portfolio":
        return "acquired_day"
    return acquired


def _columns(table, info, *, cohort_col, age_col, installs_col, revenue_col, active_col, payers_col, cost_col,
             groups):
    from btyd_ltv.data.cohorts import CohortColumns

    def optional(name: Optional[str], default: str) -> Optional[str]:
        if name is not None:
            return None if name == "" else name
        return default if default in table.columns else None

    if groups is None and info is not None and info.name == "game-portfolio":
        groups = "app,campaign"
    return CohortColumns(cohort=cohort_col, age=age_col, installs=installs_col, revenue=revenue_col,
                         active_users=optional(active_col, "active_users"), payers=optional(payers_col, "payers"),
                         cost=optional(cost_col, "cost"), groups=tuple(_split(groups)))


def _setup(chains: int) -> None:
    """One CPU device per chain before JAX starts (as ``fit``), and the persistent compilation cache."""
    from btyd_ltv.cli.fit import ChainMethod, _setup_devices
    from btyd_ltv.inference import enable_compilation_cache

    _setup_devices(chains, ChainMethod.auto)
    if os.environ.get("BTYD_LTV_NO_CACHE") is None:
        enable_compilation_cache()


_COLUMN_HELP = "Column names (defaults: cohort, age, installs, revenue, and active_users / payers / cost when present; " \
               "pass '' to ignore an optional column)."
_EFFECTS_HELP = ("Parameters with a cohort-level effect: 'all', or a comma list (e.g. log_ret,log_level); default: "
                 "the retention level and log_level.")
_MASS_HELP = ("NUTS mass matrix: diag, or blocks (dense on the portfolio means with the noise terms and on each "
              "group level's churn x polarisation pair; fewer leapfrog steps on large portfolios).")
_WARM_HELP = ("none, or start NUTS from a partial posterior mode (L-BFGS, between-group sds held) and sample in "
              "coordinates scaled by the curvature there: diag (the Hessian's diagonal) or dense (the full Hessian: "
              "decorrelated coordinates, fewer leapfrog steps per draw on big portfolios).")
_DEPTH_HELP = ("NUTS tree-depth cap: at most 2^depth - 1 leapfrog steps per draw. 10 is NumPyro's default; 4 bounds "
               "the cost of big portfolios (a capped trajectory is still a valid transition; its cost shows in ESS). "
               "With --warm-start diag it passed five 1,000-cohort benchmark runs; before the warm-start fix two "
               "of six did not converge (README, Known limits): check R-hat.")
_CALENDAR_HELP = ("Calendar-period effects shared by every cohort alive in a period (seasons, promotions, decline): "
                  "a comma list of retention, revenue, each an AR(1) process over periods (off by default). "
                  "Needs each cohort's acquisition period: --acquired-col, or ISO-date cohort ids.")
_TENURE_HELP = ("Tenure term of revenue per active user: log (log-linear in log(1 + age), the default) or saturating "
                "(rises and levels off: a Box-Cox term with a fitted saturation rate).")
_SHAPE_PRIOR_HELP = ("posterior.nc of a fit on a mature portfolio: its curve shape (retention shape and revenue "
                     "tenure slope; the predictive for a new app) becomes the prior of this fit's portfolio means, "
                     "so a young portfolio's tail comes from the mature one. The levels stay this portfolio's own.")
_COMPONENTS_HELP = ("Also write components.csv: per cohort and age the model's retention (share of installs active) "
                    "and revenue per active user, mean and quantiles, beside the observed values -- the two curves "
                    "whose product is the forecast.")
_PRECISION_HELP = ("Cell arithmetic of the normal x log-normal likelihood (--likelihood normal with active users): "
                   "float64, or float32 with double-precision sums (about twice as fast on big portfolios).")


def _effects(value: str | None) -> str | tuple[str, ...] | None:
    """``--cohort-effects``: ``None`` (the model's default), ``"all"`` or the listed parameter names."""
    if value is None:
        return None
    return "all" if value.strip() == "all" else tuple(_split(value))


@curves_app.command("fit")
@handle_errors
def fit_command(
    input_path: Optional[Path] = typer.Argument(None, metavar="[COHORTS]",
                                                help="Long cohort table (CSV or Parquet), one row per cohort and age."),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Built-in cohort table: cdnow-weekly, game-portfolio."),
    out: Path = typer.Option(..., "--out", help="Output directory."),
    observed_age: Optional[int] = typer.Option(None, "--observed-age",
                                               help="Keep cohorts observed to at least this age (the youngest left "
                                                    "are the ones to decide on)."),
    horizon: int = typer.Option(365, "--horizon", min=1, help="Forecast ages 0..HORIZON."),
    period: str = typer.Option("D", "--period", help="Age unit: D, W or M (labels and checkpoints)."),
    groups: Optional[str] = typer.Option(None, "--groups", help="Nested grouping columns, outermost first, e.g. "
                                                                "app,campaign."),
    retention: Optional[str] = typer.Option(None, "--retention",
                                            help="bgbb (activity x sBG, games' Dn retention), bdw (beta-discrete-"
                                                 "Weibull survival), bgbb-dw (both) or bgbb-ms (bgbb with a share "
                                                 "of stayers who never churn: retention that levels off); default "
                                                 "bgbb, bgbb-dw for game-portfolio (it mixes both kinds of app)."),
    likelihood: str = typer.Option("beta-binomial", "--likelihood", help="Active users: beta-binomial or normal "
                                                                          "(faster on big portfolios)."),
    revenue_likelihood: str = typer.Option("lognormal", "--revenue-likelihood",
                                           help="Positive cell revenue: lognormal, gamma (mean-consistent "
                                                "under whale purchases), whale (log-normal mixture with a "
                                                "whale-purchase component), compound (the sum of Poisson many "
                                                "gamma purchases: for cells with few payers) or whale-compound "
                                                "(the whale mixture with compound cells without a whale)."),
    tenure: str = typer.Option("log", "--tenure", help=_TENURE_HELP),
    cohort_effects: Optional[str] = typer.Option(None, "--cohort-effects", help=_EFFECTS_HELP),
    precision: str = typer.Option("float64", "--precision", help=_PRECISION_HELP),
    mass: str = typer.Option("diag", "--mass", help=_MASS_HELP),
    warm_start: str = typer.Option("none", "--warm-start", help=_WARM_HELP),
    calendar_effects: Optional[str] = typer.Option(None, "--calendar-effects", help=_CALENDAR_HELP),
    acquired: Optional[str] = typer.Option(None, "--acquired-col", help="Acquisition period or date column (for "
                                           "--calendar-effects; default: the cohort ids as ISO dates)."),
    cohort_col: str = typer.Option("cohort", "--cohort-col", help=_COLUMN_HELP),
    age_col: str = typer.Option("age", "--age-col"),
    installs_col: str = typer.Option("installs", "--installs-col"),
    revenue_col: str = typer.Option("revenue", "--revenue-col"),
    active_col: Optional[str] = typer.Option(None, "--active-col"),
    payers_col: Optional[str] = typer.Option(None, "--payers-col"),
    cost_col: Optional[str] = typer.Option(None, "--cost-col"),
    chains: int = typer.Option(4, "--chains", min=1),
    draws: int = typer.Option(1000, "--draws", min=1),
    tune: int = typer.Option(1000, "--tune", min=0),
    target_accept: float = typer.Option(0.9, "--target-accept", min=0.5, max=0.999),
    max_tree_depth: int = typer.Option(10, "--max-tree-depth", min=1, max=15, help=_DEPTH_HELP),
    seed: int = typer.Option(0, "--seed"),
    max_draws: int = typer.Option(400, "--max-draws", min=1, help="Posterior draws used for the forecasts."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    no_plots: bool = typer.Option(False, "--no-plots", help="Skip the fan-chart PNGs."),
    components: bool = typer.Option(False, "--components", help=_COMPONENTS_HELP),
    shape_prior: Optional[Path] = typer.Option(None, "--shape-prior", help=_SHAPE_PRIOR_HELP),
    shape_prior_params: Optional[str] = typer.Option(None, "--shape-prior-params",
                                                     help="Parameters whose portfolio means take the shape prior "
                                                          "(comma list; default: the retention shape and rho)."),
    shape_prior_scale: float = typer.Option(1.0, "--shape-prior-scale",
                                            help="Multiplies the shape prior's sds (above 1: trust the source less)."),
) -> None:
    """Fit the hierarchical cohort-curve model and write curves.csv, cohorts.csv, groups.csv, params.csv,
    posterior.nc and fan charts to --out."""
    _setup(chains)
    from btyd_ltv.cohort_workflow import CurveOptions, fit_curves, write_curve_fit
    from btyd_ltv.errors import SamplingWarning
    from btyd_ltv.workflow import FitOptions

    table, info = _cohort_input(input_path, dataset)
    if info is not None and info.freq and period == "D":
        period = info.freq
    if retention is None:
        retention = "bgbb-dw" if info is not None and info.name == "game-portfolio" else "bgbb"
    acquired = _acquired_col(acquired, info)
    columns = _columns(table, info, cohort_col=cohort_col, age_col=age_col, installs_col=installs_col,
                       revenue_col=revenue_col, active_col=active_col, payers_col=payers_col, cost_col=cost_col,
                       groups=groups)
    population = ()
    if shape_prior is not None:
        from btyd_ltv.cohort_workflow import population_prior
        from btyd_ltv.io import read_posterior

        population = population_prior(read_posterior(shape_prior), _split(shape_prior_params) or None,
                                      scale=shape_prior_scale)
        typer.echo("shape prior from " + str(shape_prior) + ": " + ", ".join(
            f"{p}_mu ~ N({loc:.3f}, {sd:.3f})" for p, loc, sd in population), err=True)
    settings = CurveOptions(
        retention=retention, likelihood=likelihood, revenue_likelihood=revenue_likelihood, tenure=tenure,
        horizon=horizon, period=period, max_draws=max_draws, cohort_effects=_effects(cohort_effects),
        precision=precision, mass=mass, warm_start=warm_start, calendar_effects=tuple(_split(calendar_effects)),
        acquired=acquired, population_prior=population,
        options=FitOptions(num_chains=chains, num_warmup=tune, num_samples=draws, seed=seed,
                           progress_bar=False if quiet else None, target_accept_prob=target_accept,
                           max_tree_depth=max_tree_depth),
    )
    typer.echo(f"fitting cohort curves ({retention}, NUTS {chains} chains x {draws} draws, seed {seed})", err=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)  # printed below from the diagnostics
        result = fit_curves(table, columns, settings=settings, observed_age=observed_age)
    _report(result)
    _extrapolation_note(result)
    for path in write_curve_fit(result, out, plots=not no_plots, components=components):
        typer.echo(f"wrote {path}")


def _int_list(value: str | None, option: str) -> list[int]:
    """A comma list of whole numbers, or exit 2 naming the option and the bad item."""
    out = []
    for item in _split(value):
        try:
            out.append(int(item))
        except ValueError:
            fail(f"{option}: {item!r} is not a whole number (give a comma list such as 4,8)")
    return out


def _extrapolation_note(result) -> None:
    """Say (stderr) when the horizon lies beyond the oldest observed age: that part is parametric extrapolation."""
    from btyd_ltv.cohort_workflow import PERIOD_LABEL

    label, oldest, h = PERIOD_LABEL.get(result.settings.period, "d"), result.oldest_age, result.settings.horizon
    if h > oldest:
        typer.echo(f"note: no cohort is observed beyond age {label}{oldest}; the forecasts from {label}{oldest + 1} "
                   f"to {label}{h} extrapolate the {result.settings.retention} retention curve's tail, and their "
                   "intervals hold only its parameters' uncertainty, not the choice of curve", err=True)


def _report(result) -> None:
    from btyd_ltv.cohort_workflow import PERIOD_LABEL

    label = PERIOD_LABEL.get(result.settings.period, "d")
    echo_table(result.params)
    h = result.settings.horizon
    cols = ["cohort", "installs", "observed_age", f"ltv_{label}{h}_mean", f"ltv_{label}{h}_q05",
            f"ltv_{label}{h}_q95"] + [c for c in ("roas_mean", "p_roas_ge_1", "payback_age_median")
                                      if c in result.cohorts.columns]
    young = result.cohorts.sort_values(["observed_age", "installs"], ascending=[True, False]).head(10)
    typer.echo("\nyoungest cohorts:")
    echo_table(young[[c for c in cols if c in young.columns]].set_index("cohort"))
    if result.groups is not None:
        gcols = ["level", "group", "installs", f"ltv_{label}{h}_mean", f"ltv_{label}{h}_q05", f"ltv_{label}{h}_q95"]
        gcols += [c for c in ("roas_mean", "p_roas_ge_1") if c in result.groups.columns]
        typer.echo("\ngroups:")
        echo_table(result.groups[gcols].set_index(["level", "group"]))
    if result.diagnostics is not None:
        for msg in result.diagnostics.messages:
            typer.echo(f"warning: {msg}", err=True)
        echo_depth_note(result.diagnostics.at_max_depth)


@curves_app.command("predict")
@handle_errors
def predict_command(
    posterior_path: Path = typer.Argument(..., metavar="POSTERIOR.nc", help="posterior.nc of `curves fit`."),
    input_path: Optional[Path] = typer.Argument(None, metavar="[COHORTS]", help="Cohort table (CSV or Parquet)."),
    dataset: Optional[str] = typer.Option(None, "--dataset"),
    out: Path = typer.Option(..., "--out"),
    horizon: int = typer.Option(365, "--horizon", min=1),
    max_draws: int = typer.Option(400, "--max-draws", min=1),
    seed: int = typer.Option(0, "--seed"),
    no_plots: bool = typer.Option(False, "--no-plots"),
    components: bool = typer.Option(False, "--components", help=_COMPONENTS_HELP),
) -> None:
    """Re-forecast a cohort table from a saved posterior: anchored on the table's observed values; cohorts the
    posterior has not seen get their group's population curve (refit to learn from their own data)."""
    from btyd_ltv.cohort_workflow import predict_curves, write_curve_fit
    from btyd_ltv.io import read_posterior

    posterior = read_posterior(posterior_path)
    if "cohort_curve" not in posterior.attrs:
        fail(f"{posterior_path} is not a cohort-curve posterior (written by `btyd-ltv curves fit`)")
    table, _ = _cohort_input(input_path, dataset)
    result = predict_curves(posterior, table, horizon=horizon, max_draws=max_draws, seed=seed)
    _report(result)
    new = int((~result.cohorts["in_posterior"]).sum())
    if new:
        typer.echo(f"note: {new} cohort(s) not in the posterior were forecast from their group's population curve",
                   err=True)
    for path in write_curve_fit(result, out, plots=not no_plots, components=components):
        typer.echo(f"wrote {path}")


@curves_app.command("from-transactions")
@handle_errors
def from_transactions_command(
    input_path: Optional[Path] = typer.Argument(None, metavar="[LOG]", help="Transaction log (CSV or Parquet)."),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Built-in transaction log: cdnow, cdnow-master."),
    out: Path = typer.Option(..., "--out", help="Output cohort table (.csv or .parquet)."),
    customer_col: str = typer.Option("customer_id", "--customer-col"),
    date_col: str = typer.Option("date", "--date-col"),
    amount_col: str = typer.Option("amount", "--amount-col"),
    cohort_period: str = typer.Option("W", "--cohort-period", help="D, W (Monday weeks) or M."),
    observation_end: Optional[str] = typer.Option(None, "--observation-end"),
    datetime_format: Optional[str] = typer.Option(None, "--datetime-format"),
) -> None:
    """Build a long cohort table (acquisition = first transaction) from a transaction log."""
    from btyd_ltv.data.cohorts import cohort_table_from_transactions
    from btyd_ltv.data.datasets import DATASETS, load_dataset
    from btyd_ltv.io import read_table, write_csv

    if (input_path is None) == (dataset is None):
        fail("give exactly one of a transaction log (LOG.csv|parquet) and --dataset NAME")
    if dataset is not None:
        info = DATASETS.get(dataset)
        if info is not None and info.kind != "transactions":
            fail(f"data set {dataset!r} is not a transaction log; use cdnow or cdnow-master")
        log = load_dataset(dataset)
        observation_end = observation_end or (info.observation_end if info else None)
    else:
        log = read_table(input_path)
    table = cohort_table_from_transactions(log, customer_col=customer_col, date_col=date_col, amount_col=amount_col,
                                           cohort_period=cohort_period, observation_end=observation_end,
                                           datetime_format=datetime_format)
    if out.suffix == ".parquet":
        from btyd_ltv.io import atomic_path

        with atomic_path(out) as tmp:
            table.to_parquet(tmp, index=False)
    else:
        write_csv(table, out, index=False)
    typer.echo(f"{table['cohort'].nunique()} cohorts, {len(table)} rows, "
               f"{int(table.groupby('cohort')['installs'].first().sum()):,} customers")
    typer.echo(f"wrote {out}")


@curves_app.command("backtest")
@handle_errors
def backtest_command(
    input_path: Optional[Path] = typer.Argument(None, metavar="[COHORTS]"),
    dataset: Optional[str] = typer.Option(None, "--dataset"),
    out: Path = typer.Option(..., "--out"),
    ks: str = typer.Option("3,7,14,30", "--ks", help="Observed ages to forecast from."),
    checkpoints: Optional[str] = typer.Option(None, "--checkpoints", help="Ages to score (default by period)."),
    max_cutoffs: Optional[int] = typer.Option(4, "--max-cutoffs", help="Evenly spaced calendar cutoffs (each "
                                                                        "refits the model)."),
    acquired: Optional[str] = typer.Option(None, "--acquired-col", help="Acquisition period or date column "
                                                                        "(default: cohort ids as ISO dates)."),
    period: str = typer.Option("D", "--period"),
    baselines: str = typer.Option("multiplier,chain_ladder,regression,power_law", "--baselines",
                                  help="Comma list of baselines: multiplier, chain_ladder, regression, power_law, "
                                       "and the learned mlp, tide, lightgbm (need the [deep] extra). A list of "
                                       "learned models only adds them to the four classical ones."),
    groups: Optional[str] = typer.Option(None, "--groups"),
    retention: str = typer.Option("bgbb", "--retention"),
    likelihood: str = typer.Option("beta-binomial", "--likelihood"),
    revenue_likelihood: str = typer.Option("lognormal", "--revenue-likelihood"),
    tenure: str = typer.Option("log", "--tenure", help=_TENURE_HELP),
    cohort_effects: Optional[str] = typer.Option(None, "--cohort-effects", help=_EFFECTS_HELP),
    precision: str = typer.Option("float64", "--precision", help=_PRECISION_HELP),
    mass: str = typer.Option("diag", "--mass", help=_MASS_HELP),
    warm_start: str = typer.Option("none", "--warm-start", help=_WARM_HELP),
    calendar_effects: Optional[str] = typer.Option(None, "--calendar-effects", help=_CALENDAR_HELP),
    no_model: bool = typer.Option(False, "--no-model", help="Baselines only."),
    min_mature: int = typer.Option(
        1, "--min-mature", min=0, help="Score a checkpoint only when this many cohorts in the history have "
                                       "reached it (0: every checkpoint; the baselines then fall back as documented "
                                       "in btyd_ltv.backtest)."),
    history_bins: Optional[str] = typer.Option(
        None, "--history-bins", help="Comma list of increasing ages, e.g. 7,13: also score the forecasts by the "
                                     "oldest age in the history at the cutoff, binned at these edges "
                                     "(backtest_by_history.csv)."),
    chains: int = typer.Option(2, "--chains", min=1),
    draws: int = typer.Option(300, "--draws", min=1),
    tune: int = typer.Option(300, "--tune", min=0),
    seed: int = typer.Option(0, "--seed"),
    target_accept: float = typer.Option(0.9, "--target-accept", min=0.5, max=0.999),
    max_tree_depth: int = typer.Option(10, "--max-tree-depth", min=1, max=15, help=_DEPTH_HELP),
) -> None:
    """Rolling-origin backtest of the Bayesian curves and the classical baselines: writes backtest_rows.csv,
    backtest.csv and backtest.md (and backtest_by_history.csv with --history-bins)."""
    _setup(chains)
    from btyd_ltv import backtest as bt
    from btyd_ltv.adapters.curve_baselines import CURVE_BASELINES, curve_baselines
    from btyd_ltv.cohort_workflow import CurveOptions, curve_forecaster
    from btyd_ltv.io import write_csv, write_text
    from btyd_ltv.workflow import FitOptions

    edges = bt.history_bin_edges(_int_list(history_bins, "--history-bins"))
    table, info = _cohort_input(input_path, dataset)
    if info is not None:
        period = info.freq or period
    acquired = _acquired_col(acquired, info)
    columns = _columns(table, info, cohort_col="cohort", age_col="age", installs_col="installs",
                       revenue_col="revenue", active_col=None, payers_col=None, cost_col=None, groups=groups)
    factories = {"multiplier": bt.multiplier, "chain_ladder": bt.chain_ladder, "regression": bt.regression,
                 "power_law": bt.power_law}
    names = _split(baselines)
    if not any(name in factories for name in names):  # e.g. --baselines mlp,tide,lightgbm: add to the classical
        names = [*factories, *names]
    forecasters = {}
    for name in names:
        if name in factories:
            forecasters[name] = factories[name](columns=columns)
        elif name in CURVE_BASELINES:
            forecasters[name] = curve_baselines([name], columns=columns, seed=seed)[name]  # MissingExtraError: exit 2
        else:
            fail(f"unknown baseline {name!r}; choose from {', '.join([*factories, *CURVE_BASELINES])}")
    if not no_model:
        settings = CurveOptions(retention=retention, likelihood=likelihood, revenue_likelihood=revenue_likelihood,
                                tenure=tenure, period=period, cohort_effects=_effects(cohort_effects),
                                precision=precision, mass=mass, warm_start=warm_start, acquired=acquired,
                                calendar_effects=tuple(_split(calendar_effects)),
                                options=FitOptions(num_chains=chains, num_warmup=tune, num_samples=draws, seed=seed,
                                                   progress_bar=False, target_accept_prob=target_accept,
                                                   max_tree_depth=max_tree_depth))
        forecasters["bayes"] = curve_forecaster(columns, settings)
    result = bt.rolling_origin(table, forecasters, ks=_int_list(ks, "--ks"),
                               checkpoints=_int_list(checkpoints, "--checkpoints") or None, max_cutoffs=max_cutoffs,
                               acquired=acquired, period=period, columns=columns, min_mature=min_mature)
    scores = result.score()
    typer.echo(result.to_markdown())
    write_csv(result.rows, out / "backtest_rows.csv", index=False)
    write_csv(scores, out / "backtest.csv", index=False)
    write_text(result.to_markdown() + "\n", out / "backtest.md")
    if edges:
        by_history = result.score_by_history(edges)
        typer.echo("\nby the oldest age in the history at the cutoff:")
        typer.echo(bt.score_markdown(by_history))
        write_csv(by_history, out / "backtest_by_history.csv", index=False)
    typer.echo(f"wrote {out / 'backtest.csv'}")
