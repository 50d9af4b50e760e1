"""Validation: predict each CDNOW customer's spend in weeks 40-78 from calibration-period features (weeks 1-39).

Models, all scored on the same held-out customers by :func:`btyd_ltv.metrics.report`:

- ``ZILN``: the Bayesian zero-inflated log-normal regression (:mod:`btyd_ltv.models.ziln`) on the features of
  :func:`btyd_ltv.data.features.spend_features` (frequency, recency, T, and log1p of mean repeat spend,
  first-purchase value and calibration spend);
- ``ZILN + cohort``: the same with partially pooled intercepts by acquisition week (13 cohorts);
- ``BG/NBD x GG``: BG/NBD and Gamma-Gamma fitted to the training customers' calibration summaries, predicting
  holdout spend = E[purchases in 39 weeks] x E[spend per purchase] with its posterior predictive
  (:func:`btyd_ltv.predict.predict_spend`); it does not use the training targets;
- ``first purchase``: first-purchase value x (sum of training targets / sum of training first-purchase values).

Customers are split at random (``--seed``) into training and test halves; the split is the same for every model.
The table is the test half. A second table compares the predicted total holdout spend of the test customers
with the actual total.

Usage::

    python validation/cdnow_ziln.py                    # CDNOW master, 23,570 customers
    python validation/cdnow_ziln.py --dataset cdnow    # the 1/10 sample
"""

from __future__ import annotations

import numpyro

numpyro.set_host_device_count(4)  # parallel chains on CPU: before any JAX computation

import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

warnings.filterwarnings("ignore", category=FutureWarning)

from _common import md_table, sampler_parser  # noqa: E402

from btyd_ltv.data.datasets import DATASETS, load_dataset  # noqa: E402
from btyd_ltv.data.features import spend_features  # noqa: E402
from btyd_ltv.metrics import report  # noqa: E402
from btyd_ltv.models import ziln  # noqa: E402
from btyd_ltv.predict import predict_spend  # noqa: E402
from btyd_ltv.workflow import FitOptions, fit_btyd, fit_ziln, predict_ziln  # noqa: E402

FEATURES = ["frequency", "recency", "T", "monetary_value", "first_purchase_value", "calibration_spend"]
LOG1P = ["monetary_value", "first_purchase_value", "calibration_spend"]
TARGET = "holdout_spend"


def main() -> None:
    parser = sampler_parser(__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="cdnow-master", choices=["cdnow-master", "cdnow"])
    parser.add_argument("--test-fraction", type=float, default=0.5)
    parser.add_argument("--max-draws", type=int, default=1000, help="posterior draws used for predictions")
    args = parser.parse_args()
    info = DATASETS[args.dataset]
    table = spend_features(load_dataset(args.dataset), info.customer_col, info.date_col, info.amount_col,
                           calibration_end=info.calibration_end, observation_end=info.observation_end,
                           freq=info.freq, freq_multiplier=info.freq_multiplier)
    horizon = (pd.Timestamp(info.observation_end) - pd.Timestamp(info.calibration_end)).days / info.freq_multiplier
    rng = np.random.default_rng(args.seed)
    test_mask = rng.random(len(table)) < args.test_fraction
    train, test = table[~test_mask], table[test_mask]
    print(f"{args.dataset}: {len(table):,} customers, train {len(train):,} / test {len(test):,} (seed {args.seed}); "
          f"target = spend {info.calibration_end} .. {info.observation_end} ({horizon:g} weeks); "
          f"{(test[TARGET] > 0).mean():.1%} of test customers spend")
    options = FitOptions(num_chains=args.chains, num_warmup=args.tune, num_samples=args.draws, seed=args.seed,
                         progress_bar=False)
    y = test[TARGET].to_numpy()
    models: dict[str, object] = {}
    totals = []

    for name, group in (("ZILN", None), ("ZILN + cohort", "cohort")):
        t0 = time.perf_counter()
        fitted = fit_ziln(train, TARGET, FEATURES, group=group, log1p=LOG1P, options=options, predict=False)
        customers, tot = predict_ziln(fitted.posterior, test, max_draws=args.max_draws, seed=args.seed)
        X, g = fitted.design.matrix(test)
        samples = ziln.sample_predictive(fitted.posterior, X, g, max_draws=args.max_draws, seed=args.seed)
        log_lik = ziln.pointwise_log_likelihood(fitted.posterior, X, y, g, max_draws=args.max_draws)
        models[name] = {**{c: customers[c].to_numpy() for c in customers.columns if c != TARGET},
                        "samples": samples, "log_lik": log_lik}
        diag = fitted.diagnostics["ziln"]
        totals.append({"model": name, "predicted total": tot.loc["predictive", "mean"],
                       "90% low": tot.loc["predictive", "q05"], "90% high": tot.loc["predictive", "q95"],
                       "fit + predict s": time.perf_counter() - t0,
                       "diagnostics": "ok" if diag.ok else "; ".join(diag.messages)})

    t0 = time.perf_counter()
    summ = ["frequency", "recency", "T", "monetary_value"]
    clv = fit_btyd(train[summ], "clv", options=options, predict=False)
    spend, samples = predict_spend(clv.posterior, test[summ], horizon, max_draws=args.max_draws, seed=args.seed,
                                   return_samples=True)
    models["BG/NBD x GG"] = {**{c: spend[c].to_numpy() for c in spend.columns}, "samples": samples}
    tot_draws = samples.sum(axis=0)
    diag_msgs = [m for d in clv.diagnostics.values() for m in d.messages]
    totals.append({"model": "BG/NBD x GG", "predicted total": tot_draws.mean(),
                   "90% low": np.quantile(tot_draws, 0.05), "90% high": np.quantile(tot_draws, 0.95),
                   "fit + predict s": time.perf_counter() - t0,
                   "diagnostics": "ok" if not diag_msgs else "; ".join(diag_msgs)})

    ratio = train[TARGET].sum() / train["first_purchase_value"].sum()
    models["first purchase"] = test["first_purchase_value"].to_numpy() * ratio
    totals.append({"model": "first purchase", "predicted total": models["first purchase"].sum(),
                   "90% low": np.nan, "90% high": np.nan, "fit + predict s": 0.0, "diagnostics": ""})

    scores = report(y, models, levels=(0.8, 0.9), top_k=(0.01, 0.1))
    print("\n## Test-set metrics\n")
    print(md_table(scores.T))
    tot = pd.DataFrame(totals).set_index("model")
    tot.insert(0, "actual total", y.sum())
    print("\n## Total holdout spend of the test customers (posterior predictive mean and 90% interval)\n")
    print(md_table(tot, "{:,.0f}"))


if __name__ == "__main__":
    main()
