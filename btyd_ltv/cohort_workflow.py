"""Cohort-curve workflow: cohort table -> hierarchical fit -> cumulative LTV forecasts, ROAS decisions -> files.

The functions behind ``btyd-ltv curves fit`` / ``predict``; notebooks and the backtest call them too.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from btyd_ltv.curves import cohort_table, component_table, curve_table, group_curves, group_totals
from btyd_ltv.data.cohorts import CohortColumns, validate_cohort_table
from btyd_ltv.errors import DataValidationError
from btyd_ltv.inference import WARM_STARTS, Diagnostics, diagnose, fit
from btyd_ltv.io import write_csv, write_netcdf
from btyd_ltv.models import cohort_curve as cc
from btyd_ltv.workflow import FitOptions, params_table

MASS_MATRICES = ("diag", "blocks")

__all__ = ["CurveOptions", "CurveFit", "fit_curves", "predict_curves", "expected_ltv_draws",
           "expected_component_draws", "curve_components", "curve_forecaster", "write_curve_fit", "select_observed_age",
           "population_prior"]

CHECKPOINTS = {"D": (7, 30, 90, 180, 365), "W": (4, 13, 26, 52, 78), "M": (1, 3, 6, 12, 24)}
PERIOD_LABEL = {"D": "d", "W": "w", "M": "m"}


@dataclass(frozen=True)
class CurveOptions:
    """Model and forecast settings (see :mod:`btyd_ltv.models.cohort_curve`). ``options`` are the sampler's."""

    retention: str = "bgbb"
    likelihood: str = "beta-binomial"
    revenue_likelihood: str = "lognormal"
    tenure: str = "log"  # tenure term of revenue per active user: log or saturating
    cohort_effects: tuple[str, ...] | str | None = None  # None: the model default; "all"
    precision: str = "float64"  # cell arithmetic of the normal x log-normal likelihood: float64 or float32
    mass: str = "diag"  # NUTS mass matrix: diag, or blocks (dense on cc.mass_blocks, diagonal elsewhere)
    warm_start: str = "none"  # none, or NUTS from inference.find_warm_start: diag (curvature-scaled) or dense (Laplace)
    calendar_effects: tuple[str, ...] = ()  # "retention" and/or "revenue": AR(1) calendar-period effects
    acquired: str | None = None  # acquisition period or date column for calendar effects; None: ISO-date cohort ids
    # (name, loc, scale): normal priors on portfolio means, e.g. a mature portfolio's curve shape (population_prior)
    population_prior: tuple[tuple[str, float, float], ...] = ()
    horizon: int = 365
    period: str = "D"
    max_draws: int = 400
    options: FitOptions = field(default_factory=FitOptions)


# The fields of CurveOptions that say which model was fitted (not the forecast's horizon and draws, not the
# sampler): fit_curves writes them into the posterior's metadata and predict_curves reads them back by name, so a
# new model field travels with the posterior without touching either function.
MODEL_FIELDS = tuple(f.name for f in fields(CurveOptions) if f.name not in ("horizon", "max_draws", "options"))


def _model_metadata(settings: CurveOptions, data: cc.CohortCurveData) -> dict:
    """The model fields of ``settings`` as JSON values (the resolved cohort effects of ``data``)."""
    meta = {name: getattr(settings, name) for name in MODEL_FIELDS}
    meta["cohort_effects"] = data.cohort_effects
    return {k: json.loads(json.dumps(v)) for k, v in meta.items()}  # tuples as (nested) lists


def _model_settings(meta: dict) -> dict:
    """The model fields recorded by :func:`_model_metadata`; a field a posterior predates takes its default
    (a posterior written before ``acquired`` was recorded at the top level has it in its calendar)."""
    default = CurveOptions()
    out = {name: meta.get(name, getattr(default, name)) for name in MODEL_FIELDS}
    if "acquired" not in meta:
        out["acquired"] = (meta.get("calendar") or {}).get("acquired")
    return {k: _tuples(v) for k, v in out.items()}


def _tuples(value):
    """JSON lists back to (nested) tuples."""
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


@dataclass
class CurveFit:
    """A fitted cohort-curve model and its forecasts.

    ``draws``: (cohorts, horizon + 1, draws) cumulative LTV per install; ``curves`` / ``cohorts`` /
    ``groups``: the tables written to ``curves.csv``, ``cohorts.csv`` and ``groups.csv``; ``values``: the
    posterior draws of every level's parameters the forecasts were made from, indexed like ``data`` (for
    :func:`predict_curves`, the saved posterior's draws re-indexed to the new table, new cohorts drawn from their
    group)."""

    posterior: object
    data: cc.CohortCurveData
    index: dict
    table: pd.DataFrame
    draws: np.ndarray
    curves: pd.DataFrame
    cohorts: pd.DataFrame
    groups: pd.DataFrame | None
    group_draws: dict
    params: pd.DataFrame
    diagnostics: Diagnostics | None
    columns: CohortColumns
    settings: CurveOptions
    values: dict | None = None

    @property
    def oldest_age(self) -> int:
        """The oldest age observed in the table: no cohort shows the curve beyond it, so forecasts there
        extrapolate the retention family's parametric tail, and their intervals hold only the uncertainty of
        that family's parameters. On CDNOW the week-52 forecasts made when no cohort was older than 6 weeks
        over-predicted by 66% (validation/README.md, the backtest by the history's length)."""
        return int(np.flatnonzero(np.asarray(self.data.observed).any(axis=0)).max())


def select_observed_age(table: pd.DataFrame, observed_age: int | None,
                        columns: CohortColumns = CohortColumns()) -> pd.DataFrame:
    """Keep the cohorts observed for at least ``observed_age`` periods (ages ``0..observed_age``): the
    youngest cohorts left are the ones a marketer decides on after ``observed_age`` days. ``None`` keeps all."""
    if observed_age is None:
        return table
    if int(observed_age) < 0:
        raise DataValidationError(f"--observed-age must be >= 0, got {observed_age}")
    max_age = table.groupby(columns.cohort)[columns.age].transform("max")
    kept = table[max_age >= int(observed_age)]
    if kept.empty:
        raise DataValidationError(
            f"no cohort is observed to age {observed_age} (the oldest reaches age {int(max_age.max())}); "
            "lower --observed-age"
        )
    return kept.reset_index(drop=True)


def _calendar(table: pd.DataFrame, columns: CohortColumns, settings: CurveOptions,
              fitted: dict | None = None) -> tuple[np.ndarray | None, dict | None]:
    """With calendar effects, every row's acquisition period counted from the first acquisition period of the
    fit (``fitted``: the calendar a saved posterior was fitted on) and that calendar (its ``origin`` date and
    ``first`` period; the column is the model field ``acquired``); ``(None, None)`` without."""
    if not cc.check_calendar_effects(settings.calendar_effects):
        return None, None
    from btyd_ltv.backtest import acquisition_calendar

    index, origin = acquisition_calendar(table, settings.acquired, period=settings.period, columns=columns,
                                         origin=None if fitted is None else fitted["origin"])
    first = int(index.min()) if fitted is None else int(fitted["first"])
    rel = index - first
    if (rel < 0).any():
        pos = int(np.argmax(rel < 0))
        raise DataValidationError(
            f"cohort {table[columns.cohort].iloc[pos]!r} (row {pos}) was acquired {-int(rel[pos])} period(s) before "
            "the first acquisition period of the fit; its calendar effects are unknown: refit with this cohort"
        )
    return rel, {"origin": origin, "first": first}


def _make_data(table: pd.DataFrame, columns: CohortColumns, settings: CurveOptions, acquired=None):
    return cc.make_data(
        table, cohort_col=columns.cohort, age_col=columns.age, installs_col=columns.installs,
        revenue_col=columns.revenue, active_col=columns.active_users, group_cols=columns.groups,
        retention=settings.retention, likelihood=settings.likelihood, cohort_effects=settings.cohort_effects,
        revenue_likelihood=settings.revenue_likelihood, precision=settings.precision,
        calendar_effects=settings.calendar_effects, acquired=acquired, tenure=settings.tenure,
    )


def _per_cohort(table: pd.DataFrame, columns: CohortColumns, cohorts: Sequence[str]) -> pd.DataFrame:
    first = table.groupby(table[columns.cohort].astype(str), sort=False).first()
    return first.loc[list(cohorts)]


def _summaries(draws: np.ndarray, data: cc.CohortCurveData, index: dict, table: pd.DataFrame,
               columns: CohortColumns, settings: CurveOptions):
    cohorts = index["cohorts"]
    per = _per_cohort(table, columns, cohorts)
    installs = per[columns.installs].to_numpy(np.float64)
    cost = per[columns.cost].to_numpy(np.float64) if columns.cost else None
    observed, last = cc._observed_cumulative(data, settings.horizon)
    checkpoints = [c for c in CHECKPOINTS.get(settings.period, CHECKPOINTS["D"]) if c <= settings.horizon]
    label = PERIOD_LABEL.get(settings.period, "d")
    groups = per[list(columns.groups)].reset_index(drop=True) if columns.groups else None
    curves = curve_table(draws, cohorts, observed)
    coh = cohort_table(draws, cohorts, installs, cost=cost, observed_age=last, groups=groups,
                       checkpoints=checkpoints, horizon=settings.horizon, period_label=label)
    group_tables, group_draws = [], {}
    for col in columns.groups:
        labels, gd = group_curves(draws, installs, per[col].astype(str).to_numpy())
        totals = group_totals(per[col].astype(str).to_numpy(), installs, cost)
        gcost = totals["cost"].to_numpy(np.float64) if cost is not None else None
        t = cohort_table(gd, [str(x) for x in labels], totals["installs"].to_numpy(np.float64), cost=gcost,
                         checkpoints=checkpoints, horizon=settings.horizon, period_label=label)
        t = t.rename(columns={"cohort": "group"})
        t.insert(0, "level", col)
        group_tables.append(t)
        group_draws[col] = (list(map(str, labels)), gd)
    groups_table = pd.concat(group_tables, ignore_index=True) if group_tables else None
    return curves, coh, groups_table, group_draws


def fit_curves(
    table: pd.DataFrame,
    columns: CohortColumns = CohortColumns(active_users="active_users"),
    *,
    settings: CurveOptions = CurveOptions(),
    observed_age: int | None = None,
    summarise: bool = True,
) -> CurveFit:
    """Validate a long cohort table, fit the hierarchical cohort-curve model by NUTS and forecast every cohort's
    cumulative LTV per install to ``settings.horizon`` (:func:`btyd_ltv.models.cohort_curve.predictive_ltv`),
    with ROAS and payback quantities when ``columns.cost`` is given (:func:`btyd_ltv.curves.cohort_table`).
    Sampling problems are reported as :class:`~btyd_ltv.errors.SamplingWarning` and kept in ``diagnostics``."""
    if columns.active_users is not None and columns.active_users not in table.columns:
        columns = replace(columns, active_users=None)
    clean = validate_cohort_table(table, columns)
    clean = select_observed_age(clean, observed_age, columns)
    acquired, calendar = _calendar(clean, columns, settings)
    data, index = _make_data(clean, columns, settings, acquired)
    if settings.mass not in MASS_MATRICES:
        raise DataValidationError(f"mass must be one of {', '.join(MASS_MATRICES)}, got {settings.mass!r}")
    if settings.warm_start not in WARM_STARTS:
        raise DataValidationError(f"warm_start must be one of {', '.join(WARM_STARTS)}, got {settings.warm_start!r}")
    priors = None
    if settings.population_prior:
        population = cc.check_population(settings.population_prior, data)
        priors = cc.CohortCurvePriors(population=population, kind="population")
    o = settings.options
    idata = fit(cc, data, priors=priors, method=o.method, num_chains=o.num_chains, num_warmup=o.num_warmup,
                num_samples=o.num_samples, seed=o.seed, chain_method=o.chain_method, progress_bar=o.progress_bar,
                target_accept_prob=o.target_accept_prob, max_tree_depth=o.max_tree_depth,
                dense_mass=cc.mass_blocks(data) if settings.mass == "blocks" else False,
                warm_start=settings.warm_start)
    idata.attrs["cohort_curve"] = json.dumps({
        "index": index, "columns": {k: getattr(columns, k) for k in ("cohort", "age", "installs", "revenue",
                                                                       "active_users", "payers", "cost")}
        | {"groups": list(columns.groups)},
        **_model_metadata(settings, data), "calendar": calendar,
        "calendar_offsets": "centred",  # the process less its mean over the fitted periods (model docstring)
    })
    names = cc.param_names(data)
    diag = diagnose(idata, names) if o.method == "nuts" else None
    return _forecast(idata, data, index, clean, columns, settings, names, diag, summarise)


def _forecast(idata, data, index, clean, columns, settings, names, diag, summarise=True) -> CurveFit:
    values = cc.posterior_values(idata.posterior, data)
    draws = cc.predictive_ltv(values, data, settings.horizon, max_draws=settings.max_draws,
                              seed=settings.options.seed)
    curves = coh = groups = None
    group_draws: dict = {}
    if summarise:
        curves, coh, groups, group_draws = _summaries(draws, data, index, clean, columns, settings)
    params = params_table(idata, names)
    return CurveFit(idata, data, index, clean, draws, curves, coh, groups, group_draws, params, diag, columns,
                    settings, values=values)


def expected_ltv_draws(result: CurveFit, cohorts: Sequence[str], ages: Sequence[int], *,
                       max_draws: int = 400) -> np.ndarray:
    """Posterior draws of the model's *expected* cumulative LTV per install ``L_c(D) = sum_{t <= D} s_c(t)
    arpdau_c(t)`` (not anchored on the observed revenue) for ``cohorts`` at ages ``ages``: array
    ``(len(cohorts), len(ages), S)``. The quantity a simulation's true curve is compared with
    (:func:`btyd_ltv.models.cohort_curve.predictive_ltv` with ``kind="expected"``)."""
    pos = _cohort_positions(result, cohorts)
    expected = cc.predictive_ltv(_values(result), result.data, int(max(ages)), kind="expected", max_draws=max_draws)
    return expected[pos][:, list(ages), :]


def expected_component_draws(result: CurveFit, cohorts: Sequence[str], ages: Sequence[int], *,
                             max_draws: int = 400) -> dict[str, np.ndarray]:
    """Posterior draws of the two curves behind :func:`expected_ltv_draws`: ``"retention"``, the expected share
    of installs active at age ``t`` (``s_c(t)``), and ``"arpdau"``, the expected revenue per active user
    (``arpdau_c(t)``), for ``cohorts`` at ``ages``: arrays ``(len(cohorts), len(ages), S)``, with the same draws
    (and calendar continuations) as :func:`expected_ltv_draws`. They say which half of a forecast moves: a
    retention tail that stays high, or revenue per active user that keeps rising with tenure
    (:func:`btyd_ltv.models.cohort_curve.expected_components`)."""
    pos = _cohort_positions(result, cohorts)
    parts = cc.expected_components(_values(result), result.data, int(max(ages)), max_draws=max_draws)
    return {name: x[pos][:, list(ages), :] for name, x in parts.items()}


def curve_components(result: CurveFit, *, ages: Sequence[int] | None = None) -> pd.DataFrame:
    """The table of the retention and revenue-per-active-user curves behind every cohort's forecast
    (``components.csv``; :func:`btyd_ltv.curves.component_table`): per cohort and age ``0..horizon``, the posterior
    mean and quantiles of the model's expected ``s_c(t)`` (``retention``) and ``arpdau_c(t)`` (``arpdau``), from
    the fit's ``max_draws`` draws, with the observed share active (``active / installs``) and revenue per active
    user where the table has them. Memory: two float32 arrays of cohorts x (horizon + 1) x draws, like the
    forecast's."""
    data, H = result.data, result.settings.horizon
    parts = cc.expected_components(_values(result), data, H, max_draws=result.settings.max_draws)
    n = min(H + 1, data.observed.shape[1])
    observed = {name: np.full((data.installs.shape[0], H + 1), np.nan) for name in parts}
    if data.has_active:
        seen = data.observed[:, :n]
        active = data.active[:, :n]
        with np.errstate(divide="ignore", invalid="ignore"):
            observed["retention"][:, :n] = np.where(seen, active / data.installs[:, None], np.nan)
            observed["arpdau"][:, :n] = np.where(seen & (active > 0), data.revenue[:, :n] / active, np.nan)
    return component_table(parts, result.index["cohorts"], observed, ages=ages)


def _values(result: CurveFit) -> dict:
    """The parameter draws behind ``result``'s forecasts (``CurveFit.values``; read from the posterior when a
    ``CurveFit`` was built without them)."""
    return result.values if result.values is not None else cc.posterior_values(result.posterior.posterior,
                                                                                result.data)


def _cohort_positions(result: CurveFit, cohorts: Sequence[str]) -> np.ndarray:
    pos = pd.Index(result.index["cohorts"]).get_indexer([str(c) for c in cohorts])
    if (pos < 0).any():
        raise DataValidationError(f"cohort {list(cohorts)[int(np.argmax(pos < 0))]!r} is not in the fit")
    return pos


def population_prior(posterior, params: Sequence[str] | None = None, *,
                     scale: float = 1.0) -> tuple[tuple[str, float, float], ...]:
    """Normal priors for the portfolio means of another fit, from a fitted portfolio's posterior (``posterior.nc``
    of :func:`fit_curves`): the curve shape of a mature portfolio carried to a young one
    (``CurveOptions(population_prior=...)``, CLI ``curves fit --shape-prior``).

    For each parameter ``p`` the prior of the new fit's ``p_mu`` is the source's predictive for a new element of
    its outermost group level (a new app), ``p_new ~ N(p_mu, sd_0)`` over the posterior draws, matched by its
    first two moments::

        loc = E[p_mu],    scale = s sqrt(Var[p_mu] + E[sd_0^2])

    (``sd_0`` is ``p_sd_{outermost level}``; 0 for a parameter without group levels or a source fitted without
    grouping columns, whose prior then says the new portfolio is the source; ``s`` is ``scale``). This is
    partial pooling across portfolios with the source's between-app spread as the between-portfolio one
    (Gelman et al. 2013, *Bayesian Data Analysis*, 3rd ed., sec. 5.3, the predictive for a new group).

    ``params`` defaults to the curve's shape, which a young portfolio cannot see: the retention shape parameters
    of the source's family (``logit_churn``, ``log_kappa``, and ``log_c`` / ``logit_stay`` where it has them)
    and the tenure slope ``rho`` (with ``log_saturation`` when the source has the saturating term). The levels
    (``log_ret``, ``log_level``) stay the new portfolio's own: its first days measure them. Where the new fit
    has app levels too, each new app varies around that mean by the new fit's own between-app sd as well, so the
    prior of an app's shape is wider than the source's predictive: on the cautious side.
    """
    if "cohort_curve" not in posterior.attrs:
        raise DataValidationError("the shape prior's source is not a cohort-curve posterior (posterior.nc of "
                                  "`btyd-ltv curves fit`)")
    meta = json.loads(posterior.attrs["cohort_curve"])
    source = cc.family_params(meta["retention"], meta.get("revenue_likelihood", "lognormal"), meta.get("tenure", "log"))
    if params is None:
        params = [p for p in source if p in cc.SHAPE_PARAMS + ("rho",) + cc.TENURE_PARAMS]
    missing = [p for p in params if p not in source]
    if missing:
        raise DataValidationError(
            f"the source posterior ({meta['retention']} retention, {meta.get('tenure', 'log')} tenure term) has no "
            f"{', '.join(map(repr, missing))}; its parameters: {', '.join(source)}"
        )
    if not np.isfinite(scale) or scale <= 0:
        raise DataValidationError(f"the shape prior's scale must be positive, got {scale!r}")
    levels = [cc.level_suffix(c) for c in meta["index"]["group_cols"]]
    post = posterior.posterior
    out = []
    for p in params:
        mu = np.asarray(post[f"{p}_mu"], dtype=float).ravel()
        spread = 0.0
        if levels and f"{p}_sd_{levels[0]}" in post:
            spread = float(np.mean(np.asarray(post[f"{p}_sd_{levels[0]}"], dtype=float) ** 2))
        out.append((p, float(mu.mean()), float(scale * np.sqrt(mu.var() + spread))))
    return tuple(out)


def predict_curves(posterior, table: pd.DataFrame, *, horizon: int | None = None, max_draws: int = 400,
                   seed: int = 0) -> CurveFit:
    """Forecasts from a saved posterior (``posterior.nc`` of :func:`fit_curves`) for a (possibly newer) cohort
    table: every cohort is anchored on the table's observed values. Cohorts (and groups) the posterior has keep
    their posterior parameters; new ones get parameters drawn from their group's distribution (the hierarchy's
    population curve), not conditioned on their own early data -- refit to use those."""
    meta = json.loads(posterior.attrs["cohort_curve"])
    if meta.get("calendar_effects") and meta.get("calendar_offsets") != "centred":
        raise DataValidationError(
            "this posterior was fitted with calendar effects before their offsets were centred over the fitted "
            "periods (btyd_ltv's cohort-curve model changed since): its levels and calendar processes no longer "
            "mean the same thing; refit it with `btyd-ltv curves fit`"
        )
    colspec = dict(meta["columns"])
    groups = tuple(colspec.pop("groups"))
    columns = CohortColumns(**colspec, groups=groups)
    if columns.active_users is not None and columns.active_users not in table.columns:
        raise DataValidationError(f"the cohort table has no {columns.active_users!r} column, which the posterior "
                                  "was fitted with")
    clean = validate_cohort_table(table, columns)
    settings = CurveOptions(**_model_settings(meta), horizon=int(horizon) if horizon is not None else 365,
                            max_draws=max_draws, options=FitOptions(seed=seed))
    acquired, _ = _calendar(clean, columns, settings, meta.get("calendar"))
    data, index = _make_data(clean, columns, settings, acquired)
    # keep the fitted data's centring constants so parameters mean the same thing
    fitted = posterior.constant_data.attrs
    data = data._replace(**{k: float(fitted[k]) for k in ("log_age_center", "ref_age", "log_arpdau_center",
                                                          "log_retention_center", "ref_users") if k in fitted})
    values = _map_values(posterior, meta, data, index, seed)
    draws = cc.predictive_ltv(values, data, settings.horizon, max_draws=None, seed=seed)
    curves, coh, groups_t, group_draws = _summaries(draws, data, index, clean, columns, settings)
    known = set(meta["index"]["cohorts"])
    coh.insert(1, "in_posterior", [c in known for c in index["cohorts"]])
    params = params_table(posterior, cc.param_names(data))  # the fit's hyper-parameters: same model, same levels
    return CurveFit(posterior, data, index, clean, draws, curves, coh, groups_t, group_draws, params, None,
                    columns, settings, values=values)


def _map_values(posterior, meta, data: cc.CohortCurveData, index: dict, seed: int) -> dict:
    """Posterior draws of every level's values re-indexed to the new table's hierarchy; elements the posterior
    does not have are drawn from ``N(parent value, level sd)``."""
    post = posterior.posterior
    flat = lambda v: np.asarray(v).reshape((-1,) + np.asarray(v).shape[2:])  # noqa: E731
    rng = np.random.default_rng(seed)
    old_labels = [meta["index"]["groups"][c] for c in meta["index"]["group_cols"]] + [meta["index"]["cohorts"]]
    new_labels = [index["groups"][c] for c in index["group_cols"]] + [index["cohorts"]]
    values = {}
    for p in cc.param_list(data):
        values[f"{p}_mu"] = flat(post[f"{p}_mu"])
        current = values[f"{p}_mu"][:, None]
        for suffix, lvl in cc._levels(data, p):
            old = flat(post[f"{p}_{suffix}"])  # (S, n_old)
            sd = flat(post[f"{p}_sd_{suffix}"])[:, None]
            pos = pd.Index(old_labels[lvl]).get_indexer(new_labels[lvl])
            parent_vals = current[:, data.parent[lvl]]
            fresh = parent_vals + sd * rng.standard_normal(parent_vals.shape)
            current = np.where(pos[None, :] >= 0, old[:, np.maximum(pos, 0)], fresh)
            values[f"{p}_{suffix}"] = current
    for n in cc.NOISE_PARAMS:
        if n in post:
            values[n] = flat(post[n])
    for e in data.calendar_effects:  # the fitted periods' process; predictive_ltv continues it
        values.update({f"cal_{e}{part}": flat(post[f"cal_{e}{part}"]) for part in ("", "_sd", "_ar")})
    return values


def curve_forecaster(columns: CohortColumns, settings: CurveOptions, *, name: str = "bayes") -> object:
    """A :mod:`btyd_ltv.backtest` forecaster: fit on the history at each cutoff, return the predictive draws of
    the target cohorts at the checkpoints."""
    from btyd_ltv.backtest import CurveForecast

    def forecast(history: pd.DataFrame, cohorts: Sequence[str], ages: Sequence[int]) -> CurveForecast:
        ages = np.asarray(ages, dtype=int)
        s = replace(settings, horizon=int(max(ages)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = fit_curves(history, columns, settings=s, summarise=False)
        pos = pd.Index(res.index["cohorts"]).get_indexer([str(c) for c in cohorts])
        samples = res.draws[pos][:, ages, :].astype(np.float64)
        return CurveForecast(list(cohorts), ages, samples.mean(axis=-1), samples)

    forecast.__name__ = name
    return forecast


def write_curve_fit(result: CurveFit, out_dir: str | Path, *, plots: bool = True, max_panels: int = 12,
                    components: bool = False) -> list[Path]:
    """Write ``curves.csv``, ``cohorts.csv``, ``groups.csv`` (with grouping columns), ``params.csv``,
    ``posterior.nc``, with ``components=True`` ``components.csv`` (:func:`curve_components`), and fan charts
    (``fan_cohorts.png``: the youngest cohorts, largest first; one ``fan_<group column>.png`` per grouping
    column) to ``out_dir``, each atomically."""
    from btyd_ltv.io import write_figure

    out = Path(out_dir)
    paths = [write_csv(result.curves, out / "curves.csv", index=False),
             write_csv(result.cohorts, out / "cohorts.csv", index=False)]
    if result.groups is not None:
        paths.append(write_csv(result.groups, out / "groups.csv", index=False))
    if components:
        paths.append(write_csv(curve_components(result), out / "components.csv", index=False))
    paths.append(write_csv(result.params, out / "params.csv"))
    paths.append(write_netcdf(result.posterior, out / "posterior.nc"))
    if plots:
        import matplotlib.pyplot as plt

        from btyd_ltv.plots import fan_chart

        xlabel = {"D": "age (days)", "W": "age (weeks)", "M": "age (months)"}.get(result.settings.period, "age")
        coh = result.cohorts.sort_values(["observed_age", "installs"], ascending=[True, False])
        top = coh["cohort"].astype(str).head(max_panels).tolist()
        figs = {"fan_cohorts.png": fan_chart(result.curves, top, xlabel=xlabel, max_panels=max_panels,
                                             title="youngest cohorts: observed, median, 50% and 90% bands")}
        for col, (labels, gd) in result.group_draws.items():
            g = curve_table(gd, labels)
            figs[f"fan_{col}.png"] = fan_chart(g, labels[:max_panels], xlabel=xlabel, max_panels=max_panels,
                                               title=f"cumulative LTV per install by {col}")
        for name, fig in figs.items():
            paths.append(write_figure(fig, out / name, dpi=90))
            plt.close(fig)
    return paths
