"""Benchmark: per-customer predictions with intervals for 1M customers without a draws x customers array.

Fits BG/NBD and Gamma-Gamma (NUTS, 4 x 1000 draws = 4,000 draws) on 1M simulated customers (CDNOW MLE,
T on a 1/7-week grid, spend from the Gamma-Gamma model at Fader & Hardie 2013's estimates), then times
:func:`btyd_ltv.predict.predict_customers`: P(alive), expected purchases over 52 weeks and 12-month CLV, each
with mean and 5/50/95% quantiles over all 4,000 draws, and reports the prediction's peak traced memory
(tracemalloc: numpy's heap) and the process peak RSS. A materialised 4,000 x 1M float64 array would be 32 GB
per quantity. lifetimes' point predictions (no intervals) are timed on the same customers for reference.

Usage::

    python benchmarks/bench_predict.py [--customers 1e6] [--max-draws N]
"""

from __future__ import annotations

import argparse
import os
import resource
import time
import tracemalloc

import numpyro

numpyro.set_host_device_count(4)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--customers", type=float, default=1e6)
    ap.add_argument("--max-draws", type=int, default=None)
    ap.add_argument("--skip-lifetimes", action="store_true")
    args = ap.parse_args()
    n = int(args.customers)

    from btyd_ltv.data.compress import compress_rfm
    from btyd_ltv.data.simulate import cdnow_like_T, simulate_bgnbd, simulate_gamma_gamma
    from btyd_ltv.inference import fit
    from btyd_ltv.models import bgnbd
    from btyd_ltv.models import gamma_gamma as gg
    from btyd_ltv.predict import PredictionSettings, predict_customers
    from btyd_ltv.workflow import row_dtype

    summary = simulate_bgnbd(n, 0.243, 4.414, 0.793, 2.426, T=cdnow_like_T(n, seed=1), seed=1, time_grid=1 / 7)
    summary["monetary_value"] = simulate_gamma_gamma(summary["frequency"].to_numpy(), 6.25, 3.74, 15.44, seed=2)
    summary = summary.set_index("customer_id")
    rfm = compress_rfm(summary, monetary_col="monetary_value")
    t0 = time.perf_counter()
    bg = fit(bgnbd, bgnbd.make_data_from_compressed(rfm, dtype=row_dtype("auto", rfm.n_rows)), seed=0,
             progress_bar=False, warn=False)
    g = fit(gg, gg.make_data(summary["frequency"], summary["monetary_value"]), seed=0, progress_bar=False,
            warn=False)
    t_fit = time.perf_counter() - t0

    settings = PredictionSettings(horizon=52.0, clv_months=12, discount_rate=0.01, periods_per_month=30 / 7,
                                  max_draws=args.max_draws)
    tracemalloc.start()
    tracemalloc.reset_peak()
    t0 = time.perf_counter()
    out = predict_customers(bg, rfm, settings=settings, gamma_gamma_idata=g)
    t_pred = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    t_lt = None
    if not args.skip_lifetimes:
        from lifetimes import BetaGeoFitter, GammaGammaFitter

        bgf = BetaGeoFitter()
        bgf.params_ = __import__("pandas").Series({k: float(bg.posterior[k].mean()) for k in bgnbd.PARAM_NAMES})
        bgf.predict = bgf.conditional_expected_number_of_purchases_up_to_time  # alias lifetimes sets in fit()
        ggf = GammaGammaFitter()
        # lifetimes calls the Gamma-Gamma scale parameter "v"
        ggf.params_ = __import__("pandas").Series(
            {"p": float(g.posterior["p"].mean()), "q": float(g.posterior["q"].mean()),
             "v": float(g.posterior["gamma"].mean())})
        t0 = time.perf_counter()
        bgf.conditional_probability_alive(summary["frequency"], summary["recency"], summary["T"])
        bgf.conditional_expected_number_of_purchases_up_to_time(52, summary["frequency"], summary["recency"],
                                                                summary["T"])
        ggf.customer_lifetime_value(bgf, summary["frequency"], summary["recency"], summary["T"],
                                    summary["monetary_value"], time=12, discount_rate=0.01, freq="W")
        t_lt = time.perf_counter() - t0

    draws = out.attrs["num_draws"]
    print(f"Machine: {os.cpu_count()} CPU cores. {n:,} customers, {rfm.n_rows:,} unique (x, t_x, T) rows, "
          f"{draws:,} posterior draws; fit (BG/NBD + Gamma-Gamma NUTS) {t_fit:.1f} s.\n")
    print("| step | wall (s) | peak memory |")
    print("|---|---|---|")
    print(f"| btyd_ltv predict_customers: P(alive), E[purchases 52 wk], CLV 12 mo, mean + 5/50/95% over "
          f"{draws:,} draws | {t_pred:.1f} | {peak / 2**20:,.0f} MB traced (process peak RSS {rss:,.0f} MB) |")
    print(f"| a materialised draws x customers float64 array, per quantity | | "
          f"{draws * n * 8 / 2**30:,.1f} GB |")
    if t_lt is not None:
        print(f"| lifetimes point predictions (posterior means plugged in, no intervals) | {t_lt:.1f} | |")
    print(f"\nCLV total (posterior mean sum): {out['clv_mean'].sum():,.0f}; "
          f"mean P(alive) {out['p_alive_mean'].mean():.3f}")


if __name__ == "__main__":
    main()
