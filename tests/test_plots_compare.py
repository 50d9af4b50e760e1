"""Model-comparison figures: each ``*_data`` table against a brute-force computation, one artist per model, and
bad input reported with the model's name."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from btyd_ltv.errors import DataValidationError  # noqa: E402
from btyd_ltv.metrics import gini  # noqa: E402
from btyd_ltv.plots import (  # noqa: E402
    calibration_data,
    calibration_plot,
    compare_decile_chart,
    compare_decile_data,
    lorenz_curves,
    lorenz_data,
    ppc_overlay,
    ppc_overlay_data,
)

N = 50
MODELS = ("ziln", "dnn", "btyd")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    y = np.where(rng.random(N) < 0.5, 0.0, rng.lognormal(2.0, 1.0, N))
    preds = {
        "ziln": 0.6 * y + rng.gamma(1.0, 3.0, N),  # continuous: no ties
        "dnn": rng.gamma(1.0, 8.0, N),
        "btyd": np.sqrt(y + 1.0) * 3.0 + rng.random(N),
    }
    samples = np.where(rng.random((N, 40)) < 0.5, 0.0, rng.lognormal(2.0, 1.0, (N, 40)))
    return y, preds, samples


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _bucket_means(y, p, n_buckets):
    """Brute force: rank by prediction (stable), bucket = rank // (n / n_buckets), pandas group-by means."""
    rank = pd.Series(p).rank(method="first").to_numpy() - 1
    frame = pd.DataFrame({"bucket": (rank // (len(p) / n_buckets)).astype(int) + 1, "y": y, "p": p})
    return frame.groupby("bucket").agg(n=("y", "size"), actual=("y", "mean"), predicted=("p", "mean"))


def test_compare_decile_data_is_a_groupby_of_the_rank(data):
    y, preds, _ = data
    table = compare_decile_data(y, preds, n_buckets=10)
    assert list(pd.unique(table["model"])) == list(MODELS)
    for name, p in preds.items():
        got = table[table["model"] == name].set_index("bucket")
        ref = _bucket_means(y, p, 10)
        np.testing.assert_array_equal(got.index, ref.index)
        np.testing.assert_array_equal(got["n"], ref["n"])
        np.testing.assert_allclose(got[["actual", "predicted"]], ref[["actual", "predicted"]], rtol=1e-12)
    # n not a multiple of the bucket count: sizes differ by one, larger buckets first (np.array_split)
    odd = compare_decile_data(y[:23], {"m": preds["dnn"][:23]}, n_buckets=4)
    assert odd["n"].tolist() == [6, 6, 6, 5]


def test_lorenz_data_endpoints_order_and_gini(data):
    y, preds, _ = data
    table = lorenz_data(y, preds)
    assert list(pd.unique(table["curve"])) == [*MODELS, "perfect", "random"]
    perfect = table[table["curve"] == "perfect"]["share_value"].to_numpy()
    raw_perfect = 2 * np.trapezoid(perfect, dx=1 / N) - 1 + 1 / N
    for curve, d in table.groupby("curve", sort=False):
        f, s = d["fraction_customers"].to_numpy(), d["share_value"].to_numpy()
        assert len(d) == N + 1
        assert (f[0], s[0]) == (0.0, 0.0)
        assert f[-1] == 1.0 and s[-1] == pytest.approx(1.0)
        # area relation: raw Gini = 2 * area - 1 + 1/n (Google's discrete definition), normalised by the perfect
        raw = 2 * np.trapezoid(s, f) - 1 + 1 / N
        assert d["gini"].iloc[0] == pytest.approx(raw / raw_perfect, rel=1e-10)
        if curve in preds:
            order = np.argsort(-preds[curve])
            np.testing.assert_allclose(s[1:], np.cumsum(y[order]) / y.sum(), rtol=1e-12)
            assert d["gini"].iloc[0] == pytest.approx(gini(y, preds[curve]))
    np.testing.assert_allclose(perfect[1:], np.cumsum(np.sort(y)[::-1]) / y.sum(), rtol=1e-12)
    assert table.loc[table["curve"] == "perfect", "gini"].iloc[0] == pytest.approx(1.0)


def test_calibration_data_quantile_and_log_bins(data):
    y, preds, _ = data
    quantile = calibration_data(y, preds, n_bins=5)
    for name, p in preds.items():
        got = quantile[quantile["model"] == name].set_index("bin")
        ref = _bucket_means(y, p, 5)
        np.testing.assert_array_equal(got["n"], ref["n"])
        np.testing.assert_allclose(got[["predicted", "actual"]], ref[["predicted", "actual"]], rtol=1e-12)
    log = calibration_data(y, preds, n_bins=6, strategy="log")
    for name, p in preds.items():
        got = log[log["model"] == name]
        z = np.log1p(p)
        counts, edges = np.histogram(z, bins=6)  # same edges; the last bin is closed, as ours
        which = np.digitize(z, edges[1:-1])
        keep = counts > 0
        np.testing.assert_array_equal(got["n"], counts[keep])
        np.testing.assert_allclose(got["predicted"], [p[which == b].mean() for b in np.flatnonzero(keep)])
        np.testing.assert_allclose(got["actual"], [y[which == b].mean() for b in np.flatnonzero(keep)])
        assert got["bin"].tolist() == list(range(1, keep.sum() + 1))


def test_ppc_overlay_data_against_brute_force(data):
    y, preds, samples = data
    table = ppc_overlay_data(y, samples, preds, label="ziln posterior", prob=0.8, n_grid=30)
    ecdf = table[table["statistic"] == "ecdf"]
    grid = ecdf.loc[ecdf["source"] == "observed", "x"].to_numpy()
    assert len(grid) == 30 and grid[0] == 0.0
    upper = max(np.log1p(y.max()), np.log1p(np.quantile(samples, 0.999)), *(np.log1p(p.max()) for p in preds.values()))
    assert grid[-1] == pytest.approx(upper)
    brute = lambda v: (np.log1p(v)[:, None] <= grid[None, :]).mean(axis=0)  # noqa: E731
    np.testing.assert_allclose(ecdf.loc[ecdf["source"] == "observed", "value"], brute(y))
    for name, p in preds.items():
        np.testing.assert_allclose(ecdf.loc[ecdf["source"] == name, "value"], brute(p))
    rep = ecdf[ecdf["kind"] == "replicated"]
    assert set(rep["source"]) == {"ziln posterior"}
    per_draw = np.stack([brute(samples[:, s]) for s in range(samples.shape[1])])
    for col, q in (("low", 0.1), ("value", 0.5), ("high", 0.9)):
        np.testing.assert_allclose(rep[col], np.quantile(per_draw, q, axis=0))
    for stat, fn in (("share_zero", lambda a: (a == 0).mean(axis=0)), ("total", lambda a: a.sum(axis=0))):
        d = table[table["statistic"] == stat].set_index("source")
        assert d.loc["observed", "value"] == pytest.approx(fn(y))
        for name, p in preds.items():
            assert d.loc[name, "value"] == pytest.approx(fn(p))
            assert d.loc[name, "kind"] == "point"
        lo, med, hi = np.quantile(fn(samples), [0.1, 0.5, 0.9])
        assert d.loc["ziln posterior", ["low", "value", "high"]].tolist() == pytest.approx([lo, med, hi])
    assert table.loc[table["kind"] != "replicated", ["low", "high"]].isna().all().all()


def test_one_artist_per_model(data):
    y, preds, samples = data
    fig = compare_decile_chart(y, preds, n_buckets=5)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    (ax,) = fig.axes
    assert [c.get_label() for c in ax.containers] == [f"{m}: actual" for m in MODELS]
    assert all(len(c) == 5 for c in ax.containers)
    assert [ln.get_gid() for ln in ax.get_lines()] == [f"{m}:predicted" for m in MODELS]
    np.testing.assert_allclose(ax.containers[1].datavalues,
                               compare_decile_data(y, preds, 5).query("model == 'dnn'")["actual"])

    (ax,) = lorenz_curves(y, preds).axes
    assert [ln.get_gid() for ln in ax.get_lines()] == ["perfect", "random", *MODELS]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert f"dnn (Gini {gini(y, preds['dnn']):.3f})" in legend

    (ax,) = calibration_plot(y, preds, n_bins=5, log_axes=True).axes
    assert [ln.get_gid() for ln in ax.get_lines()] == [*MODELS, "identity"]
    assert ax.get_xscale() == ax.get_yscale() == "log"

    fig = ppc_overlay(y, samples, preds, n_grid=20)
    assert len(fig.axes) == 3
    for ax in fig.axes:
        gids = [a.get_gid() for a in ax.get_children()]
        assert [g for g in gids if g in MODELS] == list(MODELS)
        assert gids.count("observed") == 1 and gids.count("replicated") == 1
    assert ppc_overlay(y, samples, None).axes[0].get_lines()[-1].get_gid() == "observed"


COMPARE = [
    lambda y, p: compare_decile_data(y, p),
    lambda y, p: lorenz_data(y, p),
    lambda y, p: calibration_data(y, p),
    lambda y, p: calibration_data(y, p, strategy="log"),
    lambda y, p: ppc_overlay_data(y, np.ones((len(y), 3)), p),
]


@pytest.mark.parametrize("fn", COMPARE, ids=["decile", "lorenz", "calibration", "calibration_log", "ppc"])
def test_bad_predictions_name_the_model(data, fn):
    y, preds, _ = data
    short = dict(preds, dnn=preds["dnn"][:-1])
    with pytest.raises(DataValidationError, match=r"model 'dnn' has 49 rows but y_true has 50"):
        fn(y, short)
    nan = dict(preds, dnn=np.where(np.arange(N) == 3, np.nan, preds["dnn"]))
    with pytest.raises(DataValidationError, match=r"model 'dnn'.*row 3"):
        fn(y, nan)
    with pytest.raises(DataValidationError, match="y_true"):
        fn(np.where(np.arange(N) == 0, np.nan, y), preds)


def test_bad_samples_and_options(data):
    y, preds, samples = data
    with pytest.raises(DataValidationError, match="samples"):
        ppc_overlay_data(y, samples[:-1], preds)
    with pytest.raises(DataValidationError, match="samples.*row 2"):
        ppc_overlay_data(y, np.where(np.arange(N)[:, None] == 2, np.nan, samples), preds)
    with pytest.raises(DataValidationError, match="model 'dnn': negative"):
        ppc_overlay_data(y, samples, dict(preds, dnn=-preds["dnn"]))
    with pytest.raises(DataValidationError, match="non-empty mapping"):
        lorenz_data(y, {})
    with pytest.raises(DataValidationError, match="reserved"):
        lorenz_data(y, {"random": preds["dnn"]})
    with pytest.raises(DataValidationError, match="strategy"):
        calibration_data(y, preds, strategy="uniform")
    # a (customers, draws) array is reduced to its posterior mean
    draws = np.stack([preds["dnn"], preds["dnn"] + 2.0], axis=1)
    pd.testing.assert_frame_equal(compare_decile_data(y, {"dnn": draws}),
                                  compare_decile_data(y, {"dnn": preds["dnn"] + 1.0}))
