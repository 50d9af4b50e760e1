"""End-to-end workflow: prepare_summary on the CDNOW log, fit_btyd tables, NetCDF round trip of predictions."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from btyd_ltv.data.datasets import load_dataset
from btyd_ltv.errors import DataValidationError
from btyd_ltv.io import read_posterior, write_netcdf
from btyd_ltv.models import bgnbd
from btyd_ltv.models import gamma_gamma as gg
from btyd_ltv.predict import PredictionSettings, periods_per_month
from btyd_ltv.workflow import (
    PARAMS_COLUMNS,
    FitOptions,
    fit_btyd,
    params_table,
    predict_from_posterior,
    prepare_summary,
    write_fit,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    import arviz as az

# Fader, Hardie & Lee (2005) BG/NBD and Fader & Hardie (2013) Gamma-Gamma MLEs on the CDNOW calibration sample.
PUBLISHED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426, "p": 6.25, "q": 3.74, "gamma": 15.44}
SETTINGS = PredictionSettings(horizon=39.0, periods_per_month=periods_per_month("D", 7), seed=3)


@pytest.fixture(scope="module")
def clv_map(cdnow_summary):
    options = FitOptions(method="map", num_samples=300, seed=2)
    return fit_btyd(cdnow_summary, "clv", options=options, settings=SETTINGS, freq="D", freq_multiplier=7)


def test_clv_map_params_table(clv_map):
    params = clv_map.params
    assert list(params.columns) == ["mean", "sd", "hdi_3%", "hdi_97%", "r_hat", "ess_bulk", "ess_tail"]
    assert list(params.columns) == PARAMS_COLUMNS
    assert params.index.name == "parameter"
    assert list(params.index) == ["r", "alpha", "a", "b", "p", "q", "gamma"]
    # MAP / Laplace: one pseudo-chain, no R-hat or ESS
    assert params[["r_hat", "ess_bulk", "ess_tail"]].isna().all().all()
    # the table is arviz's summary of the draws
    post = clv_map.posterior.posterior
    for k in params.index:
        v = post[k].values.ravel()
        assert params.loc[k, "mean"] == pytest.approx(v.mean(), rel=1e-12)
        assert params.loc[k, "sd"] == pytest.approx(v.std(ddof=1), rel=1e-9)
        lo, hi = np.asarray(az.hdi(post[k].values.ravel(), hdi_prob=0.94))
        assert params.loc[k, "hdi_3%"] == pytest.approx(lo) and params.loc[k, "hdi_97%"] == pytest.approx(hi)
        assert params.loc[k, "hdi_3%"] < PUBLISHED[k] < params.loc[k, "hdi_97%"], k
    # weakly informative priors: the mode is within one standard error (lifetimes 0.11.3) of the published MLE
    for k, se in (("r", 0.0126), ("alpha", 0.378), ("a", 0.186), ("b", 0.705)):
        assert abs(clv_map.posterior.attrs[f"map_{k}"] - PUBLISHED[k]) < se, k


def test_clv_map_posterior_keeps_both_modes(clv_map):
    """The merged CLV posterior records the mode and convergence of both MAP fits, not only the BG/NBD one."""
    attrs = clv_map.posterior.attrs
    for k in ("r", "alpha", "a", "b", "p", "q", "gamma"):
        assert f"map_{k}" in attrs, k
    for k in ("p", "q", "gamma"):
        assert abs(attrs[f"map_{k}"] - PUBLISHED[k]) < {"p": 1.19, "q": 0.29, "gamma": 4.16}[k], k


def test_clv_posterior_layout(clv_map, cdnow_summary):
    idata = clv_map.posterior
    assert idata.attrs["model"] == "clv" and idata.attrs["method"] == "map"
    assert idata.attrs["freq"] == "D" and idata.attrs["freq_multiplier"] == 7.0
    assert set(bgnbd.PARAM_NAMES + gg.PARAM_NAMES) <= set(idata.posterior.data_vars)
    assert idata.posterior.sizes["chain"] == 1 and idata.posterior.sizes["draw"] == 300
    assert any(k.startswith("gamma_gamma_") for k in idata.constant_data.data_vars)
    assert set(clv_map.diagnostics) == {"bgnbd", "gamma_gamma"}
    assert clv_map.rfm.n_customers == len(cdnow_summary) == 2357
    cust = clv_map.customers
    assert len(cust) == 2357 and cust.index.name == "customer_id"
    for prefix in ("p_alive", "expected_purchases", "expected_spend", "clv"):
        for s in ("mean", "q05", "q50", "q95"):
            assert f"{prefix}_{s}" in cust.columns
    assert np.all(cust["clv_mean"] >= 0) and np.all(np.isfinite(cust["clv_mean"]))


def test_write_fit_writes_three_files(clv_map, tmp_path):
    paths = write_fit(clv_map, tmp_path / "out")
    assert sorted(p.name for p in paths) == ["customers.csv", "params.csv", "posterior.nc"]
    params = pd.read_csv(tmp_path / "out" / "params.csv", index_col="parameter")
    pd.testing.assert_frame_equal(params, clv_map.params, check_exact=False, rtol=1e-12)
    customers = pd.read_csv(tmp_path / "out" / "customers.csv", index_col="customer_id")
    pd.testing.assert_frame_equal(customers, clv_map.customers, check_exact=False, rtol=1e-12)


def test_predictions_survive_a_netcdf_round_trip(clv_map, cdnow_summary, tmp_path):
    path = write_netcdf(clv_map.posterior, tmp_path / "posterior.nc")
    back = read_posterior(path)
    assert back.attrs["model"] == "clv" and back.attrs["freq_multiplier"] == 7.0
    again = predict_from_posterior(back, cdnow_summary, settings=SETTINGS)
    pd.testing.assert_frame_equal(again, clv_map.customers, check_exact=True)
    # the parameter table too
    pd.testing.assert_frame_equal(params_table(back, list(clv_map.params.index)), clv_map.params, check_exact=True)


def test_gamma_gamma_posterior_predicts_spend_only(clv_map, cdnow_summary):
    """A Gamma-Gamma posterior scores spend: E[Z | x, zbar] per draw (Fader & Hardie 2013 eq. 5)."""
    g = az.InferenceData(posterior=clv_map.posterior.posterior[list(gg.PARAM_NAMES)])
    g.attrs["model"] = "gamma_gamma"
    out = predict_from_posterior(g, cdnow_summary, settings=PredictionSettings(chunk_elements=300 * 100))
    assert list(out.columns) == ["frequency", "monetary_value", "expected_spend_mean", "expected_spend_q05",
                                 "expected_spend_q50", "expected_spend_q95"]
    d = {k: g.posterior[k].values.reshape(-1)[:, None] for k in gg.PARAM_NAMES}
    per_draw = gg.conditional_expected_average_spend(
        cdnow_summary["frequency"].to_numpy(), cdnow_summary["monetary_value"].to_numpy(), d["p"], d["q"], d["gamma"]
    )
    np.testing.assert_allclose(out["expected_spend_mean"], per_draw.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(out["expected_spend_q50"], np.median(per_draw, axis=0), rtol=1e-12)
    with pytest.raises(DataValidationError, match="monetary_value"):
        predict_from_posterior(g, cdnow_summary.drop(columns="monetary_value"), settings=SETTINGS)
    with pytest.raises(DataValidationError, match="monetary_value"):
        predict_from_posterior(clv_map.posterior, cdnow_summary.drop(columns="monetary_value"), settings=SETTINGS)


def test_bgnbd_posterior_predicts_without_spend(clv_map, cdnow_summary):
    bg = az.InferenceData(posterior=clv_map.posterior.posterior[list(bgnbd.PARAM_NAMES)])
    bg.attrs["model"] = "bgnbd"
    out = predict_from_posterior(bg, cdnow_summary[["frequency", "recency", "T"]], settings=SETTINGS)
    pd.testing.assert_frame_equal(out, clv_map.customers[out.columns], check_exact=True)


@pytest.fixture(scope="module")
def cdnow_split():
    return prepare_summary(load_dataset("cdnow"), amount_col="amount", freq="D", freq_multiplier=7,
                           calibration_end="1997-09-30", observation_end="1998-06-30")


def test_prepare_summary_reproduces_the_shipped_cdnow_summary(cdnow_split, cdnow_summary):
    summary, holdout = cdnow_split
    assert summary.index.name == "customer_id"
    assert list(summary.columns) == ["frequency", "recency", "T", "monetary_value"]
    np.testing.assert_array_equal(summary.index.to_numpy(), cdnow_summary.index.to_numpy())
    np.testing.assert_array_equal(summary["frequency"], cdnow_summary["frequency"])
    # the shipped summary (Fader & Hardie's file) is rounded to 2 decimals
    for c in ("recency", "T", "monetary_value"):
        np.testing.assert_allclose(summary[c], cdnow_summary[c], rtol=0, atol=0.005 + 1e-9)
    assert summary["frequency"].sum() == 2457  # repeat purchase days in the 39-week calibration period
    assert list(holdout.columns) == ["frequency_holdout", "monetary_value_holdout", "duration_holdout"]
    np.testing.assert_array_equal(holdout["duration_holdout"], 39.0)  # 273 days / 7
    assert holdout["frequency_holdout"].sum() == 1882


def test_prepare_summary_matches_lifetimes_holdout(cdnow_split):
    lifetimes_utils = pytest.importorskip("lifetimes.utils")
    tx = load_dataset("cdnow")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = lifetimes_utils.calibration_and_holdout_data(
            tx, "customer_id", "date", calibration_period_end="1997-09-30", observation_period_end="1998-06-30",
            freq="D", freq_multiplier=7, monetary_value_col="amount",
        )
    summary, holdout = cdnow_split
    for c in ("frequency", "recency", "T", "monetary_value"):
        np.testing.assert_allclose(summary[c], ref[f"{c}_cal"], rtol=1e-12, atol=0)
    for c in ("frequency_holdout", "monetary_value_holdout", "duration_holdout"):
        np.testing.assert_allclose(holdout[c], ref[c], rtol=1e-12, atol=0)


def test_prepare_summary_passes_a_summary_through(cdnow_summary):
    table = cdnow_summary.reset_index()
    summary, holdout = prepare_summary(table)
    assert holdout is None
    pd.testing.assert_frame_equal(summary, cdnow_summary)
    with pytest.raises(DataValidationError, match="calibration"):
        prepare_summary(table, calibration_end="1997-09-30")


def test_prepare_summary_without_split_is_the_full_period_summary():
    tx = load_dataset("cdnow")
    summary, holdout = prepare_summary(tx, freq="D", freq_multiplier=7, observation_end="1998-06-30")
    assert holdout is None
    assert list(summary.columns) == ["frequency", "recency", "T"]
    assert len(summary) == 2357
    # 78 weeks of observation: the earliest customers have T = 545 days / 7
    assert summary["T"].max() == pytest.approx(545 / 7)
    # every customer's first purchase is in the calibration period, so the repeat purchase days of the whole
    # period are those of the calibration period plus the holdout purchase days
    assert summary["frequency"].sum() == 2457 + 1882


def test_fit_btyd_input_errors(cdnow_summary):
    with pytest.raises(DataValidationError, match="unknown model"):
        fit_btyd(cdnow_summary, "pareto", options=FitOptions(method="map"))
    with pytest.raises(DataValidationError, match="monetary_value"):
        fit_btyd(cdnow_summary.drop(columns="monetary_value"), "clv", options=FitOptions(method="map"))
    bad = cdnow_summary.copy()
    bad.iloc[4, bad.columns.get_loc("recency")] = 50.0
    with pytest.raises(DataValidationError, match="recency"):
        fit_btyd(bad, "bgnbd", options=FitOptions(method="map"))
