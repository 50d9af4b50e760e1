"""Parameter recovery and interval coverage of the hierarchical cohort-curve model on a simulated portfolio.

    python validation/portfolio_curves.py [--days 30] [--apps 2] [--campaigns 2] [--horizon 180] [--seed 11]

The synthetic game portfolio (btyd_ltv.data.portfolio.simulate_portfolio, BG/BB-type retention for every app)
has known expected retention and ARPDAU curves per cohort. We fit the model (4 chains) on what is observed up to
the last acquisition day and report, per age checkpoint, how often the 50% / 90% posterior intervals of each
cohort's *expected* cumulative LTV per install (from age 0, ``kind="expected"``) contain the true one, split by
how old the cohort is, plus the posterior of the portfolio-level hyper-parameters next to the generator's.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from btyd_ltv.cohort_workflow import CurveOptions, fit_curves
from btyd_ltv.data.cohorts import CohortColumns
from btyd_ltv.data.portfolio import simulate_portfolio
from btyd_ltv.metrics import report_markdown
from btyd_ltv.models import cohort_curve as cc
from btyd_ltv.workflow import FitOptions


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--apps", type=int, default=2)
    ap.add_argument("--campaigns", type=int, default=2)
    ap.add_argument("--horizon", type=int, default=180)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--cohort-effects", default=None, help="comma-separated, or all; default: the model's default")
    ap.add_argument("--revenue-likelihood", default="lognormal", choices=list(cc.REVENUE_LIKELIHOODS))
    args = ap.parse_args()

    table, truth = simulate_portfolio(n_apps=args.apps, campaigns_per_app=args.campaigns, days=args.days,
                                      seed=args.seed, retention="bgbb")
    columns = CohortColumns(active_users="active_users", cost="cost", groups=("app", "campaign"))
    effects = args.cohort_effects if args.cohort_effects in (None, "all") else tuple(args.cohort_effects.split(","))
    settings = CurveOptions(horizon=args.horizon, cohort_effects=effects,
                            revenue_likelihood=args.revenue_likelihood, options=FitOptions(num_chains=args.chains, num_warmup=args.draws,
                                                                     num_samples=args.draws, seed=args.seed,
                                                                     progress_bar=False, target_accept_prob=0.9))
    t0 = time.perf_counter()
    res = fit_curves(table, columns, settings=settings)
    elapsed = time.perf_counter() - t0
    values = cc.posterior_values(res.posterior.posterior, res.data)
    expected = cc.predictive_ltv(values, res.data, args.horizon, kind="expected", max_draws=400)
    pos = pd.Index(res.index["cohorts"]).get_indexer(truth.cohorts["cohort"].astype(str))
    true = truth.ltv[:, : args.horizon + 1]
    draws = expected[pos]
    age_obs = res.data.n_observed[pos] - 1
    rows = []
    for D in [d for d in (7, 30, 60, 90, 180, 365) if d <= args.horizon]:
        for label, sel in (("all cohorts", np.ones(len(pos), bool)), ("observed < 14 ages", age_obs < 14),
                           ("observed >= 14 ages", age_obs >= 14)):
            if not sel.any():
                continue
            d = draws[sel, D, :]
            y = true[sel, D]
            lo90, hi90 = np.quantile(d, [0.05, 0.95], axis=1)
            lo50, hi50 = np.quantile(d, [0.25, 0.75], axis=1)
            rows.append({"age": D, "cohorts": label, "n": int(sel.sum()),
                         "coverage_50": float(np.mean((y >= lo50) & (y <= hi50))),
                         "coverage_90": float(np.mean((y >= lo90) & (y <= hi90))),
                         "median_ape": float(np.median(np.abs(d.mean(axis=1) / y - 1))),
                         "median_error": float(np.median(d.mean(axis=1) / y - 1))})
    print(f"revenue likelihood {args.revenue_likelihood}; "
          f"{len(pos)} cohorts, {int(res.data.observed.sum())} observed cells, fit {elapsed:.0f} s, "
          f"divergences {res.diagnostics.divergences}, max R-hat {res.diagnostics.max_rhat:.3f}, "
          f"min bulk ESS {res.diagnostics.min_ess_bulk:.0f}")
    print(report_markdown(pd.DataFrame(rows).set_index("age"), floatfmt=".3f"))
    print()
    print(report_markdown(res.params, floatfmt=".3f"))


if __name__ == "__main__":
    main()
