"""Cohort-curve workflow and the ``btyd-ltv curves`` commands on a small simulated portfolio: files, the numbers
in them against each other and against the draws, reproducibility, re-forecasting from a posterior, errors."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from btyd_ltv.cli import app
from btyd_ltv.cohort_workflow import CurveOptions, fit_curves, predict_curves, write_curve_fit
from btyd_ltv.data.cohorts import CohortColumns
from btyd_ltv.data.portfolio import simulate_portfolio
from btyd_ltv.errors import DataValidationError
from btyd_ltv.io import read_posterior
from btyd_ltv.models import cohort_curve as cc
from btyd_ltv.workflow import FitOptions

COLUMNS = CohortColumns(active_users="active_users", payers="payers", cost="cost", groups=("app", "campaign"))
SMALL = dict(n_apps=2, campaigns_per_app=2, days=6, seed=4, retention="bgbb")
# small sampler: these tests check the plumbing and the numbers' consistency, not convergence
SETTINGS = CurveOptions(horizon=60, max_draws=100,
                        options=FitOptions(num_chains=2, num_warmup=100, num_samples=50, seed=3,
                                           progress_bar=False, target_accept_prob=0.9))


def _run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def portfolio():
    return simulate_portfolio(**SMALL)


@pytest.fixture(scope="module")
def curve_fit(portfolio):
    table, _ = portfolio
    return fit_curves(table, COLUMNS, settings=SETTINGS)


def test_expected_ltv_draws_are_the_model_curve_at_the_asked_ages(curve_fit, portfolio):
    """``expected_ltv_draws`` is the cumulative sum of ``s_c(t) arpdau_c(t)`` per draw, picked at the asked cohorts
    and ages in the asked order; an unknown cohort is an error naming it."""
    from btyd_ltv.cohort_workflow import expected_ltv_draws

    res = curve_fit
    cohorts = [res.index["cohorts"][3], res.index["cohorts"][0]]
    got = expected_ltv_draws(res, cohorts, (0, 5, 30))
    values = cc.posterior_values(res.posterior.posterior, res.data)
    inc = cc.expected_revenue_per_install(values, res.data, 30)  # (S, C, 31)
    want = np.cumsum(inc, axis=-1)[:, [3, 0]][:, :, [0, 5, 30]].transpose(1, 2, 0)
    assert got.shape == (2, 3, want.shape[-1])
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert (np.diff(got, axis=1) >= 0).all()
    with pytest.raises(DataValidationError, match="'nope' is not in the fit"):
        expected_ltv_draws(res, ["nope"], (7,))


def test_expected_component_draws_multiply_to_the_expected_curve(curve_fit):
    """``expected_component_draws`` gives ``s_c(t)`` and ``arpdau_c(t)`` per draw at the asked cohorts and ages:
    their product is the model's expected revenue per install, retention is 1 at age 0 and falls from age 1 on
    (the bgbb family has no calendar effects here), revenue per active user follows ``exp(level) (1 + t)^rho``."""
    from btyd_ltv.cohort_workflow import expected_component_draws

    res = curve_fit
    cohorts = [res.index["cohorts"][2], res.index["cohorts"][5]]
    ages = (0, 1, 7, 30)
    got = expected_component_draws(res, cohorts, ages)
    values = cc.posterior_values(res.posterior.posterior, res.data)
    inc = cc.expected_revenue_per_install(values, res.data, 30)[:, [2, 5]][:, :, list(ages)].transpose(1, 2, 0)
    np.testing.assert_allclose(got["retention"] * got["arpdau"], inc, rtol=1e-5)
    assert (got["retention"][:, 0] == 1).all() and (np.diff(got["retention"][:, 1:], axis=1) < 0).all()
    log_a = np.log(got["arpdau"])  # log arpdau linear in log(1 + t) with the same slope between any two ages
    slope = (log_a[:, 3] - log_a[:, 2]) / (np.log(31) - np.log(8))
    np.testing.assert_allclose((log_a[:, 2] - log_a[:, 0]) / np.log(8), slope, rtol=1e-4, atol=1e-6)
    with pytest.raises(DataValidationError, match="'nope' is not in the fit"):
        expected_component_draws(res, ["nope"], (7,))


def test_curve_components_table_is_the_component_draws(curve_fit):
    """``curve_components`` summarises the same draws as ``expected_component_draws`` for every cohort and age,
    with the observed share active and revenue per active user of the fitted table."""
    from btyd_ltv.cohort_workflow import curve_components, expected_component_draws

    res = curve_fit
    table = curve_components(res, ages=[0, 3, 60])
    cohorts = res.index["cohorts"]
    draws = expected_component_draws(res, cohorts, [0, 3, 60], max_draws=res.settings.max_draws)
    for name in ("retention", "arpdau"):
        part = table[table["component"] == name]
        np.testing.assert_allclose(part["mean"].to_numpy().reshape(len(cohorts), 3), draws[name].mean(axis=-1),
                                   rtol=1e-6)
    first = res.table[res.table["cohort"].astype(str) == cohorts[0]].set_index("age")
    got = table[(table["cohort"] == cohorts[0]) & (table["age"] == 3)].set_index("component")["observed"]
    assert got["retention"] == pytest.approx(first.loc[3, "active_users"] / first.loc[3, "installs"])
    assert got["arpdau"] == pytest.approx(first.loc[3, "revenue"] / first.loc[3, "active_users"])


def test_tables_agree_with_draws(curve_fit, portfolio):
    table, _ = portfolio
    res = curve_fit
    C = table["cohort"].nunique()
    assert res.draws.shape == (C, 61, 100)  # 2 chains x 50 draws
    assert (np.diff(res.draws, axis=1) >= -1e-6).all()
    curves = res.curves
    assert list(curves.columns) == ["cohort", "age", "observed", "mean", "q05", "q25", "q50", "q75", "q95"]
    assert len(curves) == C * 61
    # observed column = cumulative revenue / installs of the input, NaN beyond the last observed age
    first = table[table["cohort"] == res.index["cohorts"][0]]
    want = first["revenue"].cumsum().to_numpy() / first["installs"].iloc[0]
    got = curves[curves["cohort"] == res.index["cohorts"][0]]
    np.testing.assert_allclose(got["observed"].to_numpy()[: len(want)], want, rtol=1e-12)
    assert got["observed"].iloc[len(want):].isna().all()
    # the forecast equals the observed value where observed, and quantiles are ordered
    obs = curves.dropna(subset=["observed"])
    np.testing.assert_allclose(obs["q50"], obs["observed"], rtol=1e-5)
    assert (curves["q05"] <= curves["q25"] + 1e-9).all() and (curves["q75"] <= curves["q95"] + 1e-9).all()
    # cohorts.csv: LTV at d30 equals curves.csv at age 30; ROAS = installs x L(H) / cost
    coh = res.cohorts.set_index("cohort")
    at30 = curves[curves["age"] == 30].set_index("cohort")
    np.testing.assert_allclose(coh.loc[at30.index, "ltv_d30_mean"], at30["mean"], rtol=1e-5)
    per = table.groupby("cohort").first()
    roas = per.loc[coh.index, "installs"] * coh["ltv_d60_mean"] / per.loc[coh.index, "cost"]
    np.testing.assert_allclose(coh["roas_mean"], roas, rtol=1e-5)
    assert ((coh["p_roas_ge_1"] >= 0) & (coh["p_roas_ge_1"] <= 1)).all()
    # groups: app-level LTV is the install-weighted mean of its cohorts' curves
    app1 = res.groups[(res.groups["level"] == "app") & (res.groups["group"] == "app1")].iloc[0]
    members = per[per["app"] == "app1"].index
    w = per.loc[members, "installs"].to_numpy()
    pos = pd.Index(res.index["cohorts"]).get_indexer(members)
    np.testing.assert_allclose(app1["ltv_d60_mean"], (w[:, None] * res.draws[pos, 60, :]).sum(0).mean() / w.sum(),
                               rtol=1e-5)


def test_fit_reports_diagnostics_and_is_reproducible(curve_fit, portfolio):
    res = curve_fit
    assert res.diagnostics is not None and res.diagnostics.max_rhat > 0
    assert {"log_ret_mu", "log_level_sd_cohort", "log_phi"} <= set(res.params.index)
    again = fit_curves(portfolio[0], COLUMNS, settings=SETTINGS)
    np.testing.assert_array_equal(res.posterior.posterior["log_ret_mu"].values,
                                  again.posterior.posterior["log_ret_mu"].values)
    np.testing.assert_array_equal(res.draws, again.draws)


def test_write_and_predict_from_posterior(curve_fit, tmp_path):
    paths = write_curve_fit(curve_fit, tmp_path)
    names = {p.name for p in paths}
    assert {"curves.csv", "cohorts.csv", "groups.csv", "params.csv", "posterior.nc", "fan_cohorts.png",
            "fan_app.png", "fan_campaign.png"} <= names
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    # a newer table: the same cohorts observed 3 more days and 3 new cohorts per campaign
    newer, _ = simulate_portfolio(**{**SMALL, "days": 9})
    post = read_posterior(tmp_path / "posterior.nc")
    pred = predict_curves(post, newer, horizon=60, max_draws=100, seed=1)
    flags = pred.cohorts.set_index("cohort")["in_posterior"]
    assert flags.sum() == len(curve_fit.index["cohorts"]) and (~flags).sum() == 4 * 3
    # the written posterior's hyper-parameters, in the fit's order (a newer table does not change the model)
    pd.testing.assert_index_equal(pred.params.index, curve_fit.params.index)
    np.testing.assert_allclose(pred.params["mean"], curve_fit.params["mean"], rtol=1e-6)
    # anchored on the newer observations
    c = curve_fit.index["cohorts"][0]
    got = pred.curves[(pred.curves["cohort"] == c)].set_index("age")
    rows = newer[newer["cohort"] == c]
    np.testing.assert_allclose(got.loc[rows["age"].to_numpy(), "q50"],
                               rows["revenue"].cumsum().to_numpy() / rows["installs"].iloc[0], rtol=1e-5)
    # components from the re-forecast's own parameter draws: a cohort the posterior has keeps the fit's curves,
    # the new cohorts get their group's
    from btyd_ltv.cohort_workflow import curve_components

    comp = curve_components(pred, ages=[0, 5, 60])
    assert len(comp) == 2 * 3 * len(pred.index["cohorts"])
    before = curve_components(curve_fit, ages=[0, 5, 60])
    for frame in (comp, before):
        frame.set_index(["cohort", "age", "component"], inplace=True)
    np.testing.assert_allclose(comp.loc[c, "mean"].to_numpy(), before.loc[c, "mean"].to_numpy(), rtol=1e-6)
    new = [k for k, known in flags.items() if not known]
    assert comp.loc[new, "mean"].notna().all()


def test_whale_mixture_and_calendar_effects_fit_write_and_predict(portfolio, tmp_path):
    """One fit with both opt-in parts (each is fitted on its own elsewhere: the whale mixture in the calibration
    test, calendar effects in the calendar recovery test).

    ``revenue_likelihood="whale"``: app-level whale share and rate in the posterior and params.csv, and a
    re-forecast from the written posterior on a newer table (whose median cell size differs) keeps the fitted
    reference size of the whale rate. ``calendar_effects``: the AR(1) sites in the posterior and params.csv, the
    calendar in the posterior's metadata, and the re-forecast puts the newer table on the fit's calendar (a cohort
    acquired before the fit's first period is refused: its calendar effects are unknown)."""
    import json

    table, _ = portfolio
    settings = replace(SETTINGS, revenue_likelihood="whale", calendar_effects=("retention", "revenue"),
                       acquired="acquired_day")
    res = fit_curves(table, COLUMNS, settings=settings)
    post = res.posterior.posterior
    assert post["logit_whale_share_app"].shape[-1] == 2 and post["logit_whale_cell_app"].shape[-1] == 2
    assert {"logit_whale_share_mu", "logit_whale_share_sd_app", "logit_whale_cell_mu", "log_whale_sd"} <= set(
        res.params.index)
    assert post["cal_revenue"].shape[-1] == res.data.n_periods == 6
    assert {"cal_retention_sd", "cal_retention_ar", "cal_revenue_sd", "cal_revenue_ar"} <= set(res.params.index)
    assert (np.diff(res.draws, axis=1) >= -1e-6).all() and np.isfinite(res.draws).all()
    write_curve_fit(res, tmp_path, plots=False)
    saved = read_posterior(tmp_path / "posterior.nc")
    meta = json.loads(saved.attrs["cohort_curve"])
    assert meta["revenue_likelihood"] == "whale" and meta["calendar_effects"] == ["retention", "revenue"]
    assert meta["calendar"] == {"origin": None, "first": 0} and meta["acquired"] == "acquired_day"
    newer, _ = simulate_portfolio(**{**SMALL, "days": 9})
    late = newer[newer["acquired_day"] >= 2]
    pred = predict_curves(saved, late, horizon=60, max_draws=100, seed=1)
    assert pred.settings.revenue_likelihood == "whale" and np.isfinite(pred.draws).all()
    assert pred.data.ref_users == res.data.ref_users  # the whale rate keeps its fitted reference size
    assert pred.data.calendar_effects == ("retention", "revenue") and pred.data.acquired.min() == 2
    assert (np.diff(pred.draws, axis=1) >= -1e-6).all()
    shifted = late.assign(acquired_day=late["acquired_day"] - 3)
    with pytest.raises(DataValidationError, match="acquired 1 period\\(s\\) before the first acquisition period"):
        predict_curves(saved, shifted, horizon=60, max_draws=100, seed=1)
    # a posterior written before the offsets were centred (no marker) is refused, not silently shifted
    old = saved.copy()
    old.attrs["cohort_curve"] = json.dumps({k: v for k, v in meta.items() if k != "calendar_offsets"})
    with pytest.raises(DataValidationError, match="before their offsets were centred.*refit it"):
        predict_curves(old, late, horizon=60, max_draws=100, seed=1)


def test_compound_whale_mixture_fits_writes_and_predicts(portfolio, tmp_path):
    """``revenue_likelihood="whale-compound"`` end to end: the whale terms in the posterior and params.csv, the
    setting in the written posterior's metadata, a re-forecast from it, and the CLI's option (an unknown kind is a
    clear error, no traceback)."""
    import json

    table, _ = portfolio
    short = replace(SETTINGS.options, num_chains=1, num_warmup=60, num_samples=30)  # the plumbing, not the fit
    res = fit_curves(table, COLUMNS, settings=replace(SETTINGS, revenue_likelihood="whale-compound", options=short))
    assert {"logit_whale_share_mu", "logit_whale_cell_mu", "log_whale_sd", "log_k", "log_nu"} <= set(res.params.index)
    assert (np.diff(res.draws, axis=1) >= -1e-6).all() and np.isfinite(res.draws).all()
    write_curve_fit(res, tmp_path, plots=False)
    saved = read_posterior(tmp_path / "posterior.nc")
    assert json.loads(saved.attrs["cohort_curve"])["revenue_likelihood"] == "whale-compound"
    pred = predict_curves(saved, table, horizon=60, max_draws=100, seed=1)
    assert pred.settings.revenue_likelihood == "whale-compound"
    assert np.isfinite(pred.draws).all() and (np.diff(pred.draws, axis=1) >= -1e-6).all()
    bad = _run("curves", "fit", "--dataset", "game-portfolio", "--revenue-likelihood", "tweedie", "--out",
               tmp_path / "bad")
    assert bad.exit_code != 0 and "revenue likelihood must be one of" in bad.output
    assert "whale-compound" in bad.output and "Traceback" not in bad.output


def test_bad_input_errors(portfolio):
    table, _ = portfolio
    dup = pd.concat([table, table.iloc[[3]]], ignore_index=True)
    with pytest.raises(DataValidationError, match="appears twice|duplicate"):
        fit_curves(dup, COLUMNS, settings=SETTINGS)
    with pytest.raises(DataValidationError, match="no cohort is observed to age 50"):
        fit_curves(table, COLUMNS, settings=SETTINGS, observed_age=50)


def test_cli_curves_fit_and_errors(portfolio, tmp_path):
    table, _ = portfolio
    path = tmp_path / "cohorts.csv"
    table.to_csv(path, index=False)
    out = tmp_path / "run"
    res = _run("curves", "fit", path, "--groups", "app,campaign", "--observed-age", 3, "--horizon", 45,
               "--chains", 2, "--draws", 40, "--tune", 60, "--max-draws", 50, "--no-plots", "-q", "--out", out,
               "--likelihood", "normal", "--precision", "float32", "--mass", "blocks", "--warm-start", "diag",
               "--max-tree-depth", 3, "--components", "--tenure", "saturating")
    assert res.exit_code == 0, res.output
    assert "youngest cohorts" in res.output and (out / "cohorts.csv").exists()
    oldest = int(table["age"].max())  # every cohort ends on the table's last day; the oldest is seen to that age
    assert oldest < 45
    assert (f"note: no cohort is observed beyond age d{oldest}; the forecasts from d{oldest + 1} to d45 "
            "extrapolate the bgbb retention curve's tail") in res.output
    import json

    from btyd_ltv.io import read_posterior

    posterior = read_posterior(out / "posterior.nc")
    steps = np.asarray(posterior.sample_stats["n_steps"])
    assert posterior.attrs["max_tree_depth"] == 3 and steps.max() <= 7
    assert f"{int((steps == 7).sum())} draws reached the tree-depth cap" in res.output  # 40 draws x 2 chains
    meta = json.loads(posterior.attrs["cohort_curve"])
    assert (meta["likelihood"], meta["precision"], meta["mass"], meta["warm_start"], meta["tenure"]) == (
        "normal", "float32", "blocks", "diag", "saturating")
    assert "log_saturation_mu" in posterior.posterior
    coh = pd.read_csv(out / "cohorts.csv")
    assert coh["observed_age"].min() == 3 and "ltv_d45_mean" in coh.columns
    comp = pd.read_csv(out / "components.csv", dtype={"cohort": str})
    assert len(comp) == 2 * len(coh) * 46 and set(comp["component"]) == {"retention", "arpdau"}
    ret = comp[comp["component"] == "retention"].set_index(["cohort", "age"])
    arp = comp[comp["component"] == "arpdau"].set_index(["cohort", "age"])
    assert (ret.xs(0, level="age")["mean"] == 1).all() and (ret["q95"] <= 1).all()
    young = coh.loc[coh["observed_age"] == 3, "cohort"].astype(str).iloc[0]
    rows = table[(table["cohort"].astype(str) == young) & (table["age"] <= 3)].set_index("age")
    np.testing.assert_allclose(ret.loc[young, "observed"].to_numpy()[:4], rows["active_users"] / rows["installs"])
    np.testing.assert_allclose(arp.loc[young, "observed"].to_numpy()[:4], rows["revenue"] / rows["active_users"])
    assert ret.loc[young, "observed"].iloc[4:].isna().all()  # beyond the cohort's observed age 3
    bad = table.copy()
    bad.loc[5, "revenue"] = -1.0
    bad.to_csv(path, index=False)
    res = _run("curves", "fit", path, "--out", tmp_path / "bad", "-q")
    assert res.exit_code == 2 and "revenue" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "bad").exists()
    table.to_csv(path, index=False)
    res = _run("curves", "fit", path, "--cohort-effects", "log_ret,bogus", "--out", tmp_path / "bad", "-q")
    assert res.exit_code == 2 and "'bogus' is not a parameter" in res.output and "Traceback" not in res.output
    for option, value, message in (("--precision", "half", "precision must be one of float64, float32"),
                                   ("--mass", "dense", "mass must be one of diag, blocks"),
                                   ("--warm-start", "yes", "warm_start must be one of none, diag, dense"),
                                   ("--tenure", "linear", "tenure must be one of log, saturating")):
        res = _run("curves", "fit", path, option, value, "--out", tmp_path / "bad", "-q")
        assert res.exit_code == 2 and message in res.output and "Traceback" not in res.output, res.output
        assert not (tmp_path / "bad").exists()
    res = _run("curves", "fit", path, "--calendar-effects", "revenue,season", "--out", tmp_path / "bad", "-q")
    assert res.exit_code == 2 and "'season' is not one of retention, revenue" in res.output, res.output
    res = _run("curves", "fit", path, "--calendar-effects", "revenue", "--out", tmp_path / "bad", "-q")
    assert res.exit_code == 2 and "is not an ISO date" in res.output and "--acquired-col" in res.output, res.output
    assert "Traceback" not in res.output and not (tmp_path / "bad").exists()
    res = _run("curves", "fit", "--dataset", "cdnow", "--out", tmp_path / "x")
    assert res.exit_code == 2 and "not a cohort table" in res.output


def test_cli_from_transactions_and_baseline_backtest(tmp_path):
    out = tmp_path / "weekly.csv"
    res = _run("curves", "from-transactions", "--dataset", "cdnow-master", "--cohort-period", "W", "--out", out)
    assert res.exit_code == 0, res.output
    built = pd.read_csv(out)
    from btyd_ltv.data.datasets import load_cdnow_weekly

    ref = load_cdnow_weekly()
    np.testing.assert_allclose(built["revenue"].to_numpy(), ref["revenue"].to_numpy(), rtol=1e-12)
    res = _run("curves", "backtest", "--dataset", "cdnow-weekly", "--ks", "4,8", "--checkpoints", "13,26",
               "--no-model", "--out", tmp_path / "bt")
    assert res.exit_code == 0, res.output
    scores = pd.read_csv(tmp_path / "bt" / "backtest.csv")
    assert set(scores["model"]) == {"multiplier", "chain_ladder", "regression", "power_law"}


def test_posterior_metadata_carries_every_model_field_by_name():
    """``fit_curves`` writes the model fields of ``CurveOptions`` into the posterior's metadata and
    ``predict_curves`` reads them back by name: every non-default value survives the JSON round trip, a field an
    older posterior lacks takes its default, and the horizon, draws and sampler settings are not model fields."""
    import json
    from types import SimpleNamespace

    from btyd_ltv.cohort_workflow import MODEL_FIELDS, _model_metadata, _model_settings

    assert {"horizon", "max_draws", "options"}.isdisjoint(MODEL_FIELDS)
    assert {"retention", "likelihood", "revenue_likelihood", "tenure", "cohort_effects", "calendar_effects",
            "acquired", "period"} <= set(MODEL_FIELDS)
    settings = CurveOptions(retention="bgbb-ms", likelihood="binomial", revenue_likelihood="whale",
                            tenure="saturating", precision="float32", mass="blocks", warm_start="diag",
                            calendar_effects=("revenue",), acquired="acquired_day", period="W", horizon=30)
    data = SimpleNamespace(cohort_effects=("log_ret", "log_level"))
    meta = json.loads(json.dumps(_model_metadata(settings, data)))
    back = CurveOptions(**_model_settings(meta))
    for name in MODEL_FIELDS:
        want = data.cohort_effects if name == "cohort_effects" else getattr(settings, name)
        assert getattr(back, name) == want, name
    old = {k: v for k, v in meta.items() if k not in ("tenure", "revenue_likelihood", "acquired")}
    old["calendar"] = {"acquired": "acquired_day", "origin": None, "first": 0}
    back = CurveOptions(**_model_settings(old))
    assert (back.tenure, back.revenue_likelihood, back.acquired) == ("log", "lognormal", "acquired_day")


def _source_posterior(retention="bgbb", tenure="log", group_cols=("app", "campaign"), seed=0):
    """A made-up cohort-curve posterior (2 chains x 500 draws) with its metadata, for ``population_prior``."""
    import json

    import arviz as az

    rng = np.random.default_rng(seed)
    names = cc.family_params(retention, "lognormal", tenure)
    draws = {}
    for i, p in enumerate(names):
        draws[f"{p}_mu"] = rng.normal(i - 1.0, 0.2, (2, 500))
        if p not in cc.TENURE_PARAMS and group_cols:
            draws[f"{p}_sd_{group_cols[0]}"] = np.abs(rng.normal(0.5, 0.1, (2, 500)))
    post = az.from_dict(posterior=draws)
    post.attrs["cohort_curve"] = json.dumps({"retention": retention, "tenure": tenure,
                                             "revenue_likelihood": "lognormal",
                                             "index": {"group_cols": list(group_cols)}})
    return post, draws


def test_population_prior_is_the_predictive_for_a_new_app_of_the_source():
    """``population_prior``: for each shape parameter, the mean and sd of ``p_mu + sd_app z`` over the source's
    draws (checked by simulating that predictive); the default parameters are the family's shape and the tenure
    slope(s); ``scale`` multiplies the sds; a source without groups gives the sd of ``p_mu``."""
    from btyd_ltv.cohort_workflow import population_prior

    post, draws = _source_posterior()
    got = {p: (loc, sd) for p, loc, sd in population_prior(post)}
    assert list(got) == ["logit_churn", "log_kappa", "rho"]
    rng = np.random.default_rng(1)
    for p, (loc, sd) in got.items():
        new = draws[f"{p}_mu"] + draws[f"{p}_sd_app"] * rng.standard_normal((400, 2, 500))  # 400k draws
        assert loc == pytest.approx(new.mean(), abs=4 * new.std() / np.sqrt(new.size))
        assert sd == pytest.approx(new.std(), rel=0.01)  # Monte Carlo sd of the sd: about 0.1%
    wide = dict((p, s) for p, _, s in population_prior(post, ["rho"], scale=2.0))
    assert wide == {"rho": pytest.approx(2.0 * got["rho"][1], rel=1e-12)}
    post, draws = _source_posterior("bgbb-ms", "saturating")
    assert [p for p, _, _ in population_prior(post)] == ["logit_churn", "log_kappa", "logit_stay", "rho",
                                                          "log_saturation"]
    post, draws = _source_posterior(group_cols=())
    (_, loc, sd), = population_prior(post, ["logit_churn"])
    assert (loc, sd) == (pytest.approx(draws["logit_churn_mu"].mean()), pytest.approx(draws["logit_churn_mu"].std()))


def test_population_prior_errors():
    from btyd_ltv.cohort_workflow import population_prior

    post, _ = _source_posterior()
    with pytest.raises(DataValidationError, match="source posterior \\(bgbb retention, log tenure term\\) has no "
                                                  "'log_c'"):
        population_prior(post, ["logit_churn", "log_c"])
    with pytest.raises(DataValidationError, match="scale must be positive"):
        population_prior(post, scale=0.0)
    del post.attrs["cohort_curve"]
    with pytest.raises(DataValidationError, match="not a cohort-curve posterior"):
        population_prior(post)


def test_cli_shape_prior_from_a_fitted_portfolio(curve_fit, tmp_path):
    """``curves fit --shape-prior POSTERIOR.nc``: another portfolio's written posterior gives the prior of the new
    fit's portfolio means (here with a tiny ``--shape-prior-scale``, so the young portfolio's mean churn is
    pinned to the source's); the prior is printed and recorded in the new posterior, ``curves predict`` reads that
    posterior, and a missing file, a parameter the source lacks or a bad scale exit 2 before any fitting."""
    import json

    write_curve_fit(curve_fit, tmp_path / "mature", plots=False)
    source = tmp_path / "mature" / "posterior.nc"
    young, _ = simulate_portfolio(n_apps=1, campaigns_per_app=2, days=4, seed=6, retention="bgbb")
    young.to_csv(tmp_path / "young.csv", index=False)
    small = ("--chains", 1, "--draws", 30, "--tune", 40, "--max-tree-depth", 4, "--max-draws", 30, "--no-plots",
             "-q", "--groups", "app,campaign", "--horizon", 30)
    res = _run("curves", "fit", tmp_path / "young.csv", "--out", tmp_path / "young", *small,
               "--shape-prior", source, "--shape-prior-params", "logit_churn,rho", "--shape-prior-scale", 1e-4)
    assert res.exit_code == 0, res.output
    assert f"shape prior from {source}: logit_churn_mu ~ N(" in res.output
    src = curve_fit.posterior.posterior
    loc = float(src["logit_churn_mu"].mean())
    spread = np.sqrt(float(src["logit_churn_mu"].var()) + float((src["logit_churn_sd_app"] ** 2).mean()))
    post = read_posterior(tmp_path / "young" / "posterior.nc")
    (name, got_loc, got_sd), (rho, _, _) = json.loads(post.attrs["cohort_curve"])["population_prior"]
    assert (name, rho) == ("logit_churn", "rho")
    assert abs(got_loc - loc) < 1e-12 and abs(got_sd - 1e-4 * spread) < 1e-12
    params = pd.read_csv(tmp_path / "young" / "params.csv", index_col=0)
    assert abs(params.loc["logit_churn_mu", "mean"] - loc) < 10 * got_sd
    res = _run("curves", "predict", tmp_path / "young" / "posterior.nc", tmp_path / "young.csv", "--horizon", 30,
               "--max-draws", 30, "--no-plots", "--out", tmp_path / "pred")
    assert res.exit_code == 0, res.output
    for option, message in ((("--shape-prior", tmp_path / "nope.nc"), "does not exist"),
                            (("--shape-prior", source, "--shape-prior-params", "log_c"), "has no 'log_c'"),
                            (("--shape-prior", source, "--shape-prior-scale", -1), "scale must be positive")):
        res = _run("curves", "fit", tmp_path / "young.csv", "--out", tmp_path / "bad", *small, *option)
        assert res.exit_code == 2 and message in res.output and "Traceback" not in res.output, res.output
        assert not (tmp_path / "bad").exists()
