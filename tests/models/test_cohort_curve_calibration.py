"""Calibration of the hierarchical cohort-curve model on a simulated portfolio with known truth (issue 5):
the 90% posterior intervals of every cohort's expected cumulative LTV per install must cover 85-95% of the
generator's true curves.

The portfolio has 6 apps with one campaign each: every cohort of an app shares the app's whale share, whale rate
and curve, so a portfolio is only as many independent draws as it has apps. With 2 apps x 2 campaigns (this
test until stop 16) the coverage was that of two draws: at seed 11, app1 0.90 and app2 0.45 (app2's whale
revenue came in well below its expectation), 0.70 overall. ``validation/portfolio_calibration.py`` repeats this
fit over several seeds and pools them, and reproduces the 2-app case with ``--apps 2 --campaigns 2 --days 16``.
"""

from __future__ import annotations

import numpy as np
import pytest

from btyd_ltv.cohort_workflow import CurveOptions, expected_ltv_draws, fit_curves
from btyd_ltv.data.cohorts import CohortColumns
from btyd_ltv.data.portfolio import simulate_portfolio
from btyd_ltv.workflow import FitOptions

CHECKPOINTS = (7, 14, 30, 60, 90)


@pytest.fixture(scope="module")
def calibration():
    table, truth = simulate_portfolio(n_apps=6, campaigns_per_app=1, days=12, seed=11, retention="bgbb")
    columns = CohortColumns(active_users="active_users", cost="cost", groups=("app", "campaign"))
    settings = CurveOptions(horizon=max(CHECKPOINTS), revenue_likelihood="whale", cohort_effects="all",
                            options=FitOptions(num_chains=2, num_warmup=300, num_samples=300, seed=11,
                                               progress_bar=False, target_accept_prob=0.9))
    res = fit_curves(table, columns, settings=settings, summarise=False)
    draws = expected_ltv_draws(res, truth.cohorts["cohort"], CHECKPOINTS)
    true = truth.ltv[:, list(CHECKPOINTS)]
    lo, hi = np.quantile(draws, [0.05, 0.95], axis=-1)
    apps = truth.cohorts["app"].astype(str).to_numpy()
    return (true >= lo) & (true <= hi), draws, true, apps, res.diagnostics


def test_90_percent_intervals_cover_85_to_95_percent_of_true_curves(calibration):
    """The criterion of issue 5 on one portfolio (seed 11): 0.856 on the 2-core CPU of stop 16, 0.864 at stop 17
    (the same model and coordinates, but the retention level's prior term now comes after the shape's, and that
    change in summation order alone gave other draws: max R-hat 1.067 and 13 divergences against 1.011 and 0),
    0.869 at stop 18 with the group elements sampled from their exact conditional (max R-hat 1.117, min bulk ESS
    21, 0 divergences; these 2 x 300 + 300 runs do not meet R-hat <= 1.01).
    Over five seeds
    ``validation/portfolio_calibration.py`` pools 0.868 (0.80-0.95 per seed; cluster bootstrap 90% interval
    0.83-0.90). The posterior means are printed, not asserted: whale purchases are rare, and an app whose sample
    holds fewer of them than expected has curves below its true expected ones, as its data say."""
    inside, draws, true, apps, diag = calibration
    coverage = inside.mean()
    error = np.median(draws.mean(axis=-1) / true - 1, axis=0)
    by_app = {a: round(float(inside[apps == a].mean()), 3) for a in np.unique(apps)}
    print(f"90% interval coverage {coverage:.3f} over {inside.size} cohort x checkpoint values; "
          f"per checkpoint {dict(zip(CHECKPOINTS, inside.mean(axis=0).round(3)))}; per app {by_app}; "
          f"median relative error {dict(zip(CHECKPOINTS, error.round(3)))}; max R-hat {diag.max_rhat:.3f}, "
          f"min bulk ESS {diag.min_ess_bulk:.0f}, divergences {diag.divergences}")
    assert 0.85 <= coverage <= 0.95
