"""Validation: BG/NBD calibration/holdout forecast on the CDNOW sample (weeks 1-39 fit, weeks 40-78 predicted).

Checks
------
1. Total repeat purchases in the holdout (1997-10-01 .. 1998-06-30, 39 weeks): actual vs
   - the posterior of the expected total: per posterior draw, the sum over customers of the conditional
     expectation E[X(39) | x, t_x, T, theta] (FHL 2005 eq. 10), so its interval is parameter uncertainty only;
   - the posterior predictive distribution of the total count: per draw, one simulated count per customer
     (:func:`btyd_ltv.models.bgnbd.sample_conditional_purchases`) summed, so it adds the Poisson/dropout noise;
   - lifetimes' BetaGeoFitter MLE plug-in conditional expectation.
2. Per-customer 90% posterior predictive intervals (5%..95% of the simulated holdout count, from
   :func:`btyd_ltv.workflow.fit_btyd` with ``holdout``): the share of customers whose actual count is inside,
   below and above. Counts are discrete, so a central 90% interval covers at least 90% when calibrated.
3. FHL (2005, Figure 4) style table: mean holdout purchases by calibration frequency (0..6, 7+), actual vs our
   posterior mean (with the 90% interval of the group mean) vs lifetimes' MLE.

Usage::

    python validation/cdnow_holdout.py
    python validation/cdnow_holdout.py --draws 500 --tune 500 --seed 2
"""

from __future__ import annotations

import numpyro

numpyro.set_host_device_count(4)  # parallel chains on CPU: before any JAX computation

import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

warnings.filterwarnings("ignore", category=FutureWarning)

from btyd_ltv.data.compress import compress_rfm  # noqa: E402
from btyd_ltv.data.datasets import DATASETS, load_dataset  # noqa: E402
from btyd_ltv.models import bgnbd  # noqa: E402
from btyd_ltv.predict import PredictionSettings, posterior_draws  # noqa: E402
from btyd_ltv.workflow import FitOptions, fit_btyd, prepare_summary  # noqa: E402
from _common import md_table, sampler_parser  # noqa: E402

NAMES = bgnbd.PARAM_NAMES


def main() -> None:
    parser = sampler_parser(__doc__.split("\n\n")[0])
    args = parser.parse_args()

    info = DATASETS["cdnow"]
    log = load_dataset("cdnow")
    summary, holdout = prepare_summary(
        log, date_col="date", freq="D", freq_multiplier=7, calibration_end=info.calibration_end,
        observation_end=info.observation_end,
    )
    t_hold = float(holdout["duration_holdout"].iloc[0])
    actual = holdout["frequency_holdout"].to_numpy(float)
    x, t_x, T = (summary[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    print(f"# BG/NBD calibration/holdout on the CDNOW sample ({len(summary):,} customers): calibration to "
          f"{info.calibration_end}, holdout to {info.observation_end} ({t_hold:g} weeks); NUTS {args.chains} "
          f"chains x {args.tune} warmup x {args.draws} draws, seed {args.seed}\n")

    t0 = time.perf_counter()
    result = fit_btyd(
        summary, "bgnbd",
        options=FitOptions(num_chains=args.chains, num_warmup=args.tune, num_samples=args.draws, seed=args.seed,
                           progress_bar=False),
        settings=PredictionSettings(horizon=t_hold, seed=args.seed),
        holdout=holdout, freq="D", freq_multiplier=7,
    )
    wall = time.perf_counter() - t0
    cust = result.customers
    d = result.diagnostics["bgnbd"]

    # Per-draw conditional expectations on the unique (x, t_x, T) rows, then weighted sums over customers.
    rfm = compress_rfm(summary)
    th = posterior_draws(result.posterior, NAMES)
    S = th["r"].size
    cond_rows = bgnbd.conditional_expected_purchases(
        t_hold, rfm.frequency, rfm.recency, rfm.T, *(th[k][:, None] for k in NAMES)
    )  # (S, rows)
    total_expected = cond_rows @ rfm.weights  # (S,)

    # Posterior predictive of the total count: per draw, one count per customer, summed.
    rng = np.random.default_rng(args.seed + 1000)
    total_sim = np.empty(S)
    for s in range(0, S, 250):
        sl = slice(s, s + 250)
        counts = bgnbd.sample_conditional_purchases(
            t_hold, x, t_x, T, *(th[k][sl, None] for k in NAMES), rng
        )
        total_sim[sl] = counts.sum(axis=1)

    from lifetimes import BetaGeoFitter

    bgf = BetaGeoFitter().fit(x, t_x, T)
    lt_cond = bgf.conditional_expected_number_of_purchases_up_to_time(t_hold, x, t_x, T)
    lt_cond = np.asarray(lt_cond, dtype=float)
    mle_plugin = bgnbd.conditional_expected_purchases(
        t_hold, x, t_x, T, *(bgf.params_[k] for k in NAMES)
    )

    def interval(v):
        lo, hi = np.quantile(v, [0.05, 0.95])
        return lo, hi

    lo_e, hi_e = interval(total_expected)
    lo_s, hi_s = interval(total_sim)
    tot = pd.DataFrame(
        [
            {"quantity": "actual", "total": actual.sum(), "5%": np.nan, "95%": np.nan, "actual inside": ""},
            {"quantity": "ours: posterior of the expected total (sum of E[X] per draw)",
             "total": total_expected.mean(), "5%": lo_e, "95%": hi_e,
             "actual inside": "yes" if lo_e <= actual.sum() <= hi_e else "NO"},
            {"quantity": "ours: posterior predictive of the total count (simulated)",
             "total": total_sim.mean(), "5%": lo_s, "95%": hi_s,
             "actual inside": "yes" if lo_s <= actual.sum() <= hi_s else "NO"},
            {"quantity": "ours: sum of per-customer posterior means (fit_btyd customers)",
             "total": cust["expected_purchases_mean"].sum(), "5%": np.nan, "95%": np.nan, "actual inside": ""},
            {"quantity": "lifetimes BetaGeoFitter MLE plug-in", "total": lt_cond.sum(), "5%": np.nan,
             "95%": np.nan, "actual inside": ""},
        ]
    ).set_index("quantity")
    print("## Total repeat purchases in weeks 40-78 (90% intervals)\n")
    print(md_table(tot, fmt="{:.1f}"))
    print(f"\n(our formula at the lifetimes MLE: {mle_plugin.sum():.2f}; lifetimes: {lt_cond.sum():.2f})")

    # Per-customer predictive intervals.
    lo_c, hi_c = cust["pred_holdout_q05"].to_numpy(), cust["pred_holdout_q95"].to_numpy()
    act_c = cust["frequency_holdout"].to_numpy()
    inside = (act_c >= lo_c) & (act_c <= hi_c)
    cov_rows = []
    groups = [("all", np.ones_like(inside)), ("x = 0", cust["frequency"].to_numpy() == 0),
              ("x = 1..3", cust["frequency"].between(1, 3).to_numpy()), ("x >= 4", cust["frequency"].to_numpy() >= 4)]
    for label, g in groups:
        cov_rows.append({
            "customers": label, "n": str(int(g.sum())), "inside 90% PI": inside[g].mean(),
            "below 5%": (act_c < lo_c)[g].mean(), "above 95%": (act_c > hi_c)[g].mean(),
            "mean PI width": (hi_c - lo_c)[g].mean(),
        })
    print("\n## Per-customer 90% posterior predictive intervals of the holdout count\n")
    print(md_table(pd.DataFrame(cov_rows).set_index("customers"), fmt="{:.3f}"))

    # FHL-style table by calibration frequency.
    bucket = np.minimum(x, 7).astype(int)
    rows = []
    for k in range(8):
        g = bucket == k
        per_draw = bgnbd.conditional_expected_purchases(
            t_hold, x[g], t_x[g], T[g], *(th[n][:, None] for n in NAMES)
        ).mean(axis=1)
        lo, hi = np.quantile(per_draw, [0.05, 0.95])
        rows.append({
            "x (calibration)": f"{k}+" if k == 7 else str(k),
            "customers": int(g.sum()),
            "actual": actual[g].mean(),
            "ours mean": per_draw.mean(),
            "ours 5%": lo,
            "ours 95%": hi,
            "lifetimes MLE": lt_cond[g].mean(),
            "actual inside": "yes" if lo <= actual[g].mean() <= hi else "no",
        })
    print("\n## Mean repeat purchases in weeks 40-78 by calibration frequency (FHL 2005, Fig. 4 style)\n")
    print(md_table(pd.DataFrame(rows).set_index("x (calibration)"), fmt="{:.3f}"))

    err_ours = cust["expected_purchases_mean"].to_numpy() - act_c
    err_lt = lt_cond - actual
    print(f"\nPer-customer MAE: ours {np.abs(err_ours).mean():.4f}, lifetimes {np.abs(err_lt).mean():.4f}; "
          f"RMSE: ours {np.sqrt((err_ours ** 2).mean()):.4f}, lifetimes {np.sqrt((err_lt ** 2).mean()):.4f}")
    print(f"NUTS: max R-hat {d.max_rhat:.4f}, min ESS bulk/tail {d.min_ess_bulk:.0f}/{d.min_ess_tail:.0f}, "
          f"divergences {d.divergences}, steps/draw {float(result.posterior.sample_stats['n_steps'].mean()):.2f}; "
          f"fit + per-customer predictions {wall:.1f} s")


if __name__ == "__main__":
    main()
