"""Diagnostic: where NUTS spends its leapfrog steps on a simulated cohort-curve portfolio.

Fits one chain of the hierarchical cohort-curve model (``--likelihood normal``) and prints the leapfrog steps of
each quarter of warmup, the steps per draw, divergences and the adapted step size, then the most correlated
pairs of latent coordinates (the directions a diagonal mass matrix cannot follow). The steps per draw of the
sBG shape parameters before and after sampling ``log_kappa`` as ``log a`` (CHANGELOG) came from this script.
``--hold-sds VALUE`` conditions every between-group sd on ``VALUE``: the steps the rest of the posterior needs.

Usage::

    python benchmarks/curve_geometry.py --days 10 --warmup 400 --draws 300   # 200 cohorts x 365 ages
    python benchmarks/curve_geometry.py --days 10 --hold-sds 0.2
"""

from __future__ import annotations

import time

import numpy as np
from _portfolio import portfolio, portfolio_parser


def main() -> None:
    ap = portfolio_parser(days=10, warmup=400, draws=300, precision="float32")
    ap.add_argument("--pairs", type=int, default=10, help="most correlated coordinate pairs to print")
    ap.add_argument("--hold-sds", type=float, default=None, metavar="VALUE",
                    help="condition every between-group sd on VALUE: the geometry given the sds")
    ap.add_argument("--no-regularize", action="store_true",
                    help="adapt the mass matrix without Stan's shrinkage of the variances towards 1e-3")
    args = ap.parse_args()

    import jax
    from numpyro import handlers
    from numpyro.infer import MCMC, NUTS
    from numpyro.infer.initialization import init_to_value

    from btyd_ltv.models import cohort_curve as cc

    table = portfolio(args)
    data, _ = cc.make_data(table, group_cols=("app", "campaign"), retention="bgbb", likelihood="normal",
                           precision=args.precision, level_offsets=not args.no_level_offsets)
    print(f"{data.observed.shape[0]} cohorts x {data.observed.shape[1]} ages, mass {args.mass}, between-group sds "
          f"{'held at ' + str(args.hold_sds) if args.hold_sds is not None else 'sampled'}, level offsets "
          f"{'off' if args.no_level_offsets else 'on'}")
    model, init = cc.model, cc.init_strategy(data)
    if args.hold_sds is not None:
        held = {n: args.hold_sds for n in cc.param_names(data) if "_sd_" in n}
        model = handlers.condition(cc.model, data=held)
        init = init_to_value(values={k: v for k, v in cc.init_values(data).items() if k not in held})
    kernel = NUTS(model, target_accept_prob=args.target_accept, init_strategy=init,
                  dense_mass=cc.mass_blocks(data) if args.mass == "blocks" else False,
                  regularize_mass_matrix=not args.no_regularize)
    mcmc = MCMC(kernel, num_warmup=args.warmup, num_samples=args.draws, num_chains=1, progress_bar=args.progress)
    t0 = time.perf_counter()
    mcmc.warmup(jax.random.PRNGKey(0), data=data, collect_warmup=True, extra_fields=("num_steps",))
    steps = np.asarray(mcmc.get_extra_fields()["num_steps"])
    t1 = time.perf_counter()
    print(f"warmup {t1 - t0:.0f} s, {steps.sum()} leapfrog steps; by quarter "
          f"{[int(q.sum()) for q in np.array_split(steps, 4)]}")
    mcmc.run(jax.random.PRNGKey(1), data=data, extra_fields=("num_steps", "diverging"))
    extra = mcmc.get_extra_fields()
    print(f"sampling {time.perf_counter() - t1:.0f} s, {np.asarray(extra['num_steps']).mean():.1f} steps per draw, "
          f"{int(np.asarray(extra['diverging']).sum())} divergences, step size "
          f"{float(mcmc.last_state.adapt_state.step_size):.4f}")
    samples = mcmc.get_samples()
    import arviz as az

    ess = {n: float(np.min(az.ess(az.convert_to_dataset({n: np.asarray(samples[n])[None]}))[n].values))
           for n in cc.param_names(data) if n in samples}  # the hyper-parameters: portfolio means and sds
    low = sorted(ess, key=ess.get)[:5]
    print("lowest bulk ESS of the hyper-parameters (one chain): " + ", ".join(f"{n} {ess[n]:.0f}" for n in low))
    names, cols = [], []
    for site in sorted(samples):
        if not (site.endswith("_raw") or "_sd_" in site or site.endswith("_mu") or site in cc.NOISE_PARAMS):
            continue
        if f"{site}_raw" in samples:  # an anchored mean: a function of its own latent site
            continue
        v = np.asarray(samples[site]).reshape(args.draws, -1)
        v = np.log(v) if "_sd_" in site else v
        for j in range(v.shape[1]):
            names.append(f"{site}[{j}]")
            cols.append(v[:, j])
    sd = np.stack(cols, 1).std(axis=0)
    print("smallest posterior sds of latent coordinates (NumPyro's mass-matrix shrinkage adds 1e-3 x 5 / (n + 5) to "
          "each adapted variance): " + ", ".join(f"{names[i]} {sd[i]:.2g}" for i in np.argsort(sd)[:5]))
    corr = np.corrcoef(np.stack(cols, 1).T)
    iu = np.triu_indices_from(corr, 1)
    order = np.argsort(-np.abs(corr[iu]))[: args.pairs]
    print("most correlated latent coordinates:")
    for o in order:
        i, j = iu[0][o], iu[1][o]
        print(f"  {names[i]:32s} {names[j]:32s} {corr[i, j]:+.3f}")


if __name__ == "__main__":
    main()
