"""Fan charts of cohort LTV curves: panels, band polygons against the table's quantiles, observed dots."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from btyd_ltv.curves import curve_table, roas_table  # noqa: E402
from btyd_ltv.errors import DataValidationError  # noqa: E402
from btyd_ltv.plots import fan_chart, fan_chart_data  # noqa: E402

C, H, S = 5, 30, 100
COHORTS = [f"c{i}" for i in range(C)]
LAST = [3, 10, 0, 30, 7]


@pytest.fixture(scope="module")
def curves() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    draws = np.cumsum(rng.gamma(0.5, 0.1, size=(C, H + 1, S)), axis=1)
    observed = np.full((C, H + 1), np.nan)
    for c, k in enumerate(LAST):
        observed[c, : k + 1] = draws[c, : k + 1, 0]
    return curve_table(draws, COHORTS, observed)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def by_gid(ax, gid):
    return [a for a in ax.get_children() if a.get_gid() == gid]


def test_one_axes_per_cohort(curves):
    fig = fan_chart(curves, ncols=2, title="cohorts")
    assert len(fig.axes) == C  # 3 x 2 grid, the spare panel removed
    assert [ax.get_title() for ax in fig.axes] == COHORTS
    assert fig._suptitle.get_text() == "cohorts"
    assert len(fan_chart(curves, ["c3", "c1"]).axes) == 2
    assert len(fan_chart(curves, max_panels=3).axes) == 3


def test_band_polygons_are_the_quantiles(curves):
    fig = fan_chart(curves, ["c1", "c3"])
    ax = fig.axes[1]
    d = curves[curves["cohort"] == "c3"]
    for gid, low, high in [("band_90", "q05", "q95"), ("band_50", "q25", "q75")]:
        (band,) = by_gid(ax, gid)
        verts = band.get_paths()[0].vertices
        for age, lo, hi in zip(d["age"], d[low], d[high]):
            at = verts[np.isclose(verts[:, 0], age)]
            assert np.isclose(at[:, 1], lo).any() and np.isclose(at[:, 1], hi).any(), (gid, age)
        assert np.isclose(verts[:, 1].min(), d[low].min()) and np.isclose(verts[:, 1].max(), d[high].max())
    (median,) = by_gid(ax, "median")
    np.testing.assert_allclose(median.get_xydata(), d[["age", "q50"]].to_numpy())


def test_observed_dots_at_observed_ages_only(curves):
    fig = fan_chart(curves)
    for ax, cohort, last in zip(fig.axes, COHORTS, LAST):
        (dots,) = by_gid(ax, "observed")
        x, y = dots.get_data()
        np.testing.assert_array_equal(x, np.arange(last + 1))
        want = curves.loc[(curves["cohort"] == cohort) & (curves["age"] <= last), "observed"]
        np.testing.assert_allclose(y, want)
    no_obs = curves.assign(observed=np.nan)
    assert not by_gid(fan_chart(no_obs, ["c0"]).axes[0], "observed")


def test_break_even_line(curves):
    fig = fan_chart(curves, ["c0", "c1"], roas_line={"c1": 1.25})
    assert not by_gid(fig.axes[0], "break_even")
    (line,) = by_gid(fig.axes[1], "break_even")
    assert np.allclose(line.get_ydata(), 1.25)


def test_roas_table_draws_with_break_even_at_one():
    rng = np.random.default_rng(0)
    draws = np.cumsum(rng.gamma(0.5, 0.1, size=(2, 11, 50)), axis=1)
    roas = roas_table(draws, ["a", "b"], [10, 20], [5.0, 30.0])
    fig = fan_chart(roas, roas_line={"a": 1.0, "b": 1.0}, ylabel="ROAS")
    assert len(fig.axes) == 2 and all(by_gid(ax, "break_even") for ax in fig.axes)


def test_unknown_cohort_and_bad_frame(curves):
    with pytest.raises(DataValidationError, match=r"cohort 'c9' is not in curves; it has 5 cohort\(s\): 'c0'"):
        fan_chart(curves, ["c1", "c9"])
    with pytest.raises(DataValidationError, match=r"missing column\(s\) \['age'\]"):
        fan_chart(curves.drop(columns="age"))


def test_fan_chart_data_selects_in_panel_order(curves):
    shuffled = curves.sample(frac=1.0, random_state=0)
    data = fan_chart_data(shuffled, ["c4", "c0"])
    assert data["cohort"].unique().tolist() == ["c4", "c0"]
    assert data.loc[data["cohort"] == "c4", "age"].tolist() == list(range(H + 1))
    # labels read back from CSV as integers match their strings
    ints = curves.assign(cohort=curves["cohort"].str[1:].astype(int))
    assert fan_chart_data(ints, ["2"])["cohort"].unique().tolist() == [2]
