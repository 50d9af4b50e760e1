"""``btyd-ltv fit ziln``, ``predict`` with a ZILN posterior, and ``btyd-ltv score``: files, numbers, errors."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from btyd_ltv.cli import app
from btyd_ltv.data.simulate import simulate_ziln
from btyd_ltv.metrics import report


def _run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def customers_csv(tmp_path_factory):
    table, _ = simulate_ziln(1500, coef_p=(1.0, -0.5), coef_loc=(0.5, 0.2), n_groups=5, group_sd_p=0.5,
                             group_sd_loc=0.5, seed=21)
    table["channel"] = np.where(table["x1"] > 0.5, "ads", "organic")
    table.insert(0, "customer_id", [f"u{i:05d}" for i in range(len(table))])
    path = tmp_path_factory.mktemp("ziln") / "customers.csv"
    table.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def ziln_fit(customers_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("ziln_out")
    res = _run("fit", "ziln", customers_csv, "--target", "y", "--features", "x0,x1,channel", "--group", "group",
               "--chains", 2, "--draws", 200, "--tune", 200, "--seed", 5, "--out", out, "-q")
    assert res.exit_code == 0, res.output
    return out, res


def test_fit_ziln_writes_outputs(ziln_fit, customers_csv):
    out, res = ziln_fit
    for name in ("params.csv", "customers.csv", "totals.csv", "posterior.nc"):
        assert (out / name).exists(), name
    params = pd.read_csv(out / "params.csv", index_col=0)
    assert {"coef_p[x0]", "coef_loc[channel[organic]]", "group_sd_p", "group_sd_loc"} <= set(params.index)
    cust = pd.read_csv(out / "customers.csv")
    truth = pd.read_csv(customers_csv)
    assert list(cust["customer_id"]) == list(truth["customer_id"])
    np.testing.assert_allclose(cust["y"], truth["y"])
    q = cust[["q05", "q10", "q25", "q50", "q75", "q90", "q95"]].to_numpy()
    assert np.all(np.diff(q, axis=1) >= -1e-9)
    assert cust["p_positive"].between(0, 1).all()
    # in-sample calibration: predicted and actual share of buyers agree within sampling error
    assert cust["p_positive"].mean() == pytest.approx((truth["y"] > 0).mean(), abs=0.03)
    totals = pd.read_csv(out / "totals.csv", index_col=0)
    assert totals.loc["predictive", "q05"] <= totals.loc["predictive", "actual"] <= totals.loc["predictive", "q95"]


def test_predict_with_a_ziln_posterior_reproduces_the_fit(ziln_fit, customers_csv, tmp_path):
    out, _ = ziln_fit
    res = _run("predict", out / "posterior.nc", customers_csv, "--out", tmp_path / "pred.csv", "--seed", 5)
    assert res.exit_code == 0, res.output
    pred = pd.read_csv(tmp_path / "pred.csv")
    fitted = pd.read_csv(out / "customers.csv")
    np.testing.assert_allclose(pred["prediction"], fitted["prediction"], rtol=1e-10)
    np.testing.assert_allclose(pred["q90"], fitted["q90"], rtol=1e-8)


def test_score_writes_csv_and_markdown_equal_to_report(ziln_fit, customers_csv, tmp_path):
    out, _ = ziln_fit
    truth = pd.read_csv(customers_csv)
    naive = pd.DataFrame({"customer_id": truth["customer_id"], "prediction": truth["y"].mean()})
    naive.to_csv(tmp_path / "naive.csv", index=False)
    res = _run("score", customers_csv, f"ziln={out / 'customers.csv'}", tmp_path / "naive.csv", "--target", "y",
               "--out", tmp_path / "scores")
    assert res.exit_code == 0, res.output
    scores = pd.read_csv(tmp_path / "scores" / "scores.csv", index_col=0)
    assert list(scores.index) == ["ziln", "naive"]
    fitted = pd.read_csv(out / "customers.csv")
    ref = report(truth["y"].to_numpy(), {"ziln": fitted.drop(columns=["customer_id", "y"]),
                                          "naive": naive["prediction"].to_numpy()})
    np.testing.assert_allclose(scores["gini"], ref["gini"], rtol=1e-12)
    np.testing.assert_allclose(scores["coverage_80"].iloc[:1], ref["coverage_80"].iloc[:1], rtol=1e-12)
    assert np.isnan(scores.loc["naive", "coverage_80"])
    assert scores.loc["ziln", "gini"] > 0.3 > abs(scores.loc["naive", "gini"])
    md = (tmp_path / "scores" / "scores.md").read_text()
    assert md.count("\n| ziln") == 1 and md.count("\n| naive") == 1


@pytest.mark.parametrize(
    "args, pattern",
    [
        (["--target", "nope", "--features", "x0"], "column(s) 'nope' not found"),
        (["--target", "y"], "needs --target COL and --features"),
        (["--target", "y", "--features", "x0,x0"], "features listed twice"),
        (["--target", "x1", "--features", "x0"], "target 'x1': negative value"),
    ],
)
def test_fit_ziln_bad_input_exits_2(customers_csv, tmp_path, args, pattern):
    res = _run("fit", "ziln", customers_csv, *args, "--map", "--out", tmp_path)
    assert res.exit_code == 2
    assert pattern in res.output and "Traceback" not in res.output
    assert not list(tmp_path.iterdir())


def test_score_bad_predictions_exit_2(customers_csv, tmp_path):
    truth = pd.read_csv(customers_csv)
    bad = pd.DataFrame({"customer_id": truth["customer_id"], "prediction": 1.0})
    bad.loc[7, "prediction"] = -2.0
    bad.to_csv(tmp_path / "bad.csv", index=False)
    res = _run("score", customers_csv, tmp_path / "bad.csv", "--target", "y", "--out", tmp_path / "s")
    assert res.exit_code == 2
    assert "bad.csv: column 'prediction': negative value -2 at row 7 (id 'u00007')" in res.output
    assert not (tmp_path / "s").exists()
    res = _run("score", customers_csv, tmp_path / "bad.csv", "--target", "y", "--out", tmp_path / "s",
               "--levels", "1.5")
    assert res.exit_code == 2 and "--levels" in res.output


def test_fit_ziln_on_a_builtin_log_builds_features_and_holdout_target(tmp_path):
    res = _run("fit", "ziln", "--dataset", "cdnow", "--map", "--draws", 200, "--out", tmp_path)
    assert res.exit_code == 0, res.output
    cust = pd.read_csv(tmp_path / "customers.csv")
    assert len(cust) == 2357
    from btyd_ltv.data.datasets import load_dataset

    log = load_dataset("cdnow")
    actual = log.loc[(log["date"] > "1997-09-30") & (log["date"] <= "1998-06-30"), "amount"].sum()
    assert cust["holdout_spend"].sum() == pytest.approx(actual)
    params = pd.read_csv(tmp_path / "params.csv", index_col=0)
    assert "coef_loc[calibration_spend]" in params.index
    res = _run("fit", "ziln", "--dataset", "cdnow-summary", "--map", "--out", tmp_path / "x")
    assert res.exit_code == 2 and "needs a transaction log" in res.output


@pytest.mark.parametrize("model", ["bgnbd", "ziln"])
def test_cohort_dataset_is_refused_by_customer_models(model, tmp_path):
    res = _run("fit", model, "--dataset", "cdnow-weekly", "--map", "--out", tmp_path)
    assert res.exit_code == 2
    assert "'cdnow-weekly' is a cohort table" in res.output and "Traceback" not in res.output
