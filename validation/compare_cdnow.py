"""Validation: every customer-level model on one split, scored by one ruler (issue #6).

Two tables:

1. CDNOW master (23,570 customers): features known ``--weeks`` weeks after each customer's own first purchase
   (first-purchase value, repeat purchase days, recency and mean repeat spend so far, weekday, cohort week; the
   features that are functions of these are left out, see :data:`btyd_ltv.compare.CDNOW_NUMERIC`), target =
   spend over the following 52 weeks (:func:`btyd_ltv.compare.comparison_data`).
2. The multimodal synthetic set (per-user event sequences + tabular aggregates, zero-inflated heavy-tailed revenue
   whose signal lives partly in the sequences), where the Transformer fusion model is compared with the
   tabular-only baselines.

The split (train / validation / test) is drawn once per table with ``--seed`` and shared by every model; the
tables are the test customers. Metrics: :func:`btyd_ltv.metrics.report` (normalised Gini, decile and percentile
MAPE, Spearman, AUC of P(y > 0), top-10% AUC, RMSE, MAE, 50/90% coverage, CRPS, log predictive density).

Usage::

    python validation/compare_cdnow.py                         # both tables, full settings
    python validation/compare_cdnow.py --table cdnow --out runs/compare_cdnow   # also writes figures
"""

from __future__ import annotations

import numpyro

numpyro.set_host_device_count(4)  # parallel chains on CPU: before any JAX computation

import argparse  # noqa: E402
import warnings  # noqa: E402

warnings.filterwarnings("ignore", category=FutureWarning)

from _common import md_table  # noqa: E402

from btyd_ltv.compare import build_models, compare, comparison_data, split_customers, write_comparison  # noqa: E402

CDNOW_MODELS = ("bgnbd_gg", "ziln", "dnn_ziln", "mtl_ziln", "mean", "gbdt_two_stage", "gbdt", "linear")
MULTIMODAL_MODELS = ("ziln", "dnn_ziln", "gbdt_two_stage", "gbdt", "linear", "fusion")
COLUMNS = ["mean_true", "mean_pred", "gini", "decile_mape", "percentile_mape", "spearman", "auc_positive",
           "top_10pct_auc", "rmse", "mae", "coverage_50", "coverage_90", "crps", "lpd", "fit_seconds"]


def run(label: str, data, models, args) -> None:
    split = split_customers(data.ids, valid_fraction=0.2, test_fraction=0.3, seed=args.seed)
    built = build_models(models, seed=args.seed, num_chains=args.chains, num_warmup=args.tune,
                         num_samples=args.draws, max_epochs=args.max_epochs)
    result = compare(data, built, split=split, seed=args.seed, bayesian=[m for m in models if m in
                                                                         ("bgnbd_gg", "ziln")])
    counts = split.value_counts()
    print(f"\n## {label}: {int(counts['test']):,} test customers (train {int(counts['train']):,}, validation "
          f"{int(counts['valid']):,}; seed {args.seed}); {100 * (result.y_test > 0).mean():.1f}% of test customers "
          "spend\n")
    print(md_table(result.metrics[[c for c in COLUMNS if c in result.metrics]], "{:.3g}"))
    notes = {n: r.diagnostics for n, r in result.results.items() if r.diagnostics}
    for name, msgs in notes.items():
        print(f"\n{name} sampling diagnostics: " + "; ".join(msgs))
    if args.out:
        write_comparison(result, f"{args.out}/{label.split()[0].lower()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", choices=["cdnow", "multimodal", "both"], default="both")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--max-epochs", type=int, default=None, help="cap on training epochs (neural models)")
    parser.add_argument("--weeks", type=int, default=4)
    parser.add_argument("--multimodal-customers", type=int, default=20000)
    parser.add_argument("--out", default=None, help="also write metrics, predictions and figures here")
    args = parser.parse_args()
    if args.table in ("cdnow", "both"):
        data = comparison_data("cdnow", weeks=args.weeks, seed=args.seed)
        run(f"CDNOW master, features at week {args.weeks}, target = spend in the next 52 weeks", data,
            CDNOW_MODELS, args)
    if args.table in ("multimodal", "both"):
        data = comparison_data("multimodal", n_customers=args.multimodal_customers, seed=args.seed)
        run(f"Multimodal synthetic set, {data.n:,} users", data, MULTIMODAL_MODELS, args)


if __name__ == "__main__":
    main()
