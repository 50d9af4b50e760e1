"""Benchmark: hierarchical cohort-curve fit on a large simulated portfolio (issue #5's performance target).

Target protocol: about 1,000 cohorts x 365 ages (365k cohort x age cells, 1k-100k installs per cohort), NUTS
4 chains x 1000 warmup x 1000 draws, 0 divergences, R-hat <= 1.01 on every hyper-parameter, under 15 minutes on
the 2-core CPU. Printed: cells, the likelihood's gradient cost (compiled, per evaluation), compile time, sampling
time, leapfrog steps per draw, divergences, max R-hat, min bulk ESS over the hyper-parameters and ESS/second.
``--mass blocks`` adapts a dense mass matrix on the blocks of :func:`btyd_ltv.models.cohort_curve.mass_blocks` and a
diagonal one elsewhere. Neither lifetimes nor pymc-marketing has a cohort-curve model, so there is no anchor ratio here; the gradient cost
per cell is the number that carries over between machines.

Usage::

    python benchmarks/bench_curves.py                                  # the full protocol
    python benchmarks/bench_curves.py --chains 2 --warmup 300 --draws 300 --likelihood normal
    python benchmarks/bench_curves.py --gradient-only --precision float32  # the gradient cost alone
    python benchmarks/bench_curves.py --warmup 200 --draws 200 --precision float32 --mass blocks  # shortened
"""

from __future__ import annotations

import platform
import time

import numpy as np
import pandas as pd
from _portfolio import portfolio, portfolio_parser


def main() -> None:
    ap = portfolio_parser(days=50, warmup=1000, draws=1000, precision="float64")
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--likelihood", default="normal", choices=["normal", "beta-binomial"])
    ap.add_argument("--retention", default="bgbb")
    ap.add_argument("--warm-start", nargs="?", const="diag", default=False, choices=["diag", "dense"],
                    help="start NUTS from inference.find_warm_start, in curvature-scaled coordinates (diag) or in "
                         "the decorrelated coordinates of the Laplace approximation (dense)")
    ap.add_argument("--relative-parents", action="store_true",
                    help="sample group elements relative to their parent, not anchored on their children")
    ap.add_argument("--max-tree-depth", type=int, default=10,
                    help="NUTS tree-depth cap (2^depth - 1 leapfrog steps per draw at most)")
    ap.add_argument("--warmup-tree-depth", type=int, default=None,
                    help="a different tree-depth cap during warmup (default: --max-tree-depth)")
    ap.add_argument("--gradient-only", action="store_true", help="time the gradient and stop (no NUTS run)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save", default=None, metavar="PATH",
                    help="write the posterior (hyper-parameters and sample stats) to this NetCDF file")
    args = ap.parse_args()
    warmup_depth = args.warmup_tree_depth or args.max_tree_depth

    import numpyro

    numpyro.set_host_device_count(args.chains)
    import jax
    from numpyro.infer.util import initialize_model

    import arviz as az

    from btyd_ltv.inference import diagnose, fit
    from btyd_ltv.models import cohort_curve as cc

    t0 = time.perf_counter()
    table = portfolio(args, seed=args.seed)
    data, _ = cc.make_data(table, group_cols=("app", "campaign"), retention=args.retention,
                           likelihood=args.likelihood, precision=args.precision,
                           anchored=not args.relative_parents, level_offsets=not args.no_level_offsets)
    C, T = data.observed.shape
    cells = int(data.observed.sum())
    print(f"{C} cohorts x {T} ages = {cells:,} observed cells; simulated in {time.perf_counter() - t0:.1f} s; "
          f"{platform.processor() or platform.machine()}, {jax.default_backend()}, {jax.local_device_count()} "
          f"device(s); likelihood {args.likelihood}, retention {args.retention}, precision {args.precision}, "
          f"mass {args.mass}, warm start {args.warm_start}, target accept {args.target_accept}, max tree depth "
          f"{warmup_depth} in warmup and {args.max_tree_depth} in sampling, "
          f"{'relative' if args.relative_parents else 'anchored'} parents, level offsets "
          f"{'off' if args.no_level_offsets else 'on'}")

    info = initialize_model(jax.random.PRNGKey(0), cc.model, model_kwargs={"data": data},
                            init_strategy=cc.init_strategy(data))
    grad = jax.jit(jax.value_and_grad(info.potential_fn))
    t0 = time.perf_counter()
    jax.block_until_ready(grad(info.param_info.z))
    compile_s = time.perf_counter() - t0
    n, times = 10, []
    for _ in range(3):  # best of three batches: the least disturbed by other work on the machine
        t0 = time.perf_counter()
        for _ in range(n):
            jax.block_until_ready(grad(info.param_info.z))
        times.append((time.perf_counter() - t0) / n)
    grad_ms = min(times) * 1e3
    print(f"gradient: {grad_ms:.2f} ms per evaluation ({grad_ms * 1e6 / cells:.1f} ns per cell), compile "
          f"{compile_s:.1f} s")
    if args.gradient_only:
        return

    t0 = time.perf_counter()
    idata = fit(cc, data, num_chains=args.chains, num_warmup=args.warmup, num_samples=args.draws, seed=args.seed,
                dense_mass=cc.mass_blocks(data) if args.mass == "blocks" else False,
                target_accept_prob=args.target_accept, warm_start=args.warm_start,
                max_tree_depth=(warmup_depth, args.max_tree_depth),
                progress_bar=args.progress, warn=False)
    wall = time.perf_counter() - t0
    diag = diagnose(idata, cc.param_names(data))
    steps = float(np.asarray(idata.sample_stats["n_steps"]).mean())
    print(f"NUTS {args.chains} chains x {args.warmup} warmup x {args.draws} draws: {wall:.0f} s "
          f"({wall / 60:.1f} min) including compile; {steps:.0f} leapfrog steps per draw; divergences "
          f"{diag.divergences}; max R-hat {diag.max_rhat:.3f}; min bulk ESS {diag.min_ess_bulk:.0f} "
          f"({diag.min_ess_bulk / wall:.2f} ESS/s); {diag.at_max_depth} of {args.chains * args.draws} draws at the "
          f"tree-depth cap")
    if args.warm_start:
        unscaled, scaled = idata.attrs["warm_start_potentials"]
        print(f"warm start: {idata.attrs['warm_start_iterations']} L-BFGS iterations; potential {unscaled:,.1f} "
              f"after the unscaled search, {scaled:,.1f} after the curvature-scaled one")
    stats = idata.sample_stats
    for c in range(args.chains):  # a chain that disagrees with the others shows here
        print(f"  chain {c}: {int(np.asarray(stats['diverging'][c]).sum())} divergences, "
              f"{float(np.asarray(stats['n_steps'][c]).mean()):.0f} steps per draw, step size "
              f"{float(np.asarray(stats['step_size'][c]).mean()):.3g}")
    if args.warmup + args.draws < 2000:  # a shortened run: what the full protocol would cost at this step count
        per_iteration = (wall - compile_s) / (args.warmup + args.draws)
        print(f"extrapolated to 1000 warmup + 1000 draws at the same steps per draw: "
              f"{(compile_s + 2000 * per_iteration) / 60:.0f} min (an extrapolation, not a measurement)")
    summary = az.summary(idata, var_names=cc.param_names(data), kind="diagnostics", round_to=4)
    print("lowest bulk ESS:\n" + summary.sort_values("ess_bulk").head(5).to_string())
    worst = summary.sort_values("r_hat", ascending=False).head(5).index  # scalar sites: index = site name
    chain_means = pd.DataFrame({v: idata.posterior[v].mean("draw").values for v in worst},
                               index=[f"chain {c}" for c in range(args.chains)]).T
    print("highest R-hat and each chain's mean (where chains disagree):\n"
          + pd.concat([summary.loc[worst, ["r_hat"]], chain_means], axis=1).to_string())
    if args.save:
        from btyd_ltv.io import write_netcdf

        write_netcdf(az.InferenceData(posterior=idata.posterior[cc.param_names(data)],
                                      sample_stats=idata.sample_stats), args.save)
        print(f"posterior written to {args.save}")


if __name__ == "__main__":
    main()
