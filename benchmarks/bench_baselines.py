"""Benchmark: training time of every customer-level model on CDNOW master (issue #6).

The data and split are those of ``validation/compare_cdnow.py`` (features at week 4 after each customer's first
purchase, target = spend over the next 52 weeks; 50% train / 20% validation / 30% test, seeded). For each model:
fit seconds (training customers, validation set for early stopping), predict seconds (test customers), and the
ratio of its fit time to the anchor measured in the same run: lifetimes' BG/NBD + Gamma-Gamma maximum-likelihood
fit on the same training customers (what a `lifetimes` user pays). Run it with the machine otherwise idle; pin
threads with ``taskset -c 0,1`` to measure "2 CPU cores" on a larger machine.

Usage::

    python benchmarks/bench_baselines.py                      # every model, full settings
    python benchmarks/bench_baselines.py --models dnn_ziln,gbdt_two_stage
"""

from __future__ import annotations

import numpyro

numpyro.set_host_device_count(4)

import argparse  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import pandas as pd  # noqa: E402

warnings.filterwarnings("ignore")

from btyd_ltv.compare import build_models, comparison_data, split_customers  # noqa: E402

MODELS = "bgnbd_gg,ziln,dnn_ziln,mtl_ziln,mean,gbdt_two_stage,gbdt,linear"


def lifetimes_anchor(train) -> float:
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    f = train.frame
    t0 = time.perf_counter()
    BetaGeoFitter(penalizer_coef=0.0).fit(f["frequency"], f["recency"], f["T"])
    rep = f[f["frequency"] > 0]
    GammaGammaFitter(penalizer_coef=0.0).fit(rep["frequency"], rep["monetary_value"])
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=MODELS)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--draws", type=int, default=1000)
    args = parser.parse_args()
    data = comparison_data("cdnow", seed=args.seed)
    split = split_customers(data.ids, seed=args.seed).to_numpy()
    train, valid, test = (data.take(split == k) for k in ("train", "valid", "test"))
    anchor = lifetimes_anchor(train)
    print(f"CDNOW master: {train.n:,} train / {valid.n:,} validation / {test.n:,} test customers; "
          f"{os.cpu_count()} CPUs visible; lifetimes BG/NBD + GG MLE fit: {anchor:.2f} s\n")
    rows = []
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    for name, model in build_models(names, seed=args.seed, num_chains=args.chains, num_warmup=args.tune,
                                    num_samples=args.draws).items():
        t0 = time.perf_counter()
        model.fit(train, valid)
        t1 = time.perf_counter()
        model.predict(test)
        t2 = time.perf_counter()
        rows.append({"model": name, "fit s": t1 - t0, "predict s": t2 - t1, "fit / lifetimes MLE": (t1 - t0) / anchor})
        print(f"{name}: fit {t1 - t0:.1f} s, predict {t2 - t1:.1f} s", flush=True)
    table = pd.DataFrame(rows).set_index("model")
    print("\n| model | fit s | predict s | fit / lifetimes MLE |\n|---|---|---|---|")
    for name, r in table.iterrows():
        print(f"| {name} | {r['fit s']:.1f} | {r['predict s']:.1f} | {r['fit / lifetimes MLE']:.2g}x |")


if __name__ == "__main__":
    main()
