"""CDNOW weekly cohort curves: rolling-origin backtest of the hierarchical curve model against four baselines.

    python validation/cdnow_curves.py [--max-cutoffs 3] [--chains 2] [--draws 500]
    python validation/cdnow_curves.py --revenue-likelihood whale --cohort-effects all   # the calibrated variant
    python validation/cdnow_curves.py --no-model --learned mlp,tide,lightgbm   # baselines + learned curve models
    python validation/cdnow_curves.py --calendar-effects retention,revenue   # AR(1) calendar-week effects
    python validation/cdnow_curves.py --retention bgbb-dw   # activity x beta-discrete-Weibull survival
    python validation/cdnow_curves.py --tenure saturating   # revenue per active customer that levels off
    python validation/cdnow_curves.py --history-bins 7,13   # the second table's slices of the history's length

Data: the shipped CDNOW master log as 13 weekly acquisition cohorts (1997-01..03), followed weekly to 1998-06
(`btyd_ltv.data.datasets.load_cdnow_weekly`). At each calendar cutoff only the weeks dated on or before it are
used; every cohort aged exactly k = 4 or 8 weeks at the cutoff is forecast to the checkpoints 13, 26, 52 weeks
and 78, and scored once the checkpoint has matured. All 13 cohorts were acquired in weeks 0..12, so when a cohort is
4 or 8 weeks old no cohort in the history is older than 20 weeks: forecasting week 26..78 is extrapolation for
every method (the baselines' fallbacks are documented in btyd_ltv.backtest; ``--min-mature 1`` scores only the
checkpoints some cohort in the history has reached). Models: our Bayesian curves (BG/BB-type
retention x ARPDAU, cohort-level partial pooling), the multiplier, chain ladder with Mack standard errors, OLS of
L(H) on L(k), and power-law retention x constant ARPDAU; with ``--learned``, the learned curve models of
:mod:`btyd_ltv.adapters.curve_baselines` (MLP, TiDE, LightGBM; the ``[deep]`` extra).

A second table scores the same forecasts sliced by the length of the history behind them: the oldest age any
cohort shows at the cutoff (``oldest_age`` of the backtest rows), binned at ``--history-bins``. At the first
cutoffs every cohort in the history is young, so a 52-week forecast has no mature curve to borrow from.
"""

from __future__ import annotations

import argparse
import time

from _common import add_curve_options, curve_settings

from btyd_ltv import backtest as bt
from btyd_ltv.cohort_workflow import curve_forecaster
from btyd_ltv.data.cohorts import CohortColumns
from btyd_ltv.data.datasets import load_cdnow_weekly


def main() -> None:
    ap = add_curve_options(argparse.ArgumentParser())
    ap.add_argument("--max-cutoffs", type=int, default=None)
    ap.add_argument("--min-mature", type=int, default=0,
                    help="score a checkpoint only when this many cohorts in the history have reached it (0: every "
                         "checkpoint; the baselines then fall back as documented in btyd_ltv.backtest)")
    ap.add_argument("--learned", default="", help="comma list of learned curve baselines: mlp, tide, lightgbm")
    ap.add_argument("--no-model", action="store_true", help="baselines only (no Bayesian curve fits)")
    ap.add_argument("--history-bins", default="7,13",
                    help="comma list of bin edges (weeks) of the oldest age in the history at the cutoff, for the "
                         "second table (a bin holds oldest ages from its lower edge up to the next edge minus 1)")
    args = ap.parse_args()
    edges = sorted(int(e) for e in args.history_bins.split(",") if e.strip())
    table = load_cdnow_weekly()
    columns = CohortColumns(active_users="active_users", payers="payers")
    forecasters = bt.baselines(columns, seed=args.seed)
    settings = curve_settings(args)
    calendar = settings.calendar_effects
    learned = [n.strip() for n in args.learned.split(",") if n.strip()]
    if learned:
        from btyd_ltv.adapters.curve_baselines import curve_baselines

        forecasters.update(curve_baselines(learned, columns=columns, seed=args.seed))
    if not args.no_model:
        forecasters["bayes_curves"] = curve_forecaster(columns, settings)
    t0 = time.perf_counter()
    result = bt.rolling_origin(table, forecasters, ks=(4, 8), checkpoints=(13, 26, 52, 78), period="W",
                               columns=columns, max_cutoffs=args.max_cutoffs, min_mature=args.min_mature)
    print(f"CDNOW weekly cohorts: {table['cohort'].nunique()} cohorts, {len(table)} cohort-weeks; "
          f"{result.rows['cutoff'].nunique()} cutoffs; {time.perf_counter() - t0:.0f} s; seed {args.seed}; "
          f"retention {args.retention}, revenue likelihood {args.revenue_likelihood}, cohort effects "
          f"{args.cohort_effects or 'default'}, tenure {args.tenure}"
          f"{', calendar effects ' + ','.join(calendar) if calendar else ''}")
    print(result.to_markdown())
    print("\nThe same forecasts by the oldest age in the history at the cutoff (weeks):")
    print(bt.score_markdown(result.score_by_history(edges)))


if __name__ == "__main__":
    main()
