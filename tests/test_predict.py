"""Per-customer predictions: CLV parity with lifetimes, draw pairing, chunking, thinning, posterior predictive."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from btyd_ltv.data.compress import compress_rfm
from btyd_ltv.models import bgnbd
from btyd_ltv.models import gamma_gamma as gg
from btyd_ltv.predict import (
    PERIODS_PER_MONTH,
    PredictionSettings,
    periods_per_month,
    posterior_draws,
    predict_customers,
    summarize_draws,
)

lifetimes = pytest.importorskip("lifetimes")
with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    import arviz as az

# lifetimes 0.11.3 MLEs on the CDNOW 39-week calibration summary (BetaGeoFitter, GammaGammaFitter; v = gamma).
BG_MLE = {"r": 0.24259292827982148, "alpha": 4.413532265271809, "a": 0.7928859664406578, "b": 2.4257523826257374}
GG_MLE = {"p": 6.248802, "q": 3.744588, "gamma": 15.447748}
CLV_SETTINGS = dict(periods_per_month=4.345, clv_months=12, discount_rate=0.01)


def _idata(params: dict[str, np.ndarray], model: str = "clv") -> az.InferenceData:
    """An InferenceData whose posterior holds the given draws (1-D: one chain; 2-D: chain x draw)."""
    post = {k: np.atleast_2d(np.asarray(v, dtype=np.float64)) for k, v in params.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return az.from_dict(posterior=post, attrs={"model": model, "method": "nuts"})


def _degenerate(n_draws: int = 3) -> az.InferenceData:
    return _idata({k: np.full(n_draws, v) for k, v in {**BG_MLE, **GG_MLE}.items()})


def _jittered(n_draws: int, seed: int = 0, scale: float = 0.1) -> dict[str, np.ndarray]:
    """Distinct, plausible draws: the MLEs times independent log-normal noise."""
    rng = np.random.default_rng(seed)
    return {k: v * np.exp(scale * rng.standard_normal(n_draws)) for k, v in {**BG_MLE, **GG_MLE}.items()}


def _lifetimes_models(bg: dict, g: dict):
    bgf = lifetimes.BetaGeoFitter()
    bgf.params_ = pd.Series({k: bg[k] for k in bgnbd.PARAM_NAMES})
    bgf.predict = bgf.conditional_expected_number_of_purchases_up_to_time
    ggf = lifetimes.GammaGammaFitter()
    ggf.params_ = pd.Series({"p": g["p"], "q": g["q"], "v": g["gamma"]})
    return bgf, ggf


def _lifetimes_clv(summary, bg, g, freq="W", scale=1.0):
    bgf, ggf = _lifetimes_models({**bg, "alpha": bg["alpha"] * scale}, g)
    s = summary
    return ggf.customer_lifetime_value(
        bgf, s["frequency"], s["recency"] * scale, s["T"] * scale, s["monetary_value"], time=12,
        discount_rate=0.01, freq=freq,
    ).to_numpy()


@pytest.fixture(scope="module")
def rfm_money(cdnow_summary):
    return compress_rfm(cdnow_summary, monetary_col="monetary_value")


def test_clv_matches_lifetimes_at_the_mle(cdnow_summary, rfm_money):
    idata = _degenerate()
    out = predict_customers(idata, rfm_money, settings=PredictionSettings(horizon=39.0, **CLV_SETTINGS),
                            gamma_gamma_idata=idata)
    assert out.index.name == "customer_id"
    np.testing.assert_array_equal(out.index.to_numpy(), cdnow_summary.index.to_numpy())
    ref = _lifetimes_clv(cdnow_summary, BG_MLE, GG_MLE)
    np.testing.assert_allclose(out["clv_mean"].to_numpy(), ref, rtol=1e-8)
    # a degenerate posterior has degenerate intervals
    np.testing.assert_allclose(out["clv_q05"].to_numpy(), ref, rtol=1e-8)
    np.testing.assert_allclose(out["clv_q95"].to_numpy(), ref, rtol=1e-8)

    bgf, ggf = _lifetimes_models(BG_MLE, GG_MLE)
    f, r, T = (cdnow_summary[c] for c in ("frequency", "recency", "T"))
    np.testing.assert_allclose(out["p_alive_mean"], bgf.conditional_probability_alive(f, r, T), rtol=1e-12)
    np.testing.assert_allclose(
        out["expected_purchases_mean"], bgf.conditional_expected_number_of_purchases_up_to_time(39.0, f, r, T),
        rtol=1e-10,
    )
    np.testing.assert_allclose(
        out["expected_spend_mean"], ggf.conditional_expected_average_profit(f, cdnow_summary["monetary_value"]),
        rtol=1e-12,
    )
    np.testing.assert_array_equal(out[["frequency", "recency", "T"]].to_numpy(),
                                  cdnow_summary[["frequency", "recency", "T"]].to_numpy())
    assert out.attrs["num_draws"] == 3
    assert out.attrs["horizon"] == 39.0


def test_clv_pairs_draws_and_averages_per_draw_clv(cdnow_summary):
    """Draw s of the BG/NBD posterior goes with draw s of the Gamma-Gamma posterior; the mean and quantiles are
    over the per-draw CLVs."""
    sub = cdnow_summary.iloc[::25]  # 95 customers keep lifetimes' per-draw loop quick
    rfm = compress_rfm(sub, monetary_col="monetary_value")
    draws = _jittered(5, seed=1)
    idata = _idata(draws)
    out = predict_customers(idata, rfm, settings=PredictionSettings(**CLV_SETTINGS), gamma_gamma_idata=idata)
    per_draw = np.stack([
        _lifetimes_clv(sub, {k: draws[k][s] for k in bgnbd.PARAM_NAMES}, {k: draws[k][s] for k in gg.PARAM_NAMES})
        for s in range(5)
    ])
    np.testing.assert_allclose(out["clv_mean"], per_draw.mean(axis=0), rtol=1e-8)
    np.testing.assert_allclose(out["clv_q50"], np.median(per_draw, axis=0), rtol=1e-8)
    np.testing.assert_allclose(out["clv_q05"], np.quantile(per_draw, 0.05, axis=0), rtol=1e-8)


def test_periods_per_month():
    assert periods_per_month("W") == 4.345
    assert periods_per_month("D") == 30.0
    assert periods_per_month("d", 7) == pytest.approx(30.0 / 7.0, rel=1e-15)
    assert periods_per_month("M") == 1.0
    assert periods_per_month("H") == 720.0
    assert PERIODS_PER_MONTH == {"D": 30.0, "W": 4.345, "M": 1.0, "H": 720.0}
    with pytest.raises(ValueError, match="freq"):
        periods_per_month("Q")


@pytest.mark.parametrize("freq, scale", [("D", 7.0), ("M", 1.0 / 4.345), ("W", 1.0)])
def test_clv_periods_per_month_matches_lifetimes_in_other_units(cdnow_summary, freq, scale):
    """Weeks-based data with ``periods_per_month = lifetimes factor / scale`` equals lifetimes' CLV on the data
    rescaled to ``freq`` units (time x scale, alpha x scale): the BG/NBD is invariant to the time unit."""
    sub = cdnow_summary.iloc[::10]
    rfm = compress_rfm(sub, monetary_col="monetary_value")
    idata = _degenerate(1)
    ppm = periods_per_month(freq, scale)
    out = predict_customers(idata, rfm, settings=PredictionSettings(periods_per_month=ppm, clv_months=12,
                                                                    discount_rate=0.01), gamma_gamma_idata=idata)
    np.testing.assert_allclose(out["clv_mean"], _lifetimes_clv(sub, BG_MLE, GG_MLE, freq=freq, scale=scale),
                               rtol=1e-8)


def test_discount_and_horizon_change_clv_as_expected(cdnow_summary, rfm_money):
    idata = _degenerate(1)

    def clv(**kw):
        s = PredictionSettings(**{**CLV_SETTINGS, **kw})
        return predict_customers(idata, rfm_money, settings=s, gamma_gamma_idata=idata)["clv_mean"].to_numpy()

    base = clv()
    assert np.all(clv(discount_rate=0.0) > base)
    assert np.all(clv(clv_months=24) > base)
    # one month, no discount: spend x expected purchases in the first 4.345 weeks
    one = clv(clv_months=1, discount_rate=0.0)
    bgf, ggf = _lifetimes_models(BG_MLE, GG_MLE)
    f, r, T, m = (cdnow_summary[c] for c in ("frequency", "recency", "T", "monetary_value"))
    ref = ggf.conditional_expected_average_profit(f, m) * bgf.predict(4.345, f, r, T)
    np.testing.assert_allclose(one, ref, rtol=1e-10)


@pytest.fixture(scope="module")
def jittered_predictions(cdnow_summary, rfm_money):
    """Predictions of a 200-draw jittered posterior with default chunking (4M elements: one chunk)."""
    idata = _idata({k: v.reshape(2, 100) for k, v in _jittered(200, seed=2).items()})
    holdout = pd.DataFrame({"frequency_holdout": 1.0, "duration_holdout": 39.0}, index=cdnow_summary.index)
    out = predict_customers(idata, rfm_money, settings=PredictionSettings(**CLV_SETTINGS), gamma_gamma_idata=idata,
                            holdout=holdout)
    return idata, holdout, out


DETERMINISTIC_PREFIXES = ("p_alive", "expected_purchases", "expected_spend", "clv")


@pytest.mark.parametrize("chunk_elements", [1, 200 * 37, 200 * 1000])
def test_predictions_do_not_depend_on_chunking(jittered_predictions, rfm_money, chunk_elements):
    idata, holdout, ref = jittered_predictions
    settings = PredictionSettings(**CLV_SETTINGS, chunk_elements=chunk_elements)
    out = predict_customers(idata, rfm_money, settings=settings, gamma_gamma_idata=idata, holdout=holdout)
    assert list(out.columns) == list(ref.columns)
    cols = [c for c in ref.columns if c.startswith(DETERMINISTIC_PREFIXES)]
    assert len(cols) == 16
    # quantiles are bit-identical; means may differ in the last bit (numpy's pairwise sum depends on the layout)
    qcols = [c for c in cols if not c.endswith("_mean")]
    pd.testing.assert_frame_equal(out[qcols], ref[qcols], check_exact=True)
    pd.testing.assert_frame_equal(out[cols], ref[cols], check_exact=False, rtol=1e-13, atol=0)


def test_quantile_columns_are_ordered(jittered_predictions):
    _, _, out = jittered_predictions
    for prefix in DETERMINISTIC_PREFIXES + ("pred_holdout",):
        q05, q50, q95 = (out[f"{prefix}_q{q}"].to_numpy() for q in ("05", "50", "95"))
        assert np.all(q05 <= q50) and np.all(q50 <= q95), prefix
        mean = out[f"{prefix}_mean"].to_numpy()
        if prefix != "pred_holdout":  # continuous: the mean lies inside the 90% interval for these posteriors
            assert np.all((q05 <= mean * (1 + 1e-12)) & (mean <= q95 * (1 + 1e-12))), prefix
    assert np.all(out[[c for c in out.columns if c.startswith("p_alive")]].to_numpy() <= 1.0)
    assert np.all(out["p_alive_q05"] > 0)
    # quantiles are those of the per-draw values (numpy's default linear interpolation)
    assert out["p_alive_q05"].iloc[0] < out["p_alive_q95"].iloc[0]


def test_summarize_draws_names_and_values():
    """Mean and numpy-default (linear) quantiles over the draws (last axis)."""
    v = np.array([1.0, 2.0])[:, None] * np.random.default_rng(0).permutation(np.arange(101.0))[None, :]
    out = summarize_draws(v.copy(), "x")
    assert list(out) == ["x_mean", "x_q05", "x_q50", "x_q95"]
    np.testing.assert_allclose(out["x_mean"], [50.0, 100.0], rtol=1e-14)
    np.testing.assert_allclose(out["x_q05"], [5.0, 10.0], rtol=1e-14)
    np.testing.assert_allclose(out["x_q95"], [95.0, 190.0], rtol=1e-14)
    w = np.random.default_rng(1).gamma(0.5, size=(7, 333))
    got = summarize_draws(w.copy(), "w")
    for q in (0.05, 0.5, 0.95):
        np.testing.assert_allclose(got[f"w_q{round(q * 100):02d}"], np.quantile(w, q, axis=-1), rtol=1e-14)


def test_max_draws_thins_evenly(cdnow_summary):
    sub = cdnow_summary.iloc[::20]
    rfm = compress_rfm(sub, monetary_col="monetary_value")
    full = {k: v.reshape(4, 250) for k, v in _jittered(1000, seed=3).items()}
    idata = _idata(full)
    got = posterior_draws(idata, ["r", "p"], max_draws=100)
    idx = np.linspace(0, 999, 100).round().astype(int)
    assert idx[0] == 0 and idx[-1] == 999
    np.testing.assert_array_equal(got["r"], full["r"].reshape(-1)[idx])
    np.testing.assert_array_equal(got["p"], full["p"].reshape(-1)[idx])
    assert posterior_draws(idata, ["r"], max_draws=5000)["r"].size == 1000

    s = PredictionSettings(**CLV_SETTINGS, max_draws=100)
    thinned = predict_customers(idata, rfm, settings=s, gamma_gamma_idata=idata)
    manual = _idata({k: v.reshape(-1)[idx] for k, v in full.items()})
    ref = predict_customers(manual, rfm, settings=PredictionSettings(**CLV_SETTINGS), gamma_gamma_idata=manual)
    assert thinned.attrs["num_draws"] == 100
    pd.testing.assert_frame_equal(thinned, ref, check_exact=True)


def test_unequal_draw_counts_use_the_common_prefix(cdnow_summary):
    sub = cdnow_summary.iloc[::50]
    rfm = compress_rfm(sub, monetary_col="monetary_value")
    d = _jittered(30, seed=4)
    bg = _idata({k: d[k] for k in bgnbd.PARAM_NAMES}, "bgnbd")
    g = _idata({k: d[k][:20] for k in gg.PARAM_NAMES}, "gamma_gamma")
    both = _idata({k: v[:20] for k, v in d.items()})
    out = predict_customers(bg, rfm, settings=PredictionSettings(**CLV_SETTINGS), gamma_gamma_idata=g)
    ref = predict_customers(both, rfm, settings=PredictionSettings(**CLV_SETTINGS), gamma_gamma_idata=both)
    assert out.attrs["num_draws"] == 20
    pd.testing.assert_frame_equal(out, ref, check_exact=True)


def test_clv_needs_monetary_values(cdnow_summary):
    idata = _degenerate(1)
    with pytest.raises(ValueError, match="monetary"):
        predict_customers(idata, compress_rfm(cdnow_summary), gamma_gamma_idata=idata)


def test_bgnbd_only_predictions_have_no_spend_columns(cdnow_summary):
    out = predict_customers(_degenerate(1), compress_rfm(cdnow_summary))
    assert list(out.columns) == [
        "frequency", "recency", "T",
        "p_alive_mean", "p_alive_q05", "p_alive_q50", "p_alive_q95",
        "expected_purchases_mean", "expected_purchases_q05", "expected_purchases_q50", "expected_purchases_q95",
    ]
    # default horizon: 52 periods
    bgf, _ = _lifetimes_models(BG_MLE, GG_MLE)
    f, r, T = (cdnow_summary[c] for c in ("frequency", "recency", "T"))
    np.testing.assert_allclose(out["expected_purchases_mean"], bgf.predict(52.0, f, r, T), rtol=1e-10)


def test_posterior_predictive_holdout_counts_have_the_conditional_mean(cdnow_summary):
    """Mean of many posterior predictive draws of the holdout count ~ E[X(T, T+t] | x, t_x, T] (FHL 2005 eq. 10)."""
    sub = cdnow_summary.iloc[[0, 1, 2, 9, 17, 56, 100, 157, 500, 1000]]
    rfm = compress_rfm(sub)
    n = 20_000
    holdout = pd.DataFrame({"frequency_holdout": np.arange(10.0), "duration_holdout": 39.0}, index=sub.index)
    out = predict_customers(_degenerate(n), rfm, settings=PredictionSettings(horizon=39.0, seed=5), holdout=holdout)
    np.testing.assert_array_equal(out["frequency_holdout"], np.arange(10.0))
    np.testing.assert_array_equal(out["duration_holdout"], 39.0)
    expected = out["expected_purchases_mean"].to_numpy()
    # standard error from an independent simulation of the same distribution
    x, t_x, T = (np.broadcast_to(sub[c].to_numpy(float), (n, 10)) for c in ("frequency", "recency", "T"))
    sims = bgnbd.sample_conditional_purchases(39.0, x, t_x, T, *BG_MLE.values(), np.random.default_rng(99))
    se = sims.std(axis=0) / np.sqrt(n)
    assert np.all(np.abs(out["pred_holdout_mean"].to_numpy() - expected) < 4.5 * se)
    for q in ("q05", "q50", "q95"):
        v = out[f"pred_holdout_{q}"].to_numpy()
        np.testing.assert_array_equal(v, np.round(v))  # counts: quantiles of integers at these probabilities
    # reproducible from the seed
    again = predict_customers(_degenerate(n), rfm, settings=PredictionSettings(horizon=39.0, seed=5), holdout=holdout)
    pd.testing.assert_frame_equal(out, again, check_exact=True)
