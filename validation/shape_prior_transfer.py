"""A mature portfolio's curve shape as the prior of a young portfolio's (``population_prior``, CLI ``curves fit
--shape-prior``): forecasts of the young portfolio's cohorts with and without it, against the simulated truth.

    python validation/shape_prior_transfer.py [--mature-seed 1] [--mature-apps 6] [--mature-campaigns 1]
        [--mature-days 24] [--young-seeds 101,102,103,104] [--young-apps 2] [--young-campaigns 2]
        [--young-days 10] [--chains 2] [--warmup 300] [--draws 300] [--scale 1.0]
        [--revenue-likelihood lognormal] [--cohort-effects default]

Both portfolios are drawn by ``simulate_portfolio`` from the same population of apps (BG/BB retention; each
app's curve parameters are a draw around the population's), with different seeds: the mature one has cohorts up
to ``--mature-days - 1`` days old, each young one up to ``--young-days - 1``. The mature portfolio is fitted
once; its posterior gives the prior of the young fits' retention shape and tenure slope (``loc = E[p_mu]``,
``scale = --scale x sqrt(Var[p_mu] + E[sd_app^2])``: the predictive for a new app). Every young portfolio is
fitted twice, with the default priors and with the transferred one, same sampler seed. For each fit and
checkpoint age (30, 90, 180, 365 days) the table gives, over the young portfolio's cohorts, the median relative
error of the posterior mean of the *expected* cumulative LTV per install against the generator's true expected
value, the coverage of its 90% interval and the interval's median width relative to the truth. The mature fit
takes about 10 minutes on one CPU core at the defaults, each young fit 2-3 minutes.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

from btyd_ltv.cohort_workflow import CurveOptions, expected_ltv_draws, fit_curves, population_prior
from btyd_ltv.data.cohorts import CohortColumns
from btyd_ltv.data.portfolio import simulate_portfolio
from btyd_ltv.errors import SamplingWarning
from btyd_ltv.metrics import report_markdown
from btyd_ltv.workflow import FitOptions

CHECKPOINTS = (30, 90, 180, 365)
COLUMNS = CohortColumns(active_users="active_users", cost="cost", groups=("app", "campaign"))


def _settings(args: argparse.Namespace, seed: int, population: tuple = ()) -> CurveOptions:
    effects = None if args.cohort_effects == "default" else (
        "all" if args.cohort_effects == "all" else tuple(args.cohort_effects.split(",")))
    return CurveOptions(horizon=max(CHECKPOINTS), revenue_likelihood=args.revenue_likelihood,
                        cohort_effects=effects, population_prior=population,
                        options=FitOptions(num_chains=args.chains, num_warmup=args.warmup, num_samples=args.draws,
                                           seed=seed, progress_bar=False, target_accept_prob=0.9))


def _fit(table: pd.DataFrame, settings: CurveOptions):
    t0 = time.perf_counter()
    res = fit_curves(table, COLUMNS, settings=settings, summarise=False)
    return res, time.perf_counter() - t0


def score(seed: int, prior: str, res, truth, elapsed: float) -> dict:
    """One row: the fit's diagnostics and, per checkpoint, median error, 90% coverage and relative width."""
    draws = expected_ltv_draws(res, truth.cohorts["cohort"], CHECKPOINTS)
    true = truth.ltv[:, list(CHECKPOINTS)]
    lo, hi = np.quantile(draws, [0.05, 0.95], axis=-1)
    d = res.diagnostics
    row = {"young_seed": seed, "prior": prior, "cohorts": len(true), "fit_s": round(elapsed),
           "divergences": d.divergences, "max_rhat": d.max_rhat}
    for i, D in enumerate(CHECKPOINTS):
        row[f"err_d{D}"] = float(np.median(draws[:, i].mean(axis=-1) / true[:, i] - 1))
    for i, D in enumerate(CHECKPOINTS):
        row[f"cov90_d{D}"] = float(((true[:, i] >= lo[:, i]) & (true[:, i] <= hi[:, i])).mean())
    row["width_d365"] = float(np.median((hi[:, -1] - lo[:, -1]) / true[:, -1]))
    row["abs_err_d365"] = float(np.median(np.abs(draws[:, -1].mean(axis=-1) / true[:, -1] - 1)))
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mature-seed", type=int, default=1)
    ap.add_argument("--mature-apps", type=int, default=6)
    ap.add_argument("--mature-campaigns", type=int, default=1)
    ap.add_argument("--mature-days", type=int, default=24)
    ap.add_argument("--young-seeds", default="101,102,103,104")
    ap.add_argument("--young-apps", type=int, default=2)
    ap.add_argument("--young-campaigns", type=int, default=2)
    ap.add_argument("--young-days", type=int, default=10)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--draws", type=int, default=300)
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies the transferred prior's sds")
    ap.add_argument("--revenue-likelihood", default="lognormal")
    ap.add_argument("--cohort-effects", default="default", help="'default', 'all' or a comma list")
    args = ap.parse_args()
    warnings.simplefilter("ignore", SamplingWarning)  # the diagnostics are columns of the table

    mature, _ = simulate_portfolio(n_apps=args.mature_apps, campaigns_per_app=args.mature_campaigns,
                                   days=args.mature_days, seed=args.mature_seed, retention="bgbb")
    res, elapsed = _fit(mature, _settings(args, args.mature_seed))
    d = res.diagnostics
    print(f"mature portfolio (seed {args.mature_seed}): {mature['cohort'].nunique()} cohorts, ages 0-"
          f"{int(mature['age'].max())}; fit {elapsed:.0f} s, {d.divergences} divergences, max R-hat "
          f"{d.max_rhat:.3f} ({d.rhat_site}), min bulk ESS {d.min_ess_bulk:.0f}", flush=True)
    population = population_prior(res.posterior, scale=args.scale)
    print("transferred prior: " + ", ".join(f"{p}_mu ~ N({loc:.3f}, {sd:.3f})" for p, loc, sd in population))

    rows = []
    for seed in (int(s) for s in args.young_seeds.split(",")):
        young, truth = simulate_portfolio(n_apps=args.young_apps, campaigns_per_app=args.young_campaigns,
                                          days=args.young_days, seed=seed, retention="bgbb")
        for prior, pop in (("default", ()), ("transferred", population)):
            res, elapsed = _fit(young, _settings(args, seed, pop))
            rows.append(score(seed, prior, res, truth, elapsed))
            print(report_markdown(pd.DataFrame(rows[-1:]).set_index("young_seed"), floatfmt=".3f"), flush=True)
    table = pd.DataFrame(rows)
    print(f"\nyoung portfolios: {args.young_apps} apps x {args.young_campaigns} campaigns x {args.young_days} daily "
          f"cohorts (ages 0-{args.young_days - 1}); {args.revenue_likelihood} revenue, cohort effects "
          f"{args.cohort_effects}; {args.chains} chains x {args.warmup} warmup x {args.draws} draws; prior scale "
          f"x{args.scale}")
    print(report_markdown(table.set_index("young_seed"), floatfmt=".3f"))
    metrics = [c for c in table.columns if c.startswith(("err_", "cov90_", "width_", "abs_"))]
    pooled = table.groupby("prior")[metrics].mean()
    print("\nmean over the young portfolios (of equal size) of each column above")
    print(report_markdown(pooled, floatfmt=".3f"))


if __name__ == "__main__":
    main()
