"""Time ``summary_from_transactions`` against lifetimes' ``summary_data_from_transaction_data``.

Simulates transaction logs (BG/NBD + Gamma-Gamma with the CDNOW estimates of Fader, Hardie & Lee 2005, 78 weeks,
12-week acquisition window) of about ``--sizes`` transactions, puts them in date order like a real log, and times
the RFM summary at daily resolution (``freq="D"``, with amounts). Ours is timed ``--repeat`` times (best reported;
the first call also pays for fresh memory pages), lifetimes once, on the same frame, and the two results are
checked equal. Peak RSS is the process high-water mark during each call (the log itself included), reset before
each call through ``/proc/self/clear_refs`` where Linux allows it.

    python benchmarks/bench_summary.py --sizes 1e5,1e6,1e7 --lifetimes-max 1e6
"""

from __future__ import annotations

import argparse
import gc
import platform
import resource
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from btyd_ltv.data.simulate import simulate_transactions
from btyd_ltv.data.transactions import summary_from_transactions

PARAMS = dict(r=0.243, alpha=4.414, a=0.793, b=2.426, p=6.25, q=3.74, gamma=15.44, time_unit_days=7.0)


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _timed(fn: Callable[[], pd.DataFrame]) -> tuple[float, float, pd.DataFrame]:
    gc.collect()
    _reset_peak()
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, _peak_mb(), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1e5,1e6,1e7", help="approximate transaction counts, comma-separated")
    ap.add_argument("--lifetimes-max", type=float, default=1e6, help="time lifetimes up to this many transactions")
    ap.add_argument("--repeat", type=int, default=3, help="timings of ours per size (best reported)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    sizes = [int(float(s)) for s in args.sizes.split(",")]

    pilot = simulate_transactions(20_000, **PARAMS, seed=args.seed)
    per_customer = len(pilot) / 20_000
    exact = _reset_peak()

    rows = []
    for size in sizes:
        n_customers = max(1, round(size / per_customer))
        df = simulate_transactions(n_customers, **PARAMS, seed=args.seed + 1)
        df = df.sort_values("date", kind="stable", ignore_index=True)  # a real log comes in date order

        def ours() -> pd.DataFrame:
            return summary_from_transactions(df, "customer_id", "date", "amount", freq="D")

        runs = [_timed(ours) for _ in range(max(1, args.repeat))]
        t_ours = min(r[0] for r in runs)
        t_first, rss_ours, result = runs[0][0], max(r[1] for r in runs), runs[0][2]
        t_lt = rss_lt = None
        if len(df) <= args.lifetimes_max:
            from lifetimes.utils import summary_data_from_transaction_data

            t_lt, rss_lt, ref = _timed(
                lambda: summary_data_from_transaction_data(df, "customer_id", "date", "amount", freq="D")
            )
            pd.testing.assert_frame_equal(result, ref, check_exact=False, rtol=1e-12)
        rows.append((len(df), len(result), t_ours, t_first, t_lt, rss_ours, rss_lt))
        del df, result, runs
        gc.collect()

    print(f"\nRFM summary, freq='D' with amounts; {platform.processor() or platform.machine()}, "
          f"numpy {np.__version__}, pandas {pd.__version__}; ours = best of {args.repeat} (first call in "
          f"brackets), lifetimes timed once; peak RSS {'reset before each call' if exact else 'since start'}.\n")
    print("| transactions | customers | ours (s) | lifetimes (s) | lifetimes / ours | peak RSS ours (MB) "
          "| peak RSS lifetimes (MB) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n_tx, n_c, t_o, t_f, t_l, r_o, r_l in rows:
        lt = f"{t_l:.2f}" if t_l is not None else "not run"
        ratio = f"{t_l / t_o:.1f}x" if t_l is not None else "-"
        rl = f"{r_l:,.0f}" if r_l is not None else "-"
        print(f"| {n_tx:,} | {n_c:,} | {t_o:.3f} ({t_f:.3f}) | {lt} | {ratio} | {r_o:,.0f} | {rl} |")


if __name__ == "__main__":
    main()
