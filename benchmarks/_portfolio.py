"""What the cohort-curve benchmark scripts share: their options and the simulated portfolio they fit."""

from __future__ import annotations

import argparse

import pandas as pd


def portfolio_parser(*, days: int, warmup: int, draws: int, precision: str) -> argparse.ArgumentParser:
    """The options of a fit on a simulated app x campaign x day portfolio (defaults per script): its size, the
    NUTS run, the mass matrix, the cell precision and the level-offset coordinates."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--apps", type=int, default=5)
    ap.add_argument("--campaigns", type=int, default=4)
    ap.add_argument("--days", type=int, default=days,
                    help="acquisition days per campaign (cohorts = apps x campaigns x days)")
    ap.add_argument("--ages", type=int, default=365)
    ap.add_argument("--warmup", type=int, default=warmup)
    ap.add_argument("--draws", type=int, default=draws)
    ap.add_argument("--precision", default=precision, choices=["float64", "float32"],
                    help="cell arithmetic of the fused normal x log-normal pass")
    ap.add_argument("--mass", default="diag", choices=["diag", "blocks"],
                    help="NUTS mass matrix: diagonal, or dense on cohort_curve.mass_blocks and diagonal elsewhere")
    ap.add_argument("--target-accept", type=float, default=0.9)
    ap.add_argument("--no-level-offsets", action="store_true",
                    help="sample cohort retention levels as themselves, not relative to their group's curve shape")
    ap.add_argument("--progress", action="store_true",
                    help="NumPyro's progress bar on stderr (leapfrog steps and step size of every iteration)")
    return ap


def portfolio(args: argparse.Namespace, seed: int = 0) -> pd.DataFrame:
    """The simulated portfolio (``bgbb`` retention, 1k-100k installs per cohort) with every cohort observed to
    ``--ages - 1`` or to the end of the observation window, ``--days + --ages - 2``."""
    from btyd_ltv.data.portfolio import simulate_portfolio

    table, _ = simulate_portfolio(n_apps=args.apps, campaigns_per_app=args.campaigns, days=args.days,
                                  horizon=args.ages - 1, installs_range=(1000, 100000),
                                  observation_end_day=args.days - 1 + args.ages - 1, retention="bgbb", seed=seed)
    return table
