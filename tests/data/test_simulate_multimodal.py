"""The multimodal generator: shapes, reproducibility, zero-inflated heavy-tailed revenue, consistent sequences
and aggregates, and a revenue signal that lives in the temporal pattern the aggregates miss."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from btyd_ltv.data.simulate import MULTIMODAL_CHANNELS, _streaks, simulate_multimodal
from btyd_ltv.errors import DataValidationError


@pytest.fixture(scope="module")
def sample():
    return simulate_multimodal(20_000, seed=11)


def test_shapes_and_layout(sample):
    n, L = 20_000, 30
    frame, seq, mask = sample.frame, sample.sequences, sample.sequence_mask
    assert frame.shape[0] == n and frame.index.name == "customer_id" and frame.index.is_unique
    assert seq.shape == (n, L, len(MULTIMODAL_CHANNELS)) and seq.dtype == np.float32
    assert mask.shape == (n, L) and mask.dtype == bool
    assert sample.sequence_names == MULTIMODAL_CHANNELS
    for col in (*sample.numeric, *sample.categorical, "revenue", "expected_revenue"):
        assert col in frame
    assert set(sample.log1p) <= set(sample.numeric)
    assert "expected_revenue" not in sample.numeric and "revenue" not in sample.numeric
    # right-aligned: the real days are the last min(age, L) days; padded days are all zero
    np.testing.assert_array_equal(mask.sum(axis=1), np.minimum(frame["account_age_days"], L))
    assert mask[:, -1].all()
    assert (seq[~mask] == 0).all()
    assert 0.1 < (~mask.all(axis=1)).mean() < 0.3  # new accounts (default new_share 0.2)
    assert np.isfinite(frame.select_dtypes("number").to_numpy()).all() and np.isfinite(seq).all()


def test_seeded_reproducibility():
    a, b, c = (simulate_multimodal(500, seq_len=14, seed=s) for s in (3, 3, 4))
    pd.testing.assert_frame_equal(a.frame, b.frame)
    np.testing.assert_array_equal(a.sequences, b.sequences)
    np.testing.assert_array_equal(a.sequence_mask, b.sequence_mask)
    assert not np.array_equal(a.sequences, c.sequences)
    assert a.sequences.shape == (500, 14, 5)


def test_zero_inflated_heavy_tailed_revenue(sample):
    y = sample.frame["revenue"].to_numpy()
    er = sample.frame["expected_revenue"].to_numpy()
    assert 0.55 < (y == 0).mean() < 0.8
    top = np.sort(y)[::-1]
    assert top[: len(y) // 100].sum() / y.sum() > 0.2  # the top 1 % hold over a fifth of the revenue
    pos = y[y > 0]
    assert np.log(pos).std() > 1.1  # log-normal amounts with sd 1.1, plus customer heterogeneity
    assert np.quantile(pos, 0.99) / np.median(pos) > 15  # about 21
    # expected_revenue is the mean of the revenue draw: equal averages within 4 standard errors
    assert abs(y.mean() - er.mean()) < 4 * y.std() / np.sqrt(len(y))
    # and it ranks the realised revenue far better than chance
    assert np.corrcoef(pd.Series(y).rank(), pd.Series(er).rank())[0, 1] > 0.5


def test_sequences_agree_with_aggregates(sample):
    frame, seq, mask = sample.frame, sample.sequences, sample.sequence_mask
    ch = {c: seq[..., j].astype(np.float64) for j, c in enumerate(sample.sequence_names)}
    active = ch["session_length"] > 0
    np.testing.assert_array_equal(active, ch["launches"] > 0)
    np.testing.assert_array_equal(active.sum(axis=1), frame["active_days"])
    np.testing.assert_allclose(ch["launches"].sum(axis=1), frame["total_sessions"])
    np.testing.assert_allclose(ch["views"].sum(axis=1), frame["total_views"])
    np.testing.assert_allclose(ch["session_length"].sum(axis=1), frame["total_session_minutes"], rtol=1e-5)
    np.testing.assert_allclose(ch["streak"].max(axis=1), frame["max_streak"])
    np.testing.assert_allclose(frame["active_share"], active.sum(axis=1) / mask.sum(axis=1))
    comp = ch["completion_ratio"]
    assert ((comp >= 0) & (comp <= 1)).all() and (comp[active] > 0).all() and (comp[~active] == 0).all()


def test_streaks_match_a_loop():
    rng = np.random.default_rng(0)
    active = rng.random((50, 20)) < 0.6
    expected = np.zeros(active.shape, int)
    for i in range(active.shape[0]):
        run = 0
        for t in range(active.shape[1]):
            run = run + 1 if active[i, t] else 0
            expected[i, t] = run
    np.testing.assert_array_equal(_streaks(active), expected)


def _tabular_design(sample) -> np.ndarray:
    frame = sample.frame
    cols = [np.ones(len(frame))]
    for c in sample.numeric:
        v = frame[c].to_numpy(dtype=np.float64)
        cols.append(np.log1p(v) if c in sample.log1p else v)
    dummies = pd.get_dummies(frame[list(sample.categorical)], drop_first=True).to_numpy(dtype=np.float64)
    return np.column_stack([*cols, dummies])


def _temporal_signal(sample) -> tuple[np.ndarray, float]:
    """Partial correlation of log expected revenue with a sequence-only statistic (activity of the last week
    minus the account's window average) given the tabular aggregates (OLS residual), and the R^2 of the
    aggregates alone."""
    log_er = np.log(sample.frame["expected_revenue"].to_numpy())
    X = _tabular_design(sample)
    resid = log_er - X @ np.linalg.lstsq(X, log_er, rcond=None)[0]
    active = sample.sequences[..., 0] > 0
    recent = active[:, -7:].mean(axis=1) - active.sum(axis=1) / sample.sequence_mask.sum(axis=1)
    recent_resid = recent - X @ np.linalg.lstsq(X, recent, rcond=None)[0]
    return np.corrcoef(resid, recent_resid)[0, 1], 1.0 - resid.var() / log_er.var()


def test_signal_lives_in_the_temporal_pattern(sample):
    partial, r2 = _temporal_signal(sample)
    # the aggregates explain only part of log E[revenue], and what is left correlates with the recent trend
    assert r2 < 0.5
    assert partial > 0.35
    # without the trend and completion-drift effects the same statistic carries nothing beyond the aggregates
    flat = simulate_multimodal(20_000, trend_effect=0.0, completion_effect=0.0, seed=11)
    partial_flat, r2_flat = _temporal_signal(flat)
    assert abs(partial_flat) < 0.05
    assert r2_flat > r2


def test_bad_arguments():
    with pytest.raises(DataValidationError, match="seq_len"):
        simulate_multimodal(10, seq_len=1, seed=0)
    with pytest.raises(DataValidationError, match="new_share"):
        simulate_multimodal(10, new_share=1.5, seed=0)
    with pytest.raises(DataValidationError, match="amount_sigma"):
        simulate_multimodal(10, amount_sigma=0.0, seed=0)
