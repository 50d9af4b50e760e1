"""Why CDNOW forecasts made from a short history over-predict: each forecast split into its two curves.

    python validation/cdnow_short_history.py [--cutoffs 4,5,6,12] [--k 4] [--checkpoints 13,26,52]
        [the model options of cdnow_curves.py: --chains --draws --seed --retention --revenue-likelihood ...]

The rolling-origin backtest (``cdnow_curves.py``, second table) found that the 4-week forecasts made at the first
cutoffs, when no cohort in the history was older than 6 weeks, over-predicted cumulative LTV at 13 / 26 / 52
weeks. Here, at each ``--cutoffs`` (calendar week since the first cohort's; the history is cut there as in the
backtest, :func:`btyd_ltv.backtest.truncate`), the cohort aged exactly ``--k`` weeks is forecast with the same
model and sampler settings, and at every checkpoint the forecast is set beside what happened, for:

* ``L``: cumulative revenue per customer, the predictive mean and its 90% interval (the backtest's quantity);
* ``retention``: the model's expected share of the cohort active in that week, ``s_c(t)``
  (:func:`btyd_ltv.cohort_workflow.expected_component_draws`), against the cohort's share;
* ``arpdau``: the model's expected revenue per active customer in that week, ``arpdau_c(t)``, against the
  cohort's (a few dozen customers: noisy) and all 13 cohorts' pooled value at that age (the full data).

Per cutoff it also prints the posterior mean of the tenure slope ``rho`` (``arpdau ~ (1 + t)^rho``) and of the
survival tail's exponent ``a = m kappa`` (``S(t) ~ t^-a`` for large ``t``; with ``--retention bgbb-ms`` the
movers' part, and the stayers' share ``w`` with its 90% interval) of the forecast cohort; with ``--tenure
saturating``, ``rho`` is the initial slope and the saturation rate ``sigma`` (mean and 90% interval) is printed too.
"""

from __future__ import annotations

import argparse
import time
import warnings
from dataclasses import replace

import numpy as np
import pandas as pd

from _common import add_curve_options, curve_settings

from btyd_ltv import backtest as bt
from btyd_ltv.cohort_workflow import expected_component_draws, fit_curves
from btyd_ltv.data.cohorts import CohortColumns
from btyd_ltv.data.datasets import load_cdnow_weekly
from btyd_ltv.metrics import report_markdown
from btyd_ltv.models import cohort_curve as cc


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def actual_curves(table: pd.DataFrame) -> pd.DataFrame:
    """Per cohort and age: cumulative revenue per customer ``L``, the share active and revenue per active
    customer; plus per age the pooled share and revenue per active customer of all cohorts."""
    t = table.sort_values(["cohort", "age"]).copy()
    t["L"] = t.groupby("cohort")["revenue"].cumsum() / t["installs"]
    t["retention"] = t["active_users"] / t["installs"]
    t["arpdau"] = t["revenue"] / t["active_users"].where(t["active_users"] > 0)
    pooled = t.groupby("age")[["revenue", "active_users"]].sum()
    t["pooled_arpdau"] = t["age"].map(pooled["revenue"] / pooled["active_users"])
    return t.set_index(["cohort", "age"])


def split_forecast(table: pd.DataFrame, cutoff: int, k: int, checkpoints: list[int], settings, columns,
                   actual: pd.DataFrame) -> tuple[list[dict], dict]:
    """Fit on the history at ``cutoff``; the rows of the forecast of the cohort aged ``k`` there, and its
    posterior means of ``rho`` and of the tail exponent."""
    history = bt.truncate(table, cutoff, period="W", columns=columns)
    ages = history.groupby("cohort")["age"].max()
    target = ages.index[ages == k]
    if len(target) != 1:
        raise SystemExit(f"cutoff {cutoff}: {len(target)} cohorts are aged exactly {k} weeks; pick another cutoff")
    cohort = str(target[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = fit_curves(history, columns, settings=replace(settings, horizon=max(checkpoints)), summarise=False)
    pos = res.index["cohorts"].index(cohort)
    parts = expected_component_draws(res, [cohort], checkpoints)
    rows = []
    for j, h in enumerate(checkpoints):
        truth = actual.loc[(cohort, h)]
        row = {"cutoff": cutoff, "oldest_age": int(ages.max()), "cohort": cohort, "week": h}
        for name, draws, true in (("L", res.draws[pos, h], truth["L"]),
                                  ("retention", parts["retention"][0, j], truth["retention"]),
                                  ("arpdau", parts["arpdau"][0, j], truth["arpdau"])):
            scale = 100.0 if name == "retention" else 1.0  # retention in %
            row.update(_interval(name, scale * np.asarray(draws)), **{f"{name}_actual": scale * float(true)})
        row["arpdau_pooled"] = float(truth["pooled_arpdau"])
        rows.append(row)
    params = {n: np.asarray(v)[:, pos] for n, v in cc.cohort_params(res.values, res.data).items()}
    m = 1.0 / (1.0 + np.exp(-params["logit_churn"]))
    shape = {"cutoff": cutoff, "cohort": cohort, "rho": float(params["rho"].mean()),
             "tail_a": float((m * np.exp(params["log_kappa"])).mean())}
    if "logit_stay" in params:  # bgbb-ms: the stayers' share w, mean and 90% interval
        shape.update(_interval("stayers", 1.0 / (1.0 + np.exp(-params["logit_stay"]))))
    if "log_saturation" in params:  # tenure="saturating": one portfolio-level rate
        shape.update(_interval("saturation", np.exp(params["log_saturation"])))
    shape.update(divergences=res.diagnostics.divergences, max_rhat=res.diagnostics.max_rhat)
    return rows, shape


def _interval(name: str, draws: np.ndarray) -> dict:
    """``{name: mean, name_q05: 5% quantile, name_q95: 95% quantile}`` of posterior draws."""
    lo, hi = np.quantile(draws, [0.05, 0.95])
    return {name: float(draws.mean()), f"{name}_q05": float(lo), f"{name}_q95": float(hi)}


def main() -> None:
    ap = add_curve_options(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    ap.add_argument("--cutoffs", default="4,5,6,12", help="calendar weeks (0 = the first cohort's week) to cut at")
    ap.add_argument("--k", type=int, default=4, help="age (weeks) of the forecast cohort at the cutoff")
    ap.add_argument("--checkpoints", default="13,26,52", help="ages (weeks) to compare at")
    args = ap.parse_args()
    table = load_cdnow_weekly()
    columns = CohortColumns(active_users="active_users", payers="payers")
    settings = curve_settings(args)
    checkpoints = _ints(args.checkpoints)
    actual = actual_curves(table)
    t0 = time.perf_counter()
    rows, shapes = [], []
    for cutoff in _ints(args.cutoffs):
        r, s = split_forecast(table, cutoff, args.k, checkpoints, settings, columns, actual)
        rows += r
        shapes.append(s)
    print(f"CDNOW weekly cohorts, the cohort aged {args.k} weeks at each cutoff; {time.perf_counter() - t0:.0f} s; "
          f"seed {args.seed}; retention {args.retention}, revenue likelihood {args.revenue_likelihood}, cohort "
          f"effects {args.cohort_effects or 'default'}, tenure {args.tenure}"
          f"{', calendar effects ' + ','.join(settings.calendar_effects) if settings.calendar_effects else ''}; "
          f"{args.chains} chains x {args.draws} warmup x {args.draws} draws. Retention in % of the cohort; "
          "mean and 5-95% of the posterior (L: predictive; retention, arpdau: the model's expected curves).")
    print(report_markdown(pd.DataFrame(rows).set_index(["cutoff", "week"]), floatfmt=".3g"))
    print("\nThe forecast cohort's posterior means: tenure slope rho of revenue per active customer and the "
          "survival tail's exponent a (S(t) ~ t^-a):")
    print(report_markdown(pd.DataFrame(shapes).set_index("cutoff"), floatfmt=".3g"))


if __name__ == "__main__":
    main()
