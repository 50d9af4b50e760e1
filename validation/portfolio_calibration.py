"""Interval coverage of the cohort-curve model over replicate simulated portfolios (issue 5's calibration
criterion: 90% intervals cover 85-95% of the true curves).

    python validation/portfolio_calibration.py [--seeds 11,12,13,14,15] [--apps 6] [--campaigns 1] [--days 12]
        [--chains 2] [--warmup 300] [--draws 300] [--cohort-effects all|LIST] [--market SD,PHI]
        [--calendar-effects retention,revenue] [--save-cells PATH] [--components] [--whale-share-prior MEAN,SD]
        [--revenue-likelihood whale|whale-compound]
    python validation/portfolio_calibration.py --pool CELLS.csv,CELLS.csv   # pool saved runs, no fitting

One portfolio is a handful of independent app-level draws: every cohort of an app shares its whale share, its
whale rate and its campaign-level curves, so the coverage of one portfolio mostly counts how lucky each app's
sample was (seed 11 with 2 apps x 2 campaigns: app1 0.90, app2 0.45, where app2's realised revenue was 85% of
its expectation). This script fits the same model with the same sampler settings as
``tests/models/test_cohort_curve_calibration.py`` on several seeds and pools them: per seed the coverage of
the 90% intervals of every cohort's *expected* cumulative LTV per install at ages 7, 14, 30, 60 and 90, the
sampler diagnostics (with the sites of the highest R-hat and the lowest ESS), and the lowest and highest per-app
coverage; then the pooled coverage with a 90% bootstrap interval that resamples whole (seed, app) clusters.

``--market SD,PHI`` simulates portfolios whose retention and ARPDAU move with AR(1) calendar-day effects
(``simulate_portfolio(calendar=...)``; the true curves include the realised market, beyond the last observed day
too), and ``--calendar-effects`` fits the model's calendar effects (``CurveOptions.calendar_effects``).
``--save-cells`` writes the per-cohort coverage indicators (seed, app, one column per checkpoint) to a CSV, and
``--pool`` reads such files back and prints the pooled coverage and its cluster bootstrap without fitting, so
seeds fitted in separate processes (one per core) pool as if fitted in one run.

``--components`` adds, per seed, a table by app that says which half of the curve misses: the coverage of the
90% intervals of the expected retention ``s_c(t)`` and of the expected revenue per active user ``arpdau_c(t)``
at the same checkpoints (:func:`btyd_ltv.cohort_workflow.expected_component_draws`), the median relative error
of the ARPDAU's posterior mean, the app's realised revenue over its expectation in the observed cells
(``sum revenue / sum active x true ARPDAU``: below 1 when its sample holds fewer whale purchases than expected),
the expected number of whale purchases in those cells (payers x the true whale rate), and the true whale share
beside its posterior mean.

``--whale-share-prior MEAN,SD`` replaces the default prior of the portfolio's mean whale share (logit scale
``N(-2.2, 1.5)``: median 10%) with ``N(logit MEAN, SD)`` (``CurveOptions.population_prior``): with MEAN at the
generator's mean share (0.2: shares are drawn uniform on 0.1-0.3) it tests whether the misses come from a whale
share the data under-state, as an analyst who knows the share from payer-level data would set it.

``--revenue-likelihood whale-compound`` fits the whale mixture whose cells without a whale purchase are the
compound Poisson-gamma sum of their purchases instead of log-normal (default ``whale``, the setting of the
calibration test).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

from btyd_ltv.cohort_workflow import CurveOptions, expected_component_draws, expected_ltv_draws, fit_curves
from btyd_ltv.data.cohorts import CohortColumns
from btyd_ltv.data.portfolio import simulate_portfolio
from btyd_ltv.errors import SamplingWarning
from btyd_ltv.io import write_csv
from btyd_ltv.metrics import report_markdown
from btyd_ltv.models.cohort_curve import WHALE_LIKELIHOODS
from btyd_ltv.workflow import FitOptions

CHECKPOINTS = (7, 14, 30, 60, 90)


def replicate(seed: int, args: argparse.Namespace) -> tuple[dict, pd.DataFrame]:
    """Fit one simulated portfolio; return its summary row and the per-value coverage indicators."""
    market = None
    if args.market:
        sd, phi = (float(v) for v in args.market.split(","))
        market = {"retention": (sd, phi), "revenue": (sd, phi)}
    table, truth = simulate_portfolio(n_apps=args.apps, campaigns_per_app=args.campaigns, days=args.days,
                                      seed=seed, retention="bgbb", calendar=market)
    calendar = tuple(e for e in args.calendar_effects.split(",") if e)
    columns = CohortColumns(active_users="active_users", cost="cost", groups=("app", "campaign"))
    effects = "all" if args.cohort_effects == "all" else tuple(args.cohort_effects.split(","))
    population = ()
    if args.whale_share_prior:
        mean, sd = (float(v) for v in args.whale_share_prior.split(","))
        population = (("logit_whale_share", float(np.log(mean / (1.0 - mean))), sd),)
    settings = CurveOptions(horizon=max(CHECKPOINTS), revenue_likelihood=args.revenue_likelihood,
                            cohort_effects=effects, population_prior=population,
                            calendar_effects=calendar, acquired="acquired_day",
                            options=FitOptions(num_chains=args.chains, num_warmup=args.warmup,
                                               num_samples=args.draws, seed=seed, progress_bar=False,
                                               target_accept_prob=0.9))
    t0 = time.perf_counter()
    res = fit_curves(table, columns, settings=settings, summarise=False)
    elapsed = time.perf_counter() - t0
    draws = expected_ltv_draws(res, truth.cohorts["cohort"], CHECKPOINTS)
    true = truth.ltv[:, list(CHECKPOINTS)]
    lo, hi = np.quantile(draws, [0.05, 0.95], axis=-1)
    inside = pd.DataFrame((true >= lo) & (true <= hi), columns=list(CHECKPOINTS))
    inside["app"] = truth.cohorts["app"].astype(str).to_numpy()
    inside["seed"] = seed
    by_app = inside.groupby("app")[list(CHECKPOINTS)].mean().mean(axis=1)
    cells = inside[list(CHECKPOINTS)].to_numpy()
    d = res.diagnostics
    row = {"seed": seed, "cohorts": len(true), "fit_s": round(elapsed), "divergences": d.divergences,
           "max_rhat": d.max_rhat, "rhat_site": d.rhat_site, "min_ess_bulk": d.min_ess_bulk,
           "ess_site": d.ess_site, "coverage_90": cells.mean(),
           **{f"d{D}": cells[:, i].mean() for i, D in enumerate(CHECKPOINTS)},
           "app_min": by_app.min(), "app_max": by_app.max(),
           "median_error": float(np.median(draws.mean(axis=-1) / true - 1)),
           "true_above_q95": float((true > hi).mean())}
    if args.components:
        print(f"seed {seed} by app:")
        print(report_markdown(components(res, table, truth, cells).set_index("app"), floatfmt=".3f"), flush=True)
    return row, inside


def _covered(draws: np.ndarray, true: np.ndarray) -> np.ndarray:
    lo, hi = np.quantile(draws, [0.05, 0.95], axis=-1)
    return (true >= lo) & (true <= hi)


def components(res, table: pd.DataFrame, truth, ltv_covered: np.ndarray) -> pd.DataFrame:
    """Per app: coverage of the cumulative LTV (``ltv_covered``: cohorts x checkpoints, from :func:`replicate`) and
    of its two factors, the ARPDAU's median relative error, the realised over the expected revenue of the observed
    cells, the expected whale purchases in them and the true whale share beside its posterior mean
    (``--components``)."""
    cohorts = truth.cohorts["cohort"]
    parts = expected_component_draws(res, cohorts, CHECKPOINTS)
    ages = list(CHECKPOINTS)
    position = {c: i for i, c in enumerate(cohorts)}
    rows = table[["cohort", "app", "age", "active_users", "payers", "revenue"]].copy()
    i = rows["cohort"].map(position).to_numpy()
    rows["expected"] = truth.arpdau[i, rows["age"].to_numpy()] * rows["active_users"]
    observed = rows.groupby("app")[["revenue", "expected", "payers"]].sum()
    apps = truth.apps.set_index("app")
    post = res.posterior.posterior
    share = None
    if "logit_whale_share_app" in post:
        s = 1.0 / (1.0 + np.exp(-post["logit_whale_share_app"].to_numpy()))
        share = pd.Series(s.reshape(-1, s.shape[-1]).mean(axis=0), index=res.index["groups"]["app"])
    app_of = truth.cohorts["app"].astype(str).to_numpy()
    out = []
    for app in sorted(set(app_of)):
        m = app_of == app
        out.append({
            "app": app,
            "ltv_cov": ltv_covered[m].mean(),
            "retention_cov": _covered(parts["retention"][m], truth.retention[m][:, ages]).mean(),
            "arpdau_cov": _covered(parts["arpdau"][m], truth.arpdau[m][:, ages]).mean(),
            "arpdau_error": float(np.median(parts["arpdau"][m].mean(axis=-1) / truth.arpdau[m][:, ages] - 1)),
            "realised_over_expected": observed.loc[app, "revenue"] / observed.loc[app, "expected"],
            "expected_whales": observed.loc[app, "payers"] * apps.loc[app, "whale_rate"],
            "whale_share": apps.loc[app, "whale_share"],
            "posterior_share": np.nan if share is None else float(share[app]),
        })
    return pd.DataFrame(out)


def cluster_bootstrap(inside: pd.DataFrame, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """90% percentile interval of the pooled coverage, resampling (seed, app) clusters with replacement."""
    groups = [g[list(CHECKPOINTS)].to_numpy() for _, g in inside.groupby(["seed", "app"])]
    hits = np.array([g.sum() for g in groups], dtype=float)
    sizes = np.array([g.size for g in groups], dtype=float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(groups), size=(n_boot, len(groups)))
    stats = hits[idx].sum(axis=1) / sizes[idx].sum(axis=1)
    lo, hi = np.quantile(stats, [0.05, 0.95])
    return float(lo), float(hi)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="11,12,13,14,15", help="comma-separated portfolio (and sampler) seeds")
    ap.add_argument("--apps", type=int, default=6)
    ap.add_argument("--campaigns", type=int, default=1)
    ap.add_argument("--days", type=int, default=12)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--draws", type=int, default=300)
    ap.add_argument("--cohort-effects", default="all",
                    help="'all' (every curve parameter has a cohort level) or a comma list, e.g. "
                         "log_ret,logit_churn,log_level,rho (polarisation pooled at the campaign/app level)")
    ap.add_argument("--market", default="", help="SD,PHI: simulate AR(1) calendar-day effects on retention and "
                                                 "ARPDAU (default: none)")
    ap.add_argument("--calendar-effects", default="", help="comma list of the model's calendar effects: "
                                                           "retention, revenue (default: none)")
    ap.add_argument("--save-cells", default=None, metavar="PATH",
                    help="write the per-cohort coverage indicators (seed, app, checkpoints) to this CSV")
    ap.add_argument("--components", action="store_true",
                    help="also print, per seed, the coverage of retention and ARPDAU by app and the realised "
                         "revenue and whale share behind it")
    ap.add_argument("--whale-share-prior", default="", metavar="MEAN,SD",
                    help="normal prior N(logit MEAN, SD) on the portfolio's mean whale share (default: N(-2.2, 1.5))")
    ap.add_argument("--revenue-likelihood", default="whale", choices=WHALE_LIKELIHOODS,
                    help="the whale mixture: log-normal (whale) or compound (whale-compound) cells without a whale")
    ap.add_argument("--pool", default=None, metavar="CSV,...",
                    help="pool the coverage indicators of earlier --save-cells runs made with the same settings "
                         "(no fitting)")
    args = ap.parse_args()
    if args.pool:
        files = [pd.read_csv(p, dtype={"app": str}) for p in args.pool.split(",")]
        counts = pd.Series([s for f in files for s in set(f["seed"])]).value_counts()
        twice = sorted(counts.index[counts > 1])
        if twice:
            raise SystemExit(f"--pool: seed {twice[0]} is in more than one file; it would be counted twice")
        inside = pd.concat(files, ignore_index=True)
        inside.columns = [int(c) if c.isdigit() else c for c in inside.columns]
        print(f"pooled from {args.pool}: seeds {', '.join(str(s) for s in sorted(inside['seed'].unique()))}")
        print(_pooled_line(inside))
        return
    warnings.simplefilter("ignore", SamplingWarning)  # the diagnostics are columns of the table
    rows, frames = [], []
    for seed in (int(s) for s in args.seeds.split(",")):
        row, inside = replicate(seed, args)
        rows.append(row)
        frames.append(inside)
        print(report_markdown(pd.DataFrame([row]).set_index("seed"), floatfmt=".3f"), flush=True)
    inside = pd.concat(frames, ignore_index=True)
    if args.save_cells:
        write_csv(inside, args.save_cells, index=False)
    effects = "every curve parameter" if args.cohort_effects == "all" else args.cohort_effects
    market = f"market AR(1) sd,phi {args.market}" if args.market else "no market effects"
    model_calendar = f"calendar effects on {args.calendar_effects}" if args.calendar_effects else "no calendar effects"
    if args.whale_share_prior:
        model_calendar += f", whale share prior mean,sd {args.whale_share_prior}"
    print(f"\n{args.apps} apps x {args.campaigns} campaigns x {args.days} daily cohorts ({market}); "
          f"{'whale revenue' if args.revenue_likelihood == 'whale' else args.revenue_likelihood + ' revenue'}, "
          f"cohort effects on {effects}, {model_calendar}; {args.chains} chains x {args.warmup} warmup x "
          f"{args.draws} draws")
    print(report_markdown(pd.DataFrame(rows).set_index("seed"), floatfmt=".3f"))
    print("\n" + _pooled_line(inside))


def _pooled_line(inside: pd.DataFrame) -> str:
    """The pooled coverage of the 90% intervals with its cluster bootstrap interval."""
    pooled = float(inside[list(CHECKPOINTS)].to_numpy().mean())
    lo, hi = cluster_bootstrap(inside)
    return (f"pooled 90% interval coverage {pooled:.3f} over {inside.shape[0] * len(CHECKPOINTS)} cohort x "
            f"checkpoint values ({inside.groupby(['seed', 'app']).ngroups} seed x app clusters); cluster bootstrap "
            f"90% interval {lo:.3f}-{hi:.3f}; criterion 0.85-0.95")


if __name__ == "__main__":
    main()
