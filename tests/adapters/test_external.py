"""ExternalPredictions / ExternalCurves: a user's own predictions enter the comparison, and every bad file is
rejected with the file, the column and the first bad row named."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from btyd_ltv.adapters import CustomerData, CustomerModel
from btyd_ltv.adapters.external import ExternalCurves, ExternalPredictions
from btyd_ltv.backtest import rolling_origin
from btyd_ltv.data.cohorts import CohortColumns
from btyd_ltv.errors import DataValidationError


@pytest.fixture()
def data() -> CustomerData:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0.0, 5.0, 9.0]},
                         index=pd.Index(["a", "b", "c"], name="customer_id"))
    return CustomerData(frame, target="y", numeric=("x",))


def _file(tmp_path, table: pd.DataFrame, name: str = "preds.csv"):
    path = tmp_path / name
    table.to_csv(path, index=False)
    return path


def test_external_predictions_aligned_to_evaluation_order(tmp_path, data):
    table = pd.DataFrame({"customer_id": ["c", "a", "b", "zz"], "prediction": [3.0, 1.0, 2.0, 7.0],
                          "p_positive": [0.9, 0.1, 0.5, 0.2], "q05": [0.0, 0.0, 0.0, 0.0],
                          "q95": [8.0, 2.0, 6.0, 9.0]})
    model = ExternalPredictions(_file(tmp_path, table), name="mine")
    assert isinstance(model, CustomerModel)
    pred = model.fit(data).predict(data)
    np.testing.assert_array_equal(pred.mean, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(pred.p_positive, [0.1, 0.5, 0.9])
    assert sorted(pred.quantiles) == [0.05, 0.95]
    np.testing.assert_array_equal(pred.quantiles[0.95], [2.0, 6.0, 8.0])


@pytest.mark.parametrize("table, message", [
    (pd.DataFrame({"customer_id": ["a", "b"], "prediction": [1.0, 2.0]}), "1 evaluation ids have no prediction, first 'c'"),
    (pd.DataFrame({"customer_id": ["a", "b", "c", "b"], "prediction": [1.0, 2.0, 3.0, 4.0]}), "id 'b' is duplicated (row 3)"),
    (pd.DataFrame({"customer_id": ["a", "b", "c"], "prediction": [1.0, np.nan, 3.0]}), "column 'prediction': missing, non-numeric or infinite value at row 1"),
    (pd.DataFrame({"customer_id": ["a", "b", "c"], "prediction": [1.0, 2.0, -3.0]}), "column 'prediction': negative value -3 at row 2"),
    (pd.DataFrame({"customer_id": ["a", "b", "c"], "estimate": [1.0, 2.0, 3.0]}), "column 'prediction' not found"),
    (pd.DataFrame({"customer_id": ["a", "b", "c"], "prediction": [1.0, 2.0, 3.0], "p_positive": [0.5, 1.5, 0.2]}), "column 'p_positive': 1.5 > 1 at row 1"),
])
def test_external_predictions_reject_bad_files(tmp_path, data, table, message):
    path = _file(tmp_path, table, "bad.csv")
    with pytest.raises(DataValidationError) as err:
        ExternalPredictions(path).predict(data)
    assert str(path) in str(err.value)
    assert message in str(err.value)


def test_external_predictions_missing_file(tmp_path):
    with pytest.raises(DataValidationError, match="does not exist"):
        ExternalPredictions(tmp_path / "nope.csv")


def _cohort_table() -> pd.DataFrame:
    rows = []
    for c, acq in (("w0", 0), ("w1", 1), ("w2", 2)):
        for age in range(0, 6 - acq):
            rows.append({"cohort": c, "age": age, "installs": 100, "revenue": 10.0 / (1 + age),
                         "acquired": acq})
    return pd.DataFrame(rows)


def test_external_curves_as_backtest_forecaster(tmp_path):
    table = _cohort_table()
    # The forecast of every (cohort, age) made when the cohort's last observed age was k: here the true
    # cumulative revenue per install, so the backtest must score it as exact.
    truth = table.assign(ltv=table.groupby("cohort")["revenue"].cumsum() / table["installs"])
    rows = [{"cohort": c, "age": a, "k": k, "prediction": v}
            for c, g in truth.groupby("cohort") for k in range(6) for a, v in zip(g["age"], g["ltv"])]
    path = _file(tmp_path, pd.DataFrame(rows), "curves.csv")
    res = rolling_origin(table, {"mine": ExternalCurves(path)}, ks=[1], checkpoints=[3], acquired="acquired",
                         period="W")
    assert len(res.rows) > 0
    np.testing.assert_allclose(res.rows["forecast"], res.rows["actual"])


def test_external_curves_missing_and_bad_rows(tmp_path):
    bad = pd.DataFrame({"cohort": ["w0", "w0"], "age": [1, 1], "prediction": [1.0, 2.0]})
    with pytest.raises(DataValidationError, match=r"\(cohort, age\) = \('w0', 1\) is duplicated \(row 1\)"):
        ExternalCurves(bad)
    neg = pd.DataFrame({"cohort": ["w0", "w0"], "age": [1, 2], "prediction": [1.0, -2.0]})
    with pytest.raises(DataValidationError, match="column 'prediction': value -2.0 at row 1"):
        ExternalCurves(neg)
    ok = ExternalCurves(pd.DataFrame({"cohort": ["w0"], "age": [1], "prediction": [1.0]}),
                        columns=CohortColumns())
    with pytest.raises(DataValidationError, match="no prediction for cohort 'w0' at age 3"):
        ok(_cohort_table(), ["w0"], [3])
