"""The ``btyd-ltv`` command line, in process: output files and their numbers, and clean exit-2 errors."""

from __future__ import annotations

import os
import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from btyd_ltv.cli import app

# Fader, Hardie & Lee (2005) BG/NBD and Fader & Hardie (2013) Gamma-Gamma MLEs on the CDNOW calibration sample.
PUBLISHED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426, "p": 6.25, "q": 3.74, "gamma": 15.44}
N_CUSTOMERS = 2357
STAT_COLS = ("mean", "q05", "q50", "q95")


def _run(*args: str):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result


def _text(result) -> str:
    out = result.output
    try:
        err = result.stderr
    except (ValueError, AttributeError):
        err = ""
    return out if err in out else out + err


def _ok(result):
    assert result.exit_code == 0, (_text(result), result.exception)
    return result


def _files(path) -> list[str]:
    return sorted(os.listdir(path)) if os.path.exists(path) else []


# ------------------------------------------------------------------------------------------------------------
# Successful runs
# ------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bgnbd_cdnow(tmp_path_factory):
    """`fit bgnbd --dataset cdnow --map`: the transaction log, split at the dataset's calibration end."""
    out = tmp_path_factory.mktemp("bgnbd_cdnow")
    result = _ok(_run("fit", "bgnbd", "--dataset", "cdnow", "--out", out, "--map", "--draws", "400", "-q"))
    return out, result


def test_fit_bgnbd_writes_params_customers_posterior(bgnbd_cdnow, cdnow_summary):
    out, result = bgnbd_cdnow
    assert _files(out) == ["customers.csv", "params.csv", "posterior.nc"]
    for name in ("params.csv", "customers.csv", "posterior.nc"):
        assert f"wrote {out / name}" in result.output

    params = pd.read_csv(out / "params.csv")
    assert list(params.columns) == ["parameter", "mean", "sd", "hdi_3%", "hdi_97%", "r_hat", "ess_bulk", "ess_tail"]
    assert list(params["parameter"]) == ["r", "alpha", "a", "b"]
    params = params.set_index("parameter")
    for k in ("r", "alpha", "a", "b"):
        assert params.loc[k, "hdi_3%"] < PUBLISHED[k] < params.loc[k, "hdi_97%"], k
    assert params.loc["r", "mean"] == pytest.approx(PUBLISHED["r"], rel=0.03)
    assert params.loc["alpha", "mean"] == pytest.approx(PUBLISHED["alpha"], rel=0.03)

    cust = pd.read_csv(out / "customers.csv", index_col="customer_id")
    assert len(cust) == N_CUSTOMERS and cust.index.is_unique
    np.testing.assert_array_equal(cust.index.to_numpy(), cdnow_summary.index.to_numpy())
    np.testing.assert_array_equal(cust["frequency"], cdnow_summary["frequency"])
    np.testing.assert_allclose(cust["T"], cdnow_summary["T"], atol=0.005 + 1e-9)  # shipped file: 2 decimals
    for prefix in ("p_alive", "expected_purchases", "pred_holdout"):
        for s in STAT_COLS:
            assert f"{prefix}_{s}" in cust.columns
    assert not any(c.startswith("clv") for c in cust.columns)
    assert cust["frequency_holdout"].sum() == 1882 and np.all(cust["duration_holdout"] == 39.0)
    # horizon defaults to the holdout length, so both columns estimate the same holdout purchases
    total_expected = cust["expected_purchases_mean"].sum()
    assert cust["pred_holdout_mean"].sum() == pytest.approx(total_expected, rel=0.02)
    # lifetimes 0.11.3 at the MLE: sum of E[X(39) | x, t_x, T] over the 2,357 customers = 1653.4
    assert total_expected == pytest.approx(1653.4, rel=0.03)

    from btyd_ltv.io import read_posterior

    idata = read_posterior(out / "posterior.nc")
    assert idata.attrs["model"] == "bgnbd" and idata.attrs["method"] == "map"
    assert idata.attrs["freq"] == "D" and idata.attrs["freq_multiplier"] == 7.0
    assert idata.posterior.sizes["draw"] == 400


@pytest.fixture(scope="module")
def clv_summary(tmp_path_factory, cdnow_summary):
    """`fit clv SUMMARY.csv --map` on the CDNOW summary in weeks (no holdout: horizon 52)."""
    out = tmp_path_factory.mktemp("clv_summary")
    cdnow_summary.reset_index().to_csv(out / "summary.csv", index=False)
    result = _ok(_run("fit", "clv", out / "summary.csv", "--freq", "D", "--freq-multiplier", "7", "--out", out / "fit",
                      "--map", "--draws", "300", "-q"))
    return out / "fit", result


def test_fit_with_the_shipped_summary_dataset(tmp_path):
    """`--dataset cdnow-summary` is a summary: it must fit (its calibration end describes how it was made, it is
    not a split to apply)."""
    out = tmp_path / "out"
    result = _ok(_run("fit", "bgnbd", "--dataset", "cdnow-summary", "--out", out, "--map", "--draws", "50", "-q"))
    assert _files(out) == ["customers.csv", "params.csv", "posterior.nc"]
    assert "fitting bgnbd on 2,357 customers" in _text(result)


def test_fit_clv_adds_spend_and_clv_columns(clv_summary):
    out, _ = clv_summary
    assert _files(out) == ["customers.csv", "params.csv", "posterior.nc"]
    params = pd.read_csv(out / "params.csv", index_col="parameter")
    assert list(params.index) == ["r", "alpha", "a", "b", "p", "q", "gamma"]
    for k in ("p", "q", "gamma"):
        assert params.loc[k, "hdi_3%"] < PUBLISHED[k] < params.loc[k, "hdi_97%"], k
    cust = pd.read_csv(out / "customers.csv", index_col="customer_id")
    assert len(cust) == N_CUSTOMERS
    for prefix in ("p_alive", "expected_purchases", "expected_spend", "clv"):
        for s in STAT_COLS:
            assert f"{prefix}_{s}" in cust.columns
    assert "frequency_holdout" not in cust.columns and "pred_holdout_mean" not in cust.columns
    assert np.all(cust["clv_q05"] <= cust["clv_q50"]) and np.all(cust["clv_q50"] <= cust["clv_q95"])
    assert np.all(cust["clv_mean"] > 0)


def test_summary_command_prints_and_writes_the_params_table(clv_summary, tmp_path):
    out, _ = clv_summary
    result = _ok(_run("summary", out / "posterior.nc", "--csv", tmp_path / "table.csv"))
    for k in PUBLISHED:
        assert re.search(rf"^{k}\s", result.output, flags=re.M), k
    table = pd.read_csv(tmp_path / "table.csv", index_col="parameter")
    params = pd.read_csv(out / "params.csv", index_col="parameter")
    pd.testing.assert_frame_equal(table, params, check_exact=False, rtol=1e-12)


def test_predict_command_reproduces_the_fit_predictions(clv_summary, cdnow_summary, tmp_path):
    out, _ = clv_summary
    cdnow_summary.reset_index().to_csv(tmp_path / "summary.csv", index=False)
    result = _ok(_run("predict", out / "posterior.nc", tmp_path / "summary.csv", "--out", tmp_path / "pred.csv"))
    assert f"({N_CUSTOMERS:,} customers)" in result.output
    pred = pd.read_csv(tmp_path / "pred.csv", index_col="customer_id")
    fitted = pd.read_csv(out / "customers.csv", index_col="customer_id")
    pd.testing.assert_frame_equal(pred, fitted, check_exact=False, rtol=1e-12)
    # a different horizon changes expected purchases only
    _ok(_run("predict", out / "posterior.nc", tmp_path / "summary.csv", "--out", tmp_path / "pred13.csv",
             "--horizon", "13"))
    p13 = pd.read_csv(tmp_path / "pred13.csv", index_col="customer_id")
    assert np.all(p13["expected_purchases_mean"] < pred["expected_purchases_mean"] + 1e-12)
    pd.testing.assert_series_equal(p13["clv_mean"], pred["clv_mean"], check_exact=False, rtol=1e-12)


def test_tiny_nuts_run(tmp_path, cdnow_summary):
    cdnow_summary.reset_index().to_csv(tmp_path / "summary.csv", index=False)
    out = tmp_path / "nuts"
    result = _ok(_run("fit", "gamma-gamma", tmp_path / "summary.csv", "--out", out, "--chains", "2", "--draws", "200",
                      "--tune", "200", "--seed", "5", "-q"))
    assert "NUTS 2 chains x 200 draws, seed 5" in _text(result)
    params = pd.read_csv(out / "params.csv", index_col="parameter")
    assert list(params.index) == ["p", "q", "gamma"]
    assert params[["r_hat", "ess_bulk", "ess_tail"]].notna().all().all()
    assert params.loc["q", "mean"] == pytest.approx(PUBLISHED["q"], rel=0.1)
    # diagnostics are printed as warnings exactly when they fail
    failing = (params["r_hat"] > 1.01).any() or (params[["ess_bulk", "ess_tail"]] < 400).any().any()
    assert failing == ("warning: gamma_gamma:" in _text(result))
    from btyd_ltv.io import read_posterior

    idata = read_posterior(out / "posterior.nc")
    assert idata.attrs["model"] == "gamma_gamma" and idata.attrs["method"] == "nuts"
    assert idata.posterior.sizes["chain"] == 2 and idata.posterior.sizes["draw"] == 200
    assert "sample_stats" in idata.groups()
    cust = pd.read_csv(out / "customers.csv", index_col="customer_id")
    assert len(cust) == N_CUSTOMERS
    assert [c for c in cust.columns if c.startswith("expected_spend")] == [f"expected_spend_{s}" for s in STAT_COLS]


def test_fit_passes_the_sampler_settings_and_notes_the_tree_depth_cap(tmp_path, cdnow_summary):
    """--max-tree-depth and --target-accept reach NUTS: the cap bounds every draw's leapfrog steps, the posterior
    records it, and the draws that reach it are counted in a note."""
    cdnow_summary.reset_index().to_csv(tmp_path / "summary.csv", index=False)
    out = tmp_path / "capped"
    result = _ok(_run("fit", "gamma-gamma", tmp_path / "summary.csv", "--out", out, "--chains", "1", "--draws", "60",
                      "--tune", "60", "--seed", "2", "--max-tree-depth", "1", "--target-accept", "0.95", "-q"))
    from btyd_ltv.io import read_posterior

    idata = read_posterior(out / "posterior.nc")
    steps = np.asarray(idata.sample_stats["n_steps"])
    assert idata.attrs["max_tree_depth"] == 1 and steps.max() == 1 and idata.attrs["target_accept_prob"] == 0.95
    assert f"note: gamma_gamma: {int((steps == 1).sum())} draws reached the tree-depth cap" in _text(result)


def test_datasets_command_lists_the_shipped_data():
    result = _ok(_run("datasets"))
    for name in ("cdnow", "cdnow-summary", "cdnow-master"):
        assert re.search(rf"^{name}\s", result.output, flags=re.M), name
    assert "2357" in result.output and "23570" in result.output


# ------------------------------------------------------------------------------------------------------------
# Bad input: exit 2, one paragraph "error: ...", no traceback, no output files
# ------------------------------------------------------------------------------------------------------------


def _expect_bad_input(result, *patterns: str, out=None) -> str:
    text = _text(result)
    assert result.exit_code == 2, (text, result.exception)
    assert "Traceback" not in text
    m = re.search(r"^error: .*", text, flags=re.M | re.S)
    assert m, text
    message = m.group(0).strip()
    assert "\n\n" not in message, message  # one paragraph
    for pat in patterns:
        assert re.search(pat, message), (pat, message)
    if out is not None:
        assert _files(out) == [], _files(out)
    return message


def _write(path, text: str):
    path.write_text(text)
    return path


TX_HEADER = "customer_id,date,amount\n"
GOOD_TX = "1,1997-01-01,10.0\n1,1997-02-01,12.0\n2,1997-01-05,5.0\n"


@pytest.mark.parametrize(
    "name, content, extra, patterns",
    [
        ("missing_column.csv", "customer_id,day\n1,1997-01-01\n", (), [r"missing column", r"'date'"]),
        ("nan_date.csv", TX_HEADER + "1,1997-01-01,1.0\n2,,3.0\n", (), [r"column 'date' row 1", r"missing"]),
        ("bad_date.csv", TX_HEADER + "1,1997-01-01,1.0\n2,1997-13-45,3.0\n", (),
         [r"column 'date' row 1", r"1997-13-45", r"cannot be parsed"]),
        ("negative_amount.csv", TX_HEADER + GOOD_TX + "3,1997-01-09,-5.0\n", ("--amount-col", "amount"),
         [r"column 'amount' row 3", r"-5"]),
        ("after_end.csv", TX_HEADER + GOOD_TX + "3,1997-04-09,5.0\n", ("--observation-end", "1997-03-01"),
         [r"column 'date' row 3", r"after observation_end"]),
    ],
    ids=["missing-column", "nan-date", "unparseable-date", "negative-spend", "after-observation-end"],
)
def test_bad_transaction_logs(tmp_path, name, content, extra, patterns):
    path = _write(tmp_path / name, content)
    out = tmp_path / "out"
    model = "gamma-gamma" if "amount" in name else "bgnbd"
    _expect_bad_input(_run("fit", model, path, "--out", out, "--map", *extra), *patterns, out=out)


SUMMARY_HEADER = "customer_id,frequency,recency,T,monetary_value\n"


@pytest.mark.parametrize(
    "model, rows, patterns",
    [
        ("bgnbd", "1,2,10.0,38.0,5.0\n2,1,40.0,38.0,5.0\n",
         [r"column 'recency'", r"customer_id=2", r"40\.0 > T 38\.0"]),
        ("bgnbd", "1,2,10.0,38.0,5.0\n2,0,3.0,38.0,0.0\n", [r"column 'recency'", r"customer_id=2", r"frequency 0"]),
        ("bgnbd", "1,2,10.0,38.0,5.0\n2,,3.0,38.0,0.0\n", [r"column 'frequency'", r"customer_id=2", r"missing"]),
        ("gamma-gamma", "1,2,10.0,38.0,5.0\n2,1,3.0,38.0,-5.0\n",
         [r"column 'monetary_value'", r"customer_id=2", r"-5\.0 < 0"]),
        ("clv", "1,2,10.0,38.0,5.0\n2,1,3.0,38.0,0.0\n",
         [r"column 'monetary_value'", r"customer_id=2", r"<= 0 with frequency 1"]),
    ],
    ids=["recency-gt-T", "recency-without-repeats", "nan-frequency", "negative-spend", "zero-spend-repeat-buyer"],
)
def test_bad_summaries(tmp_path, model, rows, patterns):
    path = _write(tmp_path / "summary.csv", SUMMARY_HEADER + rows)
    out = tmp_path / "out"
    _expect_bad_input(_run("fit", model, path, "--out", out, "--map"), *patterns, out=out)


def test_parquet_input_without_a_parquet_engine(tmp_path):
    for engine in ("pyarrow", "fastparquet"):
        try:
            __import__(engine)
            pytest.skip(f"{engine} is installed")
        except ImportError:
            pass
    path = tmp_path / "tx.parquet"
    path.write_bytes(b"PAR1 whatever")
    out = tmp_path / "out"
    _expect_bad_input(_run("fit", "bgnbd", path, "--out", out, "--map"), r"(?i)parquet", out=out)


def test_missing_input_file(tmp_path):
    out = tmp_path / "out"
    _expect_bad_input(_run("fit", "bgnbd", tmp_path / "nope.csv", "--out", out, "--map"),
                      r"nope\.csv", r"does not exist", out=out)


def test_neither_or_both_inputs(tmp_path):
    out = tmp_path / "out"
    _expect_bad_input(_run("fit", "bgnbd", "--out", out, "--map"), r"exactly one", r"--dataset", out=out)
    path = _write(tmp_path / "tx.csv", TX_HEADER + GOOD_TX)
    _expect_bad_input(_run("fit", "bgnbd", path, "--dataset", "cdnow", "--out", out, "--map"), r"exactly one",
                      out=out)


def test_unknown_dataset(tmp_path):
    out = tmp_path / "out"
    _expect_bad_input(_run("fit", "bgnbd", "--dataset", "cdnow2", "--out", out, "--map"),
                      r"unknown dataset 'cdnow2'", r"cdnow-summary", out=out)


def test_clv_without_spend(tmp_path):
    path = _write(tmp_path / "tx.csv", TX_HEADER + GOOD_TX)
    out = tmp_path / "out"
    _expect_bad_input(_run("fit", "clv", path, "--out", out, "--map"), r"monetary_value", r"--amount-col", out=out)


def test_predict_with_a_non_netcdf_posterior(tmp_path, cdnow_summary):
    fake = _write(tmp_path / "posterior.nc", "this is not NetCDF\n")
    cdnow_summary.reset_index().to_csv(tmp_path / "summary.csv", index=False)
    _expect_bad_input(_run("predict", fake, tmp_path / "summary.csv", "--out", tmp_path / "pred.csv"),
                      r"posterior\.nc", r"not an ArviZ NetCDF file")
    assert _files(tmp_path) == ["posterior.nc", "summary.csv"]
    _expect_bad_input(_run("summary", tmp_path / "missing.nc"), r"does not exist")


def test_predict_with_a_bad_summary(clv_summary, tmp_path):
    out, _ = clv_summary
    _write(tmp_path / "s.csv", SUMMARY_HEADER + "7,1,50.0,38.0,3.0\n")
    _expect_bad_input(_run("predict", out / "posterior.nc", tmp_path / "s.csv", "--out", tmp_path / "pred.csv"),
                      r"column 'recency'", r"customer_id=7")
    assert _files(tmp_path) == ["s.csv"]


def test_curves_backtest_with_learned_baselines(tmp_path, monkeypatch):
    pytest.importorskip("lightgbm")
    pytest.importorskip("flax")
    out = tmp_path / "bt"
    res = _ok(_run("curves", "backtest", "--dataset", "cdnow-weekly", "--ks", "8", "--checkpoints", "13",
                   "--max-cutoffs", "2", "--no-model", "--baselines", "multiplier,mlp,lightgbm", "--out", out))
    scores = pd.read_csv(out / "backtest.csv")
    assert scores["model"].tolist() == ["multiplier", "mlp", "lightgbm"]
    assert np.isfinite(scores["median_ape"]).all() and (scores["median_ape"] < 0.2).all()
    rows = pd.read_csv(out / "backtest_rows.csv")
    assert (rows["forecast"] >= rows["observed"] - 1e-9).all()
    assert "| mlp | 8 | 13 |" in res.output
    # Learned models alone are added to the four classical baselines.
    _ok(_run("curves", "backtest", "--dataset", "cdnow-weekly", "--ks", "8", "--checkpoints", "13",
             "--max-cutoffs", "2", "--no-model", "--baselines", "lightgbm", "--out", tmp_path / "bt2"))
    assert pd.read_csv(tmp_path / "bt2" / "backtest.csv")["model"].tolist() == [
        "multiplier", "chain_ladder", "regression", "power_law", "lightgbm"]
    bad = tmp_path / "bad"
    _expect_bad_input(_run("curves", "backtest", "--dataset", "cdnow-weekly", "--no-model", "--baselines",
                           "mlp,xgboost", "--out", bad), r"unknown baseline 'xgboost'",
                      r"multiplier, chain_ladder, regression, power_law, mlp, tide, lightgbm", out=bad)
    from btyd_ltv.adapters import _extras, curve_gbdt

    def missing(module: str, extra: str = "deep"):
        raise _extras.MissingExtraError(f"this baseline needs {module!r}; install the extra btyd_ltv[{extra}]")

    monkeypatch.setattr(curve_gbdt, "require", missing)
    _expect_bad_input(_run("curves", "backtest", "--dataset", "cdnow-weekly", "--no-model", "--baselines",
                           "lightgbm", "--out", bad), r"lightgbm", r"\[deep\]", out=bad)


def test_curves_backtest_passes_the_sampler_settings(tmp_path, monkeypatch):
    """--target-accept, --max-tree-depth and the chain settings reach the Bayesian curves' fit options (the fit
    itself is replaced by the multiplier here: its cost is not what this checks)."""
    from btyd_ltv import backtest as bt
    from btyd_ltv import cohort_workflow

    seen = {}

    def forecaster(columns, settings):
        seen["options"] = settings.options
        return bt.multiplier(columns=columns)

    monkeypatch.setattr(cohort_workflow, "curve_forecaster", forecaster)
    out = tmp_path / "bt"
    _ok(_run("curves", "backtest", "--dataset", "cdnow-weekly", "--ks", "8", "--checkpoints", "13", "--max-cutoffs",
             "1", "--baselines", "multiplier", "--chains", "3", "--draws", "50", "--tune", "70", "--seed", "4",
             "--target-accept", "0.85", "--max-tree-depth", "5", "--out", out))
    opts = seen["options"]
    assert (opts.num_chains, opts.num_samples, opts.num_warmup, opts.seed) == (3, 50, 70, 4)
    assert (opts.target_accept_prob, opts.max_tree_depth) == (0.85, 5)
    assert pd.read_csv(out / "backtest.csv")["model"].tolist() == ["multiplier", "bayes"]


def test_curves_backtest_by_history_length(tmp_path):
    """--history-bins scores the forecasts again by the oldest age in the history at the cutoff; the slices add
    up to the whole, and bad number lists exit 2 naming the option."""
    out = tmp_path / "bt"
    res = _ok(_run("curves", "backtest", "--dataset", "cdnow-weekly", "--ks", "4", "--checkpoints", "13,26",
                   "--no-model", "--baselines", "power_law", "--min-mature", "0", "--history-bins", "7,13",
                   "--max-cutoffs", "13", "--out", out))
    rows = pd.read_csv(out / "backtest_rows.csv")
    # CDNOW's first cohort is acquired in calendar week 0, so the oldest age in each history is the cutoff
    np.testing.assert_array_equal(rows["oldest_age"], rows["cutoff"])
    by = pd.read_csv(out / "backtest_by_history.csv", dtype={"history": str})
    assert by["history"].tolist() == ["4-6", "4-6", "7-12", "7-12", "13-16", "13-16"]
    whole = pd.read_csv(out / "backtest.csv").set_index("checkpoint")
    assert (by.groupby("checkpoint")["n_cohorts"].sum() == whole["n_cohorts"]).all()
    first = rows[rows["cutoff"] <= 6]  # the first bin recomputed from the rows: install-weighted bias
    for h, g in first.groupby("checkpoint"):
        bias = (g["installs"] * (g["forecast"] - g["actual"])).sum() / (g["installs"] * g["actual"]).sum()
        assert by[(by["history"] == "4-6") & (by["checkpoint"] == h)]["bias"].item() == pytest.approx(bias)
    assert "by the oldest age in the history at the cutoff" in res.output
    bad = tmp_path / "bad"
    _expect_bad_input(_run("curves", "backtest", "--dataset", "cdnow-weekly", "--no-model", "--history-bins",
                           "7,x", "--out", bad), r"--history-bins: 'x' is not a whole number", out=bad)
    _expect_bad_input(_run("curves", "backtest", "--dataset", "cdnow-weekly", "--no-model", "--ks", "4,eight",
                           "--out", bad), r"--ks: 'eight' is not a whole number", out=bad)
    _expect_bad_input(_run("curves", "backtest", "--dataset", "cdnow-weekly", "--no-model", "--ks", "4",
                           "--checkpoints", "13", "--history-bins", "13,7", "--out", bad),
                      r"history bin edges must be strictly increasing", out=bad)
