"""Property-based checks (hypothesis): invariants that must hold for any input, not just CDNOW."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from btyd_ltv.data.compress import compress_rfm
from btyd_ltv.data.transactions import summary_from_transactions
from btyd_ltv.models import bgnbd

transactions = st.lists(
    st.tuples(st.integers(1, 6), st.integers(0, 120), st.floats(0.01, 500.0)), min_size=1, max_size=60
)


def _log(rows) -> pd.DataFrame:
    ids, days, amounts = zip(*rows)
    return pd.DataFrame(
        {"customer_id": ids, "date": pd.Timestamp("2024-01-01") + pd.to_timedelta(days, unit="D"), "amount": amounts}
    )


@settings(max_examples=60, deadline=None)
@given(transactions)
def test_summary_invariants(rows):
    log = _log(rows)
    s = summary_from_transactions(log, "customer_id", "date", "amount")
    days_per_customer = log.assign(day=log["date"].dt.normalize()).groupby("customer_id")["day"].nunique()
    assert (s["frequency"] == days_per_customer.loc[s.index] - 1).all()
    assert ((0 <= s["recency"]) & (s["recency"] <= s["T"])).all()
    assert ((s["frequency"] > 0) | (s["recency"] == 0)).all()
    assert ((s["frequency"] > 0) == (s["monetary_value"] > 0)).all()


@settings(max_examples=40, deadline=None)
@given(transactions, st.floats(0.05, 3.0), st.floats(0.5, 30.0), st.floats(0.1, 4.0), st.floats(0.2, 8.0))
def test_compression_preserves_the_likelihood(rows, r, alpha, a, b):
    s = summary_from_transactions(_log(rows), "customer_id", "date")
    rfm = compress_rfm(s)
    per_customer = np.asarray(
        bgnbd.log_likelihood_rows(r, alpha, a, b, s["frequency"], s["recency"], s["T"])
    ).sum()
    compressed = float(bgnbd.log_likelihood(r, alpha, a, b, bgnbd.make_data_from_compressed(rfm)))
    np.testing.assert_allclose(compressed, per_customer, rtol=1e-10)
    np.testing.assert_array_equal(rfm.expand(rfm.frequency), s["frequency"].to_numpy())
    assert rfm.weights.sum() == len(s)
