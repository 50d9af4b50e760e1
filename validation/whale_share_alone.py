"""How much of an app's whale share and revenue level its own cells identify: each app of a simulated portfolio
fitted alone, by maximum likelihood, under the cohort-curve model's revenue density with the true curve shape.

    python validation/whale_share_alone.py [--seeds 18,23,24,28] [--apps 6] [--campaigns 1] [--days 12]

For every app of ``simulate_portfolio(seed)`` (the portfolios of ``portfolio_calibration.py``) the observed cells'
revenue is fitted given their active users, with the expected revenue per active user fixed at the generator's true
curve times one free level factor: ``E[revenue] = A x level x arpdau_true(c, t)``. Free are the level, the noise
terms (``log_k``, ``log_tau``, ``log_nu``) and, under the whale mixture, the share ``s``, the cell rate and the
amounts' sd (the model's density, ``cohort_curve._revenue_log_prob``, which the unit tests check against simulation
and quadrature). The best of four L-BFGS starts of the whale terms is kept. The table compares the level with the
realised revenue over its expectation in the same cells and the fitted share with the true one: what one app's data
say, without the hierarchy or the priors of the full model (``portfolio_calibration.py --components`` shows the full
model's). The gamma column is the same fit with the gamma density (whose mean estimate is the weighted sample mean),
the ``*_compound`` columns the whale mixture whose cells without a whale are the compound Poisson-gamma sum of their
purchases (``revenue_likelihood="whale-compound"``); ``--days 150`` gives every app about 11,000 cells, where a
consistent estimator must find the true share. A mixture fitted to few whale cells can degenerate (a share near 0
with a huge amount sd, or the "whale" component taking every cell); the table shows such fits as they come.
"""

from __future__ import annotations

import argparse

import jax
import numpy as np
import pandas as pd
from scipy.optimize import minimize

from btyd_ltv.data.portfolio import simulate_portfolio
from btyd_ltv.metrics import report_markdown
from btyd_ltv.models import cohort_curve as cc

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402


def fit_alone(revenue: np.ndarray, users: np.ndarray, log_arpdau: np.ndarray, kind: str) -> np.ndarray:
    """Maximum-likelihood ``(log level, log tau, logit s, logit omega_ref, log sd_w, log k, log nu)`` of one app's
    cells (the whale terms unused for ``kind="gamma"``)."""
    ref = float(np.median(users[revenue > 0]))
    y, u, la = jnp.asarray(revenue), jnp.asarray(users), jnp.asarray(log_arpdau)

    def loss(x):
        whale = (x[2], x[3], x[4], ref) if kind in cc.WHALE_LIKELIHOODS else None
        return -jnp.sum(cc._revenue_log_prob(y, u, jnp.log(u), la + x[0], x[5], x[6], x[1], kind, whale))

    f = jax.jit(jax.value_and_grad(loss))
    whale_terms = kind in cc.WHALE_LIKELIHOODS
    best = None
    starts = [(-2.2, -3.0), (-2.2, -1.0), (-1.0, -3.0), (-1.0, -1.0)] if whale_terms else [(-2.2, -3.0)]
    for s0, w0 in starts:  # the whale terms' starts; the gamma density does not use them
        x0 = np.array([0.0, -1.5, s0, w0, 0.0, -4.0, -3.0])
        res = minimize(lambda x: tuple(np.asarray(v, dtype=np.float64) for v in f(jnp.asarray(x))), x0,
                       jac=True, method="L-BFGS-B")
        if best is None or res.fun < best.fun:
            best = res
    return best.x


def app_rows(seed: int, args: argparse.Namespace) -> list[dict]:
    """One row per app of portfolio ``seed``: its realised revenue, both fits alone and the true whale terms."""
    table, truth = simulate_portfolio(n_apps=args.apps, campaigns_per_app=args.campaigns, days=args.days, seed=seed,
                                      retention="bgbb")
    position = {c: i for i, c in enumerate(truth.cohorts["cohort"])}
    apps = truth.apps.set_index("app")
    rows = []
    for app, cells in table.groupby("app"):
        i, t = cells["cohort"].map(position).to_numpy(), cells["age"].to_numpy()
        log_a = np.log(truth.arpdau[i, t])
        y, u = cells["revenue"].to_numpy(), cells["active_users"].to_numpy().astype(float)
        whale, gamma = fit_alone(y, u, log_a, "whale"), fit_alone(y, u, log_a, "gamma")
        compound = fit_alone(y, u, log_a, "whale-compound")
        rows.append({
            "app": f"{seed}/{app}", "cells": len(y),
            "expected_whales": cells["payers"].sum() * apps.loc[app, "whale_rate"],
            "realised_over_expected": y.sum() / np.sum(u * np.exp(log_a)),
            "level_whale": float(np.exp(whale[0])), "level_gamma": float(np.exp(gamma[0])),
            "whale_share": apps.loc[app, "whale_share"], "share_alone": float(1.0 / (1.0 + np.exp(-whale[2]))),
            "cell_whale_prob": float(1.0 / (1.0 + np.exp(-whale[3]))), "whale_sd": float(np.exp(whale[4])),
            "level_compound": float(np.exp(compound[0])),
            "share_compound": float(1.0 / (1.0 + np.exp(-compound[2]))),
            "whale_sd_compound": float(np.exp(compound[4])),
        })
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="18,23,24,28", help="comma-separated portfolio seeds")
    ap.add_argument("--apps", type=int, default=6)
    ap.add_argument("--campaigns", type=int, default=1)
    ap.add_argument("--days", type=int, default=12)
    args = ap.parse_args()
    rows = [r for s in args.seeds.split(",") for r in app_rows(int(s), args)]
    df = pd.DataFrame(rows).set_index("app")  # seed/app
    print(f"{args.apps} apps x {args.campaigns} campaigns x {args.days} daily cohorts; each app fitted alone "
          "(maximum likelihood, true curve shape, free level)")
    print(report_markdown(df, floatfmt=".3f"))
    for kind, share, level in (("whale", "share_alone", "level_whale"),
                               ("whale-compound", "share_compound", "level_compound")):
        err = df[share] - df["whale_share"]
        print(f"\n{kind}: median |share fitted alone - true share| {err.abs().median():.3f} (below the truth in "
              f"{int((err < 0).sum())} of {len(df)}); median |level - realised| "
              f"{(df[level] - df['realised_over_expected']).abs().median():.3f}", end="")
    print()


if __name__ == "__main__":
    main()
