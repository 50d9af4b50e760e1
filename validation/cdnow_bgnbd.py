"""Validation: BG/NBD on the CDNOW 39-week calibration summary against the published MLE and lifetimes.

Checks
------
1. Point estimates: Fader, Hardie & Lee (2005, p. 279) published MLE; lifetimes' ``BetaGeoFitter`` MLE and
   standard errors; our MAP with flat priors (= MLE) and its Laplace sd; our NUTS posterior with the default
   priors (mean, sd, 94% HDI, % difference from the published MLE and whether the HDI contains it).
2. Prior sensitivity: the NUTS posterior mean under the default prior and under alternatives, the package's
   :class:`~btyd_ltv.models.bgnbd.BGNBDPriors` with other scales / Pareto parameters, plus independent
   half-normal priors on ``a`` and ``b`` (which ``BGNBDPriors`` cannot express: a small NumPyro model in this
   script, reusing :func:`btyd_ltv.models.bgnbd.log_likelihood`).
3. NUTS diagnostics of every fit: max R-hat, min bulk/tail ESS, divergences, leapfrog steps per draw.

Usage::

    python validation/cdnow_bgnbd.py                      # 4 chains x 1000 warmup x 1000 draws
    python validation/cdnow_bgnbd.py --draws 500 --tune 500 --seed 3
"""

from __future__ import annotations

import numpyro

numpyro.set_host_device_count(4)  # parallel chains on CPU: before any JAX computation

import time  # noqa: E402
import types  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

warnings.filterwarnings("ignore", category=FutureWarning)

import arviz as az  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpyro.distributions as dist  # noqa: E402

from btyd_ltv.data.compress import compress_rfm  # noqa: E402
from btyd_ltv.data.datasets import load_dataset  # noqa: E402
from btyd_ltv.inference import diagnose, fit  # noqa: E402
from btyd_ltv.models import bgnbd  # noqa: E402
from _common import md_table, pct, sampler_parser, sampler_options, estimate_row  # noqa: E402

# Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way", Marketing Science 24(2), p. 279.
PUBLISHED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
NAMES = bgnbd.PARAM_NAMES


# ------------------------------------------------------------------------------------ half-normal prior model


def _halfnormal_family(scale: float) -> types.ModuleType:
    """A model family (module-like) with ``a, b ~ HalfNormal(scale)`` independently and the package's default
    priors on ``r`` and ``alpha``; the likelihood is :func:`bgnbd.log_likelihood`."""
    defaults = bgnbd.BGNBDPriors()

    def model(data: bgnbd.BGNBDData, priors=None) -> None:
        r = numpyro.sample("r", dist.LogNormal(0.0, defaults.r_scale))
        alpha = numpyro.sample(
            "alpha", dist.LogNormal(defaults.alpha_loc + jnp.log(data.T_scale), defaults.alpha_scale)
        )
        a = numpyro.sample("a", dist.HalfNormal(scale))
        b = numpyro.sample("b", dist.HalfNormal(scale))
        numpyro.factor("loglik", bgnbd.log_likelihood(r, alpha, a, b, data))

    family = types.ModuleType(f"bgnbd_halfnormal_{scale:g}")
    family.model = model
    family.PARAM_NAMES = NAMES
    return family


def diagnostics_row(idata, seconds: float) -> dict:
    d = diagnose(idata, NAMES)
    return {
        "max R-hat": d.max_rhat,
        "min ESS bulk": d.min_ess_bulk,
        "min ESS tail": d.min_ess_tail,
        "divergences": d.divergences,
        "steps/draw": float(idata.sample_stats["n_steps"].mean()),
        "wall s": seconds,
    }


def main() -> None:
    parser = sampler_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--skip-sensitivity", action="store_true", help="only the main comparison")
    args = parser.parse_args()

    summary = load_dataset("cdnow-summary").set_index("customer_id")
    x, t_x, T = (summary[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    data = bgnbd.make_data_from_compressed(compress_rfm(summary))
    sampler = sampler_options(args)
    print(f"# BG/NBD on CDNOW (2,357 customers, 39-week calibration); NUTS {args.chains} chains x "
          f"{args.tune} warmup x {args.draws} draws, seed {args.seed}\n")

    # -- lifetimes MLE
    from lifetimes import BetaGeoFitter

    bgf = BetaGeoFitter().fit(x, t_x, T)
    lt_se = bgf._compute_standard_errors()

    # -- our MAP with flat priors: the MLE, Laplace sd = delta-method standard error
    idata_map = fit(bgnbd, data, method="map", priors=bgnbd.BGNBDPriors(kind="flat"), num_samples=4000,
                    seed=args.seed)

    # -- our NUTS, default priors
    t0 = time.perf_counter()
    idata = fit(bgnbd, data, **sampler)
    wall = time.perf_counter() - t0
    hdi = az.hdi(idata, var_names=list(NAMES), hdi_prob=0.94)

    rows = [estimate_row(k, PUBLISHED[k], bgf.params_[k], lt_se[k], idata_map, idata, hdi) for k in NAMES]
    print("## Estimates (default priors for NUTS; %diff against the published MLE)\n")
    print(md_table(pd.DataFrame(rows).set_index("parameter")))
    ll_map = float(bgnbd.log_likelihood(*(idata_map.attrs[f"map_{k}"] for k in NAMES), data))
    ll_pub = float(bgnbd.log_likelihood(*(PUBLISHED[k] for k in NAMES), data))
    ll_lt = -BetaGeoFitter._negative_log_likelihood(
        np.log([bgf.params_[k] for k in NAMES]), x, t_x, T, np.ones_like(x), 0.0
    ) * len(x)
    print(f"\nlog-likelihood: MAP flat {ll_map:.3f}, lifetimes MLE {ll_lt:.3f}, published (3 decimals) "
          f"{ll_pub:.3f}; MAP converged: {bool(idata_map.attrs['map_converged'])}")

    diag = {"default prior": diagnostics_row(idata, wall)}

    if not args.skip_sensitivity:
        variants: list[tuple[str, object, object]] = [
            ("default: r~LN(0,2), alpha/T~LN(log .2,2), a/(a+b)~U(0,1), a+b~LN(1,1)", bgnbd, None),
            ("wider r/alpha: LN scale 5", bgnbd, bgnbd.BGNBDPriors(r_scale=5.0, alpha_scale=5.0)),
            ("narrower r/alpha: LN scale 1", bgnbd, bgnbd.BGNBDPriors(r_scale=1.0, alpha_scale=1.0)),
            ("a+b ~ Pareto(m=0.1, alpha=1)", bgnbd, bgnbd.BGNBDPriors(kappa_dist="pareto", kappa_m=0.1, kappa_alpha=1.0)),
            ("a+b ~ Pareto(m=1, alpha=1) (pymc-marketing's prior)", bgnbd, bgnbd.BGNBDPriors(kappa_dist="pareto")),
            ("a+b ~ Pareto(m=1, alpha=0.5) (heavier tail)", bgnbd,
             bgnbd.BGNBDPriors(kappa_dist="pareto", kappa_alpha=0.5)),
            ("a+b ~ Pareto(m=1, alpha=2) (lighter tail)", bgnbd, bgnbd.BGNBDPriors(kappa_dist="pareto", kappa_alpha=2.0)),
            ("a, b ~ HalfNormal(1) independent", _halfnormal_family(1.0), None),
            ("a, b ~ HalfNormal(10) independent", _halfnormal_family(10.0), None),
        ]
        sens = []
        for label, family, priors in variants:
            if family is bgnbd and priors is None:
                fitted, seconds = idata, wall
            else:
                t0 = time.perf_counter()
                fitted = fit(family, data, priors=priors, **sampler)
                seconds = time.perf_counter() - t0
                diag[label] = diagnostics_row(fitted, seconds)
            row = {"prior": label}
            for k in NAMES:
                row[k] = float(fitted.posterior[k].mean())
            for k in NAMES:
                row[f"{k} %diff"] = pct(row[k], PUBLISHED[k])
            row["max abs %diff"] = max(abs(row[f"{k} %diff"]) for k in NAMES)
            lo_hi = az.hdi(fitted, var_names=list(NAMES), hdi_prob=0.94)
            row["94% HDIs containing published (of 4)"] = sum(
                float(lo_hi[k][0]) <= PUBLISHED[k] <= float(lo_hi[k][1]) for k in NAMES
            )
            sens.append(row)
        print("\n## Prior sensitivity (NUTS posterior means; %diff against the published MLE)\n")
        print(md_table(pd.DataFrame(sens).set_index("prior"), fmt="{:.3g}"))

    print("\n## NUTS diagnostics\n")
    print(md_table(pd.DataFrame(diag).T.rename_axis("fit"), fmt="{:.4g}"))


if __name__ == "__main__":
    main()
