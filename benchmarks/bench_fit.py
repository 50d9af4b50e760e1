"""Benchmark: BG/NBD posterior on CDNOW and simulated 100k / 1M customers, against lifetimes and pymc-marketing.

Protocol (issue #3): 4 chains x 1000 warmup x 1000 draws; simulated data at the CDNOW MLE (r=0.243,
alpha=4.414, a=0.793, b=2.426) with T uniform on [27, 39] weeks on a 1/7-week grid, like CDNOW. For every run
the wall time, min bulk ESS over (r, alpha, a, b), ESS/second, leapfrog steps per draw and divergences are
printed. Each btyd_ltv fit runs in a fresh Python process:

- ``cold``: compile included, no persistent cache (what a first run costs);
- ``cached``: second run with the persistent JAX compilation cache warm;
- ``compile``: the same process with 1 warmup + 1 draw (compile + fixed costs), so ``cold - compile`` is the
  sampling time with compile excluded.

pymc-marketing's BetaGeoModel (default priors, full per-customer data, as its users call it) runs with its
default ``cores`` (cpu_count // 2) and with ``cores=2``; above ``--pymc-max`` customers it is extrapolated from
its measured gradient cost and the steps per draw of its largest real run, and labelled as such.

Usage::

    python benchmarks/bench_fit.py                      # cdnow, 1e5, 1e6 (about 20 minutes on 2 cores)
    python benchmarks/bench_fit.py --sizes cdnow --out benchmarks/results/fit_cdnow.md
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TRUTH = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
NAMES = ("r", "alpha", "a", "b")


def load_data(size: str):
    """(summary DataFrame indexed by customer_id, label)."""
    from btyd_ltv.data.datasets import load_cdnow_summary
    from btyd_ltv.data.simulate import cdnow_like_T, simulate_bgnbd

    if size == "cdnow":
        return load_cdnow_summary().set_index("customer_id")[["frequency", "recency", "T"]], "CDNOW (2,357)"
    n = int(float(size))
    summ = simulate_bgnbd(n, T=cdnow_like_T(n, seed=1), seed=1, time_grid=1 / 7, **TRUTH)
    return summ.set_index("customer_id"), f"simulated {n:,}"


# ------------------------------------------------------------------------------------------------ worker


def worker(size: str, num_warmup: int, num_samples: int, precision: str, chain_method: str) -> dict:
    """Runs in a fresh process: btyd_ltv fit from summary to posterior; prints JSON."""
    t_start = time.perf_counter()
    if chain_method == "parallel":
        import numpyro

        numpyro.set_host_device_count(4)
    summary, _ = load_data(size)
    t0 = time.perf_counter()
    from btyd_ltv.data.compress import compress_rfm
    from btyd_ltv.inference import diagnose, fit
    from btyd_ltv.models import bgnbd
    from btyd_ltv.workflow import row_dtype

    rfm = compress_rfm(summary)
    dtype = row_dtype(precision, int((rfm.frequency > 0).sum()))
    data = bgnbd.make_data_from_compressed(rfm, dtype=dtype)
    idata = fit(bgnbd, data, num_chains=4, num_warmup=num_warmup, num_samples=num_samples, seed=0,
                chain_method=chain_method, progress_bar=False, warn=False)
    wall = time.perf_counter() - t0
    out = {"wall": wall, "process": time.perf_counter() - t_start, "rows": rfm.n_rows,
           "dtype": str(dtype.__name__)}
    if num_samples > 1:
        d = diagnose(idata, NAMES)
        out.update(
            min_ess=d.min_ess_bulk, divergences=d.divergences, max_rhat=d.max_rhat,
            steps=float(idata.sample_stats["n_steps"].mean()),
            means={k: float(idata.posterior[k].mean()) for k in NAMES},
        )
    import resource

    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def run_worker(size: str, *, warmup=1000, samples=1000, precision="auto", chain_method="parallel",
               cache_dir: str | None = None) -> dict:
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)
    if cache_dir is None:
        env["BTYD_LTV_NO_CACHE"] = "1"
        code = "import json,sys; sys.path.insert(0, %r); import bench_fit as b; " % str(Path(__file__).parent)
    else:
        code = ("import json,sys; sys.path.insert(0, %r); from btyd_ltv.inference import enable_compilation_cache; "
                "enable_compilation_cache(%r); import bench_fit as b; " % (str(Path(__file__).parent), cache_dir))
    code += f"print('RESULT', json.dumps(b.worker({size!r}, {warmup}, {samples}, {precision!r}, {chain_method!r})))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"worker failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")


# ------------------------------------------------------------------------------------------------ anchors


def run_lifetimes(summary) -> dict:
    from lifetimes import BetaGeoFitter

    t0 = time.perf_counter()
    bgf = BetaGeoFitter().fit(summary["frequency"], summary["recency"], summary["T"])
    return {"wall": time.perf_counter() - t0, "means": {k: float(bgf.params_[k]) for k in NAMES}}


def _pymc_frame(summary):
    import pandas as pd

    return pd.DataFrame({"customer_id": range(len(summary)), "frequency": summary["frequency"].to_numpy(),
                         "recency": summary["recency"].to_numpy(), "T": summary["T"].to_numpy()})


def run_pymc(summary, cores: int) -> dict:
    import arviz as az
    from pymc_marketing.clv import BetaGeoModel

    t0 = time.perf_counter()
    model = BetaGeoModel(data=_pymc_frame(summary))
    idata = model.fit(chains=4, draws=1000, tune=1000, cores=cores, random_seed=0, progressbar=False)
    wall = time.perf_counter() - t0
    ess = az.ess(idata, var_names=list(NAMES))
    return {"wall": wall, "min_ess": float(min(float(ess[k]) for k in NAMES)),
            "divergences": int(idata.sample_stats["diverging"].sum()),
            "steps": float(idata.sample_stats["n_steps"].mean()),
            "means": {k: float(idata.posterior[k].mean()) for k in NAMES}}


def pymc_gradient_seconds(summary, repeats: int = 20) -> float:
    """Seconds per logp+gradient evaluation of pymc-marketing's BetaGeoModel on this data."""
    from pymc_marketing.clv import BetaGeoModel

    model = BetaGeoModel(data=_pymc_frame(summary))
    model.build_model()
    m = model.model
    fn = m.logp_dlogp_function(ravel_inputs=True)
    fn.set_extra_values({})
    point = m.initial_point()
    x = np.concatenate([np.ravel(point[v.name]) for v in fn._grad_vars])
    fn(x)
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn(x)
    return (time.perf_counter() - t0) / repeats


# ------------------------------------------------------------------------------------------------ main


def fmt(v, spec=".1f"):
    return "" if v is None else format(v, spec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="cdnow,1e5,1e6")
    ap.add_argument("--pymc-max", type=float, default=1e5, help="largest data set pymc-marketing really samples")
    ap.add_argument("--skip-pymc", action="store_true")
    ap.add_argument("--out", type=Path, default=None, help="also write the markdown table here")
    args = ap.parse_args()

    import platform

    lines = [f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
             f"Python {platform.python_version()}. Protocol: 4 chains x 1000 warmup x 1000 draws.", ""]
    header = ("| data | unique rows | run | wall (s) | min bulk ESS | ESS/s | steps/draw | divergences | "
              "vs pymc-marketing best |")
    lines += [header, "|" + "---|" * 9]
    pymc_steps = None
    notes: list[str] = []
    for size in args.sizes.split(","):
        summary, label = load_data(size)
        n = len(summary)
        rows = []
        cold = run_worker(size)
        comp = run_worker(size, warmup=1, samples=1)
        with tempfile.TemporaryDirectory() as cache:
            run_worker(size, cache_dir=cache)
            cached = run_worker(size, cache_dir=cache)
        f64 = run_worker(size, precision="float64") if cold["dtype"] != "float64" else None
        seq = run_worker(size, chain_method="sequential") if size != "1e6" else None
        vec = run_worker(size, chain_method="vectorized") if size != "1e6" else None
        lt = run_lifetimes(summary)
        anchors = []
        if not args.skip_pymc:
            if n <= args.pymc_max:
                if n <= 10_000:
                    anchors.append(("pymc-marketing (default cores)", run_pymc(summary, os.cpu_count() // 2 or 1)))
                pm2 = run_pymc(summary, 2)
                anchors.append(("pymc-marketing cores=2", pm2))
                pymc_steps = pm2["steps"]
            else:
                g = pymc_gradient_seconds(summary)
                steps = pymc_steps or 5.8
                est = 4 * 2000 * steps * g / 2
                anchors.append((f"pymc-marketing cores=2, EXTRAPOLATED ({g * 1e3:.0f} ms/grad x {steps:.1f} "
                                "steps x 8000 it / 2 cores)", {"wall": est, "min_ess": None, "steps": steps,
                                                               "divergences": None, "extrapolated": True}))
        best = min((a[1]["wall"] for a in anchors), default=None)

        def row(name, r, wall=None):
            wall = r["wall"] if wall is None else wall
            ess = r.get("min_ess")
            ratio = f"{best / wall:.1f}x faster" if best else ""
            rows.append(f"| {label} | {cold['rows']:,} | {name} | {wall:.1f} | {fmt(ess, '.0f')} | "
                        f"{fmt(ess / wall if ess else None)} | {fmt(r.get('steps'), '.2f')} | "
                        f"{'' if r.get('divergences') is None else r['divergences']} | {ratio} |")

        row(f"btyd_ltv NUTS, compile included ({cold['dtype']} rows, parallel)", cold)
        row("btyd_ltv NUTS, compile excluded (cold - compile-only run)", cold, cold["wall"] - comp["wall"])
        row("btyd_ltv NUTS, persistent compile cache warm", cached)
        if f64:
            row("btyd_ltv NUTS, float64 rows, compile included", f64)
        if seq:
            row("btyd_ltv NUTS, chain_method=sequential, compile included", seq)
        if vec:
            row("btyd_ltv NUTS, chain_method=vectorized, compile included", vec)
        for name, r in anchors:
            row(name, r)
        rows.append(f"| {label} | | lifetimes MLE (point estimate, no posterior) | {lt['wall']:.1f} | | | | | |")
        lines += rows
        means = " ".join(f"{k}={cold['means'][k]:.4g}" for k in NAMES)
        lines_note = f"- {label}: btyd_ltv posterior means {means}; lifetimes MLE " + " ".join(
            f"{k}={lt['means'][k]:.4g}" for k in NAMES) + f"; btyd_ltv peak RSS {cold['peak_rss_mb']:.0f} MB"
        if f64:
            lines_note += "; float64-row posterior means " + " ".join(f"{k}={f64['means'][k]:.4g}" for k in NAMES)
        notes.append(lines_note)
        print("\n".join(rows + [lines_note]), flush=True)
    text = "\n".join(lines + [""] + notes)
    print("\n" + text)
    if args.out:
        from btyd_ltv.io import write_text

        write_text(text + "\n", args.out)


if __name__ == "__main__":
    main()
