"""Helpers shared by the validation scripts (run as ``python validation/NAME.py``)."""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd


def md_table(df: pd.DataFrame, fmt: str = "{:.4g}") -> str:
    """A DataFrame as a GitHub markdown table (floats through ``fmt``; index as first column)."""
    cols = [df.index.name or ""] + [str(c) for c in df.columns]

    def cell(v) -> str:
        if isinstance(v, (float, np.floating)):
            return "" if np.isnan(v) else fmt.format(v)
        return str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for idx, row in df.iterrows():
        lines.append("| " + " | ".join([str(idx)] + [cell(v) for v in row]) + " |")
    return "\n".join(lines)


def pct(est: float, ref: float) -> float:
    """Percentage difference of ``est`` from ``ref``."""
    return 100.0 * (est - ref) / ref


def sampler_parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the NUTS options every CDNOW script takes: --seed, --chains, --tune, --draws."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--tune", type=int, default=1000, help="warmup iterations per chain")
    parser.add_argument("--draws", type=int, default=1000, help="draws per chain")
    return parser


def sampler_options(args: argparse.Namespace) -> dict:
    """Keyword arguments of :func:`btyd_ltv.inference.fit` from :func:`sampler_parser` arguments."""
    return dict(num_chains=args.chains, num_warmup=args.tune, num_samples=args.draws, seed=args.seed,
                progress_bar=False, warn=False)


def estimate_row(name: str, published: float, lifetimes_mle: float, lifetimes_se: float, idata_map, idata,
                 hdi) -> dict:
    """One row of the estimates table: published MLE, lifetimes MLE/SE, our flat-prior MAP (and its Laplace sd),
    our NUTS mean/sd/94% HDI, and the % differences from the published value."""
    post = idata.posterior[name].values
    lo, hi = (float(v) for v in np.asarray(hdi[name]))
    m = idata_map.attrs[f"map_{name}"]
    return {
        "parameter": name,
        "published": published,
        "lifetimes MLE": lifetimes_mle,
        "lifetimes SE": lifetimes_se,
        "MAP flat": m,
        "MAP Laplace sd": float(idata_map.posterior[name].std()),
        "MAP %diff": pct(m, published),
        "NUTS mean": post.mean(),
        "NUTS sd": post.std(),
        "HDI 3%": lo,
        "HDI 97%": hi,
        "NUTS %diff": pct(post.mean(), published),
        "HDI has published": "yes" if lo <= published <= hi else "NO",
    }


def add_curve_options(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of the Bayesian cohort curves the CDNOW curve scripts share (sampler, seed, model variant)."""
    from btyd_ltv.models.cohort_curve import RETENTION_FAMILIES, REVENUE_LIKELIHOODS, TENURE_FORMS

    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--draws", type=int, default=500, help="warmup iterations and draws per chain")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--revenue-likelihood", default="lognormal", choices=REVENUE_LIKELIHOODS,
                        help="revenue likelihood of the Bayesian curves (btyd_ltv.models.cohort_curve)")
    parser.add_argument("--cohort-effects", default=None,
                        help="cohort-level parameters of the Bayesian curves: 'all' or a comma list (default: the "
                             "model's)")
    parser.add_argument("--retention", default="bgbb", choices=RETENTION_FAMILIES,
                        help="retention family of the Bayesian curves (btyd_ltv.models.cohort_curve)")
    parser.add_argument("--tenure", default="log", choices=TENURE_FORMS,
                        help="tenure term of revenue per active user (btyd_ltv.models.cohort_curve)")
    parser.add_argument("--calendar-effects", default="",
                        help="comma list of calendar-period effects of the Bayesian curves: retention, revenue "
                             "(AR(1) processes over calendar weeks; default: none)")
    return parser


def curve_settings(args: argparse.Namespace):
    """:class:`btyd_ltv.cohort_workflow.CurveOptions` for weekly CDNOW cohorts from :func:`add_curve_options`
    arguments (NUTS with target acceptance 0.9, as many warmup iterations as draws)."""
    from btyd_ltv.cohort_workflow import CurveOptions
    from btyd_ltv.workflow import FitOptions

    effects = args.cohort_effects
    if effects is not None and effects != "all":
        effects = tuple(e.strip() for e in effects.split(",") if e.strip())
    calendar = tuple(e.strip() for e in args.calendar_effects.split(",") if e.strip())
    return CurveOptions(period="W", retention=args.retention, revenue_likelihood=args.revenue_likelihood,
                        tenure=args.tenure, cohort_effects=effects, calendar_effects=calendar,
                        options=FitOptions(num_chains=args.chains, num_warmup=args.draws, num_samples=args.draws,
                                           seed=args.seed, progress_bar=False, target_accept_prob=0.9))
