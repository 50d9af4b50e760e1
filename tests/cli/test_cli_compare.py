"""`btyd-ltv compare`: end to end on CDNOW with our model, baselines and outside predictions; bad input exits 2."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from btyd_ltv.cli.app import app
from btyd_ltv.compare import comparison_data


def _run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def outside(tmp_path_factory):
    """Outside predictions for every CDNOW customer: 10 x spend in the first 4 weeks."""
    d = comparison_data("cdnow")
    path = tmp_path_factory.mktemp("ext") / "mine.csv"
    pd.DataFrame({"customer_id": d.ids, "prediction": 10 * d.frame["spend_k"]}).to_csv(path, index=False)
    return path


def test_compare_cdnow_end_to_end(outside, tmp_path):
    out = tmp_path / "cmp"
    res = _run("compare", "--dataset", "cdnow", "--customers", "2000", "--models", "bgnbd_gg,linear,gbdt_two_stage",
               "--external", f"mine={outside}", "--chains", "1", "--warmup", "150", "--draws", "150",
               "--seed", "3", "--out", out)
    assert res.exit_code == 0, res.output
    metrics = pd.read_csv(out / "metrics.csv", index_col=0)
    assert list(metrics.index) == ["bgnbd_gg", "linear", "gbdt_two_stage", "mine"]
    assert (metrics["n"] == 600).all()
    assert (metrics["gini"] > 0.2).all()
    assert np.isfinite(metrics.loc["bgnbd_gg", "crps"]) and np.isnan(metrics.loc["linear", "crps"])
    split = pd.read_csv(out / "split.csv")
    assert split["split"].value_counts().to_dict() == {"train": 1000, "test": 600, "valid": 400}
    for name in ("metrics.md", "predictions.csv", "deciles.png", "lorenz.png", "calibration.png",
                 "ppc_bgnbd_gg.png"):
        assert (out / name).stat().st_size > 0
    assert "600 test customers" in res.output


@pytest.mark.parametrize("args, message", [
    (["--dataset", "cdnow", "--models", "xgb"], "unknown model 'xgb'"),
    (["--models", "linear"], "give exactly one of --dataset NAME or --data FILE"),
    (["--dataset", "nope", "--models", "linear"], "unknown comparison data set 'nope'"),
])
def test_compare_bad_options_exit_2(tmp_path, args, message):
    res = _run("compare", *args, "--out", tmp_path / "o")
    assert res.exit_code == 2 and message in res.output
    assert "Traceback" not in res.output and not (tmp_path / "o").exists()


def test_compare_bad_external_file_exit_2(outside, tmp_path):
    bad = pd.read_csv(outside).iloc[:-1]  # the last customer has no prediction
    bad.loc[5, "prediction"] = np.nan
    bad.to_csv(tmp_path / "bad.csv", index=False)
    res = _run("compare", "--dataset", "cdnow", "--customers", "800", "--models", "linear", "--external",
               f"bad={tmp_path / 'bad.csv'}", "--out", tmp_path / "o")
    assert res.exit_code == 2, res.output
    assert "bad.csv" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "o").exists()


def test_compare_user_table(tmp_path):
    rng = np.random.default_rng(0)
    n = 600
    x = rng.normal(size=n)
    table = pd.DataFrame({"customer_id": [f"u{i}" for i in range(n)], "x": x,
                          "y": np.where(rng.random(n) < 1 / (1 + np.exp(-2 * x)), np.exp(1 + x), 0.0)})
    table.to_csv(tmp_path / "t.csv", index=False)
    res = _run("compare", "--data", tmp_path / "t.csv", "--target", "y", "--features", "x", "--models", "linear",
               "--out", tmp_path / "o")
    assert res.exit_code == 0, res.output
    assert pd.read_csv(tmp_path / "o" / "metrics.csv", index_col=0).loc["linear", "gini"] > 0.5
    table.loc[3, "y"] = -1.0
    table.to_csv(tmp_path / "t.csv", index=False)
    res = _run("compare", "--data", tmp_path / "t.csv", "--target", "y", "--features", "x", "--models", "linear",
               "--out", tmp_path / "o2")
    assert res.exit_code == 2 and "target column 'y': value -1.0 for customer 'u3' (row 3)" in res.output


def test_compare_config_file(tmp_path):
    rng = np.random.default_rng(1)
    n = 400
    x = rng.normal(size=n)
    pd.DataFrame({"customer_id": [f"u{i}" for i in range(n)], "x": x, "y": np.exp(1 + x)}).to_csv(
        tmp_path / "t.csv", index=False)
    args = ["compare", "--data", tmp_path / "t.csv", "--target", "y", "--features", "x", "--models", "linear"]
    (tmp_path / "ok.json").write_text('{"linear": {"alpha": 0.0, "target_transform": "log1p"}}')
    res = _run(*args, "--config", tmp_path / "ok.json", "--out", tmp_path / "o")
    assert res.exit_code == 0, res.output
    # the file's settings reached the model: same predictions as the library with those settings
    from btyd_ltv.adapters import CustomerData
    from btyd_ltv.compare import build_models, compare, split_customers

    table = pd.read_csv(tmp_path / "t.csv").set_index("customer_id")
    data = CustomerData(table, target="y", numeric=("x",))
    ref = compare(data, build_models(["linear"], overrides={"linear": {"alpha": 0.0, "target_transform": "log1p"}}),
                  split=split_customers(data.ids, seed=0))
    got = pd.read_csv(tmp_path / "o" / "predictions.csv", index_col=0)["linear:prediction"]
    np.testing.assert_allclose(got.to_numpy(), ref.results["linear"].prediction.mean, rtol=1e-12)
    default = compare(data, build_models(["linear"]), split=split_customers(data.ids, seed=0))
    assert not np.allclose(got.to_numpy(), default.results["linear"].prediction.mean)
    (tmp_path / "bad.json").write_text('{"linear": {"depth": 3}}')
    res = _run(*args, "--config", tmp_path / "bad.json", "--out", tmp_path / "o2")
    assert res.exit_code == 2 and "model 'linear' has no setting 'depth'" in res.output
    (tmp_path / "broken.json").write_text('{"linear": ')
    res = _run(*args, "--config", tmp_path / "broken.json", "--out", tmp_path / "o3")
    assert res.exit_code == 2 and "not a readable JSON object" in res.output
    assert not (tmp_path / "o2").exists() and not (tmp_path / "o3").exists()
