"""Prediction files from elsewhere: alignment to the evaluation ids and errors naming file, column and row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from btyd_ltv.data.predictions import align_predictions, quantile_columns
from btyd_ltv.errors import DataValidationError


def test_aligns_to_evaluation_order_and_keeps_distribution_columns():
    table = pd.DataFrame({"customer_id": [3, 1, 2, 9], "prediction": [3.0, 1.0, 2.0, 9.0],
                          "p_positive": [0.3, 0.1, 0.2, 0.9], "q05": [0, 0, 0, 1.0], "q97.5": [9, 3, 6, 20.0],
                          "other": ["a", "b", "c", "d"]})
    out = align_predictions(table, [1, 2, 3], source="m.csv")
    assert list(out.index) == ["1", "2", "3"]
    assert list(out.columns) == ["prediction", "p_positive", "q05", "q97.5"]
    np.testing.assert_array_equal(out["prediction"], [1.0, 2.0, 3.0])
    assert quantile_columns(out.columns) == {"q05": 0.05, "q97.5": 0.975}


@pytest.mark.parametrize(
    "table, match",
    [
        (pd.DataFrame({"customer_id": [1, 1, 2], "prediction": [1.0, 1, 1]}), r"m.csv: column 'customer_id': id 1 is duplicated \(row 1\)"),
        (pd.DataFrame({"customer_id": [1, 3], "prediction": [1.0, 1]}), r"m.csv: column 'customer_id': 1 evaluation ids have no prediction, first '2'"),
        (pd.DataFrame({"customer_id": [1, 2], "prediction": [1.0, np.nan]}), r"m.csv: column 'prediction': missing, non-numeric or infinite value at row 1 \(id 2\)"),
        (pd.DataFrame({"customer_id": [1, 2], "prediction": [-1.0, 1]}), r"m.csv: column 'prediction': negative value -1 at row 0 \(id 1\)"),
        (pd.DataFrame({"customer_id": [1, 2], "prediction": [1.0, 1], "p_positive": [0.5, 1.5]}), r"'p_positive': 1.5 > 1 at row 1"),
        (pd.DataFrame({"customer_id": [1, 2], "pred": [1.0, 1]}), r"m.csv: column 'prediction' not found"),
    ],
)
def test_bad_predictions_name_file_column_and_row(table, match):
    with pytest.raises(DataValidationError, match=match):
        align_predictions(table, [1, 2], source="m.csv")
