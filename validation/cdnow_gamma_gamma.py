"""Validation: Gamma-Gamma spend model and 12-month CLV on the CDNOW calibration summary.

Checks
------
1. Gamma-Gamma estimates on the 946 CDNOW repeat customers: published MLE (Fader & Hardie 2013, "The
   Gamma-Gamma Model of Monetary Value": p = 6.25, q = 3.74, gamma = 15.44); lifetimes' ``GammaGammaFitter`` MLE
   and standard errors; our MAP with flat priors (= MLE) and its Laplace sd; our NUTS posterior with the
   default priors (mean, sd, 94% HDI), % differences from the published values.
2. CLV over 12 months at a 1% monthly discount rate, weeks -> months by lifetimes' factor 4.345 (``freq="W"``):
   lifetimes' ``customer_lifetime_value`` at the BG/NBD and Gamma-Gamma MLEs vs our formula at the same MLEs
   (must agree to rounding), vs our posterior mean CLV (BG/NBD and Gamma-Gamma NUTS, per-draw CLV averaged),
   with the 90% posterior interval of the total, and per-customer agreement.

Usage::

    python validation/cdnow_gamma_gamma.py
    python validation/cdnow_gamma_gamma.py --draws 500 --tune 500 --seed 2
"""

from __future__ import annotations

import numpyro

numpyro.set_host_device_count(4)  # parallel chains on CPU: before any JAX computation

import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

warnings.filterwarnings("ignore", category=FutureWarning)

import arviz as az  # noqa: E402
import scipy.stats  # noqa: E402

from btyd_ltv.data.compress import compress_rfm  # noqa: E402
from btyd_ltv.data.datasets import load_dataset  # noqa: E402
from btyd_ltv.inference import diagnose, fit  # noqa: E402
from btyd_ltv.models import bgnbd  # noqa: E402
from btyd_ltv.models import gamma_gamma as gg  # noqa: E402
from btyd_ltv.predict import PredictionSettings, clv_discount_factor, posterior_draws, predict_customers  # noqa: E402
from _common import md_table, pct, sampler_parser, sampler_options, estimate_row  # noqa: E402

# Fader & Hardie (2013), "The Gamma-Gamma Model of Monetary Value", http://www.brucehardie.com/notes/025/
PUBLISHED = {"p": 6.25, "q": 3.74, "gamma": 15.44}
NAMES = gg.PARAM_NAMES
LIFETIMES_NAMES = {"p": "p", "q": "q", "gamma": "v"}
MONTHS, DISCOUNT, PERIODS_PER_MONTH = 12, 0.01, 4.345  # lifetimes' freq="W" factor


def main() -> None:
    parser = sampler_parser(__doc__.split("\n\n")[0])
    args = parser.parse_args()
    sampler = sampler_options(args)

    summary = load_dataset("cdnow-summary").set_index("customer_id")
    x, t_x, T, m = (summary[c].to_numpy(float) for c in ("frequency", "recency", "T", "monetary_value"))
    rep = x > 0
    data = gg.make_data(x, m)
    print(f"# Gamma-Gamma on CDNOW ({int(rep.sum())} repeat customers of {len(x):,}); NUTS {args.chains} chains x "
          f"{args.tune} warmup x {args.draws} draws, seed {args.seed}\n")

    from lifetimes import BetaGeoFitter, GammaGammaFitter

    ggf = GammaGammaFitter().fit(summary["frequency"][rep], summary["monetary_value"][rep])
    lt_se = ggf._compute_standard_errors()
    idata_map = fit(gg, data, method="map", priors=gg.GammaGammaPriors(kind="flat"), num_samples=4000,
                    seed=args.seed)
    t0 = time.perf_counter()
    g_idata = fit(gg, data, **sampler)
    g_wall = time.perf_counter() - t0
    hdi = az.hdi(g_idata, var_names=list(NAMES), hdi_prob=0.94)

    rows = [
        estimate_row(k, PUBLISHED[k], ggf.params_[LIFETIMES_NAMES[k]], lt_se[LIFETIMES_NAMES[k]], idata_map, g_idata,
                     hdi)
        for k in NAMES
    ]
    mean_spend_post = gg.expected_average_spend(*(g_idata.posterior[k].values for k in NAMES))
    pub_mean = gg.expected_average_spend(*(PUBLISHED[k] for k in NAMES))
    lo, hi = np.quantile(mean_spend_post, [0.03, 0.97])
    rows.append({
        "parameter": "E[Z] = p gamma/(q-1)", "published": pub_mean,
        "lifetimes MLE": float(gg.expected_average_spend(*(ggf.params_[LIFETIMES_NAMES[k]] for k in NAMES))),
        "lifetimes SE": np.nan,
        "MAP flat": float(gg.expected_average_spend(*(idata_map.attrs[f"map_{k}"] for k in NAMES))),
        "MAP Laplace sd": np.nan, "MAP %diff": np.nan, "NUTS mean": mean_spend_post.mean(),
        "NUTS sd": mean_spend_post.std(), "HDI 3%": lo, "HDI 97%": hi,
        "NUTS %diff": pct(mean_spend_post.mean(), pub_mean), "HDI has published": "(3-97% quantiles)",
    })
    print("## Gamma-Gamma estimates (%diff against the published MLE)\n")
    print(md_table(pd.DataFrame(rows).set_index("parameter")))
    gd = diagnose(g_idata, NAMES)
    print(f"\nGamma-Gamma NUTS: max R-hat {gd.max_rhat:.4f}, min ESS bulk/tail {gd.min_ess_bulk:.0f}/"
          f"{gd.min_ess_tail:.0f}, divergences {gd.divergences}, steps/draw "
          f"{float(g_idata.sample_stats['n_steps'].mean()):.2f}, {g_wall:.1f} s")

    # ---------------------------------------------------------------------------------------------- CLV
    bgf = BetaGeoFitter().fit(x, t_x, T)
    lt_clv = ggf.customer_lifetime_value(
        bgf, summary["frequency"], summary["recency"], summary["T"], summary["monetary_value"],
        time=MONTHS, discount_rate=DISCOUNT, freq="W",
    ).to_numpy(float)

    # Our formula at the two MLEs (plug-in): spend * P(alive) * discounted expected purchases.
    bg_mle = [bgf.params_[k] for k in bgnbd.PARAM_NAMES]
    gg_mle = [ggf.params_[LIFETIMES_NAMES[k]] for k in NAMES]
    ours_at_mle = (
        gg.conditional_expected_average_spend(x, m, *gg_mle)
        * bgnbd.probability_alive(x, t_x, T, *bg_mle)
        * clv_discount_factor(x, T, *bg_mle, months=MONTHS, periods_per_month=PERIODS_PER_MONTH,
                              discount_rate=DISCOUNT)
    )

    rfm = compress_rfm(summary, monetary_col="monetary_value")
    bg_idata = fit(bgnbd, bgnbd.make_data_from_compressed(rfm), **sampler)
    settings = PredictionSettings(clv_months=MONTHS, discount_rate=DISCOUNT, periods_per_month=PERIODS_PER_MONTH)
    cust = predict_customers(bg_idata, rfm, settings=settings, gamma_gamma_idata=g_idata)
    ours_mean = cust.loc[summary.index, "clv_mean"].to_numpy()
    q05 = cust.loc[summary.index, "clv_q05"].to_numpy()
    q95 = cust.loc[summary.index, "clv_q95"].to_numpy()

    # Posterior of the total CLV: per draw, the sum over customers (rows -> customers via rfm.inverse).
    th = posterior_draws(bg_idata, bgnbd.PARAM_NAMES)
    gth = posterior_draws(g_idata, NAMES)
    S = min(th["r"].size, gth["p"].size)
    bg_args = [th[k][:S, None] for k in bgnbd.PARAM_NAMES]
    p_alive_rows = bgnbd.probability_alive(rfm.frequency, rfm.recency, rfm.T, *bg_args)
    disc_rows = clv_discount_factor(rfm.frequency, rfm.T, *bg_args, months=MONTHS,
                                    periods_per_month=PERIODS_PER_MONTH, discount_rate=DISCOUNT)
    spend = gg.conditional_expected_average_spend(
        rfm.expand(rfm.frequency), rfm.monetary_value, *(gth[k][:S, None] for k in NAMES)
    )
    total_draws = (spend * rfm.expand(p_alive_rows * disc_rows)).sum(axis=1)
    t_lo, t_hi = np.quantile(total_draws, [0.05, 0.95])

    totals = pd.DataFrame([
        {"CLV (12 months, 1%/month)": "lifetimes customer_lifetime_value at the MLEs", "total $": lt_clv.sum(),
         "5%": np.nan, "95%": np.nan, "per customer $": lt_clv.mean()},
        {"CLV (12 months, 1%/month)": "ours, formula at the same MLEs", "total $": ours_at_mle.sum(),
         "5%": np.nan, "95%": np.nan, "per customer $": ours_at_mle.mean()},
        {"CLV (12 months, 1%/month)": "ours, posterior mean (NUTS, per-draw CLV)", "total $": total_draws.mean(),
         "5%": t_lo, "95%": t_hi, "per customer $": ours_mean.mean()},
    ]).set_index("CLV (12 months, 1%/month)")
    print("\n## 12-month CLV totals (2,357 customers; 90% interval of the total)\n")
    print(md_table(totals, fmt="{:,.2f}"))

    rel = (ours_mean - lt_clv) / lt_clv
    inside = (lt_clv >= q05) & (lt_clv <= q95)
    agree = pd.DataFrame([
        {"check": "max abs(ours at MLE - lifetimes) $", "value": np.abs(ours_at_mle - lt_clv).max()},
        {"check": "posterior mean vs lifetimes: median relative difference %", "value": 100 * np.median(rel)},
        {"check": "posterior mean vs lifetimes: 5% / 95% relative difference %",
         "value": f"{100 * np.quantile(rel, 0.05):.2f} / {100 * np.quantile(rel, 0.95):.2f}"},
        {"check": "Spearman(posterior mean, lifetimes)", "value": scipy.stats.spearmanr(ours_mean, lt_clv)[0]},
        {"check": "share of customers with lifetimes' CLV inside our 90% interval", "value": inside.mean()},
        {"check": "sum of per-customer means = mean of per-draw totals (rel. diff)",
         "value": abs(ours_mean.sum() - total_draws.mean()) / total_draws.mean()},
    ]).set_index("check")
    print("\n## Per-customer agreement\n")
    print(md_table(agree, fmt="{:.4g}"))

    top = np.argsort(-ours_mean)[:10]
    top_df = pd.DataFrame({
        "customer_id": summary.index.to_numpy()[top], "x": x[top], "t_x": t_x[top], "T": T[top],
        "zbar $": m[top], "lifetimes CLV": lt_clv[top], "ours mean": ours_mean[top], "ours 5%": q05[top],
        "ours 95%": q95[top],
    }).set_index("customer_id")
    print("\n## Ten highest posterior-mean CLVs\n")
    print(md_table(top_df, fmt="{:.2f}"))
    bd = diagnose(bg_idata, bgnbd.PARAM_NAMES)
    print(f"\nBG/NBD NUTS: max R-hat {bd.max_rhat:.4f}, min ESS bulk/tail {bd.min_ess_bulk:.0f}/{bd.min_ess_tail:.0f}, "
          f"divergences {bd.divergences}")


if __name__ == "__main__":
    main()
